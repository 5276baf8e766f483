/* API routes for MMDS: the data store (GET, PUT, PATCH /mmds: ember/mmds.h, JSON merge
 * patch as RFC 7396) and /mmds/config (version, address, and which interfaces answer). */
#include "internal.h"

#include <arpa/inet.h>
#include <errno.h>
#include <string.h>

#include "ember/mmds.h"
#include "json.h"

/* ---- /mmds ---- */

/* Replace the store with v (consumed), answering 204, 413 or 500. */
static void store(struct mmds *m, cJSON *v, struct api_resp *r)
{
	int ret;

	json_source_exact_numbers(v);
	ret = v ? mmds_set_data(m, v) : -ENOMEM;

	if (ret == -EFBIG)
		resp_fault(r, 413,
			"MMDS limit exceeded error: The MMDS patch request doesn't fit.");
	else if (ret)
		resp_fault(r, 500, "Out of memory.");
	else
		resp_ok(r);
}

void api_get_mmds(struct api *api, const struct api_call *call, struct api_resp *r)
{
	cJSON *data;
	int ret = mmds_data_copy(api->mmds, &data);

	(void)call;
	resp_json(r, ret == -ENOENT ? cJSON_CreateObject() : data);
}

void api_put_mmds(struct api *api, const struct api_call *call, struct api_resp *r)
{
	cJSON *copy = cJSON_Duplicate(call->body, 1);

	json_source_forget(copy); /* the store keeps the data, not the request's text */
	store(api->mmds, copy, r);
}

/* RFC 7396 JSON merge patch: returns the new target (the old one is consumed), or NULL
 * if memory ran out (the old one is then gone too). */
static cJSON *merge(cJSON *target, const cJSON *patch)
{
	const cJSON *e;

	if (!cJSON_IsObject(patch)) {
		cJSON_Delete(target);
		return cJSON_Duplicate(patch, 1);
	}
	if (!cJSON_IsObject(target)) {
		cJSON_Delete(target);
		target = cJSON_CreateObject();
		if (!target)
			return NULL;
	}
	cJSON_ArrayForEach (e, patch) {
		cJSON *old = cJSON_DetachItemFromObjectCaseSensitive(target, e->string), *v;
		if (cJSON_IsNull(e)) {
			cJSON_Delete(old);
			continue;
		}
		v = merge(old, e);
		if (!v || !cJSON_AddItemToObject(target, e->string, v)) {
			cJSON_Delete(v);
			cJSON_Delete(target);
			return NULL;
		}
	}
	return target;
}

void api_patch_mmds(struct api *api, const struct api_call *call, struct api_resp *r)
{
	cJSON *next;
	int ret = mmds_data_copy(api->mmds, &next);

	if (ret == -ENOENT) {
		resp_fault(r, 400, "MMDS error: The MMDS data store is not initialized.");
		return;
	}
	store(api->mmds, next ? merge(next, call->body) : NULL, r);
}

/* ---- /mmds/config ---- */

static const char *const mmds_versions[] = { "V1", "V2", NULL };
static const struct jfield mmds_config_fields[] = {
	JF_ENUM("version", J_DEFAULT, mmds_versions),
	JF_ARR("network_interfaces", J_REQUIRED, NULL),
	JF_STR("ipv4_address", J_OPTIONAL),
	JF_BOOL("imds_compat", J_DEFAULT),
	JF_END,
};
static const struct jschema mmds_config_schema = { "MmdsConfig", mmds_config_fields };

static unsigned find_net(const struct vm_config *c, const char *id)
{
	unsigned i = 0;

	while (i < c->nr_nets && strcmp(c->nets[i].id, id))
		i++;
	return i;
}

void api_put_mmds_config(struct api *api, const struct api_call *call, struct api_resp *r)
{
	const cJSON *ids, *e;
	struct net_mmds_config m = { .enabled = true, .ipv4 = MMDS_DEFAULT_IPV4 };
	const char *ip;
	struct in_addr addr;
	char err[512];

	if (json_check(call->body, &mmds_config_schema, err, sizeof(err))) {
		resp_bad_body(r, err);
		return;
	}
	ip = json_get_str(call->body, "ipv4_address");
	if (ip && inet_pton(AF_INET, ip, &addr) != 1) {
		resp_bad_body(r, "invalid IPv4 address syntax for field `ipv4_address`");
		return;
	}
	if (json_get_enum(call->body, "version", mmds_versions, 0) == 0 &&
		json_get(call->body, "version"))
		r->deprecation = true;
	if (api_booted(api)) {
		resp_fault(r, 400, MSG_POST_BOOT);
		return;
	}
	if (ip && (ntohl(addr.s_addr) >> 16) != 0xa9fe) {
		resp_fault(r, 400, "MMDS config error: The MMDS IPv4 address is not link local.");
		return;
	}
	ids = json_get(call->body, "network_interfaces");
	if (cJSON_GetArraySize(ids) == 0) {
		resp_fault(r, 400,
			"MMDS config error: The list of network interface IDs that allow "
			"forwarding MMDS requests is empty.");
		return;
	}
	cJSON_ArrayForEach (e, ids) {
		if (!cJSON_IsString(e) || find_net(&api->cfg, e->valuestring) == api->cfg.nr_nets) {
			resp_fault(r, 400,
				"MMDS config error: The list of network interface IDs "
				"provided contains at least one ID that does not correspond to any "
				"existing network interface.");
			return;
		}
	}
	if (ip)
		m.ipv4 = ntohl(addr.s_addr);
	m.version = json_get_enum(call->body, "version", mmds_versions, 0) + 1;
	m.imds_compat = json_get_bool(call->body, "imds_compat", false);
	/* The last configuration wins: interfaces it does not name stop answering MMDS. */
	for (unsigned i = 0; i < api->cfg.nr_nets; i++)
		api->cfg.nets[i].mmds = (struct net_mmds_config){ 0 };
	cJSON_ArrayForEach (e, ids)
		api->cfg.nets[find_net(&api->cfg, e->valuestring)].mmds = m;
	mmds_configure(api->mmds, m.version == 2 ? MMDS_V2 : MMDS_V1, m.imds_compat);
	resp_ok(r);
}

cJSON *api_mmds_config_json(const struct vm_config *c)
{
	const struct net_mmds_config *m = NULL;
	cJSON *o, *ids;
	char ip[INET_ADDRSTRLEN];
	struct in_addr a;

	for (unsigned i = 0; i < c->nr_nets && !m; i++)
		if (c->nets[i].mmds.enabled)
			m = &c->nets[i].mmds;
	if (!m)
		return cJSON_CreateNull();
	o = cJSON_CreateObject();
	ids = cJSON_AddArrayToObject(o, "network_interfaces");
	for (unsigned i = 0; i < c->nr_nets; i++)
		if (c->nets[i].mmds.enabled)
			cJSON_AddItemToArray(ids, cJSON_CreateString(c->nets[i].id));
	cJSON_AddStringToObject(o, "version", m->version == 2 ? "V2" : "V1");
	a.s_addr = htonl(m->ipv4);
	cJSON_AddStringToObject(o, "ipv4_address", inet_ntop(AF_INET, &a, ip, sizeof(ip)));
	cJSON_AddBoolToObject(o, "imds_compat", m->imds_compat);
	return o;
}
