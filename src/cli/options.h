/* ember's options before the command: Firecracker's command line (its main.rs arguments)
 * and ember's own. Parsed into values only; main() applies them. */
#ifndef EMBER_CLI_OPTIONS_H
#define EMBER_CLI_OPTIONS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Firecracker's FcExitCode::ArgParsing: a command line that does not parse. */
#define CLI_EXIT_ARG_PARSING 153
/* Firecracker's default API socket, when it is given no --api-sock. */
#define CLI_DEFAULT_API_SOCK "/run/firecracker.socket"

enum cli_action {
	CLI_RUN,              /* a command follows, or the API serves a VM */
	CLI_HELP,             /* --help */
	CLI_VERSION,          /* --version */
	CLI_SNAPSHOT_VERSION, /* --snapshot-version */
	CLI_DESCRIBE_SNAPSHOT /* --describe-snapshot FILE */
};

struct cli_opts {
	enum cli_action action;
	const char *api_sock, *config_file, *metadata, *id, *describe;
	const char *fc_version; /* --firecracker-version-compat: GET /version shows it */
	const char *log_path, *level, *module, *metrics_path, *seccomp_filter;
	bool no_api, no_seccomp, show_level, show_log_origin, boot_timer;
	bool has_start_us, has_start_cpu_us;
	uint64_t start_us, start_cpu_us, parent_cpu_us;
	uint64_t max_payload, mmds_size_limit; /* 0: Firecracker's default (51200) */
	uint64_t prewarm_mib;    /* --prewarm MIB: a VM shell for a later snapshot load (0: none) */
	const char *prewarm_mem; /* --prewarm-mem FILE: its memory file, mapped ahead */
	int first_arg;           /* argv index of the command (== argc: none) */
};

/* Parse argv[1..] up to the first word that is not an option (the command). Options
 * take their value as "--opt VALUE" or "--opt=VALUE"; each may appear once.
 * 0, or -EINVAL with one line in err (Firecracker's wording where it has one). */
int cli_parse(int argc, char **argv, struct cli_opts *o, char *err, size_t errlen);

#endif
