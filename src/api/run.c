/* `ember --api-sock PATH [--config-file FILE]`: serve the API until the VM exits or a
 * SIGINT/SIGTERM arrives. */
#include "internal.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>

#include "ember/vm.h"
#include "ember/vm_exit.h"

struct run {
	struct ev_loop *loop;
	struct api *api;
	bool done;
	int status;
};

static void vm_exited(struct vm *vm, void *opaque)
{
	struct run *run = opaque;

	run->status = vm_exit_status(vm);
	run->done = true;
	ev_break(run->loop, EVBREAK_ALL);
}

static void on_signal(struct ev_loop *loop, ev_signal *w, int revents)
{
	struct run *run = w->data;
	struct vm *vm = api_vm(run->api);

	(void)revents;
	run->status = 128 + w->signum;
	run->done = true;
	if (vm)
		vm_stop(vm, VM_EXIT_SIGNAL, w->signum); /* vm_exited sets the same status */
	ev_break(loop, EVBREAK_ALL);
}

int api_run(const char *sock_path, const char *config_file, struct mmds *mmds)
{
	struct run run = { .status = EMBER_EXIT_OK };
	struct api_hooks hooks = { .vm_exited = vm_exited, .opaque = &run };
	struct api_server *srv = NULL;
	ev_signal sigint, sigterm;
	char err[1024];
	int ret;

	run.loop = ev_default_loop(EVFLAG_AUTO);
	if (!run.loop) {
		fprintf(stderr, "ember: cannot create the event loop\n");
		return EMBER_EXIT_ERROR;
	}
	run.api = api_new(run.loop, &hooks, mmds, err, sizeof(err));
	if (!run.api) {
		fprintf(stderr, "ember: %s\n", err);
		return EMBER_EXIT_ERROR;
	}
	ev_signal_init(&sigint, on_signal, SIGINT);
	ev_signal_init(&sigterm, on_signal, SIGTERM);
	sigint.data = sigterm.data = &run;
	ev_signal_start(run.loop, &sigint);
	ev_signal_start(run.loop, &sigterm);
	if (sock_path) {
		srv = api_server_new(run.loop, run.api, sock_path, err, sizeof(err));
		if (!srv) {
			fprintf(stderr, "ember: %s\n", err);
			run.status = EMBER_EXIT_ERROR;
			goto out;
		}
	}
	if (config_file) {
		ret = api_load_config_file(run.api, config_file, err, sizeof(err));
		if (ret) {
			fprintf(stderr, "ember: %s\n", err);
			run.status = ret == -EINVAL ? EMBER_EXIT_BAD_CONFIG : EMBER_EXIT_ERROR;
			goto out;
		}
	}
	while (!run.done)
		ev_run(run.loop, EVRUN_ONCE);
out:
	api_server_free(srv);
	api_free(run.api);
	ev_signal_stop(run.loop, &sigint);
	ev_signal_stop(run.loop, &sigterm);
	return run.status;
}
