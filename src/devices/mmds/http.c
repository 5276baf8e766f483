/* MMDS HTTP: one request from the guest's byte stream (http-parser), its answer as a
 * complete HTTP/1.1 response. Firecracker's rules: GET reads the store (V2: with a session
 * token), PUT /latest/api/token opens a session, other methods are 405. */
#include "internal.h"

#include <errno.h>
#include <http_parser.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

enum hdr { H_ACCEPT, H_TOKEN, H_TOKEN_AWS, H_TTL, H_TTL_AWS, H_FORWARDED, H_COUNT };

static const char *const hdr_names[H_COUNT] = {
	[H_ACCEPT] = "Accept",
	[H_TOKEN] = "X-metadata-token",
	[H_TOKEN_AWS] = "X-aws-ec2-metadata-token",
	[H_TTL] = "X-metadata-token-ttl-seconds",
	[H_TTL_AWS] = "X-aws-ec2-metadata-token-ttl-seconds",
	[H_FORWARDED] = "X-Forwarded-For",
};

struct span {
	const char *p;
	size_t n;
};

struct req {
	struct span url, field, hdr[H_COUNT];
	int cur; /* header the value being read belongs to, or -1 */
	bool in_value;
	bool complete;
	bool has_body;
};

/* Extend a span with a token piece (pieces of one token are contiguous in one buffer). */
static void grow(struct span *s, const char *at, size_t n)
{
	if (s->p && s->p + s->n == at)
		s->n += n;
	else
		*s = (struct span){ at, n };
}

static int on_url(http_parser *p, const char *at, size_t n)
{
	grow(&((struct req *)p->data)->url, at, n);
	return 0;
}

static int on_field(http_parser *p, const char *at, size_t n)
{
	struct req *r = p->data;

	if (r->in_value)
		r->field = (struct span){ NULL, 0 };
	r->in_value = false;
	grow(&r->field, at, n);
	return 0;
}

static int on_value(http_parser *p, const char *at, size_t n)
{
	struct req *r = p->data;

	if (!r->in_value) {
		r->cur = -1;
		for (int i = 0; i < H_COUNT; i++)
			if (strlen(hdr_names[i]) == r->field.n &&
				!strncasecmp(hdr_names[i], r->field.p, r->field.n))
				r->cur = i;
		if (r->cur >= 0)
			r->hdr[r->cur] = (struct span){ at, 0 };
	}
	r->in_value = true;
	if (r->cur >= 0)
		grow(&r->hdr[r->cur], at, n);
	return 0;
}

static int on_body(http_parser *p, const char *at, size_t n)
{
	(void)at;
	((struct req *)p->data)->has_body |= n > 0;
	return 0;
}

static int on_complete(http_parser *p)
{
	((struct req *)p->data)->complete = true;
	http_parser_pause(p, 1); /* one request at a time: the rest waits */
	return 0;
}

static const http_parser_settings settings = {
	.on_url = on_url,
	.on_header_field = on_field,
	.on_header_value = on_value,
	.on_body = on_body,
	.on_message_complete = on_complete,
};

static const char *reason(int status)
{
	switch (status) {
	case 200:
		return "OK";
	case 400:
		return "Bad Request";
	case 401:
		return "Unauthorized";
	case 404:
		return "Not Found";
	case 405:
		return "Method Not Allowed";
	case 501:
		return "Not Implemented";
	default:
		return "Internal Server Error";
	}
}

/* The whole response into out; the body is consumed (freed). */
static void respond(struct mmds_reply *out, int status, bool json, char *body, bool close)
{
	char *t = NULL;
	int n;

	if (!body)
		status = 500;
	n = asprintf(&t,
		"HTTP/1.1 %d %s\r\nServer: ember\r\nConnection: %s\r\n%s"
		"Content-Type: %s\r\nContent-Length: %zu\r\n\r\n%s",
		status, reason(status), close ? "close" : "keep-alive",
		status == 405 ? "Allow: GET, PUT\r\n" : "",
		json ? "application/json" : "text/plain", body ? strlen(body) : 0,
		body ? body : "");
	out->text = n < 0 ? NULL : t;
	out->len = n < 0 ? 0 : (size_t)n;
	out->status = status;
	out->close = close || n < 0;
	free(body);
}

/* pre + the span + post, as a new string (NULL if memory ran out). */
static char *text(const char *pre, const struct span *s, const char *post)
{
	char *t = NULL;

	if (asprintf(&t, "%s%.*s%s", pre, (int)s->n, s->p ? s->p : "", post) < 0)
		return NULL;
	return t;
}

