/* ember command line: the commands (run, repl, restore, snapshot) and, without one, the
 * Firecracker-compatible API; options before the command: src/cli/options.c. Only main()
 * decides to exit. */
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ev.h>

#include "cli/options.h"
#include "ember/api.h"
#include "ember/console.h"
#include "ember/log.h"
#include "ember/lua_host.h"
#include "ember/memory_file.h"
#include "ember/metrics.h"
#include "ember/mmds.h"
#include "ember/seccomp.h"
#include "ember/snapshot.h"
#include "ember/snapshot_file.h"
#include "ember/vcpu.h"
#include "ember/version.h"
#include "ember/vm_exit.h"

static const char usage[] =
	"usage: ember [OPTIONS] COMMAND ...\n"
	"\n"
	"commands:\n"
	"  run FILE.lua [ARGS...]   run a machine definition or a script\n"
	"  repl [FILE.lua | --api-sock PATH]\n"
	"                           a Lua prompt, with FILE's VM (or the VM served on PATH)\n"
	"                           as `vm`; the VM runs on while you type\n"
	"  restore STATE MEM [--uffd SOCK] [--resume] [--track-dirty-pages]\n"
	"          [--net-override ID=TAP] [--drive-override ID=PATH]\n"
	"          [--vsock-override PATH] [--clock-realtime]\n"
	"                           restore a snapshot (MEM is ignored with --uffd)\n"
	"  snapshot info STATE      describe a snapshot state file\n"
	"  snapshot merge BASE DIFF apply a diff memory file onto its base\n"
	"\n"
	"Without a command ember is Firecracker: it serves the API on --api-sock PATH\n"
	"(default " CLI_DEFAULT_API_SOCK "), or boots --config-file FILE.\n"
	"\n"
	"options (Firecracker's; --log-file and --log-level are also accepted):\n"
	"  --api-sock PATH          serve the Firecracker-compatible API on PATH: alone, for a\n"
	"                           VM configured over it; after run FILE.lua, for that VM\n"
	"  --config-file FILE       boot the VM a Firecracker JSON configuration describes\n"
	"  --no-api                 with --config-file: no API socket\n"
	"  --metadata FILE          fill the MMDS data store from a JSON file\n"
	"  --mmds-size-limit BYTES  the most the MMDS store holds (default 51200)\n"
	"  --http-api-max-payload-size BYTES\n"
	"                           the largest API request body (default 51200)\n"
	"  --id ID                  the instance id GET / shows (1-64 of A-Z a-z 0-9 -)\n"
	"  --log-path PATH          append logs to PATH instead of stderr\n"
	"  --level LEVEL            Off, Error, Warning (default), Info, Debug or Trace\n"
	"  --module MODULE          only log lines from src/MODULE (api, devices/virtio, ...)\n"
	"  --show-level, --show-log-origin\n"
	"                           show each line's level (shown by default) and source line\n"
	"  --metrics-path PATH      write metrics to PATH (every 60 s, and on FlushMetrics)\n"
	"  --boot-timer             accepted: ember's boot timer is always on (0xd0000000)\n"
	"  --no-seccomp             run every thread without a system call filter\n"
	"  --seccomp-filter FILE    filters from FILE (JSON, one per thread kind) instead\n"
	"                           of ember's own\n"
	"  --start-time-us US, --start-time-cpu-us US, --parent-cpu-time-us US\n"
	"                           when a jailer started ember (CLOCK_MONOTONIC, and CPU\n"
	"                           time of ember and of the jailer): startup metrics\n"
	"  --prewarm MIB            make a VM shell now (VM, memory slots, irqchip) that a\n"
	"                           File snapshot load of MIB MiB (no diff tracking) takes\n"
	"  --prewarm-mem FILE       with --prewarm: map that memory file ahead too\n"
	"  --describe-snapshot STATE  print a state file's format version\n"
	"  --firecracker-version-compat VER\n"
	"                           GET /version and GET / show VER (MAJOR.MINOR.PATCH) where\n"
	"                           they show ember's version, for clients that check for a\n"
	"                           Firecracker version\n"
	"  --snapshot-version       print the state file format this ember writes\n"
	"  -h, --help               show this help\n"
	"  -V, --version            show the version\n"
	"\n"
	"exit status: 0 guest powered off or script done, 1 error, 2 bad definition or\n"
	"command usage, 3 guest reset, 153 bad option (Firecracker's), 128+N stopped by\n"
	"signal N\n";

static struct lua_host *host;
static const char *api_sock, *config_file;
/* The process's MMDS store (as Firecracker's, one per microVM process): main makes it and
 * frees it; the API, the Lua host and a restored VM are handed it. */
