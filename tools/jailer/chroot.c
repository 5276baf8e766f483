/* ember-jailer's file system step: the jail's tree, private copies, pivot_root, device nodes. */
#include "jailer.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

int jail_mkdirs(const char *path, const char *trusted, char *err, size_t errlen)
{
	size_t n = strlen(path), keep = trusted ? strlen(trusted) : n;
	char buf[PATH_MAX];
	struct stat st;

	if (n >= sizeof(buf)) {
		snprintf(err, errlen, "%s: path too long", path);
		return -ENAMETOOLONG;
	}
	memcpy(buf, path, n + 1);
	for (char *p = buf + 1;; p++) {
		if (*p && *p != '/')
			continue;
		char c = *p;

		*p = 0;
		if (mkdir(buf, 0755) < 0 && errno != EEXIST) {
			int e = errno;

			snprintf(err, errlen, "cannot create %s: %s", buf, strerror(e));
			return -e;
		}
		if ((size_t)(p - buf) > keep && (lstat(buf, &st) < 0 || !S_ISDIR(st.st_mode))) {
			snprintf(err, errlen, "%s is not a directory (a link left in the jail?)",
				buf);
			return -ENOTDIR;
		}
		if (!c)
			return 0;
		*p = c;
	}
}

int jail_copy_file(const char *src, const char *dst, mode_t mode, char *err, size_t errlen)
{
	char buf[64 * 1024];
	int in = open(src, O_RDONLY | O_CLOEXEC), out = -1, e = 0;
	ssize_t got;

	if (in < 0) {
		e = errno;
		snprintf(err, errlen, "%s: %s", src, strerror(e));
		return -e;
	}
	/* Whatever was at dst (a link an earlier run left, a file in use) is replaced, never
	 * written through. */
	if (unlink(dst) < 0 && errno != ENOENT)
		goto err_dst;
	out = open(dst, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
	if (out < 0)
		goto err_dst;
	while ((got = read(in, buf, sizeof(buf))) != 0) {
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0) {
			e = errno;
			snprintf(err, errlen, "%s: %s", src, strerror(e));
			goto out;
		}
		for (ssize_t done = 0, w; done < got; done += w) {
			w = write(out, buf + done, (size_t)(got - done));
			if (w < 0 && errno == EINTR)
				w = 0;
			else if (w < 0)
				goto err_dst;
		}
	}
	if (fchmod(out, mode) < 0) /* the umask took bits off at open */
		goto err_dst;
	goto out;
err_dst:
	e = errno;
	snprintf(err, errlen, "cannot copy %s to %s: %s", src, dst, strerror(e));
out:
	if (out >= 0)
		close(out);
	close(in);
	return -e;
}

int jail_userfaultfd_minor(void)
{
	FILE *f = fopen("/proc/misc", "re");
	char name[64];
	int minor, found = -ENOENT;

	if (!f)
		return -ENOENT;
	while (fscanf(f, "%d %63s", &minor, name) == 2)
		if (!strcmp(name, "userfaultfd"))
			found = minor;
	fclose(f);
	return found;
}

int jail_enter(const char *root, char *err, size_t errlen)
{
	const char *step;

	step = "unshare(CLONE_NEWNS)";
	if (unshare(CLONE_NEWNS) < 0)
		goto fail;
	/* Nothing done from here on may propagate back to the host's mounts; pivot_root
	 * also refuses a shared parent mount. */
	step = "making / private";
	if (mount(NULL, "/", NULL, MS_PRIVATE | MS_REC, NULL) < 0)
		goto fail;
	/* pivot_root needs the new root to be a mount point. */
	step = "bind-mounting the jail on itself";
	if (mount(root, root, NULL, MS_BIND | MS_REC, NULL) < 0)
		goto fail;
	step = "chdir into the jail";
	if (chdir(root) < 0)
		goto fail;
	step = "mkdir old_root";
	if (mkdir("old_root", 0700) < 0 && errno != EEXIST)
		goto fail;
	step = "pivot_root";
	if (syscall(SYS_pivot_root, ".", "old_root") < 0)
		goto fail;
	step = "chdir /";
	if (chdir("/") < 0)
		goto fail;
	step = "detaching the old root";
	if (umount2("/old_root", MNT_DETACH) < 0)
		goto fail;
	step = "rmdir /old_root";
	if (rmdir("/old_root") < 0)
		goto fail;
	step = "chroot";
	if (chroot(".") < 0)
		goto fail;
	return 0;
fail:
	snprintf(err, errlen, "jail %s: %s: %s", root, step, strerror(errno));
	return -errno;
}

struct dev_node {
	const char *path;
	unsigned major, minor;
};

static int make_node(const char *path, unsigned major, unsigned minor, uid_t uid, gid_t gid,
	char *err, size_t errlen)
{
	int e;

	/* A node an earlier run left (or anything else there) is made anew; 0600: only the
	 * VM's own uid may use its nodes. */
	if (unlink(path) < 0 && errno != ENOENT)
		goto fail;
	if (mknod(path, S_IFCHR | 0600, makedev(major, minor)) < 0)
		goto fail;
	if (chown(path, uid, gid) < 0)
		goto fail;
	return 0;
fail:
	e = errno;
	snprintf(err, errlen, "jail: cannot make %s (%u,%u): %s", path, major, minor, strerror(e));
	return -e;
}

int jail_make_devices(uid_t uid, gid_t gid, int uffd_minor, char *err, size_t errlen)
{
	static const struct dev_node nodes[] = {
		{ "/dev/kvm", 10, 232 },
		{ "/dev/net/tun", 10, 200 },
		{ "/dev/urandom", 1, 9 },
	};
	int ret = jail_mkdirs("/dev/net", "/", err, errlen);

	for (size_t i = 0; !ret && i < sizeof(nodes) / sizeof(nodes[0]); i++)
		ret = make_node(nodes[i].path, nodes[i].major, nodes[i].minor, uid, gid, err,
			errlen);
	if (!ret && uffd_minor >= 0)
		ret = make_node("/dev/userfaultfd", 10, (unsigned)uffd_minor, uid, gid, err,
			errlen);
	if (!ret && chown("/", uid, gid) < 0) {
		ret = -errno;
		snprintf(err, errlen, "jail: cannot give / to %u:%u: %s", (unsigned)uid,
			(unsigned)gid, strerror(errno));
	}
	return ret;
}
