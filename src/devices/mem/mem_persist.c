/* virtio-mem: the device's snapshot section (sizes and the plugged blocks; their memory
 * is guest memory, in the memory file) and its restore, which gives KVM the slots back. */
#include "mem_internal.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "ember/snapshot_file.h"

#define STATE_VERSION 1u

struct mem_state {
	uint32_t version; /* STATE_VERSION */
	uint32_t pad;
	uint64_t region_size, block_size, slot_size;
	uint64_t usable_size, plugged_size, requested_size;
};

int mem_save(void *dev, struct snap_writer *w)
{
	const struct vmem *m = dev;
	struct mem_state st = { .version = STATE_VERSION,
		.region_size = m->region_size,
		.block_size = m->block_size,
		.slot_size = m->slot_size,
		.usable_size = m->usable_size,
		.plugged_size = m->plugged_size,
		.requested_size = m->requested_size };
	int ret = snap_put(w, &st, sizeof(st));

	return ret ? ret : snap_put(w, m->plugged, (m->nr_blocks + 63) / 64 * 8);
}

int mem_restore(void *dev, struct snap_cursor *c, char *err, size_t errlen)
{
	struct vmem *m = dev;
	size_t bytes = (m->nr_blocks + 63) / 64 * 8;
	unsigned long saved[64];
	struct mem_state st;
	uint64_t plugged = 0;

	if (snap_get(c, &st, sizeof(st))) {
		snprintf(err, errlen, "memory hotplug: saved state is truncated");
		return -EINVAL;
	}
	if (st.version != STATE_VERSION) {
		snprintf(err, errlen, "memory hotplug: saved state version %u, this ember reads %u",
			st.version, STATE_VERSION);
		return -ENOTSUP;
	}
	if (st.region_size != m->region_size || st.block_size != m->block_size ||
		st.slot_size != m->slot_size || st.usable_size > m->region_size ||
		st.usable_size % m->slot_size || st.requested_size > m->region_size ||
		st.requested_size % m->block_size) {
		snprintf(err, errlen, "memory hotplug: saved sizes do not fit the configured area");
		return -EINVAL;
	}
	/* Plug block by block what the snapshot had plugged: the slots follow. The bitmap is
	 * read a piece at a time (no allocation for a guest-sized area). */
	for (size_t off = 0; off < bytes; off += sizeof(saved)) {
		size_t n = bytes - off < sizeof(saved) ? bytes - off : sizeof(saved);
		uint64_t first = off * 8;

		memset(saved, 0, sizeof(saved));
		if (snap_get(c, saved, n)) {
			snprintf(err, errlen, "memory hotplug: saved block map is truncated");
			return -EINVAL;
		}
		for (uint64_t b = first; b < first + n * 8 && b < m->nr_blocks; b++) {
			uint64_t k = b - first;
			if (!(saved[k / (8 * sizeof(long))] >> (k % (8 * sizeof(long))) & 1) ||
				mem_range_state(m, b, 1) == VIRTIO_MEM_STATE_PLUGGED)
				continue;
			if (mem_set_blocks(m, b, 1, true, err, errlen))
				return -EIO;
			plugged += m->block_size;
		}
	}
	if (plugged != st.plugged_size) {
		snprintf(err, errlen,
			"memory hotplug: saved block map does not match plugged_size");
		return -EINVAL;
	}
	m->usable_size = st.usable_size;
	m->requested_size = st.requested_size;
	return 0;
}
