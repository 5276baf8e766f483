/* ember-jailer's cgroup v2 step: the VM's cgroup made, limited, and this process moved in. */
#include "jailer.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* A whole small file (/proc/mounts, cgroup.controllers) as a string; NULL with errno. */
static char *read_all(const char *path)
{
	size_t cap = 4096, len = 0;
	char *buf = malloc(cap), *bigger;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t got;

	if (fd < 0 || !buf)
		goto err;
	while ((got = read(fd, buf + len, cap - len - 1)) != 0) {
		if (got < 0) {
			if (errno == EINTR)
				continue;
			goto err;
		}
		len += (size_t)got;
		if (cap - len - 1 == 0) {
			bigger = realloc(buf, cap * 2);
			if (!bigger)
				goto err;
			buf = bigger;
			cap *= 2;
		}
	}
	buf[len] = 0;
	close(fd);
	return buf;
err:
	got = errno;
	free(buf);
	if (fd >= 0)
		close(fd);
	errno = (int)got;
	return NULL;
}

/* One write(2) of text: a cgroup file takes a value per write. */
static int write_text(const char *dir, const char *file, const char *text, char *err, size_t errlen)
{
	char path[PATH_MAX];
	size_t n = strlen(text);
	int fd, e;

	snprintf(path, sizeof(path), "%s/%s", dir, file);
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0 || write(fd, text, n) != (ssize_t)n) {
		e = errno;
		snprintf(err, errlen, "cgroup %s: cannot write '%s': %s", path, text, strerror(e));
		if (fd >= 0)
			close(fd);
		return -e;
	}
	close(fd);
	return 0;
}

static int make_dir(const char *path, char *err, size_t errlen)
{
	if (mkdir(path, 0755) < 0 && errno != EEXIST) {
		int e = errno;

		snprintf(err, errlen, "cgroup %s: cannot create: %s", path, strerror(e));
		return -e;
	}
	return 0;
}

/* The controller enabled in dir's cgroup.subtree_control, so dir's children have it. */
static int enable_in(const char *dir, const char *controller, char *err, size_t errlen)
{
	char path[PATH_MAX], plus[64];
	char *have;
	bool ok;

	snprintf(path, sizeof(path), "%s/cgroup.controllers", dir);
	have = read_all(path);
	if (!have) {
		snprintf(err, errlen, "cgroup %s: %s", path, strerror(errno));
		return -errno;
	}
	ok = cgroup_list_has(have, controller);
	free(have);
	if (!ok) {
		snprintf(err, errlen, "cgroup %s: the '%s' controller is not available there", dir,
			controller);
		return -ENOENT;
	}
	snprintf(path, sizeof(path), "%s/cgroup.subtree_control", dir);
	have = read_all(path);
	ok = have && cgroup_list_has(have, controller);
	free(have);
	if (ok)
		return 0;
	snprintf(plus, sizeof(plus), "+%s", controller);
	return write_text(dir, "cgroup.subtree_control", plus, err, errlen);
}

/* The settings' controllers (at most one each, core files need none). */
struct controllers {
	char name[JAIL_MAX_CGROUPS][64];
	unsigned n;
};

static int enable_all(const char *dir, const struct controllers *c, char *err, size_t errlen)
{
	int ret = 0;

	for (unsigned i = 0; !ret && i < c->n; i++)
		ret = enable_in(dir, c->name[i], err, errlen);
	return ret;
}

/* Every level from the mount down to parent (made where missing) passes the controllers
 * on, so the VM's cgroup below parent can have them. */
static int prepare_parent(const char *mount, const char *parent, const struct controllers *c,
	char *err, size_t errlen)
{
	char dir[PATH_MAX];
	size_t at = (size_t)snprintf(dir, sizeof(dir), "%s", mount);
	const char *p = parent;
	int ret = enable_all(dir, c, err, errlen);

	while (!ret && *p) {
		size_t n = strcspn(p, "/");

		if (at + 1 + n >= sizeof(dir)) {
			snprintf(err, errlen, "cgroup %s/%s: path too long", mount, parent);
			return -ENAMETOOLONG;
		}
		dir[at++] = '/';
		memcpy(dir + at, p, n);
		at += n;
		dir[at] = 0;
		p += n + (p[n] == '/');
		ret = make_dir(dir, err, errlen);
		if (!ret)
			ret = enable_all(dir, c, err, errlen);
	}
	return ret;
}

