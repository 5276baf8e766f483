/* API route for the vsock device (PUT /vsock): Firecracker's VsockDeviceConfig checked
 * and kept for InstanceStart; its JSON for GET /vm/config. */
#include "internal.h"

#include <string.h>

#include "json.h"

#define UDS_PATH_MAX 107 /* sun_path - 1 */

/* ---- /vsock ---- */

static const struct jfield vsock_fields[] = {
	JF_STR("vsock_id", J_OPTIONAL),
	JF_U32("guest_cid", J_REQUIRED),
	JF_STR("uds_path", J_REQUIRED),
	JF_END,
};
static const struct jschema vsock = { "VsockDeviceConfig", vsock_fields };

void api_put_vsock(struct api *api, const struct api_call *call, struct api_resp *r)
{
	const char *path;
	uint64_t cid;

	if (!api_body_ok(call, &vsock, r))
		return;
	if (json_get(call->body, "vsock_id"))
		r->deprecation = true; /* accepted and ignored, as Firecracker does */
	if (!api_pre_boot(api, r))
		return;
	cid = json_get_uint(call->body, "guest_cid", 0);
	if (cid < 3) {
		resp_fault(r, 400,
			"Vsock config error: guest_cid: %llu is reserved, the guest CID "
			"must be 3 or more",
			(unsigned long long)cid);
		return;
	}
	path = json_get_str(call->body, "uds_path");
	if (!path[0] || strlen(path) > UDS_PATH_MAX) {
		resp_fault(r, 400, "Vsock config error: uds_path must be 1 to %d bytes long",
			UDS_PATH_MAX);
		return;
	}
	if (!api_set_str(&api->cfg.vsock.uds_path, path, r))
		return;
	api->cfg.vsock.enabled = true;
	api->cfg.vsock.guest_cid = (uint32_t)cid;
	api->boot_path = true;
	resp_ok(r);
}

cJSON *api_vsock_json(const struct vm_config *c)
{
	cJSON *o;

	if (!c->vsock.enabled)
		return cJSON_CreateNull();
	o = cJSON_CreateObject();
	cJSON_AddNumberToObject(o, "guest_cid", c->vsock.guest_cid);
	cJSON_AddStringToObject(o, "uds_path", c->vsock.uds_path ? c->vsock.uds_path : "");
	return o;
}
