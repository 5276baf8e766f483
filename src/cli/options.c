/* ember's options before the command, Firecracker's among them (see options.h). */
#include "options.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ember/log.h"

enum kind { FLAG, TEXT, NUMBER, ID, LEVEL, SEMVER };

struct option_def {
	const char *name; /* without the leading "--" */
	enum kind kind;
	size_t field;     /* offsetof into struct cli_opts: bool, const char * or uint64_t */
	size_t has_field; /* for NUMBER: a bool set when given (0: none) */
};

#define OPT(n, k, f) \
	{ \
		n, k, offsetof(struct cli_opts, f), 0 \
	}
#define OPT_HAS(n, f, h) \
	{ \
		n, NUMBER, offsetof(struct cli_opts, f), offsetof(struct cli_opts, h) \
	}

/* Firecracker's names first; --log-file and --log-level are ember's older spellings. */
static const struct option_def defs[] = {
	OPT("api-sock", TEXT, api_sock),
	OPT("config-file", TEXT, config_file),
	OPT("no-api", FLAG, no_api),
	OPT("metadata", TEXT, metadata),
	OPT("id", ID, id),
	OPT("log-path", TEXT, log_path),
	OPT("log-file", TEXT, log_path),
	OPT("level", LEVEL, level),
	OPT("log-level", LEVEL, level),
	OPT("module", TEXT, module),
	OPT("show-level", FLAG, show_level),
	OPT("show-log-origin", FLAG, show_log_origin),
	OPT("metrics-path", TEXT, metrics_path),
	OPT("boot-timer", FLAG, boot_timer),
	OPT("http-api-max-payload-size", NUMBER, max_payload),
	OPT("mmds-size-limit", NUMBER, mmds_size_limit),
	OPT("no-seccomp", FLAG, no_seccomp),
	OPT("seccomp-filter", TEXT, seccomp_filter),
	OPT_HAS("start-time-us", start_us, has_start_us),
	OPT_HAS("start-time-cpu-us", start_cpu_us, has_start_cpu_us),
	OPT("parent-cpu-time-us", NUMBER, parent_cpu_us),
	OPT("describe-snapshot", TEXT, describe),
	OPT("firecracker-version-compat", SEMVER, fc_version), /* ember's own */
	OPT("prewarm", NUMBER, prewarm_mib),
	OPT("prewarm-mem", TEXT, prewarm_mem),
};
#define NDEFS (sizeof(defs) / sizeof(defs[0]))

static const struct option_def *find(const char *name, size_t len)
{
	for (size_t k = 0; k < NDEFS; k++)
		if (strlen(defs[k].name) == len && !strncmp(defs[k].name, name, len))
			return &defs[k];
	return NULL;
}

