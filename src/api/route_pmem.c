/* API routes for pmem devices (/pmem/{id}): Firecracker's PmemConfig checked and kept in
 * the vm_config InstanceStart builds, echoed by GET /vm/config; after boot, PATCH changes
 * a device's FLUSH rate limiter through vm.h. */
#include "internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ember/pmem.h"
#include "ember/rate_limiter.h"
#include "ember/vm.h"
#include "json.h"

static const struct jfield pmem_fields[] = {
	JF_STR("id", J_REQUIRED),
	JF_STR("path_on_host", J_REQUIRED),
	JF_BOOL("root_device", J_OPTIONAL),
	JF_BOOL("read_only", J_OPTIONAL),
	JF_OBJ("rate_limiter", J_OPTIONAL, &api_limiter),
	JF_END,
};
static const struct jschema pmem = { "PmemConfig", pmem_fields };

static const struct jfield pmem_update_fields[] = {
	JF_STR("id", J_REQUIRED),
	JF_OBJ("rate_limiter", J_OPTIONAL, &api_limiter),
	JF_END,
};
static const struct jschema pmem_update = { "PmemDeviceUpdateConfig", pmem_update_fields };

#define PMEM_ERR "Pmem config error: "

static int find_pmem(const struct vm_config *c, const char *id)
{
	for (unsigned i = 0; i < c->nr_pmem; i++)
		if (strcmp(c->pmem[i].id, id) == 0)
			return (int)i;
	return -1;
}

/* Firecracker's rules: one root device, block or pmem; replacing a device by id may keep
 * or drop its root role. */
static bool root_allowed(const struct vm_config *c, int at, struct api_resp *r)
{
	for (unsigned i = 0; i < c->nr_drives; i++) {
		if (c->drives[i].root) {
			resp_fault(r, 400,
				PMEM_ERR "Attempt to add pmem as a root device while the root "
					 "device defined as a block device");
			return false;
		}
	}
	for (unsigned i = 0; i < c->nr_pmem; i++) {
		if (c->pmem[i].root && (int)i != at) {
			resp_fault(r, 400, PMEM_ERR "A root pmem device already exist");
			return false;
		}
	}
	return true;
}

void api_put_pmem(struct api *api, const struct api_call *call, struct api_resp *r)
{
	struct pmem_config p = { 0 };
	char err[512];
	uint64_t size;
	int at, ret;

	if (!api_body_ok(call, &pmem, r) || !api_same_id(call, "id", false, r) ||
		!api_pre_boot(api, r))
		return;
	p.path = (char *)json_get_str(call->body, "path_on_host");
	p.id = (char *)call->id;
	p.root = json_get_bool(call->body, "root_device", false);
	p.read_only = json_get_bool(call->body, "read_only", false);
	if (!api_limit_of(call->body, "rate_limiter", "Pmem config error", &p.limit, r))
		return;
	at = find_pmem(&api->cfg, call->id);
	if (p.root && !root_allowed(&api->cfg, at, r))
		return;
	if (at < 0 && api->cfg.nr_pmem == VM_MAX_PMEM) {
		resp_fault(r, 400, PMEM_ERR "at most %d pmem devices", VM_MAX_PMEM);
		return;
	}
	/* The file must open as the device will map it; an empty one is refused at
	 * InstanceStart, as Firecracker ("Error backing file size is 0"). */
	ret = pmem_file_size(&p, &size, err, sizeof(err));
	if (ret == -ENOTBLK) {
		resp_fault(r, 400, PMEM_ERR "%s", err);
		return;
	}
	if (ret && ret != -EINVAL) {
		resp_fault(r, 400, PMEM_ERR "Error accessing underlying file: %s (os error %d)",
			strerror(-ret), -ret);
		return;
	}
	p.id = p.path = NULL;
	if (!api_set_str(&p.id, call->id, r) ||
		!api_set_str(&p.path, json_get_str(call->body, "path_on_host"), r)) {
		free(p.id);
		return;
	}
	if (at < 0) {
		at = (int)api->cfg.nr_pmem++;
	} else {
		free(api->cfg.pmem[at].id);
		free(api->cfg.pmem[at].path);
	}
	api->cfg.pmem[at] = p;
	api->boot_path = true;
	resp_ok(r);
}

void api_patch_pmem(struct api *api, const struct api_call *call, struct api_resp *r)
{
	struct rate_limit_update limit = { 0 };
	char err[512];
	int ret;

	if (!api_body_ok(call, &pmem_update, r) || !api_same_id(call, "id", false, r))
		return;
	if (!api_booted(api)) {
		resp_fault(r, 400, MSG_PRE_BOOT);
		return;
	}
	if (!api_limit_update_of(call->body, "rate_limiter", "Pmem config error", &limit, r))
		return;
	ret = vm_pmem_update(api->vm, call->id, &limit, err, sizeof(err));
	if (ret == -ENOENT)
		resp_fault(r, 400,
			PMEM_ERR "Unable to patch the pmem device: Failed perform action on "
				 "device: Device not found Please verify the request arguments.");
	else if (ret)
		resp_fault(r, 400, PMEM_ERR "Unable to patch the pmem device: %s", err);
	else
		resp_ok(r);
}

cJSON *api_pmem_json(const struct vm_config *c)
{
	cJSON *a = cJSON_CreateArray();

	for (unsigned i = 0; i < c->nr_pmem; i++) {
		const struct pmem_config *p = &c->pmem[i];
		cJSON *o = cJSON_CreateObject();

		cJSON_AddStringToObject(o, "id", p->id);
		cJSON_AddStringToObject(o, "path_on_host", p->path);
		cJSON_AddBoolToObject(o, "root_device", p->root);
		cJSON_AddBoolToObject(o, "read_only", p->read_only);
		cJSON_AddItemToObject(o, "rate_limiter", api_limit_json(&p->limit));
		cJSON_AddItemToArray(a, o);
	}
	return a;
}
