/* virtio-mem: the device object its files share (model, slots, persist). */
#ifndef EMBER_MEM_INTERNAL_H
#define EMBER_MEM_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ember/virtio_mem.h"

struct guest_mem;
struct snap_cursor;
struct snap_writer;
struct virtio_dev;

#define MEM_CONFIG_SIZE 56 /* struct virtio_mem_config (5.15.4) */

struct vmem {
	struct virtio_dev *vd;
	const struct guest_mem *mem;
	int vm_fd;      /* KVM slots; < 0 in tests: none are registered */
	bool log_dirty; /* its slots log dirty pages (track_dirty_pages) */
	uint8_t *host;  /* the hotplug area's host mapping (guest_mem's device region) */
	uint64_t addr;  /* guest-physical base of the area */
	uint64_t region_size, block_size, slot_size;
	bool active; /* DRIVER_OK seen, no reset since */
	uint64_t usable_size, plugged_size, requested_size;
	uint64_t nr_blocks, nr_slots;
	unsigned long *plugged; /* one bit per block */
	uint32_t *slot_plugged; /* plugged blocks per slot: a slot is in KVM while > 0 */
	uint64_t plugs, unplugs, unplug_alls, states, errors, nacks, bad;
};

/* Blocks [first, first + n) (in range: the caller checked): all plugged, all unplugged or
 * mixed (VIRTIO_MEM_STATE_*). */
int mem_range_state(const struct vmem *m, uint64_t first, uint64_t n);
/* Plug or unplug blocks [first, first + n), which are all in the other state: the bits,
 * plugged_size, and each slot's KVM registration as its count leaves or reaches 0;
 * unplugged memory is discarded (reads as zeros, its host pages freed). -errno with err
 * if KVM or the discard refused (the blocks keep whatever state they reached). */
__attribute__((warn_unused_result)) int mem_set_blocks(struct vmem *m, uint64_t first, uint64_t n,
	bool plug, char *err, size_t errlen);

/* OR the KVM dirty logs of the slots held now into `bitmap` (the area's, 4 KiB pages). */
__attribute__((warn_unused_result)) int mem_slots_dirty_log(struct vmem *m, unsigned long *bitmap,
	char *err, size_t errlen);

/* Persist pair (virtio_dev_ops save / restore). */
int mem_save(void *dev, struct snap_writer *w);
int mem_restore(void *dev, struct snap_cursor *c, char *err, size_t errlen);

#endif
