/* Unit-test rig for the net and vsock models: guest memory, real split rings (queue.c),
 * a fake transport (virtio_queue, virtio_notify, ...) and the driver's side of the rings. */
#ifndef EMBER_TEST_NETVSOCK_RIG_H
#define EMBER_TEST_NETVSOCK_RIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ember/guest_mem.h"
#include "ember/virtio.h"

#define NVR_QUEUES 4
#define NVR_QSIZE 256
#define NVR_MEM (8u << 20)

struct nvr_seg {
	const void *data; /* readable segment: bytes to place (NULL: zeroes) */
	uint32_t len;
	bool write;
};

/* The transport the models see: `struct virtio_dev` is the rig's own here. */
struct virtio_dev {
	struct guest_mem mem;
	uint8_t *ram;
	struct virtq q[NVR_QUEUES];
	uint16_t avail_idx[NVR_QUEUES], used_seen[NVR_QUEUES], next_desc[NVR_QUEUES];
	uint64_t next_buf;
	unsigned notifies[NVR_QUEUES], yields[NVR_QUEUES];
	unsigned needs_reset, locks, unlocks;
	const struct virtio_dev_ops *ops; /* the model virtio_model finds, set by the test */
	void *dev;
	char last_reset[256];
};

/* Fresh memory and `nq` ready queues of NVR_QSIZE. Free with nvr_free. */
struct virtio_dev *nvr_new(unsigned nq);
void nvr_free(struct virtio_dev *r);
/* Back to fresh rings and counters (the buffers area is left as it is). */
void nvr_reset(struct virtio_dev *r, unsigned nq);
/* Publish one chain on queue q; returns its head. Buffers come from a wrapping bump
 * allocator; gpa_out (if not NULL) gets each segment's address in order. */
uint16_t nvr_chain(struct virtio_dev *r, unsigned q, const struct nvr_seg *segs, unsigned n,
	uint64_t *gpa_out);
uint16_t nvr_tx(struct virtio_dev *r, unsigned q, const void *data, uint32_t len);
uint16_t nvr_rx(struct virtio_dev *r, unsigned q, uint32_t len, uint64_t *gpa);
/* Next used entry of queue q: 1 with id and len, 0 if none. */
int nvr_used(struct virtio_dev *r, unsigned q, uint32_t *id, uint32_t *len);
void *nvr_ptr(struct virtio_dev *r, uint64_t gpa);

#endif
