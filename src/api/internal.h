/* Shared between the files of the API (src/api/): the API state, the handler contract and
 * the response helpers. Not a module interface. */
#ifndef EMBER_API_INTERNAL_H
#define EMBER_API_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>

#include <cJSON.h>
#include <ev.h>

#include "ember/api.h"
#include "ember/config.h"
#include "ember/metrics.h"

#define MSG_POST_BOOT "The requested operation is not supported after starting the microVM."
#define MSG_PRE_BOOT "The requested operation is not supported before starting the microVM."
#define MSG_LOAD_NOT_ALLOWED \
	"Load snapshot error: Loading a microVM snapshot not allowed after configuring " \
	"boot-specific resources."

#define API_MMDS_LIMIT 51200u   /* Firecracker's default --mmds-size-limit */
#define API_METRICS_PERIOD 60.0 /* seconds between metrics lines, as Firecracker */

enum huge_pages { HUGE_PAGES_NONE, HUGE_PAGES_TRANSPARENT, HUGE_PAGES_2M };

struct api {
	struct ev_loop *loop;
	struct api_hooks hooks;
	struct vm *vm;      /* NULL before boot */
	bool owns_vm;       /* created here (InstanceStart, snapshot load) */
	bool restored;      /* the VM came from a snapshot */

	/* Pre-boot configuration, used by InstanceStart. */
	struct vm_config cfg;
	bool have_boot_source;
	bool boot_path;         /* a boot resource was configured: snapshot load is refused */
	char *boot_args;        /* as given; NULL: Firecracker's default command line */
	bool smt;
	enum huge_pages huge_pages;

	cJSON *mmds;            /* the MMDS data store; NULL until the first PUT */
	ev_timer metrics_timer; /* periodic metrics lines once metrics are configured */
};

/* A handler's answer. fault[] holds the message of an error until it is rendered. */
struct api_resp {
	int status;
	char *body;
	bool deprecation;
	char fault[1024];
};

struct api_call {
	const cJSON *body; /* parsed JSON body, or NULL when the request has none */
	const char *id;    /* resource id from the path (/drives/{id}), or NULL */
};

typedef void api_handler_fn(struct api *api, const struct api_call *call, struct api_resp *r);

/* ---- response helpers (json.c) ---- */

void resp_ok(struct api_resp *r); /* 204 No Content */
/* 200 with `obj` as body; takes ownership of obj. */
void resp_json(struct api_resp *r, cJSON *obj);
void resp_fault(struct api_resp *r, int status, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* 400 "An error occurred when deserializing the json body of a request: <msg>." */
void resp_bad_body(struct api_resp *r, const char *msg);
/* Give a fault its {"fault_message": ...} body. */
void resp_finish(struct api_resp *r);
bool resp_failed(const struct api_resp *r);

/* ---- state (api.c) ---- */

static inline bool api_booted(const struct api *api)
{
	return api->vm != NULL;
}
/* Take a VM the API created: observe it, own it. */
void api_adopt_vm(struct api *api, struct vm *vm, bool restored);
/* (Re)start the periodic metrics timer. */
void api_metrics_timer_start(struct api *api);
/* Write a metrics line now. */
__attribute__((warn_unused_result)) int api_metrics_flush(struct api *api, char *err,
	size_t errlen);

/* ---- routes: one handler per method and resource ---- */

api_handler_fn api_get_instance_info, api_get_version;
api_handler_fn api_get_machine_config, api_put_machine_config, api_patch_machine_config;
api_handler_fn api_put_boot_source, api_put_cpu_config, api_get_vm_config;
api_handler_fn api_put_actions, api_patch_vm, api_put_snapshot_create, api_put_snapshot_load;
api_handler_fn api_put_drive, api_patch_drive, api_delete_drive;
api_handler_fn api_put_net, api_patch_net, api_delete_net;
api_handler_fn api_put_vsock, api_put_entropy;
api_handler_fn api_get_balloon, api_put_balloon, api_patch_balloon;
api_handler_fn api_get_balloon_stats, api_patch_balloon_stats;
api_handler_fn api_put_logger, api_put_metrics;
api_handler_fn api_get_mmds, api_put_mmds, api_patch_mmds, api_put_mmds_config;

/* InstanceStart: build and start the VM from the pre-boot configuration. */
void api_start_vm(struct api *api, struct api_resp *r);

/* ---- the JSON config file (config_file.c) reuses the handlers ---- */

#endif
