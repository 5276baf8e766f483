/* API routes for devices ember does not have yet (drives, network interfaces, vsock,
 * entropy, balloon): every body is checked as Firecracker checks it, then the request is
 * refused with a clear 400 instead of pretending. */
#include "internal.h"

#include <stdio.h>
#include <string.h>

#include "json.h"

#define NO_BALLOON "Balloon config error: No balloon device found."

static const struct jfield bucket_fields[] = {
	JF_U64("size", J_REQUIRED),
	JF_U64("one_time_burst", J_OPTIONAL),
	JF_U64("refill_time", J_REQUIRED),
	JF_END,
};
static const struct jschema bucket = { "TokenBucketConfig", bucket_fields };

static const struct jfield limiter_fields[] = {
	JF_OBJ("bandwidth", J_OPTIONAL, &bucket),
	JF_OBJ("ops", J_OPTIONAL, &bucket),
	JF_END,
};
static const struct jschema limiter = { "RateLimiterConfig", limiter_fields };

static bool checked(const struct api_call *call, const struct jschema *s, struct api_resp *r)
{
	char err[512];

	if (json_check(call->body, s, err, sizeof(err))) {
		resp_bad_body(r, err);
		return false;
	}
	return true;
}

/* The id in the body must be the id in the path. */
static bool same_id(const struct api_call *call, const char *key, bool show,
	struct api_resp *r)
{
	const char *body_id = json_get_str(call->body, key);

	if (strcmp(body_id, call->id) == 0)
		return true;
	if (show)
		resp_fault(r, 400, "The id from the path [%s] does not match the id from the body "
			"[%.100s]!", call->id, body_id);
	else
		resp_fault(r, 400, "The id from the path does not match the id from the body!");
	return false;
}

/* ---- /drives/{id} ---- */

static const char *const cache_types[] = { "Unsafe", "Writeback", NULL };
static const char *const io_engines[] = { "Sync", "Async", NULL };

static const struct jfield drive_fields[] = {
	JF_STR("drive_id", J_REQUIRED),
	JF_STR("partuuid", J_OPTIONAL),
	JF_BOOL("is_root_device", J_REQUIRED),
	JF_ENUM("cache_type", J_DEFAULT, cache_types),
	JF_BOOL("is_read_only", J_OPTIONAL),
	JF_STR("path_on_host", J_OPTIONAL),
	JF_OBJ("rate_limiter", J_OPTIONAL, &limiter),
	JF_ENUM("io_engine", J_OPTIONAL, io_engines),
	JF_STR("socket", J_OPTIONAL),
	JF_END,
};
static const struct jschema drive = { "BlockDeviceConfig", drive_fields };

static const struct jfield drive_update_fields[] = {
	JF_STR("drive_id", J_REQUIRED),
	JF_STR("path_on_host", J_OPTIONAL),
	JF_OBJ("rate_limiter", J_OPTIONAL, &limiter),
	JF_END,
};
static const struct jschema drive_update = { "BlockDeviceUpdateConfig", drive_update_fields };

#define NO_DRIVES "drives are not supported by this ember yet"

void api_put_drive(struct api *api, const struct api_call *call, struct api_resp *r)
{
	(void)api;
	if (checked(call, &drive, r) && same_id(call, "drive_id", false, r))
		resp_fault(r, 400, NO_DRIVES);
}

void api_patch_drive(struct api *api, const struct api_call *call, struct api_resp *r)
{
	(void)api;
	if (checked(call, &drive_update, r) && same_id(call, "drive_id", false, r))
		resp_fault(r, 400, NO_DRIVES);
}

void api_delete_drive(struct api *api, const struct api_call *call, struct api_resp *r)
{
	(void)api;
	(void)call;
	resp_fault(r, 400, NO_DRIVES);
}

/* ---- /network-interfaces/{id} ---- */

static const struct jfield net_fields[] = {
	JF_STR("iface_id", J_REQUIRED),
	JF_STR("host_dev_name", J_REQUIRED),
	JF_STR("guest_mac", J_OPTIONAL),
	JF_U16("mtu", J_OPTIONAL),
	JF_OBJ("rx_rate_limiter", J_OPTIONAL, &limiter),
	JF_OBJ("tx_rate_limiter", J_OPTIONAL, &limiter),
	JF_END,
};
static const struct jschema net = { "NetworkInterfaceConfig", net_fields };

static const struct jfield net_update_fields[] = {
	JF_STR("iface_id", J_REQUIRED),
	JF_OBJ("rx_rate_limiter", J_OPTIONAL, &limiter),
	JF_OBJ("tx_rate_limiter", J_OPTIONAL, &limiter),
	JF_END,
};
static const struct jschema net_update = { "NetworkInterfaceUpdateConfig", net_update_fields };

#define NO_NET "network interfaces are not supported by this ember yet"

static bool valid_mac(const char *s)
{
	static const char hex[] = "0123456789abcdefABCDEF";

	if (strlen(s) != 17)
		return false;
	for (int i = 0; i < 17; i++) {
		if (i % 3 == 2 ? s[i] != ':' : !strchr(hex, s[i]))
			return false;
	}
	return true;
}

