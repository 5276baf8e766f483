/* Unit tests for the API's HTTP layer: requests split anywhere, pipelining, limits, errors,
 * and response framing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../../src/api/http.h"

#define PUT_MC \
	"PUT /machine-config HTTP/1.1\r\nHost: localhost\r\nContent-Type: " \
	"application/json\r\nContent-Length: 38\r\n\r\n{\"vcpu_count\": 2, \"mem_size_mib\": 256}"

/* Feed `len` bytes in pieces of `step`, collecting up to `max` requests (method, url,
 * body) into `out`; returns the count, or -1 on a parse error. */
struct got {
	int method;
	char url[128];
	char body[128];
	size_t body_len;
	int keep_alive;
};

static int feed_all(struct http_in *in, const char *buf, size_t len, size_t step, struct got *out,
	int max)
{
	size_t off = 0;
	int n = 0;

	while (off < len) {
		size_t chunk = len - off < step ? len - off : step, used_total = 0;
		while (used_total < chunk) {
			size_t used = 0;
			enum http_in_status st = http_in_feed(in, buf + off + used_total,
				chunk - used_total, &used);
			used_total += used;
			if (st == HTTP_IN_ERROR)
				return -1;
			if (st == HTTP_IN_REQUEST) {
				if (n < max) {
					out[n].method = (int)in->req.method;
					snprintf(out[n].url, sizeof(out[n].url), "%s", in->req.url);
					snprintf(out[n].body, sizeof(out[n].body), "%s",
						in->req.body ? in->req.body : "");
					out[n].body_len = in->req.body_len;
					out[n].keep_alive = in->req.keep_alive;
				}
				n++;
				http_in_next(in);
			} else if (used == 0) {
				break;
			}
		}
		off += chunk;
	}
	return n;
}

static void test_api_http_parses_a_request_split_at_every_byte(void **state)
{
	(void)state;
	for (size_t step = 1; step <= sizeof(PUT_MC); step++) {
		struct http_in in;
		struct got g[2];
		http_in_init(&in, 0);
		assert_int_equal(feed_all(&in, PUT_MC, sizeof(PUT_MC) - 1, step, g, 2), 1);
		assert_int_equal(g[0].method, HTTP_PUT);
		assert_string_equal(g[0].url, "/machine-config");
		assert_string_equal(g[0].body, "{\"vcpu_count\": 2, \"mem_size_mib\": 256}");
		assert_true(g[0].keep_alive);
		assert_false(http_in_partial(&in));
		http_in_deinit(&in);
	}
}

static void test_api_http_serves_pipelined_requests_one_at_a_time(void **state)
{
	static const char three[] = "GET / HTTP/1.1\r\n\r\n" PUT_MC
				    "GET /machine-config HTTP/1.1\r\nConnection: close\r\n\r\n";
	struct http_in in;
	struct got g[4];
	size_t used;

	(void)state;
	http_in_init(&in, 0);
	/* The parser stops after the first request, leaving the rest unread. */
	assert_int_equal(http_in_feed(&in, three, sizeof(three) - 1, &used), HTTP_IN_REQUEST);
	assert_int_equal(used, strlen("GET / HTTP/1.1\r\n\r\n"));
	assert_null(in.req.body);
	/* Until it is told the request was answered. */
	assert_int_equal(http_in_feed(&in, three + used, 5, &used), HTTP_IN_REQUEST);
	assert_int_equal(used, 0);
	http_in_next(&in);
	http_in_deinit(&in);

	http_in_init(&in, 0);
	assert_int_equal(feed_all(&in, three, sizeof(three) - 1, sizeof(three), g, 4), 3);
	assert_string_equal(g[0].url, "/");
	assert_string_equal(g[1].url, "/machine-config");
	assert_int_equal(g[1].body_len, 38);
	assert_int_equal(g[2].method, HTTP_GET);
	assert_false(g[2].keep_alive);
	http_in_deinit(&in);
}

static void test_api_http_refuses_a_body_over_the_limit_before_reading_it(void **state)
{
	static const char big[] = "PUT /mmds HTTP/1.1\r\nContent-Length: 51201\r\n\r\n{";
	struct http_in in;
	size_t used;

	(void)state;
	http_in_init(&in, 0);
	assert_int_equal(http_in_feed(&in, big, sizeof(big) - 1, &used), HTTP_IN_ERROR);
	assert_int_equal(in.err_status, 400);
	assert_string_equal(in.err_msg,
		"Request payload with size 51201 is larger than the "
		"limit of 51200 allowed by server.");
	/* An error is final. */
	assert_int_equal(http_in_feed(&in, "GET / HTTP/1.1\r\n\r\n", 18, &used), HTTP_IN_ERROR);
	http_in_deinit(&in);
}

