/* API routes for memory hotplug (virtio-mem): the area configured before boot (PUT
 * /hotplug/memory), the requested size at run time (PATCH), the sizes (GET), with
 * Firecracker's fields and texts. */
#include "internal.h"

#include <errno.h>
#include <stdio.h>

#include "ember/virtio_mem.h"
#include "ember/vm.h"
#include "json.h"

#define CONFIG_ERR "Memory hotplug config error: "
#define UPDATE_ERR "Memory hotplug update error: "
#define NOT_FOUND "Failed perform action on device: Device not found"

static const struct jfield config_fields[] = {
	JF_U32("total_size_mib", J_REQUIRED),
	JF_U32("block_size_mib", J_DEFAULT),
	JF_U32("slot_size_mib", J_DEFAULT),
	JF_END,
};
static const struct jschema config = { "MemoryHotplugConfig", config_fields };

static const struct jfield update_fields[] = {
	JF_U32("requested_size_mib", J_REQUIRED),
	JF_END,
};
static const struct jschema update = { "MemoryHotplugSizeUpdate", update_fields };

void api_put_hotplug_memory(struct api *api, const struct api_call *call, struct api_resp *r)
{
	const cJSON *b = call->body;
	struct mem_hotplug_config h;
	char err[160];

	if (!api_body_ok(call, &config, r) || !api_pre_boot(api, r))
		return;
	h = (struct mem_hotplug_config){
		.enabled = true,
		.total_mib = (uint32_t)json_get_uint(b, "total_size_mib", 0),
		.block_mib = (uint32_t)json_get_uint(b, "block_size_mib",
			MEM_HOTPLUG_DEFAULT_BLOCK_MIB),
		.slot_mib = (uint32_t)json_get_uint(b, "slot_size_mib",
			MEM_HOTPLUG_DEFAULT_SLOT_MIB),
	};
	if (mem_hotplug_config_check(&h, err, sizeof(err))) {
		resp_fault(r, 400, CONFIG_ERR "%s", err);
		return;
	}
	api->cfg.mem_hotplug = h;
	api->boot_path = true;
	resp_ok(r);
}

cJSON *api_hotplug_memory_json(const struct mem_hotplug_config *h)
{
	cJSON *o;

	if (!h->enabled)
		return cJSON_CreateNull();
	o = cJSON_CreateObject();
	cJSON_AddNumberToObject(o, "total_size_mib", h->total_mib);
	cJSON_AddNumberToObject(o, "block_size_mib", h->block_mib);
	cJSON_AddNumberToObject(o, "slot_size_mib", h->slot_mib);
	return o;
}

void api_get_hotplug_memory(struct api *api, const struct api_call *call, struct api_resp *r)
{
	struct mem_hotplug_status st;
	char err[256];
	cJSON *o;

	(void)call;
	if (!api_booted(api)) {
		resp_fault(r, 400, MSG_PRE_BOOT);
		return;
	}
	if (vm_mem_hotplug_status(api->vm, &st, err, sizeof(err))) {
		resp_fault(r, 400, "Internal VMM error: " NOT_FOUND);
		return;
	}
	o = cJSON_CreateObject();
	cJSON_AddNumberToObject(o, "total_size_mib", st.total_mib);
	cJSON_AddNumberToObject(o, "block_size_mib", st.block_mib);
	cJSON_AddNumberToObject(o, "slot_size_mib", st.slot_mib);
	cJSON_AddNumberToObject(o, "plugged_size_mib", st.plugged_mib);
	cJSON_AddNumberToObject(o, "requested_size_mib", st.requested_mib);
	resp_json(r, o);
}

void api_patch_hotplug_memory(struct api *api, const struct api_call *call, struct api_resp *r)
{
	char err[256];
	int ret;

	if (!api_body_ok(call, &update, r))
		return;
	if (!api_booted(api)) {
		resp_fault(r, 400, MSG_PRE_BOOT);
		return;
	}
	ret = vm_mem_hotplug_set(api->vm,
		(uint32_t)json_get_uint(call->body, "requested_size_mib", 0), err, sizeof(err));
	if (ret == -EINVAL || ret == -EAGAIN)
		resp_fault(r, 400, UPDATE_ERR "Failed to create memory hotplug device: %s", err);
	else if (ret)
		resp_fault(r, 400, UPDATE_ERR NOT_FOUND);
	else
		resp_ok(r);
}
