/* virtio-balloon: parsers of guest input (PFN arrays, stats buffers, hinting commands)
 * and stat names. */
#include "ember/balloon.h"

#include <errno.h>
#include <string.h>

#include "ember/byteorder.h"
#include "ember/guest_mem.h"

static const char *const stat_names[BALLOON_STAT_TAGS] = {
	"swap_in",
	"swap_out",
	"major_faults",
	"minor_faults",
	"free_memory",
	"total_memory",
	"available_memory",
	"disk_caches",
	"hugetlb_allocations",
	"hugetlb_failures",
	"oom_kill",
	"alloc_stall",
	"async_scan",
	"direct_scan",
	"async_reclaim",
	"direct_reclaim",
};

const char *balloon_stat_name(unsigned tag)
{
	return tag < BALLOON_STAT_TAGS ? stat_names[tag] : NULL;
}

void balloon_parse_pfns(const struct guest_mem *gm, const uint8_t *buf, size_t len,
	balloon_range_fn fn, void *ctx, struct balloon_pfn_result *res)
{
	uint64_t run_gpa = 0, run_len = 0;
	const uint8_t *run_host = NULL;

	for (size_t off = 0; off + 4 <= len; off += 4) {
		uint64_t gpa = (uint64_t)get_le32(buf + off) << BALLOON_PFN_SHIFT;
		const uint8_t *host = guest_mem_ptr(gm, gpa, BALLOON_PAGE_SIZE);

		if (!host) {
			res->refused++;
			continue;
		}
		res->pages++;
		if (run_len && gpa == run_gpa + run_len && host == run_host + run_len) {
			run_len += BALLOON_PAGE_SIZE;
			continue;
		}
		if (run_len) {
			res->ranges++;
			if (fn)
				fn(ctx, run_gpa, run_len);
		}
		run_gpa = gpa;
		run_host = host;
		run_len = BALLOON_PAGE_SIZE;
	}
	if (run_len) {
		res->ranges++;
		if (fn)
			fn(ctx, run_gpa, run_len);
	}
	res->trailing += len % 4;
}

int balloon_parse_stats(const uint8_t *buf, size_t len, uint64_t *present,
	uint64_t value[BALLOON_STAT_TAGS])
{
	uint64_t got = 0, v[BALLOON_STAT_TAGS] = { 0 };

	if (len == 0 || len % BALLOON_STATS_ENTRY_SIZE || len > BALLOON_STATS_MAX_BYTES)
		return -EINVAL;
	for (size_t off = 0; off < len; off += BALLOON_STATS_ENTRY_SIZE) {
		uint16_t tag = get_le16(buf + off);

		if (tag >= BALLOON_STAT_TAGS)
			continue;
		got |= 1ULL << tag;
		v[tag] = get_le64(buf + off + 2);
	}
	*present = got;
	memcpy(value, v, sizeof(v));
	return 0;
}

bool balloon_hint_chain(struct balloon_hinting *h, bool has_cmd, uint32_t cmd, bool *ack)
{
	bool run = h->host_cmd != BALLOON_HINT_CMD_STOP && h->host_cmd != BALLOON_HINT_CMD_DONE;

	*ack = false;
	if (has_cmd) {
		/* DONE is the device's word, not the driver's: taken as the end of a run. */
		bool ends = cmd == BALLOON_HINT_CMD_STOP || cmd == BALLOON_HINT_CMD_DONE;

		*ack = ends && run && h->acknowledge_on_stop && h->has_guest_cmd &&
			h->guest_cmd == h->host_cmd;
		h->has_guest_cmd = true;
		h->guest_cmd = cmd;
	}
	return run && h->has_guest_cmd && h->guest_cmd == h->host_cmd;
}
