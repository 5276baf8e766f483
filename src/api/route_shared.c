/* What every device route shares: Firecracker's RateLimiterConfig read and written,
 * the path id checked against the body's, the pre-boot check, and string replacement. */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

#include "json.h"

/* ---- rate limiters: Firecracker's RateLimiterConfig ---- */

static const struct jfield bucket_fields[] = {
	JF_U64("size", J_REQUIRED),
	JF_U64("one_time_burst", J_OPTIONAL),
	JF_U64("refill_time", J_REQUIRED),
	JF_END,
};
const struct jschema api_bucket = { "TokenBucketConfig", bucket_fields };

static const struct jfield limiter_fields[] = {
	JF_OBJ("bandwidth", J_OPTIONAL, &api_bucket),
	JF_OBJ("ops", J_OPTIONAL, &api_bucket),
	JF_END,
};
const struct jschema api_limiter = { "RateLimiterConfig", limiter_fields };

/* A bucket of size 0 or refill time 0 is no bucket, as in Firecracker. */
static void bucket_of(const cJSON *o, struct token_bucket_config *b)
{
	memset(b, 0, sizeof(*b));
	b->size = json_get_uint(o, "size", 0);
	b->one_time_burst = json_get_uint(o, "one_time_burst", 0);
	b->refill_time_ms = json_get_uint(o, "refill_time", 0);
	if (!o || !b->size || !b->refill_time_ms)
		memset(b, 0, sizeof(*b));
}

/* The limiter in field `key` of the body (absent: no limit). 400 if out of range. */
bool api_limit_of(const cJSON *body, const char *key, const char *what, struct rate_limit *l,
	struct api_resp *r)
{
	const cJSON *o = json_get(body, key);
	char err[256];

	bucket_of(json_get(o, "bandwidth"), &l->bandwidth);
	bucket_of(json_get(o, "ops"), &l->ops);
	if (rate_limit_check(l, err, sizeof(err)) == 0)
		return true;
	resp_fault(r, 400, "%s: %s: %s", what, key, err);
	return false;
}

bool api_bucket_of(const cJSON *body, const char *key, const char *what,
	struct token_bucket_config *b, struct api_resp *r)
{
	struct rate_limit l = { 0 };
	char err[256];

	bucket_of(json_get(body, key), &l.bandwidth);
	if (rate_limit_check(&l, err, sizeof(err)) == 0) {
		*b = l.bandwidth;
		return true;
	}
	resp_fault(r, 400, "%s: %s: %s", what, key, err);
	return false;
}

/* Firecracker's RateLimiterUpdate: a bucket the body names is replaced (size or
 * refill_time 0: removed), one it leaves out or sets to null is kept. */
bool api_limit_update_of(const cJSON *body, const char *key, const char *what,
	struct rate_limit_update *u, struct api_resp *r)
{
	const cJSON *o = json_get(body, key);

	memset(u, 0, sizeof(*u));
	if (!o)
		return true;
	if (!api_limit_of(body, key, what, &u->limit, r))
		return false;
	u->bandwidth_set = json_get(o, "bandwidth") != NULL;
	u->ops_set = json_get(o, "ops") != NULL;
	return true;
}

static cJSON *bucket_json(const struct token_bucket_config *b)
{
	cJSON *o;

	if (!b->size)
		return cJSON_CreateNull();
	o = cJSON_CreateObject();
	json_add_u64(o, "size", b->size);
	/* Firecracker echoes the Option it was given: no burst is null. */
	if (b->one_time_burst)
		json_add_u64(o, "one_time_burst", b->one_time_burst);
	else
		cJSON_AddNullToObject(o, "one_time_burst");
	json_add_u64(o, "refill_time", b->refill_time_ms);
	return o;
}

cJSON *api_limit_json(const struct rate_limit *l)
{
	cJSON *o;

	if (!l->bandwidth.size && !l->ops.size)
		return cJSON_CreateNull();
	o = cJSON_CreateObject();
	cJSON_AddItemToObject(o, "bandwidth", bucket_json(&l->bandwidth));
	cJSON_AddItemToObject(o, "ops", bucket_json(&l->ops));
	return o;
}

/* ---- shared checks ---- */

/* The id in the body must be the id in the path. */
bool api_same_id(const struct api_call *call, const char *key, bool show, struct api_resp *r)
{
	const char *body_id = json_get_str(call->body, key);

	if (strcmp(body_id, call->id) == 0)
		return true;
	if (show)
		resp_fault(r, 400,
			"The id from the path [%s] does not match the id from the body "
			"[%.100s]!",
			call->id, body_id);
	else
		resp_fault(r, 400, "The id from the path does not match the id from the body!");
	return false;
}

bool api_pre_boot(const struct api *api, struct api_resp *r)
{
	if (!api_booted(api))
		return true;
	resp_fault(r, 400, MSG_POST_BOOT);
	return false;
}

/* strdup into *dst, freeing what was there; false on ENOMEM (then *dst is unchanged). */
bool api_set_str(char **dst, const char *src, struct api_resp *r)
{
	char *s = src ? strdup(src) : NULL;

	if (src && !s) {
		resp_fault(r, 500, "Out of memory.");
		return false;
	}
	free(*dst);
	*dst = s;
	return true;
}
