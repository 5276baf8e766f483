/* API routes that act on the VM: /actions, PATCH /vm (pause, resume), snapshot create
 * and load. */
#include "internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "ember/clock.h"
#include "ember/log.h"
#include "ember/snapshot.h"
#include "ember/vm.h"
#include "json.h"

/* ---- /actions ---- */

enum action { ACTION_FLUSH_METRICS, ACTION_INSTANCE_START, ACTION_CTRL_ALT_DEL };
static const char *const action_types[] = { "FlushMetrics", "InstanceStart", "SendCtrlAltDel",
	NULL };

static const struct jfield action_fields[] = {
	JF_ENUM("action_type", J_REQUIRED, action_types),
	JF_END,
};
static const struct jschema action_schema = { "ActionBody", action_fields };

void api_put_actions(struct api *api, const struct api_call *call, struct api_resp *r)
{
	char err[512];
	int ret;

	if (json_check(call->body, &action_schema, err, sizeof(err))) {
		resp_bad_body(r, err);
		return;
	}
	switch (json_get_enum(call->body, "action_type", action_types, -1)) {
	case ACTION_INSTANCE_START:
		api_start_vm(api, r);
		return;
	case ACTION_CTRL_ALT_DEL:
		if (!api_booted(api)) {
			resp_fault(r, 400, MSG_PRE_BOOT);
			return;
		}
		ret = vm_send_ctrl_alt_del(api->vm);
		if (ret) {
			resp_fault(r, 400,
				"Internal VMM error: cannot send Ctrl-Alt-Del: the vm is %s",
				vm_state_name(vm_state(api->vm)));
			return;
		}
		resp_ok(r);
		return;
	case ACTION_FLUSH_METRICS:
		if (!api_booted(api)) {
			resp_fault(r, 400, MSG_PRE_BOOT);
			return;
		}
		if (api_metrics_flush(api, err, sizeof(err))) {
			resp_fault(r, 400, "Internal VMM error: Metrics error: %s", err);
			return;
		}
		resp_ok(r);
		return;
	}
	resp_fault(r, 400, "unknown action");
}

/* ---- PATCH /vm ---- */

static const char *const vm_states[] = { "Paused", "Resumed", NULL };
static const struct jfield vm_fields[] = {
	JF_ENUM("state", J_REQUIRED, vm_states),
	JF_END,
};
static const struct jschema vm_schema = { "Vm", vm_fields };

void api_patch_vm(struct api *api, const struct api_call *call, struct api_resp *r)
{
	char err[512];
	bool pause;
	uint64_t t0;
	int ret;

	if (json_check(call->body, &vm_schema, err, sizeof(err))) {
		resp_bad_body(r, err);
		return;
	}
	if (!api_booted(api)) {
		resp_fault(r, 400, MSG_PRE_BOOT);
		return;
	}
	pause = json_get_enum(call->body, "state", vm_states, 0) == 0;
	/* Idempotent, as Firecracker: pausing a paused VM is a success. */
	if (vm_state(api->vm) == (pause ? VM_PAUSED : VM_RUNNING)) {
		resp_ok(r);
		return;
	}
	t0 = mono_ns() / 1000;
	ret = pause ? vm_pause(api->vm, err, sizeof(err)) : vm_resume(api->vm, err, sizeof(err));
	if (ret) {
		resp_fault(r, 400, "Internal VMM error: %s", err);
		return;
	}
	metrics_latency(pause ? METRICS_LAT_PAUSE_VM : METRICS_LAT_RESUME_VM,
		mono_ns() / 1000 - t0);
	resp_ok(r);
}

/* ---- PUT /snapshot/create ---- */

static const char *const snapshot_types[] = { "Diff", "Full", NULL };
static const struct jfield create_fields[] = {
	JF_ENUM("snapshot_type", J_DEFAULT, snapshot_types),
	JF_STR("snapshot_path", J_REQUIRED),
	JF_STR("mem_file_path", J_REQUIRED),
	JF_END,
};
static const struct jschema create_schema = { "CreateSnapshotParams", create_fields };

