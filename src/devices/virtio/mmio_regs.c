/* virtio-mmio register file: the vCPU side of the transport (never blocks, never allocates). */
#include "mmio_internal.h"

#include <ev.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "ember/byteorder.h"
#include "ember/log_ratelimit.h"

#define MAGIC 0x74726976u /* "virt" */
#define VERSION 2u
#define VENDOR 0x52424d45u /* "EMBR" */

static struct vq *selected(struct virtio_dev *vd)
{
	return vd->queue_sel < vd->ops->num_queues ? &vd->queues[vd->queue_sel] : NULL;
}

static void wake_control(struct virtio_dev *vd, unsigned what)
{
	vd->pending |= what;
	if (vd->loop)
		ev_async_send(vd->loop, &vd->wake);
}

/* Status 0: back to the state after construction; the model's reset follows on the
 * control thread, before any new activation. */
static void reset(struct virtio_dev *vd)
{
	vd->status = 0;
	vd->isr = 0;
	vd->queue_sel = vd->dev_features_sel = vd->drv_features_sel = 0;
	vd->acked = 0;
	vd->acked_unknown = false;
	vd->activated = false;
	vd->kick_pending = 0;
	vd->yielded = 0; /* what the old queues held is no longer the driver's */
	for (unsigned i = 0; i < vd->ops->num_queues; i++) {
		struct vq *v = &vd->queues[i];

		v->num = 0;
		v->ready = false;
		v->desc = v->avail = v->used = 0;
		memset(&v->q, 0, sizeof(v->q));
	}
	vd->pending &= ~PENDING_ACTIVATE;
	wake_control(vd, PENDING_RESET);
}

static void features_ok(struct virtio_dev *vd)
{
	uint64_t extra = vd->acked & ~vd->offered;

	if (extra || vd->acked_unknown) {
		log_warn_ratelimited(
			"%s: driver accepted features 0x%llx%s that were not offered: FEATURES_OK "
			"refused",
			vd->name, (unsigned long long)extra,
			vd->acked_unknown ? " (and bits above 63)" : "");
		return;
	}
	if (!(vd->acked & (1ull << VIRTIO_F_VERSION_1))) {
		log_warn_ratelimited(
			"%s: driver did not accept VERSION_1 (legacy drivers are not supported): "
			"FEATURES_OK refused",
			vd->name);
		return;
	}
	vd->status |= VIRTIO_STATUS_FEATURES_OK;
}

static void driver_ok(struct virtio_dev *vd)
{
	char why[200];

	if (!(vd->status & VIRTIO_STATUS_FEATURES_OK)) {
		virtio_needs_reset(vd, "DRIVER_OK without FEATURES_OK");
		return;
	}
	for (unsigned i = 0; i < vd->ops->num_queues; i++) {
		if (vd->queues[i].ready && mmio_queue_check(vd, i, why, sizeof(why))) {
			virtio_needs_reset(vd, why);
			return;
		}
	}
	vd->status |= VIRTIO_STATUS_DRIVER_OK;
	wake_control(vd, PENDING_ACTIVATE);
}

static void write_status(struct virtio_dev *vd, uint32_t v)
{
	uint32_t old = vd->status & ~VIRTIO_STATUS_NEEDS_RESET;
	uint32_t set;

	if (v == 0) {
		reset(vd);
		return;
	}
	v &= VIRTIO_STATUS_ALL & ~VIRTIO_STATUS_NEEDS_RESET; /* NEEDS_RESET is the device's */
	if (old & ~v) {
		log_warn_ratelimited("%s: driver cleared status bits 0x%x without a reset: ignored",
			vd->name, old & ~v);
		return;
	}
	set = v & ~old;
	vd->status |= set &
		(VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_FAILED);
	if (vd->status & VIRTIO_STATUS_NEEDS_RESET)
		return; /* only a reset gets the device going again */
	if (set & VIRTIO_STATUS_FEATURES_OK)
		features_ok(vd); /* before DRIVER_OK if a driver sets both at once */
	if ((set & VIRTIO_STATUS_DRIVER_OK) && !(vd->status & VIRTIO_STATUS_FAILED))
		driver_ok(vd);
}

static void queue_ready(struct virtio_dev *vd, struct vq *v, uint32_t val)
{
	char why[200];

	if (!val) {
		v->ready = false;
		v->q.ready = false; /* the queue stops (4.2.2: the driver reads it back) */
		return;
	}
	if (v->ready)
		return;
	if (mmio_queue_check(vd, (unsigned)(v - vd->queues), why, sizeof(why))) {
		virtio_needs_reset(vd, why);
		return;
	}
	v->ready = true;
}

/* Queue address halves: only while the queue is not ready (4.2.2.2). */
static void set_half(uint64_t *addr, uint32_t v, bool high)
{
	*addr = high ? (*addr & 0xffffffffull) | ((uint64_t)v << 32) : (*addr & ~0xffffffffull) | v;
}

static void write_queue_reg(struct virtio_dev *vd, uint64_t off, uint32_t v)
{
	struct vq *q = selected(vd);

	if (!q)
		return;
	if (off == REG_QUEUE_READY) {
		queue_ready(vd, q, v);
		return;
	}
	if (q->ready)
		return;
	switch (off) {
	case REG_QUEUE_NUM:
		q->num = v > 0xffff ? 0 : (uint16_t)v; /* refused when the queue turns ready */
		break;
	case REG_QUEUE_DESC_LOW:
	case REG_QUEUE_DESC_HIGH:
		set_half(&q->desc, v, off == REG_QUEUE_DESC_HIGH);
		break;
	case REG_QUEUE_DRIVER_LOW:
	case REG_QUEUE_DRIVER_HIGH:
		set_half(&q->avail, v, off == REG_QUEUE_DRIVER_HIGH);
		break;
	case REG_QUEUE_DEVICE_LOW:
	case REG_QUEUE_DEVICE_HIGH:
		set_half(&q->used, v, off == REG_QUEUE_DEVICE_HIGH);
		break;
	}
}

