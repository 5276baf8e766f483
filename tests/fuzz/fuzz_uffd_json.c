/* libFuzzer harness for the uffd handshake parser that ember-uffd runs on a peer's bytes.
 *
 * Build and run (from the repository root), or `make fuzz`:
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -std=c11 -D_GNU_SOURCE -Iinclude \
 *     tests/fuzz/fuzz_uffd_json.c src/snapshot/uffd_handshake.c -lcjson -o fuzz_uffd_json
 *   ./fuzz_uffd_json -max_total_time=60 -dict=tests/fuzz/uffd_json.dict tests/fuzz/corpus/uffd_json
 * For cJSON itself to be instrumented too, put its cJSON.c (same version as the system
 * header) on the command line instead of -lcjson.
 *
 * Each input is parsed as it is, with a tiny error buffer and with a limit of two regions.
 * A refusal must leave *n at 0 and a NUL-terminated message. An acceptance must hold
 * every promise of uffd.h (page size, alignment, no overlaps, exact integers), survive
 * encode -> parse unchanged, and agree with a straightforward check against a memory
 * file. Any violation traps. */
#include "ember/uffd.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"

#define LIMIT (1ULL << 53)

static void check_regions(const struct uffd_region *r, unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		uint64_t ps = r[i].page_size;

		CHECK(ps >= 4096 && (ps & (ps - 1)) == 0);
		CHECK(r[i].size > 0 && r[i].size % ps == 0 && r[i].base_host_virt_addr % ps == 0);
		CHECK(r[i].base_host_virt_addr < LIMIT && r[i].size < LIMIT &&
			r[i].offset < LIMIT && r[i].page_size_kib < LIMIT);
		CHECK(r[i].base_host_virt_addr + r[i].size <= LIMIT &&
			r[i].offset + r[i].size <= LIMIT);
		for (unsigned j = 0; j < i; j++) {
			CHECK(r[i].base_host_virt_addr >= r[j].base_host_virt_addr + r[j].size ||
				r[j].base_host_virt_addr >= r[i].base_host_virt_addr + r[i].size);
			CHECK(r[i].offset >= r[j].offset + r[j].size ||
				r[j].offset >= r[i].offset + r[i].size);
		}
	}
}

/* The memory file check, written the plain way, must agree with the library's. */
static void check_file(const struct uffd_region *r, unsigned n)
{
	uint64_t total = 0, end = 0;
	char err[128];

	for (unsigned i = 0; i < n; i++) {
		total += r[i].size; /* < 2^53 * UFFD_MAX_REGIONS: no overflow */
		if (r[i].offset + r[i].size > end)
			end = r[i].offset + r[i].size;
	}
	CHECK((uffd_handshake_check_file(r, n, total, err, sizeof(err)) == 0) == (end <= total));
	CHECK(uffd_handshake_check_file(r, n, total + 4096, err, sizeof(err)) == -EINVAL);
	CHECK(uffd_handshake_check_file(r, n, total - 1, err, sizeof(err)) == -EINVAL);
}

static void roundtrip(const struct uffd_region *r, unsigned n)
{
	static char buf[UFFD_MAX_REGIONS * 160 + 8];
	struct uffd_region again[UFFD_MAX_REGIONS];
	unsigned m = 0;
	char err[128];
	int len = uffd_handshake_encode(r, n, buf, sizeof(buf));

	CHECK(len > 0 && (size_t)len < sizeof(buf) && buf[len] == '\0');
	CHECK(uffd_handshake_parse(buf, (size_t)len, again, UFFD_MAX_REGIONS, &m, err,
		      sizeof(err)) == 0);
	CHECK(m == n && memcmp(again, r, n * sizeof(*r)) == 0);
	CHECK(uffd_handshake_encode(r, n, buf, (size_t)len) == -ENOSPC);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct uffd_region r[UFFD_MAX_REGIONS];
	const char *json = (const char *)data;
	char err[256], tiny[8];
	unsigned n = 12345, n2 = 12345;
	int ret;

	memset(err, 'x', sizeof(err));
	ret = uffd_handshake_parse(json, size, r, UFFD_MAX_REGIONS, &n, err, sizeof(err));
	CHECK(ret == 0 || ret == -EINVAL);
	if (ret) {
		CHECK(n == 0 && memchr(err, '\0', sizeof(err)) && err[0] != '\0');
	} else {
		CHECK(n >= 1 && n <= UFFD_MAX_REGIONS);
		check_regions(r, n);
		roundtrip(r, n);
		check_file(r, n);
	}
	/* Same answer with a message buffer too small for any message, and with room for
	 * two regions only. */
	memset(tiny, 'x', sizeof(tiny));
	CHECK(uffd_handshake_parse(json, size, r, UFFD_MAX_REGIONS, &n2, tiny, sizeof(tiny)) ==
		ret);
	CHECK(ret == 0 || memchr(tiny, '\0', sizeof(tiny)));
	if (uffd_handshake_parse(json, size, r, 2, &n2, err, sizeof(err)) == 0)
		CHECK(ret == 0 && n2 == n && n <= 2);
	else
		CHECK(n2 == 0 && (ret != 0 || n > 2));
	return 0;
}
