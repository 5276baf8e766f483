/* Internals of the virtio-mmio transport shared by its files (lifecycle, registers,
 * persist). Not a module interface: other modules use include/ember/virtio.h. */
#ifndef EMBER_VIRTIO_MMIO_INTERNAL_H
#define EMBER_VIRTIO_MMIO_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <ev.h>

#include "ember/log_ratelimit.h"
#include "ember/virtio.h"

/* Register offsets (virtio 1.x, 4.2.2). */
#define REG_MAGIC 0x000
#define REG_VERSION 0x004
#define REG_DEVICE_ID 0x008
#define REG_VENDOR_ID 0x00c
#define REG_DEVICE_FEATURES 0x010
#define REG_DEVICE_FEATURES_SEL 0x014
#define REG_DRIVER_FEATURES 0x020
#define REG_DRIVER_FEATURES_SEL 0x024
#define REG_QUEUE_SEL 0x030
#define REG_QUEUE_NUM_MAX 0x034
#define REG_QUEUE_NUM 0x038
#define REG_QUEUE_READY 0x044
#define REG_QUEUE_NOTIFY 0x050
#define REG_INTERRUPT_STATUS 0x060
#define REG_INTERRUPT_ACK 0x064
#define REG_STATUS 0x070
#define REG_QUEUE_DESC_LOW 0x080
#define REG_QUEUE_DESC_HIGH 0x084
#define REG_QUEUE_DRIVER_LOW 0x090
#define REG_QUEUE_DRIVER_HIGH 0x094
#define REG_QUEUE_DEVICE_LOW 0x0a0
#define REG_QUEUE_DEVICE_HIGH 0x0a4
#define REG_SHM_SEL 0x0ac
#define REG_SHM_LEN_LOW 0x0b0
#define REG_SHM_BASE_HIGH 0x0bc
#define REG_CONFIG_GENERATION 0x0fc
#define REG_CONFIG 0x100

/* Device status bits (2.1). */
#define VIRTIO_STATUS_ACKNOWLEDGE 1u
#define VIRTIO_STATUS_DRIVER 2u
#define VIRTIO_STATUS_DRIVER_OK 4u
#define VIRTIO_STATUS_FEATURES_OK 8u
#define VIRTIO_STATUS_NEEDS_RESET 64u
#define VIRTIO_STATUS_FAILED 128u
#define VIRTIO_STATUS_ALL 0xcfu

/* Interrupt status bits (4.2.2). */
#define VIRTIO_ISR_QUEUE 1u
#define VIRTIO_ISR_CONFIG 2u

/* Work a vCPU thread leaves for the control thread. */
#define PENDING_RESET 1u    /* run the model's reset */
#define PENDING_ACTIVATE 2u /* DRIVER_OK was set: start the queues and the model */

/* One queue: the driver's registers, and the live view the model pops. */
struct vq {
	struct virtq q; /* q.ready only while the device is live */
	uint16_t num;   /* QueueNum */
	bool ready;     /* QueueReady */
	uint64_t desc, avail, used;
	int kick_fd;    /* eventfd: KVM_IOEVENTFD on QueueNotify, datamatch = index */
	bool ioeventfd; /* kick_fd is registered with KVM */
	ev_io kick;
	struct virtio_dev *vd;
};

struct virtio_dev {
	pthread_mutex_t lock; /* register file, queues, model ops */
	const struct virtio_dev_ops *ops;
	void *dev;
	struct ev_loop *loop;
	const struct guest_mem *mem;
	int vm_fd;
	uint64_t base;
	uint32_t gsi;
	char name[48]; /* "virtio-rng@0xd0001000": bus name, log prefix */
	int irq_fd;    /* eventfd: KVM_IRQFD on gsi */
	bool irqfd;
	ev_async wake; /* vCPU thread -> control thread: `pending` has work */

	/* Register file. */
	uint32_t status, isr, generation;
	uint32_t queue_sel, dev_features_sel, drv_features_sel;
	uint64_t offered, acked;
	bool acked_unknown; /* the driver wrote feature bits above 63 */
	struct vq queues[VIRTIO_MAX_QUEUES];

	/* Control-thread side. */
	bool activated;        /* the model was activated in this generation */
	unsigned pending;      /* PENDING_* */
	uint32_t kick_pending; /* queues kicked before activation */
	uint32_t yielded;      /* queues whose model stopped at its budget (virtio_queue_yield) */

	/* Counters, and the rate limit of needs-reset log lines (per device: one broken
	 * device does not hide another's). */
	uint64_t kicks, interrupts, needs_reset_count;
	struct log_ratelimit log_rl;
};

/* Bus handlers (mmio_regs.c): vCPU threads, lock held by the bus. */
void mmio_read(void *opaque, uint64_t offset, uint8_t *data, uint32_t len);
void mmio_write(void *opaque, uint64_t offset, const uint8_t *data, uint32_t len);

/* mmio.c, lock held. */
int mmio_queue_check(const struct virtio_dev *vd, unsigned i, char *err, size_t errlen);
void mmio_queues_start(struct virtio_dev *vd, bool keep_indices);
void mmio_apply_pending(struct virtio_dev *vd);

#endif