void api_put_snapshot_create(struct api *api, const struct api_call *call, struct api_resp *r)
{
	struct snapshot_params p = { 0 };
	char err[512];
	uint64_t t0;

	if (json_check(call->body, &create_schema, err, sizeof(err))) {
		resp_bad_body(r, err);
		return;
	}
	if (!api_booted(api)) {
		resp_fault(r, 400, MSG_PRE_BOOT);
		return;
	}
	p.state_path = json_get_str(call->body, "snapshot_path");
	p.mem_path = json_get_str(call->body, "mem_file_path");
	p.type = json_get_enum(call->body, "snapshot_type", snapshot_types, 1) == 0 ? SNAPSHOT_DIFF
										    : SNAPSHOT_FULL;
	t0 = mono_ns() / 1000;
	if (vm_snapshot(api->vm, &p, err, sizeof(err))) {
		resp_fault(r, 400, "Create snapshot error: %s", err);
		return;
	}
	metrics_latency(p.type == SNAPSHOT_DIFF ? METRICS_LAT_DIFF_CREATE_SNAPSHOT
						: METRICS_LAT_FULL_CREATE_SNAPSHOT,
		mono_ns() / 1000 - t0);
	resp_ok(r);
}

/* ---- PUT /snapshot/load ---- */

static const char *const backend_types[] = { "File", "Uffd", NULL };
static const struct jfield backend_fields[] = {
	JF_STR("backend_path", J_REQUIRED),
	JF_ENUM("backend_type", J_REQUIRED, backend_types),
	JF_END,
};
static const struct jschema backend_schema = { "MemBackendConfig", backend_fields };

static const struct jfield override_fields[] = {
	JF_STR("iface_id", J_REQUIRED),
	JF_STR("host_dev_name", J_REQUIRED),
	JF_END,
};
static const struct jschema override_schema = { "NetworkOverride", override_fields };

static const struct jfield vsock_override_fields[] = {
	JF_STR("uds_path", J_REQUIRED),
	JF_END,
};
static const struct jschema vsock_override_schema = { "VsockOverride", vsock_override_fields };

static const struct jfield drive_override_fields[] = {
	JF_STR("drive_id", J_REQUIRED),
	JF_STR("path_on_host", J_REQUIRED),
	JF_END,
};
static const struct jschema drive_override_schema = { "DriveOverride", drive_override_fields };

static const char *const load_huge_pages[] = { "Snapshot", "None", "Transparent", "2M", NULL };
static const struct jfield load_fields[] = {
	JF_STR("snapshot_path", J_REQUIRED),
	JF_STR("mem_file_path", J_OPTIONAL),
	JF_OBJ("mem_backend", J_OPTIONAL, &backend_schema),
	JF_BOOL("enable_diff_snapshots", J_DEFAULT),
	JF_BOOL("track_dirty_pages", J_DEFAULT),
	JF_BOOL("resume_vm", J_DEFAULT),
	JF_ARR("network_overrides", J_DEFAULT, &override_schema),
	JF_OBJ("vsock_override", J_OPTIONAL, &vsock_override_schema),
	JF_ARR("drive_overrides", J_DEFAULT, &drive_override_schema),
	JF_BOOL("clock_realtime", J_DEFAULT),
	JF_ENUM("huge_pages", J_DEFAULT, load_huge_pages),
	JF_END,
};
static const struct jschema load_schema = { "LoadSnapshotConfig", load_fields };

