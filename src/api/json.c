/* API JSON: body parsing, schema checks with messages that name the field, responses. */
#include "json.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define TWO_POW_64 18446744073709551616.0

/* A bounded string builder: appends are cut at the end of the buffer, never past it. */
struct sbuf {
	char *p;
	size_t cap, len;
};

static void sb_add(struct sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void sb_add(struct sbuf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (!b->cap || b->len >= b->cap - 1)
		return;
	va_start(ap, fmt);
	n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	b->len += (size_t)n;
	if (b->len > b->cap - 1)
		b->len = b->cap - 1;
}

static void position(const char *body, const char *at, int *line, int *col)
{
	*line = 1;
	*col = 1;
	for (const char *p = body; p < at; p++) {
		if (*p == '\n') {
			(*line)++;
			*col = 1;
		} else {
			(*col)++;
		}
	}
}

cJSON *json_parse(const char *body, size_t len, char *err, size_t errlen)
{
	const char *end = NULL;
	cJSON *v;
	int line, col;

	if (!body || !len) {
		snprintf(err, errlen, "EOF while parsing a value at line 1 column 0");
		return NULL;
	}
	if (memchr(body, '\0', len)) {
		snprintf(err, errlen, "invalid JSON: NUL byte at offset %zu",
			(size_t)((const char *)memchr(body, '\0', len) - body));
		return NULL;
	}
	v = cJSON_ParseWithOpts(body, &end, 1);
	if (v)
		return v;
	if (!end || end < body || end > body + len)
		end = body + len;
	position(body, end, &line, &col);
	v = cJSON_ParseWithOpts(body, NULL, 0);
	if (v) {
		cJSON_Delete(v);
		snprintf(err, errlen, "trailing characters at line %d column %d", line, col);
	} else if (end == body + len) {
		snprintf(err, errlen, "EOF while parsing a value at line %d column %d", line, col);
	} else {
		snprintf(err, errlen, "invalid JSON at line %d column %d", line, col);
	}
	return NULL;
}

void json_describe(const cJSON *v, char *out, size_t outlen)
{
	if (cJSON_IsString(v)) {
		size_t n = strlen(v->valuestring);
		snprintf(out, outlen, "string \"%.40s%s\"", v->valuestring, n > 40 ? "..." : "");
	} else if (cJSON_IsNumber(v)) {
		double d = v->valuedouble;
		if (isfinite(d) && d == floor(d) && fabs(d) < 1e18)
			snprintf(out, outlen, "integer `%.0f`", d);
		else
			snprintf(out, outlen, "floating point `%g`", d);
	} else if (cJSON_IsBool(v)) {
		snprintf(out, outlen, "boolean `%s`", cJSON_IsTrue(v) ? "true" : "false");
	} else if (cJSON_IsNull(v)) {
		snprintf(out, outlen, "null");
	} else if (cJSON_IsArray(v)) {
		snprintf(out, outlen, "sequence");
	} else if (cJSON_IsObject(v)) {
		snprintf(out, outlen, "map");
	} else {
		snprintf(out, outlen, "unknown value");
	}
}

/* "`a`", "`a` or `b`", "one of `a`, `b`, `c`" */
static void expected_list(struct sbuf *b, const char *const *names, size_t n)
{
	if (n == 0) {
		sb_add(b, "nothing");
		return;
	}
	if (n == 1) {
		sb_add(b, "`%s`", names[0]);
		return;
	}
	if (n == 2) {
		sb_add(b, "`%s` or `%s`", names[0], names[1]);
		return;
	}
	sb_add(b, "one of ");
	for (size_t i = 0; i < n; i++)
		sb_add(b, "%s`%s`", i ? ", " : "", names[i]);
}

static size_t count_variants(const char *const *v)
{
	size_t n = 0;

	while (v && v[n])
		n++;
	return n;
}

static void join(char *out, size_t outlen, const char *path, const char *name)
{
	snprintf(out, outlen, "%.120s%s%.120s", path, path[0] ? "." : "", name);
}

static int type_error(struct sbuf *b, const char *path, const cJSON *v, const char *expected)
{
	char what[96];

	json_describe(v, what, sizeof(what));
	sb_add(b, "invalid type for field `%s`: %s, expected %s", path, what, expected);
	return -EINVAL;
}

static int check_object(const cJSON *v, const struct jschema *s, const char *path,
	struct sbuf *b);

static int check_value(const struct jfield *f, const cJSON *v, const char *path, struct sbuf *b)
{
	char sub[256];
	double d;
	int i = 0;
	const cJSON *e;

	switch (f->kind) {
	case JK_STRING:
		return cJSON_IsString(v) ? 0 : type_error(b, path, v, "a string");
	case JK_BOOL:
		return cJSON_IsBool(v) ? 0 : type_error(b, path, v, "a boolean");
	case JK_UINT:
		if (!cJSON_IsNumber(v))
			return type_error(b, path, v, f->type);
		d = v->valuedouble;
		if (!isfinite(d) || d != floor(d))
			return type_error(b, path, v, f->type);
		if (d < 0 || d >= TWO_POW_64 || (uint64_t)d > f->max) {
			char what[96];
			json_describe(v, what, sizeof(what));
			sb_add(b, "invalid value for field `%s`: %s, expected %s", path, what, f->type);
			return -EINVAL;
		}
		return 0;
	case JK_ENUM:
		if (cJSON_IsString(v)) {
			for (const char *const *p = f->variants; *p; p++)
				if (strcmp(*p, v->valuestring) == 0)
					return 0;
			sb_add(b, "unknown variant `%.60s` for field `%s`, expected ", v->valuestring,
				path);
		} else {
			char what[96];
			json_describe(v, what, sizeof(what));
			sb_add(b, "invalid type for field `%s`: %s, expected ", path, what);
		}
		expected_list(b, f->variants, count_variants(f->variants));
		return -EINVAL;
	case JK_OBJECT:
		return check_object(v, f->sub, path, b);
	case JK_ARRAY:
		if (!cJSON_IsArray(v))
			return type_error(b, path, v, "a sequence");
		cJSON_ArrayForEach(e, v) {
			snprintf(sub, sizeof(sub), "%.200s[%d]", path, i++);
			if (f->sub ? check_object(e, f->sub, sub, b) :
				     (cJSON_IsString(e) ? 0 : type_error(b, sub, e, "a string")))
				return -EINVAL;
		}
		return 0;
	case JK_STRING_MAP:
		if (!cJSON_IsObject(v))
			return type_error(b, path, v, "a map");
		cJSON_ArrayForEach(e, v) {
			join(sub, sizeof(sub), path, e->string);
			if (!cJSON_IsString(e))
				return type_error(b, sub, e, "a string");
		}
		return 0;
	case JK_ANY:
		return 0;
	}
	return 0;
}

static int check_object(const cJSON *v, const struct jschema *s, const char *path,
	struct sbuf *b)
{
	const char *names[32];
	size_t n = 0;
	const cJSON *e;
	char sub[256];

	if (!cJSON_IsObject(v)) {
		char what[96];
		json_describe(v, what, sizeof(what));
		sb_add(b, "invalid type: %s, expected struct %s", what, s->name);
		if (path[0])
			sb_add(b, " for field `%s`", path);
		return -EINVAL;
	}
	for (const struct jfield *f = s->fields; f->name && n < 32; f++)
		names[n++] = f->name;
	/* Every key must be known, and only once. */
	cJSON_ArrayForEach(e, v) {
		const struct jfield *f = s->fields;
		while (f->name && strcmp(f->name, e->string) != 0)
			f++;
		if (!f->name) {
			sb_add(b, "unknown field `%.60s`", e->string);
			if (path[0])
				sb_add(b, " in `%s`", path);
			sb_add(b, ", expected ");
			expected_list(b, names, n);
			return -EINVAL;
		}
		for (const cJSON *p = v->child; p != e; p = p->next) {
			if (strcmp(p->string, e->string) == 0) {
				join(sub, sizeof(sub), path, e->string);
				sb_add(b, "duplicate field `%s`", sub);
				return -EINVAL;
			}
		}
	}
	for (const struct jfield *f = s->fields; f->name; f++) {
		const cJSON *item = cJSON_GetObjectItemCaseSensitive(v, f->name);
		join(sub, sizeof(sub), path, f->name);
		if (!item) {
			if (f->presence == J_REQUIRED) {
				sb_add(b, "missing field `%s`", sub);
				return -EINVAL;
			}
			continue;
		}
		if (cJSON_IsNull(item) && f->presence == J_OPTIONAL)
			continue;
		if (check_value(f, item, sub, b))
			return -EINVAL;
	}
	return 0;
}

int json_check(const cJSON *v, const struct jschema *schema, char *err, size_t errlen)
{
	struct sbuf b = { .p = err, .cap = errlen };

	if (errlen)
		err[0] = '\0';
	return check_object(v, schema, "", &b);
}

const cJSON *json_get(const cJSON *obj, const char *name)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, name);

	return v && !cJSON_IsNull(v) ? v : NULL;
}

