/* libFuzzer harness for the vsock host client's "CONNECT <port>\n" line parser.
 *
 * Build and run (from the repository root), or `make fuzz`:
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -std=c11 -D_GNU_SOURCE -Iinclude \
 *     tests/fuzz/fuzz_vsock_connect.c src/devices/vsock/vsock_proto.c -o fuzz_vsock_connect
 *   ./fuzz_vsock_connect -max_total_time=60 tests/fuzz/corpus/vsock_connect
 *
 * The input is copied to a heap block of its exact size (ASan sees any read past it).
 * What must hold: a line is accepted only if it is "CONNECT " then 1..10 digits (an
 * optional '\r') then '\n' within VSOCK_CONNECT_LINE_MAX bytes, and the port printed
 * back gives the same line; "wait for more" only while no '\n' came and the input is
 * shorter than the limit; and every prefix of an accepted line waits, never refuses. */
#include "ember/vsock.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *buf = malloc(size ? size : 1);
	uint32_t port = 0, p2 = 0;
	int r;

	if (!buf)
		return 0;
	memcpy(buf, data, size);
	r = vsock_parse_connect(buf, size, &port);
	CHECK(r == 0 || r == -EINVAL || (r > 0 && (size_t)r <= size));
	if (r == 0) {
		CHECK(size < VSOCK_CONNECT_LINE_MAX);
		CHECK(!memchr(buf, '\n', size));
	}
	if (r > 0) {
		char again[40];
		int n = snprintf(again, sizeof(again), "CONNECT %u", port);

		CHECK(r <= VSOCK_CONNECT_LINE_MAX);
		CHECK(buf[r - 1] == '\n');
		CHECK(memcmp(buf, "CONNECT ", 8) == 0);
		/* the same number (leading zeros aside), then '\n' or "\r\n" */
		for (int i = 8; i < r - 1; i++)
			CHECK((buf[i] >= '0' && buf[i] <= '9') || (i == r - 2 && buf[i] == '\r'));
		CHECK(n > 0);
		again[n] = '\n';
		CHECK(vsock_parse_connect(again, (size_t)n + 1, &p2) == n + 1 && p2 == port);
		for (int len = 0; len < r; len++)
			CHECK(vsock_parse_connect(buf, (size_t)len, &p2) == 0);
	}
	free(buf);
	return 0;
}