static bool valid_id(const char *id)
{
	size_t n = strlen(id);

	return n >= 1 && n <= 64 &&
		strspn(id, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-") == n;
}

/* MAJOR.MINOR.PATCH with an optional -pre-release, as semver parsers of clients accept. */
static bool valid_semver(const char *v)
{
	size_t i = 0;

	for (int part = 0; part < 3; part++) {
		size_t n = strspn(v + i, "0123456789");
		if (!n || (n > 1 && v[i] == '0'))
			return false;
		i += n;
		if (part < 2 && v[i++] != '.')
			return false;
	}
	if (v[i] == '-')
		i += 1 +
			strspn(v + i + 1,
				"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
				"0123456789-.");
	return !v[i] && v[i - 1] != '-' && strlen(v) <= 32;
}

static int check_value(const struct option_def *d, const char *v, uint64_t *num, char *err,
	size_t errlen)
{
	enum log_level lv;
	bool off;
	char *end;

	switch (d->kind) {
	case ID:
		if (valid_id(v))
			return 0;
		snprintf(err, errlen, "--%s: '%s' is not 1 to 64 characters of A-Z, a-z, 0-9 and -",
			d->name, v);
		return -EINVAL;
	case SEMVER:
		if (valid_semver(v))
			return 0;
		snprintf(err, errlen, "--%s: '%s' is not a version MAJOR.MINOR.PATCH", d->name, v);
		return -EINVAL;
	case LEVEL:
		if (!log_filter_parse(v, &lv, &off))
			return 0;
		snprintf(err, errlen,
			"--%s: '%s' is not a level (Off, Error, Warning, Info, Debug, "
			"Trace)",
			d->name, v);
		return -EINVAL;
	case NUMBER:
		errno = 0;
		*num = strtoull(v, &end, 10);
		if (!errno && end != v && !*end && v[0] != '-')
			return 0;
		snprintf(err, errlen, "--%s: '%s' is not a number%s", d->name, v,
			strstr(d->name, "-us") ? " of microseconds" : "");
		return -EINVAL;
	default:
		return 0;
	}
}

/* Store one option's value (v is NULL for a flag). */
static void store(struct cli_opts *o, const struct option_def *d, const char *v, uint64_t num)
{
	char *base = (char *)o;

	if (d->kind == FLAG)
		*(bool *)(base + d->field) = true;
	else if (d->kind == NUMBER)
		*(uint64_t *)(base + d->field) = num;
	else
		*(const char **)(base + d->field) = v;
	if (d->has_field)
		*(bool *)(base + d->has_field) = true;
}

/* --help, --version and --snapshot-version: answered at once, whatever else is there. */
static bool action_word(const char *a, struct cli_opts *o)
{
	if (!strcmp(a, "-h") || !strcmp(a, "--help"))
		o->action = CLI_HELP;
	else if (!strcmp(a, "-V") || !strcmp(a, "--version"))
		o->action = CLI_VERSION;
	else if (!strcmp(a, "--snapshot-version"))
		o->action = CLI_SNAPSHOT_VERSION;
	else
		return false;
	return true;
}

int cli_parse(int argc, char **argv, struct cli_opts *o, char *err, size_t errlen)
{
	bool seen[NDEFS] = { false };
	int i;

	memset(o, 0, sizeof(*o));
	/* As Firecracker: --help or --version anywhere among the options wins over the rest. */
	for (i = 1; i < argc && argv[i][0] == '-'; i++)
		if (action_word(argv[i], o))
			return 0;
	for (i = 1; i < argc && argv[i][0] == '-'; i++) {
		const char *a = argv[i], *eq = strchr(a, '='), *v = NULL;
		size_t len = eq ? (size_t)(eq - a) : strlen(a);
		const struct option_def *d;
		uint64_t num = 0;

		d = strncmp(a, "--", 2) ? NULL : find(a + 2, len - 2);
		if (!d || (eq && d->kind == FLAG)) {
			snprintf(err, errlen,
				"Arguments parsing error: Found argument '%s' which wasn't "
				"expected, or isn't valid in this context.",
				d ? a : a + (a[1] == '-') * 2);
			return -EINVAL;
		}
		if (seen[d - defs]) {
			snprintf(err, errlen,
				"Arguments parsing error: The argument '%s' was provided "
				"more than once.",
				d->name);
			return -EINVAL;
		}
		seen[d - defs] = true;
		if (d->kind != FLAG) {
			if (eq)
				v = eq + 1;
			else if (i + 1 < argc && strncmp(argv[i + 1], "--", 2))
				v = argv[++i];
			else {
				snprintf(err, errlen,
					"Arguments parsing error: The argument '%s' requires "
					"a value, but none was supplied.",
					d->name);
				return -EINVAL;
			}
			if (check_value(d, v, &num, err, errlen))
				return -EINVAL;
		}
		store(o, d, v, num);
	}
	o->first_arg = i;
	if (o->no_api && !o->config_file) {
		snprintf(err, errlen,
			"Arguments parsing error: Argument 'config-file' required, but "
			"not found.");
		return -EINVAL;
	}
	if (o->describe)
		o->action = CLI_DESCRIBE_SNAPSHOT;
	return 0;
}
