/* libFuzzer harness for MMDS's guest-facing side: the frame parser and TCP endpoint
 * (src/devices/mmds/stack.c, tcp.c) and the HTTP/IMDS request handling (http.c, imds.c),
 * on a store of its own and a clock the input moves. Nothing outside the process is
 * touched.
 *
 * Build and run (from the repository root), or `make fuzz`:
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -std=c11 -D_GNU_SOURCE -Iinclude \
 *     -I/usr/include/cjson tests/fuzz/fuzz_mmds.c src/devices/mmds/{frame,http,imds,\
 *     stack,store,tcp,token}.c -lcjson -lhttp_parser -o fuzz_mmds
 *   ./fuzz_mmds -max_total_time=60 tests/fuzz/corpus/mmds
 *
 * Input: byte 0 picks the mode. Even: the rest is one guest byte stream of HTTP requests,
 * answered one after another (V2 when bit 1 is set). Odd: the rest is a list of guest
 * frames, each a 2-byte big-endian length then the frame; after each, everything MMDS
 * has to send is taken and the clock moves on by (length & 0xff) * 10 ms with a tick.
 * Any crash, leak or sanitizer report is a bug; so is an answer frame that is not valid. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ember/mmds.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char store[] = "{\"latest\":{\"meta-data\":{\"ami-id\":\"ami-1\",\"a\":{\"b\":"
			    "[1,2,{\"c\":\"d\"}]},\"n\":null}}}";

static void http_stream(struct mmds *m, const char *p, size_t n)
{
	uint64_t now = 1000000000ull;

	while (n) {
		struct mmds_reply r = { 0 };
		size_t used = mmds_http_handle(m, p, n, now, &r);

		if (!used)
			break;
		if (used > n || (r.text && r.len != strlen(r.text)))
			abort();
		free(r.text);
		p += used;
		n -= used;
		now += 1000000000ull;
	}
}

static void frames(struct mmds *m, const uint8_t *p, size_t n)
{
	struct mmds_stack *s = mmds_stack_new(m, MMDS_DEFAULT_IPV4);
	static uint8_t out[2048];
	uint64_t now = 1000000000ull;

	if (!s)
		return;
	while (n >= 2) {
		size_t len = (size_t)p[0] << 8 | p[1];
		p += 2;
		n -= 2;
		if (len > n)
			len = n;
		mmds_stack_input(s, p, len, now);
		for (int i = 0; i < 256; i++) {
			size_t got = mmds_stack_output(s, out, sizeof(out), now);
			if (!got)
				break;
			if (got < 42 || got > 1514)
				abort();
		}
		now += (uint64_t)(len & 0xff) * 10000000ull;
		mmds_stack_tick(s, now);
		p += len;
		n -= len;
	}
	mmds_stack_free(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct mmds *m;

	if (size < 1)
		return 0;
	m = mmds_new();
	if (!m || mmds_set_data(m, cJSON_Parse(store))) {
		mmds_free(m);
		return 0;
	}
	mmds_configure(m, data[0] & 2 ? MMDS_V2 : MMDS_V1, data[0] & 4);
	if (data[0] & 1)
		frames(m, data + 1, size - 1);
	else
		http_stream(m, (const char *)data + 1, size - 1);
	mmds_free(m);
	return 0;
}
