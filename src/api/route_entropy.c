/* API route for the entropy device (PUT /entropy) and its JSON for GET /vm/config. */
#include "internal.h"

#include "json.h"

/* ---- /entropy ---- */

static const struct jfield entropy_fields[] = {
	JF_OBJ("rate_limiter", J_OPTIONAL, &api_limiter),
	JF_END,
};
static const struct jschema entropy = { "EntropyDeviceConfig", entropy_fields };

void api_put_entropy(struct api *api, const struct api_call *call, struct api_resp *r)
{
	struct rate_limit l;

	if (!api_body_ok(call, &entropy, r) || !api_pre_boot(api, r) ||
		!api_limit_of(call->body, "rate_limiter", "Entropy device error", &l, r))
		return;
	api->cfg.entropy.enabled = true;
	api->cfg.entropy.limit = l;
	api->boot_path = true;
	resp_ok(r);
}

cJSON *api_entropy_json(const struct vm_config *c)
{
	cJSON *o;

	if (!c->entropy.enabled)
		return cJSON_CreateNull();
	o = cJSON_CreateObject();
	cJSON_AddItemToObject(o, "rate_limiter", api_limit_json(&c->entropy.limit));
	return o;
}
