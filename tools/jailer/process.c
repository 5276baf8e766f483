/* ember-jailer's process step: descriptors, rlimits, namespaces, session and identity. */
#include "jailer.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "ember/clock.h"

/* Without close_range (Linux < 5.9): every descriptor /proc/self/fd lists. */
static int close_listed(char *err, size_t errlen)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int fds[1024], n = 0, again;

	if (!d) {
		snprintf(err, errlen, "/proc/self/fd: %s", strerror(errno));
		return -errno;
	}
	do {
		/* Closing while reading would disturb the listing: collect, close, look again. */
		n = 0;
		again = 0;
		while ((e = readdir(d)) && n < 1024) {
			int fd = atoi(e->d_name);

			if (fd > 2 && fd != dirfd(d))
				fds[n++] = fd;
		}
		again = e != NULL;
		for (int i = 0; i < n; i++)
			close(fds[i]);
		rewinddir(d);
	} while (again);
	closedir(d);
	return 0;
}

int jail_close_fds(char *err, size_t errlen)
{
	if (close_range(3, ~0U, 0) == 0)
		return 0;
	if (errno != ENOSYS) {
		snprintf(err, errlen, "cannot close inherited descriptors: %s", strerror(errno));
		return -errno;
	}
	return close_listed(err, errlen);
}

static int set_limit(int resource, const char *name, uint64_t value, char *err, size_t errlen)
{
	struct rlimit r = { .rlim_cur = (rlim_t)value, .rlim_max = (rlim_t)value };

	if (setrlimit(resource, &r) < 0) {
		snprintf(err, errlen, "--resource-limit %s=%llu: %s", name,
			(unsigned long long)value, strerror(errno));
		return -errno;
	}
	return 0;
}

int jail_set_rlimits(const struct jail_args *a, char *err, size_t errlen)
{
	int ret = set_limit(RLIMIT_NOFILE, "no-file", a->no_file, err, errlen);

	if (!ret && a->has_fsize)
		ret = set_limit(RLIMIT_FSIZE, "fsize", a->fsize, err, errlen);
	return ret;
}

int jail_join_netns(int netns_fd, char *err, size_t errlen)
{
	if (setns(netns_fd, CLONE_NEWNET) < 0) {
		snprintf(err, errlen, "--netns: cannot enter the network namespace: %s",
			strerror(errno));
		return -errno;
	}
	return 0;
}

pid_t jail_daemonize(int devnull_fd, char *err, size_t errlen)
{
	pid_t pid;

	/* A process group leader (started from an interactive shell) cannot setsid: its
	 * child goes on in its place. */
	if (getpgrp() == getpid()) {
		pid = fork();
		if (pid < 0) {
			snprintf(err, errlen, "--daemonize: fork: %s", strerror(errno));
			return -errno;
		}
		if (pid > 0)
			return pid;
	}
	if (setsid() < 0) {
		snprintf(err, errlen, "--daemonize: setsid: %s", strerror(errno));
		return -errno;
	}
	for (int fd = 0; fd < 3; fd++)
		if (dup2(devnull_fd, fd) < 0) {
			snprintf(err, errlen, "--daemonize: stdio onto /dev/null: %s",
				strerror(errno));
			return -errno;
		}
	return 0;
}

pid_t jail_new_pid_ns(char *err, size_t errlen)
{
	pid_t pid;

	/* unshare(CLONE_NEWPID) puts the next child, not the caller, in the namespace. */
	if (unshare(CLONE_NEWPID) < 0) {
		snprintf(err, errlen, "--new-pid-ns: unshare: %s", strerror(errno));
		return -errno;
	}
	pid = fork();
	if (pid < 0) {
		snprintf(err, errlen, "--new-pid-ns: fork: %s", strerror(errno));
		return -errno;
	}
	return pid;
}

int jail_write_pid_file(const char *exec_name, pid_t pid, char *err, size_t errlen)
{
	char path[300], text[32];
	int n = snprintf(text, sizeof(text), "%d\n", (int)pid), fd, e;

	snprintf(path, sizeof(path), "%s.pid", exec_name);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0644);
	if (fd < 0 || write(fd, text, (size_t)n) != n) {
		e = errno;
		snprintf(err, errlen, "pid file %s: %s", path, strerror(e));
		if (fd >= 0)
			close(fd);
		return -e;
	}
	close(fd);
	return 0;
}

int jail_drop_ids(uid_t uid, gid_t gid, char *err, size_t errlen)
{
	const char *step = "setgroups";

	/* Supplementary groups first: once the uid is dropped they cannot be shed. */
	if (setgroups(0, NULL) < 0)
		goto fail;
	step = "setresgid";
	if (setresgid(gid, gid, gid) < 0)
		goto fail;
	step = "setresuid";
	if (setresuid(uid, uid, uid) < 0)
		goto fail;
	return 0;
fail:
	snprintf(err, errlen, "cannot drop to uid %u gid %u: %s: %s", (unsigned)uid, (unsigned)gid,
		step, strerror(errno));
	return -errno;
}

static uint64_t clock_us(clockid_t clock)
{
	struct timespec ts;

	clock_gettime(clock, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

uint64_t jail_monotonic_us(void)
{
	return mono_ns() / 1000;
}

uint64_t jail_cpu_us(void)
{
	return clock_us(CLOCK_PROCESS_CPUTIME_ID);
}
