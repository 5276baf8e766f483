/* virtio-mem (virtio 1.2, 5.15): memory the host offers and the guest plugs block by block,
 * Firecracker's /hotplug/memory. The configuration and its checks, the request codes, and
 * the run-time calls on a built device (virtio_mem_new: ember/virtio_devices.h).
 *
 * The hotplug area is guest_mem's device region (guest_mem_add_device) at
 * guest_mem_device_base; KVM sees it one slot_mib slot at a time (LAYOUT_SLOT_HOTPLUG
 * onwards), a slot only while one of its blocks is plugged. Control thread unless said. */
#ifndef EMBER_VIRTIO_MEM_H
#define EMBER_VIRTIO_MEM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct virtio_dev;

#define VIRTIO_ID_MEM 24

/* Firecracker's defaults, which are also its minimums. */
#define MEM_HOTPLUG_DEFAULT_BLOCK_MIB 2u
#define MEM_HOTPLUG_DEFAULT_SLOT_MIB 128u
/* ember's cap on the area (KVM slots: one per slot_mib; the plug bitmap per block). */
#define MEM_HOTPLUG_MAX_TOTAL_MIB (1u << 20)

/* The hotplug area as a definition describes it (PUT /hotplug/memory). */
struct mem_hotplug_config {
	bool enabled;
	uint32_t total_mib; /* multiple of slot_mib */
	uint32_t block_mib; /* power of two, >= 2: the guest's unit */
	uint32_t slot_mib;  /* multiple of block_mib, >= 128: the host's unit (a KVM slot) */
};

/* What GET /hotplug/memory shows. */
struct mem_hotplug_status {
	uint32_t total_mib, block_mib, slot_mib;
	uint32_t plugged_mib, requested_mib;
};

/* Firecracker's checks, in its order and words ("Block size must not be lower than 2
 * MiB", "Slot size must be a multiple of block size (4 MiB)", ...), plus ember's cap.
 * 0 or -EINVAL with err. Pure. */
__attribute__((warn_unused_result)) int mem_hotplug_config_check(const struct mem_hotplug_config *c,
	char *err, size_t errlen);

/* Request types and answers (5.15.6). */
#define VIRTIO_MEM_REQ_PLUG 0
#define VIRTIO_MEM_REQ_UNPLUG 1
#define VIRTIO_MEM_REQ_UNPLUG_ALL 2
#define VIRTIO_MEM_REQ_STATE 3
#define VIRTIO_MEM_RESP_ACK 0
#define VIRTIO_MEM_RESP_NACK 1
#define VIRTIO_MEM_RESP_BUSY 2
#define VIRTIO_MEM_RESP_ERROR 3
#define VIRTIO_MEM_STATE_PLUGGED 0
#define VIRTIO_MEM_STATE_UNPLUGGED 1
#define VIRTIO_MEM_STATE_MIXED 2
#define VIRTIO_MEM_F_UNPLUGGED_INACCESSIBLE 1

/* Ask the guest for `mib` MiB plugged (PATCH /hotplug/memory): a multiple of the block
 * size, at most the total; grows the usable region to hold it and raises a config-change
 * interrupt. -EINVAL (size), -EAGAIN (the driver has not started the device, as
 * Firecracker), -ENODEV (not a virtio-mem). Takes the transport lock. */
__attribute__((warn_unused_result)) int virtio_mem_set_requested(struct virtio_dev *vd,
	uint32_t mib);
/* OR into `bitmap` (a bit per 4 KiB page of the whole area, guest_mem_bitmap_bytes long)
 * the pages KVM logged as written in each slot it holds now (which resets those logs).
 * Slots it does not hold have only unplugged blocks, whose discards guest_mem_mark_dirty
 * recorded. -errno with err. Paused VM (snapshot); takes the transport lock. */
__attribute__((warn_unused_result)) int virtio_mem_dirty_log(struct virtio_dev *vd,
	unsigned long *bitmap, char *err, size_t errlen);
/* The device's sizes now. Takes the transport lock. */
void virtio_mem_status(struct virtio_dev *vd, struct mem_hotplug_status *out);

#endif
