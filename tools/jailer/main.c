/* ember-jailer: runs a VMM confined as Firecracker's jailer does, with its command line. */
#include "jailer.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define EXIT_USAGE 2

static const char usage[] =
	"usage: ember-jailer --id ID --exec-file PATH --uid N --gid N [OPTIONS] [-- VMM ARGS...]\n"
	"\n"
	"Runs PATH (ember) as uid:gid in a new mount namespace whose root is\n"
	"BASE/NAME/ID/root (NAME: PATH's file name), holding a private copy of PATH, the\n"
	"libraries it needs, /dev/kvm, /dev/net/tun, /dev/urandom and /dev/userfaultfd.\n"
	"Execs ./NAME --id ID --start-time-us US --start-time-cpu-us US VMM ARGS...\n"
	"\n"
	"options (--opt VALUE or --opt=VALUE):\n"
	"  --chroot-base-dir DIR       BASE (default " JAIL_DEFAULT_BASE ")\n"
	"  --netns PATH                join this network namespace (/var/run/netns/NAME)\n"
	"  --cgroup FILE=VALUE         write VALUE to FILE of the VM's cgroup v2\n"
	"                              (MOUNT/PARENT/ID), e.g. memory.max=268435456; repeatable\n"
	"  --cgroup-version 2          cgroup v2, the only one supported\n"
	"  --parent-cgroup P           PARENT (default NAME); alone: join P\n"
	"  --resource-limit fsize=N    also no-file=N (default 2048); repeatable\n"
	"  --daemonize                 new session, stdio on /dev/null\n"
	"  --new-pid-ns                run the VMM as pid 1 of a new pid namespace\n"
	"  -h, --help                  this text\n"
	"\n"
	"NAME.pid in the jail's root holds the VMM's pid. Exit status: 2 bad arguments,\n"
	"1 the jail could not be made; else the VMM's.\n";

/* Checks that need the file system, still bad arguments: exit 2. */
static int check_paths(const struct jail_args *a, char *err, size_t errlen)
{
	struct stat st;

	if (stat(a->exec_file, &st) < 0) {
		snprintf(err, errlen, "--exec-file %s: %s", a->exec_file, strerror(errno));
		return -errno;
	}
	if (!S_ISREG(st.st_mode) || !(st.st_mode & 0111)) {
		snprintf(err, errlen, "--exec-file %s: not an executable file", a->exec_file);
		return -EINVAL;
	}
	if (a->netns && stat(a->netns, &st) < 0) {
		snprintf(err, errlen, "--netns %s: %s", a->netns, strerror(errno));
		return -errno;
	}
	return 0;
}

/* Host files the jail cannot reach once entered, opened now (close-on-exec). */
struct host_files {
	int netns_fd, devnull_fd, uffd_minor;
};

static int open_host_files(const struct jail_args *a, struct host_files *h, char *err,
	size_t errlen)
{
	h->netns_fd = h->devnull_fd = -1;
	h->uffd_minor = jail_userfaultfd_minor();
	if (a->netns) {
		h->netns_fd = open(a->netns, O_RDONLY | O_CLOEXEC);
		if (h->netns_fd < 0) {
			snprintf(err, errlen, "--netns %s: %s", a->netns, strerror(errno));
			return -errno;
		}
	}
	if (a->daemonize) {
		h->devnull_fd = open("/dev/null", O_RDWR | O_CLOEXEC);
		if (h->devnull_fd < 0) {
			snprintf(err, errlen, "/dev/null: %s", strerror(errno));
			return -errno;
		}
	}
	return 0;
}

/* BASE/NAME/ID/root with a private copy of the VMM and its libraries. */
static int build_jail(const struct jail_args *a, char *root, size_t len, char *err, size_t errlen)
{
	char dst[PATH_MAX];
	unsigned libs;
	int ret;

	if ((size_t)snprintf(root, len, "%s/%s/%s/root", a->chroot_base, a->exec_name, a->id) >=
		len) {
		snprintf(err, errlen, "--chroot-base-dir %s: path too long", a->chroot_base);
		return -ENAMETOOLONG;
	}
	ret = jail_mkdirs(root, NULL, err, errlen);
	if (ret)
		return ret;
	if ((size_t)snprintf(dst, sizeof(dst), "%s/%s", root, a->exec_name) >= sizeof(dst)) {
		snprintf(err, errlen, "--chroot-base-dir %s: path too long", a->chroot_base);
		return -ENAMETOOLONG;
	}
	ret = jail_copy_file(a->exec_file, dst, 0755, err, errlen);
	if (!ret)
		ret = jail_copy_libs(a->exec_file, root, &libs, err, errlen);
	return ret;
}

