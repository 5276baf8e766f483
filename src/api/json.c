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
	if (json_syntax_check(body, len, err, errlen))
		return NULL;
	/* Past serde's rules, cJSON should not fail; if it does, say where. */
	if (memchr(body, '\0', len)) {
		snprintf(err, errlen, "invalid JSON: NUL byte at offset %zu",
			(size_t)((const char *)memchr(body, '\0', len) - body));
		return NULL;
	}
	v = cJSON_ParseWithOpts(body, &end, 1);
	if (v) {
		if (json_source_annotate(v, body, len) == 0)
			return v;
		cJSON_Delete(v);
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
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

/* A number's token as sent, if json_parse kept it and serde_json would read it as an
 * integer: no fraction or exponent, and within i64 if negative, u64 if not. */
static const char *int_token(const cJSON *v)
{
	const char *t = json_source_raw(v);

	if (!t || strpbrk(t, ".eE"))
		return NULL;
	errno = 0;
	if (t[0] == '-')
		(void)strtoll(t, NULL, 10);
	else
		(void)strtoull(t, NULL, 10);
	return errno ? NULL : t;
}

/* The shortest digits that read back as d, exponent written as serde_json (ryu) does:
 * `1e30`, `1.8446744073709552e19`. */
static void describe_float(double d, char *out, size_t outlen)
{
	char num[40], *e;
	int p = 1;

	do
		snprintf(num, sizeof(num), "%.*g", p, d);
	while (strtod(num, NULL) != d && ++p <= 17);
	e = strchr(num, 'e');
	if (e && (e[1] == '+' || e[1] == '0')) /* "e+30" -> "e30" */
		memmove(e + 1, e + 2, strlen(e + 2) + 1);
	snprintf(out, outlen, "floating point `%s`", num);
}

/* A string as Rust's Debug shows it, which serde's message uses: quoted, with \", \\,
 * \n, \r, \t and \u{..} for other control bytes. Cut to fit. */
static void describe_string(const char *s, char *out, size_t outlen)
{
	struct sbuf b = { .p = out, .cap = outlen };

	sb_add(&b, "string \"");
	for (; *s && b.len + 8 < outlen; s++) {
		unsigned char ch = (unsigned char)*s;
		if (ch == '"' || ch == '\\')
			sb_add(&b, "\\%c", ch);
		else if (ch == '\n')
			sb_add(&b, "\\n");
		else if (ch == '\r')
			sb_add(&b, "\\r");
		else if (ch == '\t')
			sb_add(&b, "\\t");
		else if (ch < 0x20 || ch == 0x7f)
			sb_add(&b, "\\u{%x}", ch);
		else
			sb_add(&b, "%c", ch);
	}
	sb_add(&b, "\"");
}

void json_describe(const cJSON *v, char *out, size_t outlen)
{
	if (cJSON_IsString(v)) {
		describe_string(v->valuestring, out, outlen);
	} else if (cJSON_IsNumber(v)) {
		double d = v->valuedouble;
		if (int_token(v))
			snprintf(out, outlen, "integer `%.40s`", int_token(v));
		else if (isfinite(d) && d == floor(d) && fabs(d) < 1e16)
			snprintf(out, outlen, "floating point `%.1f`", d); /* serde: `2.0` */
		else
			describe_float(d, out, outlen);
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

/* A check in progress: the message, and where serde would have stopped reading. */
struct jcheck {
	struct sbuf b;
	const cJSON *at;
	enum jsource_at end;
};

static int refuse(struct jcheck *c, const cJSON *at, enum jsource_at end)
{
	c->at = at;
	c->end = end;
	return -EINVAL;
}

static int type_error(struct jcheck *c, const cJSON *v, const char *expected)
{
	char what[256];

	json_describe(v, what, sizeof(what));
	sb_add(&c->b, "invalid type: %s, expected %s", what, expected);
	return refuse(c, v, JSOURCE_VALUE_END);
}

/* serde_json reads an integer token as u64, or as i64 if negative, else as f64. */
static int check_uint(struct jcheck *c, const struct jfield *f, const cJSON *v)
{
	const char *t = int_token(v);
	double d = v->valuedouble;
	char what[256];
	uint64_t u;

	if (!cJSON_IsNumber(v))
		return type_error(c, v, f->type);
	if (t) {
		u = t[0] == '-' ? 0 : strtoull(t, NULL, 10);
		if (t[0] != '-' && u <= f->max)
			return 0;
	} else if (isfinite(d) && d == floor(d) && d >= 0 && d < TWO_POW_64 &&
		(uint64_t)d <= f->max && !json_source_raw(v)) {
		return 0; /* a number built in memory, not parsed */
	} else {
		return type_error(c, v, f->type);
	}
	json_describe(v, what, sizeof(what));
	sb_add(&c->b, "invalid value: %s, expected %s", what, f->type);
	return refuse(c, v, JSOURCE_VALUE_END);
}

static int check_object(const cJSON *v, const struct jschema *s, struct jcheck *c);

static int check_value(const struct jfield *f, const cJSON *v, struct jcheck *c)
{
	const cJSON *e;

	switch (f->kind) {
	case JK_STRING:
		return cJSON_IsString(v) ? 0 : type_error(c, v, "a string");
	case JK_BOOL:
		return cJSON_IsBool(v) ? 0 : type_error(c, v, "a boolean");
	case JK_UINT:
		return check_uint(c, f, v);
	case JK_ENUM:
		if (cJSON_IsString(v)) {
			for (const char *const *p = f->variants; *p; p++)
				if (strcmp(*p, v->valuestring) == 0)
					return 0;
			sb_add(&c->b, "unknown variant `%.60s`, expected ", v->valuestring);
		} else {
			/* serde_json reads an enum from a string (or a map): anything else is not
			 * even looked at, its first byte is refused. */
			sb_add(&c->b, "expected value");
			return refuse(c, v, JSOURCE_VALUE_FIRST);
		}
		expected_list(&c->b, f->variants, count_variants(f->variants));
		return refuse(c, v, JSOURCE_VALUE_END);
	case JK_OBJECT:
		return check_object(v, f->sub, c);
	case JK_ARRAY:
		if (!cJSON_IsArray(v))
			return type_error(c, v, "a sequence");
		cJSON_ArrayForEach (e, v) {
			if (f->sub ? check_object(e, f->sub, c)
				   : (cJSON_IsString(e) ? 0 : type_error(c, e, "a string")))
				return -EINVAL;
		}
		return 0;
	case JK_STRING_MAP:
		if (!cJSON_IsObject(v))
			return type_error(c, v, "a map");
		cJSON_ArrayForEach (e, v) {
			if (!cJSON_IsString(e))
				return type_error(c, e, "a string");
		}
		return 0;
	case JK_ANY:
		return 0;
	}
	return 0;
}

static int check_object(const cJSON *v, const struct jschema *s, struct jcheck *c)
{
	const char *names[32];
	size_t n = 0;
	const cJSON *e;
	char expected[96];

	if (!cJSON_IsObject(v)) {
		snprintf(expected, sizeof(expected), "struct %s", s->name);
		return type_error(c, v, expected);
	}
	for (const struct jfield *f = s->fields; f->name && n < 32; f++)
		names[n++] = f->name;
	/* Every key must be known, and only once: serde stops at the first that is not. */
	cJSON_ArrayForEach (e, v) {
		const struct jfield *f = s->fields;
		while (f->name && strcmp(f->name, e->string) != 0)
			f++;
		if (!f->name) {
			sb_add(&c->b, "unknown field `%.60s`, ", e->string);
			if (n) {
				sb_add(&c->b, "expected ");
				expected_list(&c->b, names, n);
			} else {
				sb_add(&c->b, "there are no fields");
			}
			return refuse(c, e, JSOURCE_KEY_END);
		}
		for (const cJSON *p = v->child; p != e; p = p->next) {
			if (strcmp(p->string, e->string) == 0) {
				sb_add(&c->b, "duplicate field `%.60s`", e->string);
				return refuse(c, e, JSOURCE_KEY_END);
			}
		}
		if (cJSON_IsNull(e) && f->presence == J_OPTIONAL)
			continue;
		if (check_value(f, e, c))
			return -EINVAL;
	}
	/* Missing fields are found at the end of the object, as serde finds them. */
	for (const struct jfield *f = s->fields; f->name; f++) {
		if (f->presence == J_REQUIRED && !cJSON_GetObjectItemCaseSensitive(v, f->name)) {
			sb_add(&c->b, "missing field `%s`", f->name);
			return refuse(c, v, JSOURCE_VALUE_END);
		}
	}
	return 0;
}

int json_check(const cJSON *v, const struct jschema *schema, char *err, size_t errlen)
{
	struct jcheck c = { .b = { .p = err, .cap = errlen } };
	int line, col;

	if (errlen)
		err[0] = '\0';
	if (check_object(v, schema, &c) == 0)
		return 0;
	if (c.at && json_source_pos(v, c.at, c.end, &line, &col))
		sb_add(&c.b, " at line %d column %d", line, col);
	return -EINVAL;
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
	const char *t = int_token(v);

	if (t)
		return t[0] == '-' ? dflt : strtoull(t, NULL, 10);
	if (!cJSON_IsNumber(v) || !(v->valuedouble >= 0) || v->valuedouble >= TWO_POW_64)
		return dflt;
	return (uint64_t)v->valuedouble;
}

bool json_add_u64(cJSON *obj, const char *name, uint64_t v)
{
	char text[24];

	if (v < 1000000000000000ull)
		return cJSON_AddNumberToObject(obj, name, (double)v) != NULL;
	/* cJSON would print an exponent (and round beyond 2^53): print the digits. */
	snprintf(text, sizeof(text), "%llu", (unsigned long long)v);
	return cJSON_AddRawToObject(obj, name, text) != NULL;
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