static struct mmds *mmds;

static void on_signal(struct ev_loop *loop, ev_signal *w, int revents)
{
	(void)loop;
	(void)revents;
	if (host)
		lua_host_signal(host, w->signum);
}

/* What a command does once the loop, the vCPU kick and the Lua host exist. */
typedef int (*host_cmd_fn)(struct lua_host *h, struct ev_loop *loop, int argc, char **argv);

static int with_host(host_cmd_fn fn, int argc, char **argv)
{
	struct ev_loop *loop = ev_default_loop(EVFLAG_AUTO);
	ev_signal sigint, sigterm;
	char err[256];
	int status;

	if (!loop) {
		fprintf(stderr, "ember: cannot create the event loop\n");
		return EMBER_EXIT_ERROR;
	}
	if (vcpu_signal_setup()) {
		fprintf(stderr, "ember: cannot install signal handlers: %s\n", strerror(errno));
		return EMBER_EXIT_ERROR;
	}
	host = lua_host_new(loop, mmds, err, sizeof(err));
	if (!host) {
		fprintf(stderr, "ember: %s\n", err);
		return EMBER_EXIT_ERROR;
	}
	ev_signal_init(&sigint, on_signal, SIGINT);
	ev_signal_init(&sigterm, on_signal, SIGTERM);
	ev_signal_start(loop, &sigint);
	ev_signal_start(loop, &sigterm);
	status = fn(host, loop, argc, argv);
	lua_host_free(host);
	host = NULL;
	ev_signal_stop(loop, &sigint);
	ev_signal_stop(loop, &sigterm);
	return status;
}

/* ember run FILE.lua --api-sock PATH: the API serves the VM the script started. */
static void serve_main_vm(struct vm *vm, void *opaque)
{
	api_set_vm(opaque, vm);
}

static int run_file(struct lua_host *h, struct ev_loop *loop, int argc, char **argv)
{
	struct api *api = NULL;
	struct api_server *srv = NULL;
	char err[512];
	int status;

	if (api_sock) {
		api = api_new(loop, NULL, mmds, err, sizeof(err));
		srv = api ? api_server_new(loop, api, api_sock, err, sizeof(err)) : NULL;
		if (!srv) {
			fprintf(stderr, "ember: %s\n", err);
			api_free(api);
			return EMBER_EXIT_ERROR;
		}
		lua_host_set_vm_hook(h, serve_main_vm, api);
	}
	status = lua_host_run_file(h, argv[0], argc, argv);
	if (api) {
		lua_host_set_vm_hook(h, NULL, NULL);
		api_server_free(srv);
		api_free(api);
	}
	return status;
}

/* ember --api-sock PATH [--config-file FILE]: no Lua, the API configures the VM. */
static int cmd_api(void)
{
	if (vcpu_signal_setup()) {
		fprintf(stderr, "ember: cannot install signal handlers: %s\n", strerror(errno));
		return EMBER_EXIT_ERROR;
	}
	return api_run(api_sock, config_file, mmds);
}

static int cmd_run(int argc, char **argv)
{
	if (argc < 1) {
		fprintf(stderr, "ember: run needs a FILE.lua\n%s", usage);
		return EMBER_EXIT_USAGE;
	}
	if (argc >= 3 && !strcmp(argv[1], "--api-sock")) {
		api_sock = argv[2];
		argv[2] = argv[0]; /* the script sees FILE.lua and its own arguments only */
		argv += 2;
		argc -= 2;
	}
	return with_host(run_file, argc, argv);
}

#define MAX_NET_OVERRIDES 16

/* "ID=VALUE" (the caller checked the '='): split in place. */
static void split_pair(char *arg, const char **id, const char **value)
{
	char *eq = strchr(arg, '=');

	*eq = 0;
	*id = arg;
	*value = eq + 1;
}

