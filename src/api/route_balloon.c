/* API routes for the balloon: configured before boot (PUT /balloon), then driven at run
 * time through vm.h (target, statistics, polling interval, free page hinting), with
 * Firecracker's fields and texts. */
#include "internal.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "ember/balloon.h"
#include "ember/vm.h"
#include "json.h"

#define BALLOON_ERR "Balloon config error: "
#define NO_BALLOON BALLOON_ERR "No balloon device found."
#define TOO_LARGE BALLOON_ERR "Amount of pages requested is too large."
#define UPDATE_ERR "Balloon update error: "

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

static const struct jfield hint_start_fields[] = {
	JF_BOOL("acknowledge_on_stop", J_DEFAULT),
	JF_END,
};
static const struct jschema hint_start = { "StartHintingCmd", hint_start_fields };

void api_put_balloon(struct api *api, const struct api_call *call, struct api_resp *r)
{
	const cJSON *b = call->body;
	uint64_t mib;

	if (!api_body_ok(call, &balloon, r) || !api_pre_boot(api, r))
		return;
	mib = json_get_uint(b, "amount_mib", 0);
	if (mib > api->cfg.mem_mib) {
		resp_fault(r, 400, TOO_LARGE);
		return;
	}
	api->cfg.balloon = (struct balloon_config){
		.enabled = true,
		.amount_mib = (uint32_t)mib,
		.deflate_on_oom = json_get_bool(b, "deflate_on_oom", false),
		.stats_polling_interval_s = (uint32_t)json_get_uint(b, "stats_polling_interval_s",
			0),
		.free_page_hinting = json_get_bool(b, "free_page_hinting", false),
		.free_page_reporting = json_get_bool(b, "free_page_reporting", false),
	};
	api->boot_path = true;
	resp_ok(r);
}

cJSON *api_balloon_json(const struct balloon_config *b)
{
	cJSON *o;

	if (!b->enabled)
		return cJSON_CreateNull();
	o = cJSON_CreateObject();
	cJSON_AddNumberToObject(o, "amount_mib", b->amount_mib);
	cJSON_AddBoolToObject(o, "deflate_on_oom", b->deflate_on_oom);
	cJSON_AddNumberToObject(o, "stats_polling_interval_s", b->stats_polling_interval_s);
	cJSON_AddBoolToObject(o, "free_page_hinting", b->free_page_hinting);
	cJSON_AddBoolToObject(o, "free_page_reporting", b->free_page_reporting);
	return o;
}

/* The running VM's balloon, or false with the answer given: pre-boot refusal, no device,
 * or what vm.h said (the VM has exited). */
static bool have_balloon(const struct api *api, struct api_resp *r)
{
	if (!api_booted(api)) {
		resp_fault(r, 400, MSG_PRE_BOOT);
		return false;
	}
	if (!vm_config(api->vm)->balloon.enabled) {
		resp_fault(r, 400, NO_BALLOON);
		return false;
	}
	return true;
}

void api_get_balloon(struct api *api, const struct api_call *call, struct api_resp *r)
{
	struct balloon_config b;
	struct balloon_stats st;
	char err[256];
	cJSON *o;

	(void)call;
	if (!api_booted(api)) {
		if (!api->cfg.balloon.enabled)
			resp_fault(r, 400, NO_BALLOON);
		else
			resp_json(r, api_balloon_json(&api->cfg.balloon));
		return;
	}
	if (!have_balloon(api, r))
		return;
	if (vm_balloon_config(api->vm, &b, err, sizeof(err))) {
		resp_fault(r, 400, BALLOON_ERR "%s", err);
		return;
	}
	o = api_balloon_json(&b);
	/* What the guest holds, known while statistics are on (ember's addition). */
	if (vm_balloon_stats(api->vm, &st, err, sizeof(err)) == 0)
		cJSON_AddNumberToObject(o, "actual_mib", st.actual_mib);
	resp_json(r, o);
}

void api_patch_balloon(struct api *api, const struct api_call *call, struct api_resp *r)
{
	uint64_t mib;
	char err[256];
	int ret;

	if (!api_body_ok(call, &balloon_update, r) || !have_balloon(api, r))
		return;
	mib = json_get_uint(call->body, "amount_mib", 0);
	if (mib > vm_config(api->vm)->mem_mib) {
		resp_fault(r, 400, TOO_LARGE);
		return;
	}
	ret = vm_balloon_set(api->vm, (uint32_t)mib, err, sizeof(err));
	if (ret)
		resp_fault(r, 400, BALLOON_ERR "%s", err);
	else
		resp_ok(r);
}

