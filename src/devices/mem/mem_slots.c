/* virtio-mem: which blocks are plugged, and the KVM slots that follow them. */
#include "mem_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ember/balloon.h"
#include "ember/layout.h"
#include "ember/vm_fd.h"

#define BITS (8 * sizeof(unsigned long))

static bool is_plugged(const struct vmem *m, uint64_t b)
{
	return m->plugged[b / BITS] >> (b % BITS) & 1;
}

int mem_range_state(const struct vmem *m, uint64_t first, uint64_t n)
{
	uint64_t on = 0;

	for (uint64_t b = first; b < first + n; b++)
		on += is_plugged(m, b);
	return on == n    ? VIRTIO_MEM_STATE_PLUGGED
		: on == 0 ? VIRTIO_MEM_STATE_UNPLUGGED
			  : VIRTIO_MEM_STATE_MIXED;
}

/* Give slot `s` to KVM (plug) or take it away. */
static int slot_set(struct vmem *m, uint64_t s, bool on, char *err, size_t errlen)
{
	if (m->vm_fd < 0)
		return 0;
	return kvm_vm_set_slot(m->vm_fd, LAYOUT_SLOT_HOTPLUG + (unsigned)s,
		m->addr + s * m->slot_size, on ? m->slot_size : 0,
		on ? m->host + s * m->slot_size : NULL, on && m->log_dirty, err, errlen);
}

int mem_slots_dirty_log(struct vmem *m, unsigned long *bitmap, char *err, size_t errlen)
{
	/* A slot's pages are a whole number of longs of the area's bitmap (128 MiB and up). */
	uint64_t longs = m->slot_size / 4096 / BITS;
	unsigned long *log;
	int ret = 0;

	if (m->vm_fd < 0 || !m->log_dirty)
		return 0;
	log = malloc(longs * sizeof(*log));
	if (!log) {
		snprintf(err, errlen, "memory hotplug: out of memory for the dirty log");
		return -ENOMEM;
	}
	for (uint64_t s = 0; !ret && s < m->nr_slots; s++) {
		if (!m->slot_plugged[s])
			continue;
		ret = kvm_vm_dirty_log(m->vm_fd, LAYOUT_SLOT_HOTPLUG + (unsigned)s, log, err,
			errlen);
		for (uint64_t k = 0; !ret && k < longs; k++)
			bitmap[s * longs + k] |= log[k];
	}
	free(log);
	return ret;
}

int mem_set_blocks(struct vmem *m, uint64_t first, uint64_t n, bool plug, char *err, size_t errlen)
{
	uint64_t per_slot = m->slot_size / m->block_size;
	int ret = 0;

	for (uint64_t b = first; !ret && b < first + n; b++) {
		uint64_t s = b / per_slot;

		if (plug && m->slot_plugged[s] == 0)
			ret = slot_set(m, s, true, err, errlen);
		if (!plug)
			ret = balloon_memory_discard(m->mem, m->addr + b * m->block_size,
				m->block_size, NULL, err, errlen);
		if (ret)
			break;
		m->plugged[b / BITS] ^= 1UL << (b % BITS);
		m->slot_plugged[s] += plug ? 1 : -1;
		m->plugged_size += plug ? m->block_size : -m->block_size;
		if (!plug && m->slot_plugged[s] == 0)
			ret = slot_set(m, s, false, err, errlen);
	}
	return ret;
}
