/* cgroup v2 names and paths for ember-jailer: checks and parsing, no system calls. */
#include "jailer.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#define SETTING_CHARS "abcdefghijklmnopqrstuvwxyz0123456789_."

int cgroup_setting_check(const char *setting, char *err, size_t errlen)
{
	const char *eq = strchr(setting, '=');
	size_t n = eq ? (size_t)(eq - setting) : 0;

	if (!eq || !n) {
		snprintf(err, errlen, "--cgroup: '%s' is not FILE=VALUE (memory.max=268435456)",
			setting);
		return -EINVAL;
	}
	/* The file is a name inside the VM's own cgroup: one component, never a path. */
	if (strspn(setting, SETTING_CHARS) != n || setting[0] == '.' || !memchr(setting, '.', n)) {
		snprintf(err, errlen,
			"--cgroup: '%.*s' is not a cgroup file name "
			"(CONTROLLER.NAME, of a-z 0-9 _ .)",
			(int)n, setting);
		return -EINVAL;
	}
	if (!eq[1]) {
		snprintf(err, errlen, "--cgroup: %.*s has an empty value", (int)n, setting);
		return -EINVAL;
	}
	return 0;
}

int cgroup_controller(const char *setting, char *out, size_t len)
{
	size_t n = strcspn(setting, ".=");

	/* cgroup.* files (cgroup.max.depth, ...) belong to the core, always there. */
	if (n == 6 && !strncmp(setting, "cgroup", 6))
		n = 0;
	if (n >= len)
		return -ENAMETOOLONG;
	memcpy(out, setting, n);
	out[n] = 0;
	return 0;
}

bool cgroup_parent_valid(const char *parent)
{
	const char *p = parent;

	if (!*p || *p == '/')
		return false;
	while (*p) {
		size_t n = strcspn(p, "/");

		if (n == 0 || (n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.'))
			return false;
		p += n;
		if (*p == '/' && !*++p)
			return false; /* a trailing slash: an empty last part */
	}
	return true;
}

/* A /proc/mounts field: up to the next space, with \040-style octal escapes decoded. */
static const char *mount_field(const char *s, char *out, size_t len, int *ret)
{
	size_t o = 0;

	*ret = 0;
	while (*s && *s != ' ' && *s != '\n') {
		char c = *s++;

		if (c == '\\' && s[0] >= '0' && s[0] <= '3' && s[1] >= '0' && s[1] <= '7' &&
			s[2] >= '0' && s[2] <= '7') {
			c = (char)((s[0] - '0') * 64 + (s[1] - '0') * 8 + (s[2] - '0'));
			s += 3;
		}
		if (o + 1 < len)
			out[o++] = c;
		else
			*ret = -ENAMETOOLONG; /* read on to the field's end all the same */
	}
	out[o] = 0;
	return *s == ' ' ? s + 1 : s;
}

int cgroup_mount_find(const char *mounts, char *out, size_t len)
{
	const char *line = mounts;

	while (*line) {
		char dev[256], fstype[32];
		const char *p;
		int r1, r2, r3;

		p = mount_field(line, dev, sizeof(dev), &r1);
		p = mount_field(p, out, len, &r2);
		mount_field(p, fstype, sizeof(fstype), &r3);
		if (!r3 && !strcmp(fstype, "cgroup2"))
			return r2;
		line = strchr(line, '\n');
		if (!line)
			break;
		line++;
	}
	return -ENOENT;
}

bool cgroup_list_has(const char *list, const char *word)
{
	size_t n = strlen(word);

	if (!n)
		return false;
	for (const char *p = list; *p;) {
		size_t k;

		p += strspn(p, " \n");
		k = strcspn(p, " \n");
		if (k == n && !strncmp(p, word, n))
			return true;
		p += k;
	}
	return false;
}