void api_get_balloon_stats(struct api *api, const struct api_call *call, struct api_resp *r)
{
	struct balloon_stats st;
	char err[256];
	cJSON *o;
	int ret;

	(void)call;
	if (!have_balloon(api, r))
		return;
	ret = vm_balloon_stats(api->vm, &st, err, sizeof(err));
	if (ret == -ENOTSUP) {
		resp_fault(r, 400,
			BALLOON_ERR "Statistics for the balloon device are not enabled.");
		return;
	}
	if (ret) {
		resp_fault(r, 400, BALLOON_ERR "%s", err);
		return;
	}
	o = cJSON_CreateObject();
	cJSON_AddNumberToObject(o, "target_pages", st.target_pages);
	cJSON_AddNumberToObject(o, "actual_pages", st.actual_pages);
	cJSON_AddNumberToObject(o, "target_mib", st.target_mib);
	cJSON_AddNumberToObject(o, "actual_mib", st.actual_mib);
	/* Firecracker leaves out what the guest did not send. */
	for (unsigned tag = 0; tag < BALLOON_STAT_TAGS; tag++)
		if (st.present >> tag & 1)
			json_add_u64(o, balloon_stat_name(tag), st.value[tag]);
	resp_json(r, o);
}

void api_patch_balloon_stats(struct api *api, const struct api_call *call, struct api_resp *r)
{
	char err[256];
	int ret;

	if (!api_body_ok(call, &balloon_stats, r) || !have_balloon(api, r))
		return;
	ret = vm_balloon_set_stats_interval(api->vm,
		(uint32_t)json_get_uint(call->body, "stats_polling_interval_s", 0), err,
		sizeof(err));
	if (ret == -ENOTSUP)
		resp_fault(r, 400, BALLOON_ERR "Cannot enable/disable the statistics after boot.");
	else if (ret)
		resp_fault(r, 400, BALLOON_ERR "%s", err);
	else
		resp_ok(r);
}

/* /balloon/hinting/{start,status,stop}: Firecracker's answers, its texts for a balloon
 * without hinting ("Attempting to use hinting when not enabled") and for a driver not yet
 * up ("Device not activated yet."), and its text for an unknown last segment. */
static void hinting(struct api *api, const char *method, const struct api_call *call,
	enum balloon_hint_op op, bool ack, struct api_resp *r)
{
	struct balloon_hinting h;
	char err[256];
	int ret;
	cJSON *o;

	if (op == (enum balloon_hint_op) - 1) {
		resp_fault(r, 400, "Unrecognized %s request path `/hinting/%.64s`.", method,
			call->id);
		return;
	}
	if (!api_booted(api)) {
		resp_fault(r, 400, MSG_PRE_BOOT);
		return;
	}
	if (!vm_config(api->vm)->balloon.enabled) {
		resp_fault(r, 400, UPDATE_ERR "Failed perform action on device: Device not found");
		return;
	}
	ret = vm_balloon_hinting(api->vm, op, ack, &h, err, sizeof(err));
	if (ret == -ENOTSUP)
		resp_fault(r, 400,
			UPDATE_ERR "Balloon: Attempting to use hinting when not enabled");
	else if (ret == -EAGAIN)
		resp_fault(r, 400, UPDATE_ERR "Balloon: Device not activated yet.");
	else if (ret)
		resp_fault(r, 400, UPDATE_ERR "%s", err);
	else if (op != BALLOON_HINT_STATUS)
		resp_ok(r);
	else {
		o = cJSON_CreateObject();
		cJSON_AddNumberToObject(o, "host_cmd", h.host_cmd);
		if (h.has_guest_cmd)
			cJSON_AddNumberToObject(o, "guest_cmd", h.guest_cmd);
		else
			cJSON_AddNullToObject(o, "guest_cmd");
		resp_json(r, o);
	}
}

void api_get_balloon_hinting(struct api *api, const struct api_call *call, struct api_resp *r)
{
	hinting(api, "GET", call,
		strcmp(call->id, "status") == 0 ? BALLOON_HINT_STATUS : (enum balloon_hint_op) - 1,
		false, r);
}

void api_patch_balloon_hinting(struct api *api, const struct api_call *call, struct api_resp *r)
{
	bool start = strcmp(call->id, "start") == 0;

	/* start's body is optional (absent or empty: acknowledge_on_stop true); stop's is
	 * not read at all, as Firecracker. */
	if (start && call->body && !api_body_ok(call, &hint_start, r))
		return;
	hinting(api, "PATCH", call,
		start                                   ? BALLOON_HINT_START
			: strcmp(call->id, "stop") == 0 ? BALLOON_HINT_STOP
							: (enum balloon_hint_op) - 1,
		!start || !call->body || json_get_bool(call->body, "acknowledge_on_stop", true), r);
}