static void test_api_http_refuses_a_chunked_body_that_grows_too_big(void **state)
{
	static const char head[] = "PUT /mmds HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n";
	char chunk[64];
	struct http_in in;
	size_t used;
	enum http_in_status st = HTTP_IN_MORE;
	int rounds = 0;

	(void)state;
	http_in_init(&in, 1000);
	assert_int_equal(http_in_feed(&in, head, sizeof(head) - 1, &used), HTTP_IN_MORE);
	snprintf(chunk, sizeof(chunk), "20\r\n%032d\r\n", 0);
	while (st == HTTP_IN_MORE && rounds++ < 100)
		st = http_in_feed(&in, chunk, strlen(chunk), &used);
	assert_int_equal(st, HTTP_IN_ERROR);
	assert_true(rounds <= 33);
	assert_non_null(strstr(in.err_msg, "larger than the limit of 1000"));
	http_in_deinit(&in);
}

static void test_api_http_refuses_huge_headers(void **state)
{
	char *req = malloc(20000);
	struct http_in in;
	size_t used;
	int n;

	(void)state;
	n = snprintf(req, 20000, "GET / HTTP/1.1\r\nX-Junk: ");
	memset(req + n, 'a', 19000);
	http_in_init(&in, 0);
	assert_int_equal(http_in_feed(&in, req, (size_t)n + 19000, &used), HTTP_IN_ERROR);
	assert_int_equal(in.err_status, 400);
	assert_non_null(strstr(in.err_msg, "headers are larger than the limit of 8192 bytes"));
	http_in_deinit(&in);
	free(req);
}

static void test_api_http_refuses_garbage_and_upgrades(void **state)
{
	static const char *const bad[] = {
		"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", /* a TLS hello */
		"GET / HTTP/9.9\r\n\r\n",
		"GET / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
		"GET / HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
		"GET / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n",
	};

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct http_in in;
		size_t used;
		http_in_init(&in, 0);
		assert_int_equal(http_in_feed(&in, bad[i], strlen(bad[i]), &used), HTTP_IN_ERROR);
		assert_int_equal(in.err_status, 400);
		http_in_deinit(&in);
	}
}

static void test_api_http_asks_for_the_body_when_told_to_expect_100(void **state)
{
	static const char req[] = "PUT /actions HTTP/1.1\r\nExpect: 100-continue\r\n"
				  "Content-Length: 2\r\n\r\n";
	struct http_in in;
	size_t used;

	(void)state;
	http_in_init(&in, 0);
	assert_int_equal(http_in_feed(&in, req, sizeof(req) - 1, &used), HTTP_IN_MORE);
	assert_true(in.send_continue);
	assert_true(http_in_partial(&in));
	in.send_continue = false;
	assert_int_equal(http_in_feed(&in, "{}", 2, &used), HTTP_IN_REQUEST);
	assert_string_equal(in.req.body, "{}");
	http_in_deinit(&in);
}

static void test_api_http_http10_closes_unless_kept_alive(void **state)
{
	struct got g[2];
	struct http_in in;

	(void)state;
	http_in_init(&in, 0);
	assert_int_equal(feed_all(&in, "GET / HTTP/1.0\r\n\r\n", 18, 100, g, 2), 1);
	assert_false(g[0].keep_alive);
	http_in_deinit(&in);
	http_in_init(&in, 0);
	assert_int_equal(feed_all(&in, "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", 42, 100,
				 g, 2),
		1);
	assert_true(g[0].keep_alive);
	http_in_deinit(&in);
}

static void test_api_http_frames_responses(void **state)
{
	struct http_out out = { 0 };
	char text[512];

	(void)state;
	assert_int_equal(http_out_response(&out, 204, NULL, true, false), 0);
	assert_int_equal(http_out_response(&out, 400, "{\"fault_message\":\"x\"}", false, true), 0);
	assert_true(http_out_pending(&out) < sizeof(text));
	memcpy(text, out.buf + out.off, http_out_pending(&out));
	text[http_out_pending(&out)] = '\0';
	assert_string_equal(text,
		"HTTP/1.1 204 No Content\r\nServer: ember API\r\nConnection: keep-alive\r\n\r\n"
		"HTTP/1.1 400 Bad Request\r\nServer: ember API\r\nConnection: close\r\n"
		"Deprecation: true\r\nContent-Type: application/json\r\nContent-Length: 21\r\n\r\n"
		"{\"fault_message\":\"x\"}");
	http_out_consume(&out, 9);
	assert_memory_equal(out.buf + out.off, "204 No Content", 14);
	http_out_consume(&out, http_out_pending(&out));
	assert_int_equal(http_out_pending(&out), 0);
	http_out_deinit(&out);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_api_http_parses_a_request_split_at_every_byte),
		cmocka_unit_test(test_api_http_serves_pipelined_requests_one_at_a_time),
		cmocka_unit_test(test_api_http_refuses_a_body_over_the_limit_before_reading_it),
		cmocka_unit_test(test_api_http_refuses_a_chunked_body_that_grows_too_big),
		cmocka_unit_test(test_api_http_refuses_huge_headers),
		cmocka_unit_test(test_api_http_refuses_garbage_and_upgrades),
		cmocka_unit_test(test_api_http_asks_for_the_body_when_told_to_expect_100),
		cmocka_unit_test(test_api_http_http10_closes_unless_kept_alive),
		cmocka_unit_test(test_api_http_frames_responses),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