static int restore_vm(struct lua_host *h, struct ev_loop *loop, int argc, char **argv)
{
	struct restore_params p = { .state_path = argv[0],
		.backend_path = argv[1],
		.console_stdio = true,
		.mmds = mmds };
	struct net_override nets[MAX_NET_OVERRIDES];
	struct drive_override drives[MAX_NET_OVERRIDES];
	char err[512];
	struct vm *vm;

	for (int i = 2; i < argc; i++) {
		const char *a = argv[i];
		bool has_value = i + 1 < argc;
		if (!strcmp(a, "--resume")) {
			p.resume = true;
		} else if (!strcmp(a, "--track-dirty-pages")) {
			p.track_dirty_pages = true;
		} else if (!strcmp(a, "--uffd") && has_value) {
			p.backend = MEM_BACKEND_UFFD;
			p.backend_path = argv[++i];
		} else if (!strcmp(a, "--clock-realtime")) {
			p.clock_realtime = true;
		} else if (!strcmp(a, "--drive-override") && has_value &&
			p.nr_drive_overrides < MAX_NET_OVERRIDES && strchr(argv[i + 1], '=')) {
			struct drive_override *o = &drives[p.nr_drive_overrides++];
			split_pair(argv[++i], &o->drive_id, &o->path_on_host);
			p.drive_overrides = drives;
		} else if (!strcmp(a, "--vsock-override") && has_value) {
			p.vsock_uds_path = argv[++i];
		} else if (!strcmp(a, "--net-override") && has_value &&
			p.nr_net_overrides < MAX_NET_OVERRIDES && strchr(argv[i + 1], '=')) {
			struct net_override *o = &nets[p.nr_net_overrides++];
			split_pair(argv[++i], &o->iface_id, &o->host_dev_name);
			p.net_overrides = nets;
		} else {
			fprintf(stderr, "ember: restore: bad argument '%s'\n%s", a, usage);
			return EMBER_EXIT_USAGE;
		}
	}
	vm = vm_restore(&p, loop, err, sizeof(err));
	if (!vm) {
		fprintf(stderr, "ember: %s\n", err);
		return EMBER_EXIT_ERROR;
	}
	if (!p.resume)
		log_warn("restored paused: SIGTERM ends it (resume it with --resume or the API)");
	return lua_host_run_vm(h, vm);
}

static int repl(struct lua_host *h, struct ev_loop *loop, int argc, char **argv)
{
	(void)loop;
	if (argc == 2)
		return lua_host_repl(h, NULL, argv[1]); /* --api-sock PATH */
	return lua_host_repl(h, argc ? argv[0] : NULL, NULL);
}

static int cmd_repl(int argc, char **argv)
{
	bool sock = argc == 2 && !strcmp(argv[0], "--api-sock");

	if (!sock && (argc > 1 || (argc == 1 && argv[0][0] == '-'))) {
		fprintf(stderr, "ember: repl takes FILE.lua or --api-sock PATH\n%s", usage);
		return EMBER_EXIT_USAGE;
	}
	return with_host(repl, argc, argv);
}

static int cmd_restore(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "ember: restore needs STATE and MEM\n%s", usage);
		return EMBER_EXIT_USAGE;
	}
	return with_host(restore_vm, argc, argv);
}

static int cmd_snapshot(int argc, char **argv)
{
	char err[512];

	if (argc == 2 && !strcmp(argv[0], "info")) {
		if (vm_snapshot_describe(argv[1], stdout, err, sizeof(err))) {
			fprintf(stderr, "ember: %s\n", err);
			return EMBER_EXIT_ERROR;
		}
		return EMBER_EXIT_OK;
	}
	if (argc == 3 && !strcmp(argv[0], "merge")) {
		if (mem_file_merge(argv[1], argv[2], err, sizeof(err))) {
			fprintf(stderr, "ember: %s\n", err);
			return EMBER_EXIT_ERROR;
		}
		return EMBER_EXIT_OK;
	}
	fprintf(stderr, "ember: snapshot needs 'info STATE' or 'merge BASE DIFF'\n%s", usage);
	return EMBER_EXIT_USAGE;
}

/* Apply what the options ask for, before any command runs: the exit status to stop
 * with, or EMBER_EXIT_OK. */
