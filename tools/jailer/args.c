/* ember-jailer's command line: Firecracker's jailer options, "--opt value" or "--opt=value". */
#include "jailer.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum opt_kind { OPT_FLAG, OPT_VALUE, OPT_REPEATED };

struct opt {
	const char *name;
	enum opt_kind kind;
};

static const struct opt opts[] = {
	{ "--id", OPT_VALUE },
	{ "--exec-file", OPT_VALUE },
	{ "--uid", OPT_VALUE },
	{ "--gid", OPT_VALUE },
	{ "--chroot-base-dir", OPT_VALUE },
	{ "--netns", OPT_VALUE },
	{ "--cgroup", OPT_REPEATED },
	{ "--cgroup-version", OPT_VALUE },
	{ "--parent-cgroup", OPT_VALUE },
	{ "--resource-limit", OPT_REPEATED },
	{ "--daemonize", OPT_FLAG },
	{ "--new-pid-ns", OPT_FLAG },
	{ "--help", OPT_FLAG },
};
#define NR_OPTS (sizeof(opts) / sizeof(opts[0]))

bool jail_id_valid(const char *id)
{
	size_t n = strlen(id);

	return n >= 1 && n <= 64 &&
		strspn(id, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-") == n;
}

/* A decimal number up to max, with no sign, space or suffix. */
static int parse_number(const char *opt, const char *v, uint64_t max, uint64_t *out, char *err,
	size_t errlen)
{
	char *end;

	errno = 0;
	*out = strtoull(v, &end, 10);
	if (errno || end == v || *end || v[0] < '0' || v[0] > '9' || *out > max) {
		snprintf(err, errlen, "%s: '%s' is not a number from 0 to %llu", opt, v,
			(unsigned long long)max);
		return -EINVAL;
	}
	return 0;
}

/* "fsize=N" or "no-file=N". */
static int parse_limit(struct jail_args *a, const char *v, char *err, size_t errlen)
{
	const char *eq = strchr(v, '=');
	uint64_t n;

	if (!eq) {
		snprintf(err, errlen, "--resource-limit: '%s' is not RESOURCE=VALUE", v);
		return -EINVAL;
	}
	if (parse_number("--resource-limit", eq + 1, UINT64_MAX, &n, err, errlen))
		return -EINVAL;
	if ((size_t)(eq - v) == 5 && !strncmp(v, "fsize", 5)) {
		a->fsize = n;
		a->has_fsize = true;
	} else if ((size_t)(eq - v) == 7 && !strncmp(v, "no-file", 7)) {
		a->no_file = n;
	} else {
		snprintf(err, errlen,
			"--resource-limit: unknown resource '%.*s' (fsize or no-file)",
			(int)(eq - v), v);
		return -EINVAL;
	}
	return 0;
}

static int apply(struct jail_args *a, const char *opt, const char *v, char *err, size_t errlen)
{
	uint64_t n;

	if (!strcmp(opt, "--id")) {
		if (!jail_id_valid(v)) {
			snprintf(err, errlen,
				"--id: '%s' is not 1 to 64 characters of A-Z, a-z, 0-9 "
				"and -",
				v);
			return -EINVAL;
		}
		a->id = v;
	} else if (!strcmp(opt, "--exec-file")) {
		const char *slash = strrchr(v, '/');

		a->exec_file = v;
		a->exec_name = slash ? slash + 1 : v;
		if (!*a->exec_name || !strcmp(a->exec_name, ".") || !strcmp(a->exec_name, "..")) {
			snprintf(err, errlen, "--exec-file: '%s' does not name a file", v);
			return -EINVAL;
		}
	} else if (!strcmp(opt, "--uid") || !strcmp(opt, "--gid")) {
		/* (uid_t)-1 means "no change" to setresuid: not an id one can drop to. */
		if (parse_number(opt, v, UINT32_MAX - 1, &n, err, errlen))
			return -EINVAL;
		if (opt[2] == 'u')
			a->uid = (uid_t)n;
		else
			a->gid = (gid_t)n;
	} else if (!strcmp(opt, "--chroot-base-dir")) {
		if (v[0] != '/') {
			snprintf(err, errlen, "--chroot-base-dir: '%s' is not an absolute path", v);
			return -EINVAL;
		}
		a->chroot_base = v;
	} else if (!strcmp(opt, "--netns")) {
		if (v[0] != '/') {
			snprintf(err, errlen, "--netns: '%s' is not an absolute path", v);
			return -EINVAL;
		}
		a->netns = v;
	} else if (!strcmp(opt, "--cgroup")) {
		if (a->nr_cgroups == JAIL_MAX_CGROUPS) {
			snprintf(err, errlen, "--cgroup: more than %d settings", JAIL_MAX_CGROUPS);
			return -EINVAL;
		}
		if (cgroup_setting_check(v, err, errlen))
			return -EINVAL;
		a->cgroups[a->nr_cgroups++] = v;
	} else if (!strcmp(opt, "--cgroup-version")) {
		if (!strcmp(v, "1")) {
			snprintf(err, errlen,
				"--cgroup-version 1: cgroup v1 is not supported, "
				"use --cgroup-version 2");
			return -EINVAL;
		}
		if (strcmp(v, "2")) {
			snprintf(err, errlen, "--cgroup-version: '%s' is not 2", v);
			return -EINVAL;
		}
	} else if (!strcmp(opt, "--parent-cgroup")) {
		if (!cgroup_parent_valid(v)) {
			snprintf(err, errlen,
				"--parent-cgroup: '%s' is not a relative cgroup path "
				"(no leading /, no . or .. parts)",
				v);
			return -EINVAL;
		}
		a->parent_cgroup = v;
	} else if (!strcmp(opt, "--resource-limit")) {
		return parse_limit(a, v, err, errlen);
	} else if (!strcmp(opt, "--daemonize")) {
		a->daemonize = true;
	} else if (!strcmp(opt, "--new-pid-ns")) {
		a->new_pid_ns = true;
	} else if (!strcmp(opt, "--help")) {
		a->help = true;
	}
	return 0;
}

static const struct opt *find_opt(const char *arg, size_t namelen)
{
	for (size_t k = 0; k < NR_OPTS; k++)
		if (strlen(opts[k].name) == namelen && !strncmp(arg, opts[k].name, namelen))
			return &opts[k];
	return NULL;
}

static int check_required(const bool *seen, char *err, size_t errlen)
{
	static const char *const required[] = { "--id", "--exec-file", "--uid", "--gid" };

	for (size_t k = 0; k < sizeof(required) / sizeof(required[0]); k++) {
		const struct opt *o = find_opt(required[k], strlen(required[k]));

		if (!seen[o - opts]) {
			snprintf(err, errlen, "missing %s (see --help)", required[k]);
			return -EINVAL;
		}
	}
	return 0;
}

int jail_args_parse(struct jail_args *a, int argc, char **argv, char *err, size_t errlen)
{
	bool seen[NR_OPTS] = { false };
	int i;

	*a = (struct jail_args){ .chroot_base = JAIL_DEFAULT_BASE, .no_file = JAIL_DEFAULT_NOFILE };
	for (i = 1; i < argc; i++) {
		const char *arg = argv[i], *eq = strchr(arg, '='), *v = NULL;
		size_t namelen = eq ? (size_t)(eq - arg) : strlen(arg);
		const struct opt *o;

		if (!strcmp(arg, "--")) {
			i++;
			break;
		}
		if (!strcmp(arg, "-h")) {
			a->help = true;
			return 0;
		}
		o = find_opt(arg, namelen);
		if (!o) {
			snprintf(err, errlen, "unknown option '%.*s' (VMM arguments go after --)",
				(int)namelen, arg);
			return -EINVAL;
		}
		if (o->kind == OPT_FLAG && eq) {
			snprintf(err, errlen, "%s takes no value", o->name);
			return -EINVAL;
		}
		if (o->kind != OPT_FLAG) {
			if (eq) {
				v = eq + 1;
			} else if (i + 1 < argc) {
				v = argv[++i];
			} else {
				snprintf(err, errlen, "%s needs a value", o->name);
				return -EINVAL;
			}
		}
		if (o->kind != OPT_REPEATED && seen[o - opts]) {
			snprintf(err, errlen, "%s given twice", o->name);
			return -EINVAL;
		}
		seen[o - opts] = true;
		if (apply(a, o->name, v, err, errlen))
			return -EINVAL;
		if (a->help)
			return 0;
	}
	a->vmm_argv = argv + i;
	a->vmm_argc = i < argc ? argc - i : 0;
	return check_required(seen, err, errlen);
}
