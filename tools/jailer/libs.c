/* The shared libraries a dynamically linked VMM needs, copied into its jail.
 *
 * Why copies and not `make static`: Debian ships static archives for lua5.4, libev,
 * libseccomp, http-parser and readline (with ncurses), but libcjson-dev has only the
 * shared library, so no fully static ember can be built from Debian's packages. The
 * jailer therefore reads the binary's PT_INTERP and DT_NEEDED (transitively) and copies
 * each file to the same absolute path under the jail's root, where the loader looks for
 * it. Private copies, like the binary's: no page sharing between VMs. A static binary
 * needs nothing and gets nothing. */
#include "jailer.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef JAIL_MULTIARCH
#define JAIL_MULTIARCH "x86_64-linux-gnu" /* the Makefile passes $(CC) -print-multiarch */
#endif

#define MAX_LIBS 128

/* The loader's default places, after the file's run path. */
static const char *const default_dirs[] = {
	"/lib/" JAIL_MULTIARCH,
	"/usr/lib/" JAIL_MULTIARCH,
	"/lib64",
	"/usr/lib64",
	"/lib",
	"/usr/lib",
};

struct lib_set {
	char name[MAX_LIBS][256]; /* as DT_NEEDED says it */
	char path[MAX_LIBS][256]; /* where it was found ("" for the interpreter's soname) */
	unsigned n;
};

/* Is candidate an ELF file for machine (the loader skips others, e.g. 32-bit ones)? */
static bool usable(const char *candidate, uint16_t machine)
{
	struct elf_deps d;
	char ignored[256];

	return access(candidate, R_OK) == 0 &&
		elf_deps_read(candidate, &d, ignored, sizeof(ignored)) == 0 && d.machine == machine;
}

/* One name of runpath (':'-separated) or of the default places; 0 with out filled. */
static int find_lib(const char *name, const char *runpath, uint16_t machine, char *out, size_t len)
{
	const char *p = runpath;

	if (strchr(name, '/')) {
		snprintf(out, len, "%s", name);
		return usable(out, machine) ? 0 : -ENOENT;
	}
	while (*p) {
		size_t n = strcspn(p, ":");

		/* $ORIGIN and friends would need the loader's substitution: not supported. */
		if (n && !memchr(p, '$', n)) {
			snprintf(out, len, "%.*s/%s", (int)n, p, name);
			if (usable(out, machine))
				return 0;
		}
		p += n + (p[n] == ':');
	}
	for (size_t k = 0; k < sizeof(default_dirs) / sizeof(default_dirs[0]); k++) {
		snprintf(out, len, "%s/%s", default_dirs[k], name);
		if (usable(out, machine))
			return 0;
	}
	return -ENOENT;
}

static bool known(const struct lib_set *s, const char *name)
{
	for (unsigned i = 0; i < s->n; i++)
		if (!strcmp(s->name[i], name))
			return true;
	return false;
}

/* Adds what file (a path) needs to s, breadth first: s->path grows as the walk goes. */
static int add_needed(struct lib_set *s, const char *file, uint16_t machine, char *err,
	size_t errlen)
{
	struct elf_deps d;
	int ret = elf_deps_read(file, &d, err, errlen);

	for (unsigned i = 0; !ret && i < d.nr_needed; i++) {
		if (known(s, d.needed[i]))
			continue;
		if (s->n == MAX_LIBS) {
			snprintf(err, errlen, "%s: more than %d libraries needed", file, MAX_LIBS);
			return -E2BIG;
		}
		if (find_lib(d.needed[i], d.runpath, machine, s->path[s->n], sizeof(s->path[0]))) {
			snprintf(err, errlen, "%s (needed by %s): not found", d.needed[i], file);
			return -ENOENT;
		}
		snprintf(s->name[s->n++], sizeof(s->name[0]), "%s", d.needed[i]);
	}
	return ret;
}

static int copy_into(const char *root, const char *path, char *err, size_t errlen)
{
	char dst[PATH_MAX], dir[PATH_MAX];
	char *slash;
	int ret;

	snprintf(dst, sizeof(dst), "%s%s", root, path);
	snprintf(dir, sizeof(dir), "%s", dst);
	slash = strrchr(dir, '/');
	*slash = 0;
	ret = jail_mkdirs(dir, root, err, errlen);
	/* 0755: the kernel opens the interpreter as it opens a program, with MAY_EXEC. */
	return ret ? ret : jail_copy_file(path, dst, 0755, err, errlen);
}

int jail_copy_libs(const char *exec, const char *root, unsigned *copied, char *err, size_t errlen)
{
	struct lib_set *s;
	struct elf_deps d;
	const char *base;
	int ret;

	*copied = 0;
	ret = elf_deps_read(exec, &d, err, errlen);
	if (ret || !d.interp[0])
		return ret;
	s = calloc(1, sizeof(*s));
	if (!s) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	/* libc names the loader by its soname; the loaded interpreter answers to it. */
	base = strrchr(d.interp, '/');
	snprintf(s->name[s->n++], sizeof(s->name[0]), "%s", base ? base + 1 : d.interp);
	ret = copy_into(root, d.interp, err, errlen);
	if (!ret)
		ret = add_needed(s, exec, d.machine, err, errlen);
	for (unsigned i = 1; !ret && i < s->n; i++) {
		ret = add_needed(s, s->path[i], d.machine, err, errlen);
		if (!ret)
			ret = copy_into(root, s->path[i], err, errlen);
	}
	if (!ret)
		*copied = s->n;
	free(s);
	return ret;
}