void api_put_net(struct api *api, const struct api_call *call, struct api_resp *r)
{
	const char *mac;
	uint64_t mtu;
	char msg[160];

	(void)api;
	if (!checked(call, &net, r))
		return;
	mac = json_get_str(call->body, "guest_mac");
	if (mac && !valid_mac(mac)) {
		snprintf(msg, sizeof(msg), "invalid MAC address `%.40s` for field `guest_mac` "
			"(expected six hex pairs such as 06:00:ac:10:00:02)", mac);
		resp_bad_body(r, msg);
		return;
	}
	mtu = json_get_uint(call->body, "mtu", 1500);
	if (mtu < 68) {
		snprintf(msg, sizeof(msg), "invalid value for field `mtu`: %llu is out of range "
			"68..65535", (unsigned long long)mtu);
		resp_bad_body(r, msg);
		return;
	}
	if (same_id(call, "iface_id", true, r))
		resp_fault(r, 400, NO_NET);
}

void api_patch_net(struct api *api, const struct api_call *call, struct api_resp *r)
{
	(void)api;
	if (checked(call, &net_update, r) && same_id(call, "iface_id", true, r))
		resp_fault(r, 400, NO_NET);
}

void api_delete_net(struct api *api, const struct api_call *call, struct api_resp *r)
{
	(void)api;
	(void)call;
	resp_fault(r, 400, NO_NET);
}

/* ---- /vsock, /entropy ---- */

static const struct jfield vsock_fields[] = {
	JF_STR("vsock_id", J_OPTIONAL),
	JF_U32("guest_cid", J_REQUIRED),
	JF_STR("uds_path", J_REQUIRED),
	JF_END,
};
static const struct jschema vsock = { "VsockDeviceConfig", vsock_fields };

void api_put_vsock(struct api *api, const struct api_call *call, struct api_resp *r)
{
	uint64_t cid;

	if (!checked(call, &vsock, r))
		return;
	if (json_get(call->body, "vsock_id"))
		r->deprecation = true;
	if (api_booted(api)) {
		resp_fault(r, 400, MSG_POST_BOOT);
		return;
	}
	cid = json_get_uint(call->body, "guest_cid", 0);
	if (cid < 3) {
		resp_fault(r, 400, "Vsock config error: guest_cid: %llu is reserved, the guest CID "
			"must be 3 or more", (unsigned long long)cid);
		return;
	}
	resp_fault(r, 400, "vsock is not supported by this ember yet");
}

static const struct jfield entropy_fields[] = {
	JF_OBJ("rate_limiter", J_OPTIONAL, &limiter),
	JF_END,
};
static const struct jschema entropy = { "EntropyDeviceConfig", entropy_fields };

void api_put_entropy(struct api *api, const struct api_call *call, struct api_resp *r)
{
	if (!checked(call, &entropy, r))
		return;
	if (api_booted(api)) {
		resp_fault(r, 400, MSG_POST_BOOT);
		return;
	}
	resp_fault(r, 400, "the entropy device is not supported by this ember yet");
}

/* ---- /balloon ---- */

static const struct jfield balloon_fields[] = {
	JF_U32("amount_mib", J_REQUIRED),
	JF_BOOL("deflate_on_oom", J_REQUIRED),
	JF_U16("stats_polling_interval_s", J_DEFAULT),
	JF_BOOL("free_page_hinting", J_DEFAULT),
	JF_BOOL("free_page_reporting", J_DEFAULT),
	JF_END,
};
static const struct jschema balloon = { "BalloonDeviceConfig", balloon_fields };

static const struct jfield balloon_update_fields[] = {
	JF_U32("amount_mib", J_REQUIRED),
	JF_END,
};
static const struct jschema balloon_update = { "BalloonUpdateConfig", balloon_update_fields };

static const struct jfield balloon_stats_fields[] = {
	JF_U16("stats_polling_interval_s", J_REQUIRED),
	JF_END,
};
static const struct jschema balloon_stats = { "BalloonUpdateStatsConfig", balloon_stats_fields };

void api_put_balloon(struct api *api, const struct api_call *call, struct api_resp *r)
{
	if (!checked(call, &balloon, r))
		return;
	if (api_booted(api)) {
		resp_fault(r, 400, MSG_POST_BOOT);
		return;
	}
	if (json_get_uint(call->body, "amount_mib", 0) > api->cfg.mem_mib) {
		resp_fault(r, 400, "Balloon config error: Amount of pages requested is too large.");
		return;
	}
	resp_fault(r, 400, "the balloon device is not supported by this ember yet");
}

void api_get_balloon(struct api *api, const struct api_call *call, struct api_resp *r)
{
	(void)api;
	(void)call;
	resp_fault(r, 400, NO_BALLOON);
}

void api_patch_balloon(struct api *api, const struct api_call *call, struct api_resp *r)
{
	if (!checked(call, &balloon_update, r))
		return;
	resp_fault(r, 400, "%s", api_booted(api) ? NO_BALLOON : MSG_PRE_BOOT);
}

void api_get_balloon_stats(struct api *api, const struct api_call *call, struct api_resp *r)
{
	(void)call;
	resp_fault(r, 400, "%s", api_booted(api) ? NO_BALLOON : MSG_PRE_BOOT);
}

void api_patch_balloon_stats(struct api *api, const struct api_call *call, struct api_resp *r)
{
	if (!checked(call, &balloon_stats, r))
		return;
	resp_fault(r, 400, "%s", api_booted(api) ? NO_BALLOON : MSG_PRE_BOOT);
}