const char *json_get_str(const cJSON *obj, const char *name)
{
	const cJSON *v = json_get(obj, name);

	return cJSON_IsString(v) ? v->valuestring : NULL;
}

bool json_get_bool(const cJSON *obj, const char *name, bool dflt)
{
	const cJSON *v = json_get(obj, name);

	return cJSON_IsBool(v) ? cJSON_IsTrue(v) : dflt;
}

uint64_t json_get_uint(const cJSON *obj, const char *name, uint64_t dflt)
{
	const cJSON *v = json_get(obj, name);

	if (!cJSON_IsNumber(v) || !(v->valuedouble >= 0) || v->valuedouble >= TWO_POW_64)
		return dflt;
	return (uint64_t)v->valuedouble;
}

int json_get_enum(const cJSON *obj, const char *name, const char *const *variants, int dflt)
{
	const char *s = json_get_str(obj, name);

	for (int i = 0; s && variants[i]; i++)
		if (strcmp(variants[i], s) == 0)
			return i;
	return dflt;
}

/* ---- responses ---- */

void resp_ok(struct api_resp *r)
{
	r->status = 204;
}

void resp_fault(struct api_resp *r, int status, const char *fmt, ...)
{
	va_list ap;

	r->status = status;
	free(r->body);
	r->body = NULL;
	va_start(ap, fmt);
	vsnprintf(r->fault, sizeof(r->fault), fmt, ap);
	va_end(ap);
}

void resp_json(struct api_resp *r, cJSON *obj)
{
	char *s = obj ? cJSON_PrintUnformatted(obj) : NULL;

	cJSON_Delete(obj);
	if (!s) {
		resp_fault(r, 500, "Out of memory.");
		return;
	}
	free(r->body);
	r->body = s;
	r->status = 200;
}

void resp_bad_body(struct api_resp *r, const char *msg)
{
	resp_fault(r, 400, "An error occurred when deserializing the json body of a request: %s.",
		msg);
}

bool api_body_ok(const struct api_call *call, const struct jschema *s, struct api_resp *r)
{
	char err[512];

	if (json_check(call->body, s, err, sizeof(err)) == 0)
		return true;
	resp_bad_body(r, err);
	return false;
}

bool resp_failed(const struct api_resp *r)
{
	return r->status >= 300;
}

void resp_finish(struct api_resp *r)
{
	cJSON *o;

	if (!resp_failed(r) || r->body)
		return;
	o = cJSON_CreateObject();
	if (o && cJSON_AddStringToObject(o, "fault_message", r->fault))
		r->body = cJSON_PrintUnformatted(o);
	cJSON_Delete(o);
}