static void notify(struct virtio_dev *vd, uint32_t v)
{
	uint64_t one = 1;

	/* Reaches us only when KVM's ioeventfd did not match (another width or value). */
	if (v < vd->ops->num_queues && write(vd->queues[v].kick_fd, &one, sizeof(one)) < 0)
		return; /* EAGAIN: a kick is already pending */
}

static void write_driver_features(struct virtio_dev *vd, uint32_t v)
{
	if (vd->status & (VIRTIO_STATUS_FEATURES_OK | VIRTIO_STATUS_NEEDS_RESET))
		return; /* frozen once accepted */
	if (vd->drv_features_sel == 0)
		vd->acked = (vd->acked & ~0xffffffffull) | v;
	else if (vd->drv_features_sel == 1)
		vd->acked = (vd->acked & 0xffffffffull) | ((uint64_t)v << 32);
	else if (v)
		vd->acked_unknown = true;
}

static void write_reg(struct virtio_dev *vd, uint64_t off, uint32_t v)
{
	switch (off) {
	case REG_DEVICE_FEATURES_SEL:
		vd->dev_features_sel = v;
		break;
	case REG_DRIVER_FEATURES:
		write_driver_features(vd, v);
		break;
	case REG_DRIVER_FEATURES_SEL:
		vd->drv_features_sel = v;
		break;
	case REG_QUEUE_SEL:
		vd->queue_sel = v;
		break;
	case REG_QUEUE_NOTIFY:
		notify(vd, v);
		break;
	case REG_INTERRUPT_ACK:
		vd->isr &= ~v;
		break;
	case REG_STATUS:
		write_status(vd, v);
		break;
	case REG_SHM_SEL:
		break; /* no shared memory regions: SHMLen/SHMBase read all ones */
	default:
		write_queue_reg(vd, off, v);
		break;
	}
}

static uint32_t read_reg(struct virtio_dev *vd, uint64_t off)
{
	struct vq *q = selected(vd);

	switch (off) {
	case REG_MAGIC:
		return MAGIC;
	case REG_VERSION:
		return VERSION;
	case REG_DEVICE_ID:
		return vd->ops->device_id;
	case REG_VENDOR_ID:
		return VENDOR;
	case REG_DEVICE_FEATURES:
		return vd->dev_features_sel < 2
			? (uint32_t)(vd->offered >> (32 * vd->dev_features_sel))
			: 0;
	case REG_QUEUE_NUM_MAX:
		return q ? vd->ops->queue_max_size : 0; /* 0: no such queue */
	case REG_QUEUE_READY:
		return q ? q->ready : 0;
	case REG_INTERRUPT_STATUS:
		return vd->isr;
	case REG_STATUS:
		return vd->status;
	case REG_CONFIG_GENERATION:
		return vd->generation;
	case REG_QUEUE_NUM:
		return q ? q->num : 0;
	case REG_QUEUE_DESC_LOW:
		return q ? (uint32_t)q->desc : 0;
	case REG_QUEUE_DESC_HIGH:
		return q ? (uint32_t)(q->desc >> 32) : 0;
	case REG_QUEUE_DRIVER_LOW:
		return q ? (uint32_t)q->avail : 0;
	case REG_QUEUE_DRIVER_HIGH:
		return q ? (uint32_t)(q->avail >> 32) : 0;
	case REG_QUEUE_DEVICE_LOW:
		return q ? (uint32_t)q->used : 0;
	case REG_QUEUE_DEVICE_HIGH:
		return q ? (uint32_t)(q->used >> 32) : 0;
	default:
		if (off >= REG_SHM_LEN_LOW && off <= REG_SHM_BASE_HIGH)
			return 0xffffffffu; /* no shared memory region selected (4.2.2) */
		return 0;
	}
}

static bool config_range(const struct virtio_dev *vd, uint64_t off, uint32_t len)
{
	return off >= REG_CONFIG && len <= 8 && off - REG_CONFIG <= vd->ops->config_size &&
		len <= vd->ops->config_size - (off - REG_CONFIG);
}

void mmio_read(void *opaque, uint64_t off, uint8_t *data, uint32_t len)
{
	struct virtio_dev *vd = opaque;

	memset(data, 0, len);
	if (off >= REG_CONFIG) {
		if (config_range(vd, off, len) && vd->ops->config_read)
			vd->ops->config_read(vd->dev, (uint32_t)(off - REG_CONFIG), data, len);
		return;
	}
	/* 4.2.2.2: the driver uses 32-bit aligned accesses for the registers. */
	if (len == 4 && !(off & 3))
		put_le32(data, read_reg(vd, off));
}

void mmio_write(void *opaque, uint64_t off, const uint8_t *data, uint32_t len)
{
	struct virtio_dev *vd = opaque;

	if (off >= REG_CONFIG) {
		if (config_range(vd, off, len) && vd->ops->config_write &&
			!(vd->status & VIRTIO_STATUS_NEEDS_RESET))
			vd->ops->config_write(vd->dev, (uint32_t)(off - REG_CONFIG), data, len);
		return;
	}
	if (len == 4 && !(off & 3))
		write_reg(vd, off, get_le32(data));
}