static int collect_controllers(const struct jail_args *a, struct controllers *c, char *err,
	size_t errlen)
{
	c->n = 0;
	for (unsigned i = 0; i < a->nr_cgroups; i++) {
		char *name = c->name[c->n];
		bool dup = false;

		if (cgroup_controller(a->cgroups[i], name, sizeof(c->name[0]))) {
			snprintf(err, errlen, "--cgroup %s: controller name too long",
				a->cgroups[i]);
			return -ENAMETOOLONG;
		}
		for (unsigned k = 0; k < c->n; k++)
			dup |= !strcmp(c->name[k], name);
		if (name[0] && !dup)
			c->n++;
	}
	return 0;
}

/* dir = mount/parent[/id], or -ENAMETOOLONG said in err. */
static int cgroup_dir(char *dir, size_t len, const char *mount, const char *parent, const char *id,
	char *err, size_t errlen)
{
	int n = snprintf(dir, len, "%s/%s%s%s", mount, parent, id ? "/" : "", id ? id : "");

	if (n < 0 || (size_t)n >= len) {
		snprintf(err, errlen, "cgroup %s/%s: path too long", mount, parent);
		return -ENAMETOOLONG;
	}
	return 0;
}

static int find_mount(char *mount, size_t len, char *err, size_t errlen)
{
	char *mounts = read_all("/proc/mounts");
	int ret;

	if (!mounts) {
		snprintf(err, errlen, "/proc/mounts: %s", strerror(errno));
		return -errno;
	}
	ret = cgroup_mount_find(mounts, mount, len);
	free(mounts);
	if (ret == -ENOENT)
		snprintf(err, errlen,
			"no cgroup2 file system is mounted (cgroup v1 is not "
			"supported)");
	else if (ret)
		snprintf(err, errlen, "/proc/mounts: the cgroup2 mount point is too long");
	return ret;
}

int jail_cgroup_setup(const struct jail_args *a, char *err, size_t errlen)
{
	const char *parent = a->parent_cgroup ? a->parent_cgroup : a->exec_name;
	char mount[PATH_MAX], dir[PATH_MAX], pid[32];
	struct controllers c;
	struct stat st;
	int ret;

	if (!a->nr_cgroups && !a->parent_cgroup)
		return 0;
	ret = find_mount(mount, sizeof(mount), err, errlen);
	if (ret)
		return ret;
	snprintf(pid, sizeof(pid), "%d", (int)getpid());
	if (!a->nr_cgroups) {
		/* No limits of its own: the VM joins the parent the operator prepared. */
		ret = cgroup_dir(dir, sizeof(dir), mount, parent, NULL, err, errlen);
		if (ret)
			return ret;
		if (stat(dir, &st) < 0) {
			snprintf(err, errlen, "--parent-cgroup %s: %s", dir, strerror(errno));
			return -errno;
		}
		return write_text(dir, "cgroup.procs", pid, err, errlen);
	}
	ret = collect_controllers(a, &c, err, errlen);
	if (!ret)
		ret = prepare_parent(mount, parent, &c, err, errlen);
	if (ret)
		return ret;
	ret = cgroup_dir(dir, sizeof(dir), mount, parent, a->id, err, errlen);
	if (!ret)
		ret = make_dir(dir, err, errlen);
	for (unsigned i = 0; !ret && i < a->nr_cgroups; i++) {
		const char *eq = strchr(a->cgroups[i], '=');
		char file[NAME_MAX + 1];

		snprintf(file, sizeof(file), "%.*s", (int)(eq - a->cgroups[i]), a->cgroups[i]);
		ret = write_text(dir, file, eq + 1, err, errlen);
	}
	if (!ret)
		ret = write_text(dir, "cgroup.procs", pid, err, errlen);
	return ret;
}
