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
#include "ember/vm_metrics.h"

struct jschema;

#define MSG_POST_BOOT "The requested operation is not supported after starting the microVM."
#define MSG_PRE_BOOT "The requested operation is not supported before starting the microVM."
#define MSG_LOAD_NOT_ALLOWED \
	"Load snapshot error: Loading a microVM snapshot not allowed after configuring " \
	"boot-specific resources."

#define API_METRICS_PERIOD 60.0 /* seconds between metrics lines, as Firecracker */

enum huge_pages { HUGE_PAGES_NONE, HUGE_PAGES_TRANSPARENT, HUGE_PAGES_2M };

struct api {
	struct ev_loop *loop;
	struct api_hooks hooks;
	struct vm *vm;     /* NULL before boot */
	bool owns_vm;      /* created here (InstanceStart, snapshot load) */
	struct mmds *mmds; /* the process's MMDS store (api_new), handed to the VMs made here */

	/* Pre-boot configuration, used by InstanceStart. */
	struct vm_config cfg;
	bool have_boot_source;
	bool boot_path;  /* a boot resource was configured: snapshot load is refused */
	char *boot_args; /* as given; NULL: Firecracker's default command line */
	bool smt;
	enum huge_pages huge_pages;

	/* What PUT /drives said that vm_config does not keep, by index in cfg.drives:
	 * echoed by GET /vm/config, otherwise unused. */
	struct api_drive_extra {
		char *partuuid;
	} drive_extra[VM_MAX_DRIVES];

	ev_timer metrics_timer;       /* periodic metrics lines once metrics are configured */
	struct vm_metrics vm_metrics; /* the VM's exits the last line held */
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
/* Check the request body against `s`; false with the 400 of resp_bad_body if it fails. */
bool api_body_ok(const struct api_call *call, const struct jschema *s, struct api_resp *r);
/* Give a fault its {"fault_message": ...} body. */
void resp_finish(struct api_resp *r);
bool resp_failed(const struct api_resp *r);

/* ---- state (api.c) ---- */

static inline bool api_booted(const struct api *api)
{
	return api->vm != NULL;
}
/* Take a VM the API created: observe it, own it. */
void api_adopt_vm(struct api *api, struct vm *vm);
/* (Re)start the periodic metrics timer. */
void api_metrics_timer_start(struct api *api);
/* Write a metrics line now. */
__attribute__((warn_unused_result)) int api_metrics_flush(struct api *api, char *err,
	size_t errlen);

/* ---- routes: one handler per method and resource ---- */

api_handler_fn api_get_instance_info, api_get_version;
/* The instance id (--id, else Firecracker's "anonymous-instance"): GET / and metrics' emit_id. */
const char *api_instance_id(void);
api_handler_fn api_get_machine_config, api_put_machine_config, api_patch_machine_config;
api_handler_fn api_put_boot_source, api_put_cpu_config, api_get_vm_config;
/* A custom CPU template in Firecracker's form (route_cpu_config.c); JSON null for NULL. */
struct cpu_template;
cJSON *api_cpu_config_json(const struct cpu_template *t);
api_handler_fn api_put_actions, api_patch_vm, api_put_snapshot_create, api_put_snapshot_load;
api_handler_fn api_put_drive, api_patch_drive, api_delete_drive;
api_handler_fn api_put_pmem, api_patch_pmem;
api_handler_fn api_put_net, api_patch_net, api_delete_net;
api_handler_fn api_put_vsock, api_put_entropy, api_put_serial;
api_handler_fn api_get_balloon, api_put_balloon, api_patch_balloon;
api_handler_fn api_get_balloon_stats, api_patch_balloon_stats;
api_handler_fn api_get_balloon_hinting, api_patch_balloon_hinting;
api_handler_fn api_get_hotplug_memory, api_put_hotplug_memory, api_patch_hotplug_memory;
api_handler_fn api_put_logger, api_put_metrics;
api_handler_fn api_get_mmds, api_put_mmds, api_patch_mmds, api_put_mmds_config;

/* ---- shared by the device routes (route_shared.c) ---- */

extern const struct jschema api_limiter; /* Firecracker's RateLimiterConfig */
extern const struct jschema api_bucket;  /* Firecracker's TokenBucket */
/* The limiter in field `key` of `body` into *l (absent: no limit; a bucket of size or
 * refill_time 0 is no bucket, as in Firecracker). False with a 400 "<what>: <key>: ..."
 * if a value is out of range. */
bool api_limit_of(const cJSON *body, const char *key, const char *what, struct rate_limit *l,
	struct api_resp *r);
/* The same field as a run-time update (PATCH after boot) into *u: a bucket the body names
 * is set (size or refill_time 0: removed), others are kept; the field absent or null sets
 * nothing. False with the 400 of api_limit_of. */
struct rate_limit_update;
bool api_limit_update_of(const cJSON *body, const char *key, const char *what,
	struct rate_limit_update *u, struct api_resp *r);
cJSON *api_limit_json(const struct rate_limit *l);
/* One TokenBucket in field `key` of `body` into *b (absent: no limit), checked as
 * api_limit_of checks a bandwidth bucket. */
struct token_bucket_config;
bool api_bucket_of(const cJSON *body, const char *key, const char *what,
	struct token_bucket_config *b, struct api_resp *r);
/* The id field `key` of the body equals the path's id; else a 400 (naming both if show). */
bool api_same_id(const struct api_call *call, const char *key, bool show, struct api_resp *r);
/* Not booted yet; else the 400 of a pre-boot-only call. */
bool api_pre_boot(const struct api *api, struct api_resp *r);
/* *dst = strdup(src) (NULL stays NULL), the old string freed; false with a 500 if memory
 * ran out, *dst then unchanged. */
bool api_set_str(char **dst, const char *src, struct api_resp *r);

/* GET /vm/config sections for the devices of `c` (the pre-boot configuration or the
 * VM's), in Firecracker's shape; cJSON null where a device is absent. */
cJSON *api_drives_json(const struct api *api, const struct vm_config *c);
cJSON *api_pmem_json(const struct vm_config *c);
cJSON *api_nets_json(const struct vm_config *c);
cJSON *api_vsock_json(const struct vm_config *c);
cJSON *api_entropy_json(const struct vm_config *c);
cJSON *api_balloon_json(const struct balloon_config *b);
cJSON *api_hotplug_memory_json(const struct mem_hotplug_config *h);
/* Firecracker's MmdsConfig for the interfaces of `c` that answer MMDS; null if none. */
cJSON *api_mmds_config_json(const struct vm_config *c);
/* Free what api_put_drive stored for drive i (its partuuid); route_drives.c. */
void api_drive_extra_deinit(struct api *api, unsigned i);

/* InstanceStart: build and start the VM from the pre-boot configuration. */
void api_start_vm(struct api *api, struct api_resp *r);

/* ---- the JSON config file (config_file.c) reuses the handlers ---- */

#endif
