/* The API state: the pre-boot configuration, the VM it starts or is given, the metrics
 * timer. */
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ember/clock.h"
#include "ember/log.h"
#include "ember/vm.h"

static double metrics_period(void)
{
	/* For tests: EMBER_METRICS_PERIOD (seconds) shortens Firecracker's 60 s. */
	const char *s = getenv("EMBER_METRICS_PERIOD");
	double v = s ? strtod(s, NULL) : 0;

	return v > 0 && v <= 3600 ? v : API_METRICS_PERIOD;
}

static void on_metrics_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct api *api = w->data;
	char err[256];

	(void)loop;
	(void)revents;
	if (api_metrics_flush(api, err, sizeof(err)))
		log_warn("metrics: %s", err);
}

struct api *api_new(struct ev_loop *loop, const struct api_hooks *hooks, struct mmds *mmds,
	char *err, size_t errlen)
{
	struct api *api;

	if (!mmds) {
		snprintf(err, errlen, "api: no MMDS store");
		return NULL;
	}
	api = calloc(1, sizeof(*api));
	if (!api) {
		snprintf(err, errlen, "api: out of memory");
		return NULL;
	}
	api->loop = loop;
	api->mmds = mmds;
	if (hooks)
		api->hooks = *hooks;
	vm_config_init(&api->cfg);
	ev_init(&api->metrics_timer, on_metrics_timer);
	api->metrics_timer.data = api;
	if (metrics_is_open()) /* --metrics-path */
		api_metrics_timer_start(api);
	return api;
}

void api_free(struct api *api)
{
	if (!api)
		return;
	ev_timer_stop(api->loop, &api->metrics_timer);
	if (api->owns_vm)
		vm_free(api->vm);
	vm_config_deinit(&api->cfg);
	for (unsigned i = 0; i < VM_MAX_DRIVES; i++)
		api_drive_extra_deinit(api, i);
	free(api->boot_args);
	free(api);
}

void api_set_vm(struct api *api, struct vm *vm)
{
	if (api->owns_vm)
		return; /* the API's own VM stays until api_free */
	api->vm = vm;
}

struct vm *api_vm(const struct api *api)
{
	return api->vm;
}

static void obs_exited(struct vm *vm, void *opaque)
{
	struct api *api = opaque;
	char err[256];

	/* A last line, so the metrics say how the VM ended. */
	if (api_metrics_flush(api, err, sizeof(err)))
		log_warn("metrics: %s", err);
	if (api->hooks.vm_exited)
		api->hooks.vm_exited(vm, api->hooks.opaque);
}

static const struct vm_observer observer = { .exited = obs_exited };

void api_adopt_vm(struct api *api, struct vm *vm)
{
	api->vm = vm;
	api->owns_vm = true;
	vm_set_observer(vm, &observer, api);
}

void api_start_vm(struct api *api, struct api_resp *r)
{
	char err[512];
	uint64_t t0 = mono_ns() / 1000;
	struct vm *vm;

	if (api_booted(api)) {
		resp_fault(r, 400, MSG_POST_BOOT);
		return;
	}
	if (!api->have_boot_source) {
		resp_fault(r, 400,
			"Start microvm error: Cannot start microvm without kernel "
			"configuration.");
		return;
	}
	api->cfg.mmds = api->mmds;
	vm = vm_new(&api->cfg, api->loop, err, sizeof(err));
	if (!vm) {
		resp_fault(r, 400, "Start microvm error: %s", err);
		return;
	}
	vm_set_observer(vm, &observer, api);
	if (vm_start(vm, err, sizeof(err))) {
		vm_free(vm);
		resp_fault(r, 400, "Start microvm error: %s", err);
		return;
	}
	metrics_latency(METRICS_LAT_START_VM, mono_ns() / 1000 - t0);
	api_adopt_vm(api, vm);
	resp_ok(r);
}

void api_metrics_timer_start(struct api *api)
{
	api->metrics_timer.repeat = metrics_period();
	ev_timer_again(api->loop, &api->metrics_timer);
}

int api_metrics_flush(struct api *api, char *err, size_t errlen)
{
	return vm_metrics_flush(&api->vm_metrics, api->vm, err, errlen);
}
