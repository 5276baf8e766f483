/* HTTP/1.1 requests in, responses out, for the API: fed from any byte source (a socket,
 * a fuzzer's buffer). Not a module interface: src/api/ and its tests only. */
#ifndef EMBER_API_HTTP_H
#define EMBER_API_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <http_parser.h>

#define HTTP_MAX_BODY 51200u /* Firecracker's default --http-api-max-payload-size */
#define HTTP_MAX_HEAD 8192u  /* request line and headers, without the blanks between */

enum http_in_status {
	HTTP_IN_MORE,    /* every byte used; the request is not complete yet */
	HTTP_IN_REQUEST, /* one request is complete: in->req until http_in_next() */
	HTTP_IN_ERROR,   /* answer in->err_status / in->err_msg, then close the connection */
};

struct http_request {
	enum http_method method;
	char *url; /* NUL-terminated, as sent (origin or absolute form) */
	size_t url_len;
	char *body; /* NUL-terminated; NULL when the request has no body bytes */
	size_t body_len;
	bool keep_alive; /* false: answer with Connection: close and close */
};

struct http_in {
	http_parser parser;
	size_t max_body;
	size_t head_bytes; /* request line and header bytes seen */
	struct http_request req;
	size_t url_cap, body_cap;
	char hdr_name[16]; /* the header being read, lower case, cut to size */
	size_t hdr_name_len;
	bool in_value; /* the last header callback was a value */
	bool hdr_is_expect;
	bool expect_continue; /* the request asked for "Expect: 100-continue" */
	bool send_continue;   /* headers are complete: 100 Continue is due */
	bool started, done;
	int err_status;
	char err_msg[160];
};

/* max_body: the largest body accepted (0: HTTP_MAX_BODY). */
void http_in_init(struct http_in *in, size_t max_body);
void http_in_deinit(struct http_in *in);

/* Parse bytes. Stops at the end of one request, at an error, or when `len` bytes are used;
 * *used is how many were. After an error every later call is an error too. */
enum http_in_status http_in_feed(struct http_in *in, const char *buf, size_t len, size_t *used);
/* The request was answered: ready the parser for the next one on the same connection. */
void http_in_next(struct http_in *in);
/* A request has begun and is not complete. */
bool http_in_partial(const struct http_in *in);

/* Output buffer: bytes waiting to be written. */
struct http_out {
	char *buf;
	size_t len, off, cap;
};

void http_out_deinit(struct http_out *out);
size_t http_out_pending(const struct http_out *out);
/* Drop the first n pending bytes (they were written). */
void http_out_consume(struct http_out *out, size_t n);
/* Append a response with a JSON body (NULL or "" for none). -ENOMEM, nothing appended. */
__attribute__((warn_unused_result)) int http_out_response(struct http_out *out, int status,
	const char *body, bool keep_alive, bool deprecation);
/* Append "HTTP/1.1 100 Continue". */
__attribute__((warn_unused_result)) int http_out_continue(struct http_out *out);

const char *http_reason(int status);

#endif
