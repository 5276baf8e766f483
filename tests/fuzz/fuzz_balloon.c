/* libFuzzer harness for the balloon's guest-input parsers: PFN arrays, stats buffers and
 * the hinting queue's judge.
 *
 * Build and run (from the repository root), or `make fuzz`:
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -std=c11 -D_GNU_SOURCE -Iinclude \
 *     tests/fuzz/fuzz_balloon.c src/devices/balloon/balloon_parse.c \
 *     src/devices/balloon/balloon_memory.c src/kvm/guest_mem.c -o fuzz_balloon
 *   ./fuzz_balloon -max_total_time=60 tests/fuzz/corpus/balloon
 *
 * The first input byte picks the parser. PFN arrays are walked over a guest memory of
 * two real anonymous regions, adjacent in guest-physical space but not on the host, so
 * runs must split there; every run handed out must lie inside one region,
 * be page-aligned, and be discarded for real without error (after which it reads as
 * zeros). Counts must add up. Stats buffers: accepted only at a multiple of 10 bytes,
 * only known tags marked present, the result untouched on refusal. Hinting: a sequence
 * of host commands and guest chains (5 bytes each); a chain's pages may be discarded only
 * while a run is current and the driver's last id is that run's, and an acknowledgement
 * only ends the current run. Any violation traps. */
#include "ember/balloon.h"

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "ember/guest_mem.h"

#include "fuzz.h"

#define PG 4096ULL
#define REGION_PAGES 64

static struct guest_mem gm;

/* Two regions adjacent in guest-physical space but not on the host (a hole between
 * them), so runs of PFNs must split at the boundary. */
static void setup(void)
{
	uint8_t *p;

	if (gm.nr_regions)
		return;
	p = mmap(NULL, 3 * REGION_PAGES * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
		-1, 0);
	CHECK(p != MAP_FAILED);
	gm.backing = GUEST_MEM_ANON;
	gm.page_size = PG;
	gm.fd = -1;
	gm.nr_regions = 2;
	for (unsigned i = 0; i < 2; i++) {
		gm.regions[i].gpa = i * REGION_PAGES * PG;
		gm.regions[i].size = REGION_PAGES * PG;
		gm.regions[i].host = p + 2 * i * REGION_PAGES * PG;
	}
	gm.total = 2 * REGION_PAGES * PG;
}

struct seen {
	uint64_t pages, ranges;
};

static void range_cb(void *ctx, uint64_t gpa, uint64_t len)
{
	struct seen *s = ctx;
	uint8_t *host = guest_mem_ptr_mut(&gm, gpa, len);
	struct balloon_discard d;
	char err[160];

	CHECK(host != NULL);
	CHECK(gpa % PG == 0 && len % PG == 0 && len > 0);
	CHECK(balloon_memory_discard(&gm, gpa, len, &d, err, sizeof(err)) == 0);
	CHECK(d.bytes == len && d.skipped == 0);
	for (uint64_t i = 0; i < len; i += 512)
		CHECK(host[i] == 0);
	memset(host, 0xab, len); /* dirty again for the next input */
	s->pages += len / PG;
	s->ranges++;
}

static void fuzz_pfns(const uint8_t *data, size_t size)
{
	struct balloon_pfn_result res = { 0 };
	struct seen s = { 0 };

	balloon_parse_pfns(&gm, data, size, range_cb, &s, &res);
	CHECK(res.pages + res.refused == size / 4);
	CHECK(res.trailing == size % 4);
	CHECK(s.pages == res.pages && s.ranges == res.ranges);
	CHECK(res.ranges <= res.pages);
}

static void fuzz_stats(const uint8_t *data, size_t size)
{
	uint64_t present = 0x5a5a, value[BALLOON_STAT_TAGS];
	int ret;

	memset(value, 0x5a, sizeof(value));
	ret = balloon_parse_stats(data, size, &present, value);
	if (ret) {
		CHECK(ret == -22 /* EINVAL */);
		CHECK(size == 0 || size % BALLOON_STATS_ENTRY_SIZE ||
			size > BALLOON_STATS_MAX_BYTES);
		CHECK(present == 0x5a5a && value[0] == 0x5a5a5a5a5a5a5a5aULL);
		return;
	}
	CHECK(size && size % BALLOON_STATS_ENTRY_SIZE == 0);
	CHECK(!(present >> BALLOON_STAT_TAGS));
	for (unsigned t = 0; t < BALLOON_STAT_TAGS; t++)
		if (!(present & (1ULL << t)))
			CHECK(value[t] == 0);
	CHECK(present || size >= BALLOON_STATS_ENTRY_SIZE);
}

/* Each step: a flags byte (bit 0: the host sets a command, bit 1: the chain carries a
 * command id, bit 2: acknowledge_on_stop) and a le32 id. */
static void fuzz_hinting(const uint8_t *data, size_t size)
{
	struct balloon_hinting h = { .host_cmd = BALLOON_HINT_CMD_STOP };

	for (size_t off = 0; off + 5 <= size; off += 5) {
		uint32_t id = (uint32_t)data[off + 1] | (uint32_t)data[off + 2] << 8 |
			(uint32_t)data[off + 3] << 16 | (uint32_t)data[off + 4] << 24;
		struct balloon_hinting before;
		bool ack, act;

		if (data[off] & 1) {
			h.host_cmd = id % 8; /* small ids: runs, STOP and DONE meet often */
			h.acknowledge_on_stop = data[off] & 4;
			continue;
		}
		before = h;
		act = balloon_hint_chain(&h, data[off] & 2, id % 8, &ack);
		CHECK(h.host_cmd == before.host_cmd);
		if (act)
			CHECK(h.host_cmd > BALLOON_HINT_CMD_DONE && h.has_guest_cmd &&
				h.guest_cmd == h.host_cmd);
		if (ack)
			CHECK(before.acknowledge_on_stop && before.has_guest_cmd &&
				before.guest_cmd == before.host_cmd &&
				before.host_cmd > BALLOON_HINT_CMD_DONE &&
				h.guest_cmd <= BALLOON_HINT_CMD_DONE && !act);
		if (!(data[off] & 2))
			CHECK(h.has_guest_cmd == before.has_guest_cmd &&
				h.guest_cmd == before.guest_cmd && !ack);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	setup();
	if (size < 1)
		return 0;
	if (data[0] % 3 == 2)
		fuzz_hinting(data + 1, size - 1);
	else if (data[0] & 1)
		fuzz_stats(data + 1, size - 1);
	else
		fuzz_pfns(data + 1, size - 1);
	return 0;
}
