/* ember command line: ember run FILE.lua, --help, --version. Only main() decides to exit. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ev.h>

#include "ember/console.h"
#include "ember/log.h"
#include "ember/lua_host.h"
#include "ember/vcpu.h"
#include "ember/version.h"
#include "ember/vm_exit.h"

static const char usage[] =
	"usage: ember [OPTIONS] COMMAND ...\n"
	"\n"
	"commands:\n"
	"  run FILE.lua [ARGS...]   run a machine definition or a script\n"
	"\n"
	"options:\n"
	"  --log-level LEVEL        error, warn (default), info or debug\n"
	"  --log-file PATH          append logs to PATH instead of stderr\n"
	"  -h, --help               show this help\n"
	"  -V, --version            show the version\n"
	"\n"
	"exit status: 0 guest powered off or script done, 1 error, 2 bad usage or\n"
	"definition, 3 guest reset, 128+N stopped by signal N\n";

static struct lua_host *host;

static void on_signal(struct ev_loop *loop, ev_signal *w, int revents)
{
	(void)loop;
	(void)revents;
	if (host)
		lua_host_signal(host, w->signum);
}

static int cmd_run(int argc, char **argv)
{
	struct ev_loop *loop = ev_default_loop(EVFLAG_AUTO);
	ev_signal sigint, sigterm;
	char err[256];
	int status;

	if (argc < 1) {
		fprintf(stderr, "ember: run needs a FILE.lua\n%s", usage);
		return EMBER_EXIT_USAGE;
	}
	if (!loop) {
		fprintf(stderr, "ember: cannot create the event loop\n");
		return EMBER_EXIT_ERROR;
	}
	if (vcpu_signal_setup()) {
		fprintf(stderr, "ember: cannot install the vCPU kick handler: %s\n", strerror(errno));
		return EMBER_EXIT_ERROR;
	}
	host = lua_host_new(loop, err, sizeof(err));
	if (!host) {
		fprintf(stderr, "ember: %s\n", err);
		return EMBER_EXIT_ERROR;
	}
	ev_signal_init(&sigint, on_signal, SIGINT);
	ev_signal_init(&sigterm, on_signal, SIGTERM);
	ev_signal_start(loop, &sigint);
	ev_signal_start(loop, &sigterm);
	status = lua_host_run_file(host, argv[0], argc, argv);
	lua_host_free(host);
	host = NULL;
	ev_signal_stop(loop, &sigint);
	ev_signal_stop(loop, &sigterm);
	return status;
}

int main(int argc, char **argv)
{
	const char *level = getenv("EMBER_LOG");
	enum log_level lv;
	int i, status;

	log_mark_start();
	signal(SIGPIPE, SIG_IGN);
	if (level && log_level_parse(level, &lv) == 0)
		log_set_level(lv);
	for (i = 1; i < argc && argv[i][0] == '-'; i++) {
		const char *opt = argv[i];
		if (!strcmp(opt, "-h") || !strcmp(opt, "--help")) {
			fputs(usage, stdout);
			return EMBER_EXIT_OK;
		}
		if (!strcmp(opt, "-V") || !strcmp(opt, "--version")) {
			printf("ember %s\n", EMBER_VERSION);
			return EMBER_EXIT_OK;
		}
		if ((!strcmp(opt, "--log-level") || !strcmp(opt, "--log-file")) && i + 1 >= argc) {
			fprintf(stderr, "ember: %s needs a value\n", opt);
			return EMBER_EXIT_USAGE;
		}
		if (!strcmp(opt, "--log-level")) {
			if (log_level_parse(argv[++i], &lv)) {
				fprintf(stderr, "ember: --log-level: unknown level '%s'\n", argv[i]);
				return EMBER_EXIT_USAGE;
			}
			log_set_level(lv);
		} else if (!strcmp(opt, "--log-file")) {
			int ret = log_set_file(argv[++i]);
			if (ret) {
				fprintf(stderr, "ember: --log-file %s: %s\n", argv[i], strerror(-ret));
				return EMBER_EXIT_USAGE;
			}
		} else {
			fprintf(stderr, "ember: unknown option '%s'\n%s", opt, usage);
			return EMBER_EXIT_USAGE;
		}
	}
	if (i >= argc) {
		fputs(usage, stderr);
		return EMBER_EXIT_USAGE;
	}
	if (!strcmp(argv[i], "run")) {
		status = cmd_run(argc - i - 1, argv + i + 1);
	} else {
		fprintf(stderr, "ember: unknown command '%s'\n%s", argv[i], usage);
		status = EMBER_EXIT_USAGE;
	}
	console_restore_terminal();
	return status;
}
