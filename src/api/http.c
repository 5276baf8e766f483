/* HTTP/1.1 for the API: http-parser callbacks with size limits, and response framing. */
#include "http.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define KEEP_BUF_MAX 4096 /* buffers above this are freed between requests */

static int fail(struct http_in *in, int status, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int fail(struct http_in *in, int status, const char *fmt, ...)
{
	va_list ap;

	if (!in->err_status) {
		in->err_status = status;
		va_start(ap, fmt);
		vsnprintf(in->err_msg, sizeof(in->err_msg), fmt, ap);
		va_end(ap);
	}
	return -1; /* any non-zero return stops the parser */
}

/* Append to a NUL-terminated buffer that may grow up to `limit` bytes of content. */
static int append(char **buf, size_t *len, size_t *cap, const char *at, size_t n)
{
	if (*len + n + 1 > *cap) {
		size_t want = *cap ? *cap : 256;
		char *p;
		while (want < *len + n + 1)
			want *= 2;
		p = realloc(*buf, want);
		if (!p)
			return -ENOMEM;
		*buf = p;
		*cap = want;
	}
	memcpy(*buf + *len, at, n);
	*len += n;
	(*buf)[*len] = '\0';
	return 0;
}

static struct http_in *in_of(http_parser *p)
{
	return p->data;
}

static int count_head(struct http_in *in, size_t n)
{
	in->head_bytes += n;
	if (in->head_bytes > HTTP_MAX_HEAD)
		return fail(in, 400, "Request headers are larger than the limit of %u bytes.",
			HTTP_MAX_HEAD);
	return 0;
}

static int on_message_begin(http_parser *p)
{
	in_of(p)->started = true;
	return 0;
}

static int on_url(http_parser *p, const char *at, size_t n)
{
	struct http_in *in = in_of(p);

	if (count_head(in, n))
		return -1;
	if (append(&in->req.url, &in->req.url_len, &in->url_cap, at, n))
		return fail(in, 500, "Out of memory.");
	return 0;
}

/* A header is complete: act on the few ember reads. */
static void end_header(struct http_in *in, const char *value, size_t len)
{
	if (in->hdr_is_expect && len == 12 && strncasecmp(value, "100-continue", 12) == 0)
		in->expect_continue = true;
}

static int on_header_field(http_parser *p, const char *at, size_t n)
{
	struct http_in *in = in_of(p);

	if (count_head(in, n))
		return -1;
	if (in->in_value) {
		in->in_value = false;
		in->hdr_name_len = 0;
	}
	for (size_t i = 0; i < n; i++) {
		if (in->hdr_name_len < sizeof(in->hdr_name) - 1) {
			char c = at[i];
			in->hdr_name[in->hdr_name_len] = c >= 'A' && c <= 'Z' ? (char)(c + 32) : c;
		}
		/* A name longer than the buffer matches nothing: keep counting past its end. */
		if (in->hdr_name_len < sizeof(in->hdr_name))
			in->hdr_name_len++;
	}
	return 0;
}

static int on_header_value(http_parser *p, const char *at, size_t n)
{
	struct http_in *in = in_of(p);

	if (count_head(in, n))
		return -1;
	if (!in->in_value) {
		in->in_value = true;
		in->hdr_is_expect = in->hdr_name_len == 6 && memcmp(in->hdr_name, "expect", 6) == 0;
		/* Values arrive whole here unless a read split them; a split Expect value is
		 * simply not recognised, which only costs the client its wait. */
		end_header(in, at, n);
	}
	return 0;
}

static int on_headers_complete(http_parser *p)
{
	struct http_in *in = in_of(p);
	bool chunked = p->flags & F_CHUNKED;
	bool has_length = p->content_length != ULLONG_MAX;

	if (p->http_major != 1 || p->http_minor > 1)
		return fail(in, 400, "Invalid HTTP Version: Unsupported HTTP version.");
	if (p->upgrade)
		return fail(in, 400, "Protocol upgrades are not supported.");
	if (has_length && p->content_length > in->max_body)
		return fail(in, 400,
			"Request payload with size %llu is larger than the limit of %zu "
			"allowed by server.",
			(unsigned long long)p->content_length, in->max_body);
	if (in->expect_continue && (chunked || (has_length && p->content_length > 0)))
		in->send_continue = true;
	return 0;
}

static int on_body(http_parser *p, const char *at, size_t n)
{
	struct http_in *in = in_of(p);

	if (in->req.body_len + n > in->max_body)
		return fail(in, 400,
			"Request payload with size %zu is larger than the limit of %zu "
			"allowed by server.",
			in->req.body_len + n, in->max_body);
	if (append(&in->req.body, &in->req.body_len, &in->body_cap, at, n))
		return fail(in, 500, "Out of memory.");
	return 0;
}

static int on_message_complete(http_parser *p)
{
	struct http_in *in = in_of(p);

	in->done = true;
	in->send_continue = false; /* the body is here already */
	in->req.method = (enum http_method)p->method;
	in->req.keep_alive = http_should_keep_alive(p);
	if (!in->req.url && append(&in->req.url, &in->req.url_len, &in->url_cap, "", 0))
		return fail(in, 500, "Out of memory.");
	/* One request at a time: the caller answers it before the parser goes on. */
	http_parser_pause(p, 1);
	return 0;
}

static const http_parser_settings settings = {
	.on_message_begin = on_message_begin,
	.on_url = on_url,
	.on_header_field = on_header_field,
	.on_header_value = on_header_value,
	.on_headers_complete = on_headers_complete,
	.on_body = on_body,
	.on_message_complete = on_message_complete,
};

void http_in_init(struct http_in *in, size_t max_body)
{
	memset(in, 0, sizeof(*in));
	http_parser_init(&in->parser, HTTP_REQUEST);
	in->parser.data = in;
	in->max_body = max_body ? max_body : HTTP_MAX_BODY;
}

void http_in_deinit(struct http_in *in)
{
	free(in->req.url);
	free(in->req.body);
	in->req.url = in->req.body = NULL;
	in->url_cap = in->body_cap = 0;
}

static void trim(char **buf, size_t *len, size_t *cap)
{
	if (*cap > KEEP_BUF_MAX) {
		free(*buf);
		*buf = NULL;
		*cap = 0;
	} else if (*buf) {
		(*buf)[0] = '\0';
	}
	*len = 0;
}

void http_in_next(struct http_in *in)
{
	trim(&in->req.url, &in->req.url_len, &in->url_cap);
	trim(&in->req.body, &in->req.body_len, &in->body_cap);
	in->head_bytes = 0;
	in->hdr_name_len = 0;
	in->in_value = in->hdr_is_expect = false;
	in->expect_continue = in->send_continue = false;
	in->started = in->done = false;
	if (!in->err_status)
		http_parser_pause(&in->parser, 0);
}

bool http_in_partial(const struct http_in *in)
{
	return in->started && !in->done;
}

/* micro-http's texts (RequestError's Display), so Firecracker's clients see the same. */
static const char *parse_error_text(enum http_errno e)
{
	switch (e) {
	case HPE_INVALID_METHOD:
		return "Invalid HTTP Method: Unsupported HTTP method.";
	case HPE_INVALID_VERSION:
		return "Invalid HTTP Version: Unsupported HTTP version.";
	case HPE_INVALID_CONTENT_LENGTH:
	case HPE_UNEXPECTED_CONTENT_LENGTH:
		return "Invalid header. Reason: Invalid content length.";
	default:
		return "Invalid request.";
	}
}

enum http_in_status http_in_feed(struct http_in *in, const char *buf, size_t len, size_t *used)
{
	size_t n;
	enum http_errno e;

	*used = 0;
	if (in->err_status)
		return HTTP_IN_ERROR;
	if (in->done)
		return HTTP_IN_REQUEST;
	if (!len)
		return HTTP_IN_MORE; /* a zero length would mean end of stream to http-parser */
	n = http_parser_execute(&in->parser, &settings, buf, len);
	*used = n;
	if (in->err_status)
		return HTTP_IN_ERROR;
	if (in->done)
		return HTTP_IN_REQUEST;
	e = HTTP_PARSER_ERRNO(&in->parser);
	if (e != HPE_OK || n != len) {
		fail(in, 400, "%s", parse_error_text(e));
		return HTTP_IN_ERROR;
	}
	return HTTP_IN_MORE;
}

/* ---- responses ---- */

const char *http_reason(int status)
{
	switch (status) {
	case 100:
		return "Continue";
	case 200:
		return "OK";
	case 204:
		return "No Content";
	case 400:
		return "Bad Request";
	case 404:
		return "Not Found";
	case 405:
		return "Method Not Allowed";
	case 408:
		return "Request Timeout";
	case 413:
		return "Payload Too Large";
	case 500:
		return "Internal Server Error";
	case 503:
		return "Service Unavailable";
	default:
		return "Unknown";
	}
}

void http_out_deinit(struct http_out *out)
{
	free(out->buf);
	memset(out, 0, sizeof(*out));
}

size_t http_out_pending(const struct http_out *out)
{
	return out->len - out->off;
}

void http_out_consume(struct http_out *out, size_t n)
{
	out->off += n;
	if (out->off >= out->len) {
		out->off = out->len = 0;
		if (out->cap > KEEP_BUF_MAX * 16) {
			free(out->buf);
			out->buf = NULL;
			out->cap = 0;
		}
	}
}

static int out_reserve(struct http_out *out, size_t n)
{
	if (out->off && out->len + n > out->cap) {
		/* Move what is pending to the front before growing. */
		memmove(out->buf, out->buf + out->off, out->len - out->off);
		out->len -= out->off;
		out->off = 0;
	}
	if (out->len + n > out->cap) {
		size_t want = out->cap ? out->cap : 1024;
		char *p;
		while (want < out->len + n)
			want *= 2;
		p = realloc(out->buf, want);
		if (!p)
			return -ENOMEM;
		out->buf = p;
		out->cap = want;
	}
	return 0;
}

int http_out_response(struct http_out *out, int status, const char *body, bool keep_alive,
	bool deprecation)
{
	size_t blen = body ? strlen(body) : 0;
	char head[256];
	int n;

	n = snprintf(head, sizeof(head),
		"HTTP/1.1 %d %s\r\nServer: ember API\r\nConnection: %s\r\n%s", status,
		http_reason(status), keep_alive ? "keep-alive" : "close",
		deprecation ? "Deprecation: true\r\n" : "");
	if (status != 204)
		n += snprintf(head + n, sizeof(head) - (size_t)n, "%sContent-Length: %zu\r\n",
			blen ? "Content-Type: application/json\r\n" : "", blen);
	n += snprintf(head + n, sizeof(head) - (size_t)n, "\r\n");
	if (status == 204)
		blen = 0;
	if (out_reserve(out, (size_t)n + blen))
		return -ENOMEM;
	memcpy(out->buf + out->len, head, (size_t)n);
	memcpy(out->buf + out->len + n, body ? body : "", blen);
	out->len += (size_t)n + blen;
	return 0;
}

int http_out_continue(struct http_out *out)
{
	static const char line[] = "HTTP/1.1 100 Continue\r\n\r\n";

	if (out_reserve(out, sizeof(line) - 1))
		return -ENOMEM;
	memcpy(out->buf + out->len, line, sizeof(line) - 1);
	out->len += sizeof(line) - 1;
	return 0;
}