static int apply_options(const struct cli_opts *o)
{
	struct seccomp_opts sc = { .disabled = o->no_seccomp, .filter_file = o->seccomp_filter };
	enum log_level lv;
	bool off;
	char err[512];
	int ret;

	if (o->level && !log_filter_parse(o->level, &lv, &off)) {
		log_set_enabled(!off);
		if (!off)
			log_set_level(lv);
	}
	if (o->show_level || o->show_log_origin)
		log_set_format(true, o->show_log_origin);
	if (o->module && log_set_module(o->module)) {
		fprintf(stderr, "ember: --module: '%s' is too long\n", o->module);
		return CLI_EXIT_ARG_PARSING;
	}
	if (o->log_path && (ret = log_set_file(o->log_path))) {
		fprintf(stderr, "ember: --log-path %s: %s\n", o->log_path, strerror(-ret));
		return EMBER_EXIT_ERROR;
	}
	if (o->metrics_path && metrics_open(o->metrics_path, err, sizeof(err))) {
		fprintf(stderr, "ember: --metrics-path: %s\n", err);
		return EMBER_EXIT_ERROR;
	}
	if (o->mmds_size_limit)
		mmds_set_size_limit(mmds, o->mmds_size_limit);
	if (o->max_payload)
		api_set_max_payload(o->max_payload);
	if (o->metadata && mmds_load_file(mmds, o->metadata, err, sizeof(err))) {
		fprintf(stderr, "ember: --metadata: %s\n", err);
		return EMBER_EXIT_USAGE;
	}
	if (o->id)
		api_set_instance_id(o->id);
	if (o->fc_version)
		api_set_version_compat(o->fc_version);
	if (o->has_start_us)
		log_mark_start_at(o->start_us);
	metrics_set_startup(o->has_start_us, o->has_start_cpu_us, o->start_cpu_us,
		o->parent_cpu_us);
	if (o->prewarm_mem && !o->prewarm_mib) {
		fprintf(stderr,
			"ember: --prewarm-mem needs --prewarm MIB (the snapshot's memory)\n");
		return CLI_EXIT_ARG_PARSING;
	}
	if (o->prewarm_mib && vm_prewarm(o->prewarm_mib, false, o->prewarm_mem, err, sizeof(err))) {
		fprintf(stderr, "ember: --prewarm: %s\n", err);
		return EMBER_EXIT_ERROR;
	}
	if (seccomp_setup(&sc, err, sizeof(err))) {
		fprintf(stderr, "ember: %s\n", err);
		return EMBER_EXIT_USAGE;
	}
	return EMBER_EXIT_OK;
}

/* The options that answer and end: --help, --version, --snapshot-version,
 * --describe-snapshot FILE (the state file's format version, as Firecracker prints it). */
static int answer(const struct cli_opts *o)
{
	char err[512];
	unsigned major, minor;

	switch (o->action) {
	case CLI_HELP:
		fputs(usage, stdout);
		return EMBER_EXIT_OK;
	case CLI_VERSION:
		printf("ember %s\n", EMBER_VERSION);
		return EMBER_EXIT_OK;
	case CLI_SNAPSHOT_VERSION:
		printf("v%u.%u.0\n", SNAP_MAJOR, SNAP_MINOR);
		return EMBER_EXIT_OK;
	default:
		if (vm_snapshot_format(o->describe, &major, &minor, err, sizeof(err))) {
			fprintf(stderr, "ember: %s\n", err);
			return EMBER_EXIT_ERROR;
		}
		printf("v%u.%u.0\n", major, minor);
		return EMBER_EXIT_OK;
	}
}

int main(int argc, char **argv)
{
	const char *level = getenv("EMBER_LOG");
	struct cli_opts o;
	enum log_level lv;
	char err[512];
	int i, status;

	log_mark_start();
	signal(SIGPIPE, SIG_IGN);
	if (level && log_level_parse(level, &lv) == 0)
		log_set_level(lv);
	if (cli_parse(argc, argv, &o, err, sizeof(err))) {
		fprintf(stderr, "ember: %s\n", err);
		return CLI_EXIT_ARG_PARSING;
	}
	if (o.action != CLI_RUN)
		return answer(&o);
	mmds = mmds_new();
	if (!mmds) {
		fprintf(stderr, "ember: out of memory\n");
		return EMBER_EXIT_ERROR;
	}
	status = apply_options(&o);
	if (status != EMBER_EXIT_OK)
		goto out;
	api_sock = o.no_api ? NULL : o.api_sock;
	config_file = o.config_file;
	i = o.first_arg;
	if (i >= argc) {
		/* Firecracker's way: no command, the API configures the VM, on its default
		 * socket unless told otherwise (or none with --no-api --config-file). */
		if (!api_sock && !o.no_api)
			api_sock = CLI_DEFAULT_API_SOCK;
		status = cmd_api();
		console_restore_terminal();
		goto out;
	}
	if (!strcmp(argv[i], "run")) {
		status = cmd_run(argc - i - 1, argv + i + 1);
	} else if (!strcmp(argv[i], "repl")) {
		status = cmd_repl(argc - i - 1, argv + i + 1);
	} else if (!strcmp(argv[i], "restore")) {
		status = cmd_restore(argc - i - 1, argv + i + 1);
	} else if (!strcmp(argv[i], "snapshot")) {
		status = cmd_snapshot(argc - i - 1, argv + i + 1);
	} else {
		fprintf(stderr, "ember: unknown command '%s'\n%s", argv[i], usage);
		status = EMBER_EXIT_USAGE;
	}
	console_restore_terminal();
out:
	mmds_free(mmds);
	return status;
}