static const struct span *either(const struct req *r, enum hdr a, enum hdr b)
{
	return r->hdr[a].p ? &r->hdr[a] : r->hdr[b].p ? &r->hdr[b] : NULL;
}

static int put_token(struct mmds *m, const struct req *r, const struct span *path, uint64_t now,
	char **body)
{
	static const char want[] = "/latest/api/token";
	const struct span *ttl = either(r, H_TTL, H_TTL_AWS);
	unsigned long v = 0;
	char tok[MMDS_TOKEN_LEN + 1];

	if (path->n != sizeof(want) - 1 || memcmp(path->p, want, path->n)) {
		*body = text("Resource not found: ", path, ".");
		return 404;
	}
	if (r->hdr[H_FORWARDED].p) {
		*body = strdup("Invalid header. Reason: Unsupported header name. Key: "
			       "X-Forwarded-For");
		return 400;
	}
	if (!ttl) {
		*body = strdup("Token time to live value not found. Use `X-metadata-token-ttl-"
			       "seconds` header to specify the token's lifetime.");
		return 400;
	}
	for (size_t i = 0; i < ttl->n && v <= MMDS_TTL_MAX; i++)
		v = ttl->p[i] >= '0' && ttl->p[i] <= '9' ? v * 10 + (unsigned)(ttl->p[i] - '0')
							 : MMDS_TTL_MAX + 1;
	if (ttl->n == 0 || v < 1 || v > MMDS_TTL_MAX) {
		*body = text("Invalid time to live value provided for token: ", ttl,
			". Please provide a value between 1 and 21600.");
		return 400;
	}
	if (mmds_token_new(m, (unsigned)v, now, tok)) {
		*body = strdup("Cannot generate a session token.");
		return 500;
	}
	*body = strdup(tok);
	return 200;
}

static int get(struct mmds *m, const struct req *r, const struct span *path, uint64_t now,
	bool *json, char **body)
{
	const struct span *tok = either(r, H_TOKEN, H_TOKEN_AWS);
	const struct span *acc = &r->hdr[H_ACCEPT];
	int ret;

	if (m->version == MMDS_V2 && !tok) {
		*body = strdup("No MMDS token provided. Use `X-metadata-token` header to specify "
			       "the session token.");
		return 401;
	}
	if (m->version == MMDS_V2 && !mmds_token_valid(m, tok->p, tok->n, now)) {
		*body = strdup("MMDS token not valid.");
		return 401;
	}
	*json = !m->imds_compat && acc->p && memmem(acc->p, acc->n, "application/json", 16);
	ret = imds_render(m->data, path->p, path->n, *json, body);
	if (ret != 200)
		*json = false;
	return ret < 0 ? 500 : ret;
}

static size_t handle(struct mmds *m, const char *buf, size_t len, uint64_t now_ns,
	struct mmds_reply *out)
{
	struct req r = { .cur = -1 };
	struct span path;
	http_parser p;
	size_t used;
	bool json = false;
	char *body = NULL;
	int status;

	http_parser_init(&p, HTTP_REQUEST);
	p.data = &r;
	used = http_parser_execute(&p, &settings, buf, len);
	if (!r.complete) {
		if (HTTP_PARSER_ERRNO(&p) == HPE_OK)
			return 0; /* more to come */
		respond(out, 400, false, strdup("Bad request."), true);
		return len ? len : 1;
	}
	path = (struct span){ r.url.p, 0 };
	while (path.n < r.url.n && r.url.p[path.n] != '?' && r.url.p[path.n] != '#')
		path.n++;
	if (!path.p || path.n == 0 || path.p[0] != '/') {
		status = 400;
		body = strdup("Invalid URI.");
	} else if (p.method == HTTP_GET && r.has_body) {
		status = 400;
		body = strdup("GET request cannot have a body.");
	} else if (p.method == HTTP_GET) {
		status = get(m, &r, &path, now_ns, &json, &body);
	} else if (p.method == HTTP_PUT) {
		status = put_token(m, &r, &path, now_ns, &body);
	} else {
		status = 405;
		body = strdup("Not allowed HTTP method.");
	}
	respond(out, status, json, body, !http_should_keep_alive(&p));
	return used ? used : 1;
}

size_t mmds_http_handle(struct mmds *m, const char *buf, size_t len, uint64_t now_ns,
	struct mmds_reply *out)
{
	size_t used;

	mmds_lock(m);
	used = handle(m, buf, len, now_ns, out);
	mmds_unlock(m);
	return used;
}