/* ./NAME --id ID --start-time-us .. --start-time-cpu-us .. [--parent-cpu-time-us ..] ARGS */
static void exec_vmm(const struct jail_args *a, uint64_t start_us, const uint64_t *parent_cpu)
{
	char path[PATH_MAX], start[24], cpu[24], parent[24];
	char *empty_env[] = { NULL };
	char **argv = calloc((size_t)a->vmm_argc + 10, sizeof(char *));
	int n = 0;

	if (!argv) {
		fprintf(stderr, "ember-jailer: out of memory\n");
		return;
	}
	snprintf(path, sizeof(path), "./%s", a->exec_name);
	snprintf(start, sizeof(start), "%" PRIu64, start_us);
	argv[n++] = path;
	argv[n++] = "--id";
	argv[n++] = (char *)a->id;
	argv[n++] = "--start-time-us";
	argv[n++] = start;
	if (parent_cpu) {
		snprintf(parent, sizeof(parent), "%" PRIu64, *parent_cpu);
		argv[n++] = "--parent-cpu-time-us";
		argv[n++] = parent;
	}
	argv[n++] = "--start-time-cpu-us";
	argv[n++] = cpu;
	for (int i = 0; i < a->vmm_argc; i++)
		argv[n++] = a->vmm_argv[i];
	/* Last, so the CPU time counts all of the jailer's work. */
	snprintf(cpu, sizeof(cpu), "%" PRIu64, jail_cpu_us());
	execve(path, argv, empty_env);
	fprintf(stderr, "ember-jailer: cannot run %s in the jail: %s\n", path, strerror(errno));
	free(argv);
}

/* Inside the jail: namespaces, session, pid file, identity; then the VMM. Returns only on
 * failure, or in a parent (pid namespace, daemon) whose work is done: its exit status. */
static int run_in_jail(const struct jail_args *a, const struct host_files *h, uint64_t start_us)
{
	uint64_t parent_cpu = 0;
	char err[512];
	pid_t pid = 0;

	if (jail_make_devices(a->uid, a->gid, h->uffd_minor, err, sizeof(err)))
		goto fail;
	if (h->netns_fd >= 0 && jail_join_netns(h->netns_fd, err, sizeof(err)))
		goto fail;
	if (a->daemonize) {
		pid = jail_daemonize(h->devnull_fd, err, sizeof(err));
		if (pid < 0)
			goto fail;
		if (pid > 0)
			return EXIT_SUCCESS;
	}
	if (a->new_pid_ns) {
		parent_cpu = jail_cpu_us();
		pid = jail_new_pid_ns(err, sizeof(err));
		if (pid < 0)
			goto fail;
	}
	/* The jailer's side of a new pid namespace writes the VMM's pid (as seen from
	 * outside) and is done; without one, the VMM is this very process. */
	if ((pid > 0 || !a->new_pid_ns) &&
		jail_write_pid_file(a->exec_name, pid > 0 ? pid : getpid(), err, sizeof(err)))
		goto fail;
	if (pid > 0)
		return EXIT_SUCCESS;
	if (jail_drop_ids(a->uid, a->gid, err, sizeof(err)))
		goto fail;
	exec_vmm(a, start_us, a->new_pid_ns ? &parent_cpu : NULL);
	return EXIT_FAILURE;
fail:
	fprintf(stderr, "ember-jailer: %s\n", err);
	return EXIT_FAILURE;
}

int main(int argc, char **argv)
{
	uint64_t start_us = jail_monotonic_us();
	char err[512], root[PATH_MAX];
	struct host_files h;
	struct jail_args a;

	if (jail_args_parse(&a, argc, argv, err, sizeof(err)) ||
		(!a.help && check_paths(&a, err, sizeof(err)))) {
		fprintf(stderr, "ember-jailer: %s\n", err);
		return EXIT_USAGE;
	}
	if (a.help) {
		fputs(usage, stdout);
		return EXIT_SUCCESS;
	}
	if (geteuid() != 0) {
		fprintf(stderr,
			"ember-jailer: must run as root (it makes namespaces, device nodes "
			"and cgroups, then drops to --uid/--gid)\n");
		return EXIT_FAILURE;
	}
	/* Nothing the caller left open or set reaches the VM. */
	if (jail_close_fds(err, sizeof(err)))
		goto fail;
	if (clearenv()) {
		snprintf(err, sizeof(err), "cannot clear the environment");
		goto fail;
	}
	if (open_host_files(&a, &h, err, sizeof(err)))
		goto fail;
	if (build_jail(&a, root, sizeof(root), err, sizeof(err)))
		goto fail;
	if (jail_set_rlimits(&a, err, sizeof(err)))
		goto fail;
	if (jail_cgroup_setup(&a, err, sizeof(err)))
		goto fail;
	if (jail_enter(root, err, sizeof(err)))
		goto fail;
	return run_in_jail(&a, &h, start_us);
fail:
	fprintf(stderr, "ember-jailer: %s\n", err);
	return EXIT_FAILURE;
}