static void load(struct api *api, const cJSON *b, struct api_resp *r)
{
	const cJSON *backend = json_get(b, "mem_backend"), *e;
	struct restore_params p = { 0 };
	struct net_override *ov = NULL;
	struct drive_override *dov = NULL;
	unsigned n = 0, nd;
	char err[512];
	uint64_t t0;
	struct vm *vm;

	p.state_path = json_get_str(b, "snapshot_path");
	if (backend) {
		p.backend = json_get_enum(backend, "backend_type", backend_types, 0) == 0
			? MEM_BACKEND_FILE
			: MEM_BACKEND_UFFD;
		p.backend_path = json_get_str(backend, "backend_path");
	} else {
		p.backend = MEM_BACKEND_FILE;
		p.backend_path = json_get_str(b, "mem_file_path");
	}
	p.resume = json_get_bool(b, "resume_vm", false);
	p.track_dirty_pages = json_get_bool(b, "track_dirty_pages", false) ||
		json_get_bool(b, "enable_diff_snapshots", false);
	p.vsock_uds_path = json_get_str(json_get(b, "vsock_override"), "uds_path");
	p.console_stdio = api->cfg.console == CONSOLE_STDIO;
	p.mmds = api->mmds;
	n = (unsigned)cJSON_GetArraySize(json_get(b, "network_overrides"));
	if (n) {
		ov = calloc(n, sizeof(*ov));
		if (!ov) {
			resp_fault(r, 500, "Out of memory.");
			return;
		}
		n = 0;
		cJSON_ArrayForEach (e, json_get(b, "network_overrides")) {
			ov[n].iface_id = json_get_str(e, "iface_id");
			ov[n].host_dev_name = json_get_str(e, "host_dev_name");
			n++;
		}
	}
	p.net_overrides = ov;
	p.nr_net_overrides = n;
	nd = (unsigned)cJSON_GetArraySize(json_get(b, "drive_overrides"));
	if (nd) {
		dov = calloc(nd, sizeof(*dov));
		if (!dov) {
			free(ov);
			resp_fault(r, 500, "Out of memory.");
			return;
		}
		nd = 0;
		cJSON_ArrayForEach (e, json_get(b, "drive_overrides")) {
			dov[nd].drive_id = json_get_str(e, "drive_id");
			dov[nd++].path_on_host = json_get_str(e, "path_on_host");
		}
	}
	p.drive_overrides = dov;
	p.nr_drive_overrides = nd;
	p.clock_realtime = json_get_bool(b, "clock_realtime", false);
	t0 = mono_ns() / 1000;
	vm = vm_restore(&p, api->loop, err, sizeof(err));
	free(ov);
	free(dov);
	if (!vm) {
		resp_fault(r, 400, "Load snapshot error: Failed to restore from snapshot: %s", err);
		return;
	}
	metrics_latency(METRICS_LAT_LOAD_SNAPSHOT, mono_ns() / 1000 - t0);
	api_adopt_vm(api, vm);
	resp_ok(r);
}

void api_put_snapshot_load(struct api *api, const struct api_call *call, struct api_resp *r)
{
	const cJSON *b = call->body;
	bool has_backend, has_file;
	char err[512];

	if (json_check(b, &load_schema, err, sizeof(err))) {
		resp_bad_body(r, err);
		return;
	}
	has_backend = json_get(b, "mem_backend") != NULL;
	has_file = json_get(b, "mem_file_path") != NULL;
	if (has_backend && has_file) {
		resp_bad_body(r,
			"too many fields: either `mem_backend` or `mem_file_path` exclusively "
			"is required");
		return;
	}
	if (!has_backend && !has_file) {
		resp_bad_body(r,
			"missing field: either `mem_backend` or `mem_file_path` is required");
		return;
	}
	if (has_file || json_get_bool(b, "enable_diff_snapshots", false))
		r->deprecation = true;
	if (api_booted(api)) {
		resp_fault(r, 400, MSG_POST_BOOT);
		return;
	}
	if (api->boot_path) {
		resp_fault(r, 400, MSG_LOAD_NOT_ALLOWED);
		return;
	}
	if (json_get_enum(b, "huge_pages", load_huge_pages, 0) != 0) {
		resp_fault(r, 400,
			"Load snapshot error: huge_pages: only Snapshot (the saved "
			"setting) is supported by this ember yet");
		return;
	}
	load(api, b, r);
}
