/* ember test guest, user part: a small polled virtio-mmio driver (virtio 1.x, split queues).
 *
 * No interrupts (the guest runs with IF=0): the driver kicks through QueueNotify and polls
 * the used ring. Rings live in the image's bss, one 4 KiB page per (window, queue), so a
 * device keeps its own rings however many devices the guest drives. One outstanding chain
 * per queue is the normal use; vq_post hands out descriptors round-robin. */
#ifndef GUEST_VIRTIO_H
#define GUEST_VIRTIO_H

#include <stdint.h>

#include "ember/layout.h"

#define VIRTIO_WINDOWS 18 /* windows probed: LAYOUT_VIRTIO_MMIO_BASE + n * SIZE */
#define VDEV_QUEUES 3     /* queues a device may use here */
#define VQ_MAX 128        /* largest queue the driver sets up (fits one 4 KiB page) */

/* Feature bits (virtio 1.x, 6). */
#define VIRTIO_F_INDIRECT_DESC 28
#define VIRTIO_F_EVENT_IDX 29
#define VIRTIO_F_VERSION_1 32

/* Device status bits (2.1). */
#define VSTAT_ACK 1u
#define VSTAT_DRIVER 2u
#define VSTAT_DRIVER_OK 4u
#define VSTAT_FEATURES_OK 8u
#define VSTAT_NEEDS_RESET 64u
#define VSTAT_FAILED 128u

/* Descriptor flags (2.7.5). */
#define VRING_NEXT 1u
#define VRING_WRITE 2u
#define VRING_INDIRECT 4u

struct vring_desc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags;
	uint16_t next;
};

struct vq {
	uint16_t size;      /* 0: not set up */
	uint16_t avail_idx; /* next avail idx the driver publishes */
	uint16_t last_used; /* used entries consumed */
	uint16_t next_desc; /* round-robin descriptor cursor */
	uint16_t kicked;    /* avail_idx at the last kick decision */
	volatile struct vring_desc *desc;
	volatile uint16_t *avail; /* flags, idx, ring[size], used_event */
	volatile uint16_t *used;  /* flags, idx, {u32 id, u32 len}[size], avail_event */
};

struct vdev {
	unsigned index; /* window */
	uint64_t base;
	uint32_t device_id;
	uint64_t offered, features;
	struct vq vq[VDEV_QUEUES];
};

/* A buffer of a chain: guest-physical (= virtual) address, length, device-writable. */
struct vbuf {
	uint64_t addr;
	uint32_t len;
	int write;
};

/* Window n: the device id there (0 if no virtio-mmio v2 device answers). */
uint32_t vdev_probe(unsigned n);
const char *virtio_id_name(uint32_t id); /* "rng", "block", ... or NULL */

/* Reset, ACKNOWLEDGE, DRIVER, accept VERSION_1 plus the offered bits of `want`,
 * FEATURES_OK (checked). 0, or -1 with status/feature trouble. Queues next, then
 * vdev_driver_ok. */
int vdev_init(struct vdev *d, unsigned n, uint64_t want);
/* Set up queue q with min(size, QueueNumMax, VQ_MAX) entries; 0, or -1 (no such queue, or
 * the device refused it: NEEDS_RESET). */
int vdev_queue(struct vdev *d, unsigned q, unsigned size);
void vdev_driver_ok(struct vdev *d);
uint32_t vdev_status(const struct vdev *d);
void vdev_reset(struct vdev *d);
uint32_t vdev_read(const struct vdev *d, unsigned off);
void vdev_write(const struct vdev *d, unsigned off, uint32_t v);

/* Write a chain of n buffers into free descriptors and publish it (no kick). Returns the
 * head descriptor. */
uint16_t vq_post(struct vdev *d, unsigned q, const struct vbuf *bufs, unsigned n);
/* Publish an already written chain starting at `head`. */
void vq_offer(struct vdev *d, unsigned q, uint16_t head);
/* Notify the device unless it asked not to be (avail_event / NO_NOTIFY). */
void vq_kick(struct vdev *d, unsigned q);
/* Notify the device whatever it asked for (a guest that kicks in a loop). */
void vq_notify(struct vdev *d, unsigned q);
/* The next used entry if there is one already: 0 with id/len, else -1. */
int vq_take(struct vdev *d, unsigned q, uint32_t *id, uint32_t *len);
/* Poll the used ring for the next entry (TSC timeout of some seconds): 0 with id/len,
 * -1 on timeout, -2 if the device set NEEDS_RESET meanwhile. */
int vq_wait(struct vdev *d, unsigned q, uint32_t *id, uint32_t *len);

/* Guest commands (cmd_virtio.c). */
struct args;
void cmd_virtio(const struct args *a);      /* virtio list */
void cmd_rng(const struct args *a);         /* rng <bytes> */
void cmd_rng_flood(const struct args *a);   /* rng-flood <chains> <bytes> */
void cmd_virtio_evil(const struct args *a); /* virtio-evil <kind> <window> */

#endif
