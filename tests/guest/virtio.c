/* ember test guest, user part: polled virtio-mmio driver (probe, negotiate, queues, chains). */
#include "virtio.h"

#include "guest.h"

/* virtio-mmio registers (virtio 1.x, 4.2.2). */
#define R_MAGIC 0x000
#define R_VERSION 0x004
#define R_DEVICE_ID 0x008
#define R_DEVICE_FEATURES 0x010
#define R_DEVICE_FEATURES_SEL 0x014
#define R_DRIVER_FEATURES 0x020
#define R_DRIVER_FEATURES_SEL 0x024
#define R_QUEUE_SEL 0x030
#define R_QUEUE_NUM_MAX 0x034
#define R_QUEUE_NUM 0x038
#define R_QUEUE_READY 0x044
#define R_QUEUE_NOTIFY 0x050
#define R_STATUS 0x070
#define R_QUEUE_DESC 0x080 /* low, high at +4 */
#define R_QUEUE_DRIVER 0x090
#define R_QUEUE_DEVICE 0x0a0
#define MAGIC 0x74726976u /* "virt" */

/* A queue's page: descriptors, then the avail ring, then the used ring (4-byte aligned). */
#define RING_PAGE 4096u
#define AVAIL_OFF (16u * VQ_MAX)
#define USED_OFF (AVAIL_OFF + 512u)
#define USED_NO_NOTIFY 1u
/* ~10 s at 3 GHz: only reached when a device never answers. */
#define TIMEOUT_CYCLES (1ull << 35)
#define STATUS_POLL_MASK 0xffffu /* look at the status register every 64 Ki polls */

static uint8_t rings[VIRTIO_WINDOWS][VDEV_QUEUES][RING_PAGE] __attribute__((aligned(4096)));

static void barrier(void)
{
	__asm__ volatile("" ::: "memory");
}

static void mfence(void)
{
	__asm__ volatile("mfence" ::: "memory");
}

static volatile uint32_t *reg(uint64_t base, unsigned off)
{
	return (volatile uint32_t *)(base + off);
}

uint32_t vdev_read(const struct vdev *d, unsigned off)
{
	return *reg(d->base, off);
}

void vdev_write(const struct vdev *d, unsigned off, uint32_t v)
{
	*reg(d->base, off) = v;
}

uint32_t vdev_probe(unsigned n)
{
	uint64_t base = LAYOUT_VIRTIO_MMIO_BASE + n * LAYOUT_VIRTIO_MMIO_SIZE;

	if (n >= VIRTIO_WINDOWS || *reg(base, R_MAGIC) != MAGIC || *reg(base, R_VERSION) != 2)
		return 0;
	return *reg(base, R_DEVICE_ID);
}

const char *virtio_id_name(uint32_t id)
{
	switch (id) {
	case 1:
		return "net";
	case 2:
		return "block";
	case 3:
		return "console";
	case 4:
		return "rng";
	case 5:
		return "balloon";
	case 19:
		return "vsock";
	case 27:
		return "pmem";
	default:
		return 0;
	}
}

uint32_t vdev_status(const struct vdev *d)
{
	return vdev_read(d, R_STATUS);
}

void vdev_reset(struct vdev *d)
{
	vdev_write(d, R_STATUS, 0);
	for (unsigned i = 0; i < 1000 && vdev_read(d, R_STATUS) != 0; i++)
		;
	for (unsigned q = 0; q < VDEV_QUEUES; q++)
		d->vq[q].size = 0;
}

int vdev_init(struct vdev *d, unsigned n, uint64_t want)
{
	uint32_t s;

	d->index = n;
	d->base = LAYOUT_VIRTIO_MMIO_BASE + n * LAYOUT_VIRTIO_MMIO_SIZE;
	d->device_id = vdev_probe(n);
	if (!d->device_id)
		return -1;
	vdev_reset(d);
	vdev_write(d, R_STATUS, VSTAT_ACK);
	vdev_write(d, R_STATUS, VSTAT_ACK | VSTAT_DRIVER);
	vdev_write(d, R_DEVICE_FEATURES_SEL, 0);
	d->offered = vdev_read(d, R_DEVICE_FEATURES);
	vdev_write(d, R_DEVICE_FEATURES_SEL, 1);
	d->offered |= (uint64_t)vdev_read(d, R_DEVICE_FEATURES) << 32;
	if (!(d->offered & (1ull << VIRTIO_F_VERSION_1)))
		return -1;
	d->features = (1ull << VIRTIO_F_VERSION_1) | (want & d->offered);
	vdev_write(d, R_DRIVER_FEATURES_SEL, 0);
	vdev_write(d, R_DRIVER_FEATURES, (uint32_t)d->features);
	vdev_write(d, R_DRIVER_FEATURES_SEL, 1);
	vdev_write(d, R_DRIVER_FEATURES, (uint32_t)(d->features >> 32));
	vdev_write(d, R_STATUS, VSTAT_ACK | VSTAT_DRIVER | VSTAT_FEATURES_OK);
	s = vdev_status(d);
	return (s & VSTAT_FEATURES_OK) && !(s & VSTAT_NEEDS_RESET) ? 0 : -1;
}

static void write64(const struct vdev *d, unsigned off, uint64_t v)
{
	vdev_write(d, off, (uint32_t)v);
	vdev_write(d, off + 4, (uint32_t)(v >> 32));
}

int vdev_queue(struct vdev *d, unsigned q, unsigned size)
{
	struct vq *vq = &d->vq[q];
	uint8_t *page;
	uint32_t max;
	unsigned n = 1;

	if (q >= VDEV_QUEUES)
		return -1;
	vdev_write(d, R_QUEUE_SEL, q);
	max = vdev_read(d, R_QUEUE_NUM_MAX);
	if (max == 0 || vdev_read(d, R_QUEUE_READY))
		return -1;
	while (n * 2 <= size && n * 2 <= max && n * 2 <= VQ_MAX)
		n *= 2;
	page = rings[d->index][q];
	for (unsigned i = 0; i < RING_PAGE; i++)
		page[i] = 0;
	*vq = (struct vq){ .size = (uint16_t)n,
		.desc = (volatile struct vring_desc *)page,
		.avail = (volatile uint16_t *)(page + AVAIL_OFF),
		.used = (volatile uint16_t *)(page + USED_OFF) };
	vdev_write(d, R_QUEUE_NUM, n);
	write64(d, R_QUEUE_DESC, (uint64_t)page);
	write64(d, R_QUEUE_DRIVER, (uint64_t)page + AVAIL_OFF);
	write64(d, R_QUEUE_DEVICE, (uint64_t)page + USED_OFF);
	vdev_write(d, R_QUEUE_READY, 1);
	if (!vdev_read(d, R_QUEUE_READY) || (vdev_status(d) & VSTAT_NEEDS_RESET)) {
		vq->size = 0;
		return -1;
	}
	return 0;
}

void vdev_driver_ok(struct vdev *d)
{
	vdev_write(d, R_STATUS, VSTAT_ACK | VSTAT_DRIVER | VSTAT_FEATURES_OK | VSTAT_DRIVER_OK);
}

void vq_offer(struct vdev *d, unsigned q, uint16_t head)
{
	struct vq *vq = &d->vq[q];

	vq->avail[2 + vq->avail_idx % vq->size] = head;
	barrier(); /* x86 keeps stores in order; the compiler must too */
	vq->avail_idx++;
	vq->avail[1] = vq->avail_idx;
}

uint16_t vq_post(struct vdev *d, unsigned q, const struct vbuf *bufs, unsigned n)
{
	struct vq *vq = &d->vq[q];
	uint16_t head = vq->next_desc;

	for (unsigned i = 0; i < n; i++) {
		uint16_t at = (uint16_t)((head + i) % vq->size);
		volatile struct vring_desc *desc = &vq->desc[at];

		desc->addr = bufs[i].addr;
		desc->len = bufs[i].len;
		desc->flags = (uint16_t)((bufs[i].write ? VRING_WRITE : 0) |
			(i + 1 < n ? VRING_NEXT : 0));
		desc->next = (uint16_t)((at + 1) % vq->size);
	}
	vq->next_desc = (uint16_t)((head + n) % vq->size);
	vq_offer(d, q, head);
	return head;
}

void vq_kick(struct vdev *d, unsigned q)
{
	struct vq *vq = &d->vq[q];
	uint16_t old = vq->kicked;

	vq->kicked = vq->avail_idx;
	mfence(); /* avail idx visible before we read what the device asked for (2.7.13) */
	if (d->features & (1ull << VIRTIO_F_EVENT_IDX)) {
		uint16_t event = vq->used[2 + 4 * vq->size];
		uint16_t now = vq->avail_idx;

		/* vring_need_event: kick if the device's avail_event lies in [old, now). */
		if ((uint16_t)(now - event - 1) >= (uint16_t)(now - old))
			return;
	} else if (vq->used[0] & USED_NO_NOTIFY) {
		return;
	}
	vq_notify(d, q);
}

void vq_notify(struct vdev *d, unsigned q)
{
	vdev_write(d, R_QUEUE_NOTIFY, q);
}

int vq_take(struct vdev *d, unsigned q, uint32_t *id, uint32_t *len)
{
	struct vq *vq = &d->vq[q];
	volatile uint32_t *elem;

	if (vq->used[1] == vq->last_used)
		return -1;
	barrier(); /* x86 does not reorder loads: the element is read after the index */
	elem = (volatile uint32_t *)(vq->used + 2 + 4 * (vq->last_used % vq->size));
	*id = elem[0];
	*len = elem[1];
	vq->last_used++;
	if (d->features & (1ull << VIRTIO_F_EVENT_IDX))
		vq->avail[2 + vq->size] = vq->last_used; /* used_event (we poll, but say it) */
	return 0;
}

int vq_wait(struct vdev *d, unsigned q, uint32_t *id, uint32_t *len)
{
	uint64_t t0 = rdtsc();

	for (uint64_t i = 1; vq_take(d, q, id, len); i++) {
		if (!(i & STATUS_POLL_MASK) && (vdev_status(d) & VSTAT_NEEDS_RESET))
			return -2;
		if (rdtsc() - t0 > TIMEOUT_CYCLES)
			return (vdev_status(d) & VSTAT_NEEDS_RESET) ? -2 : -1;
		wait_turn();
	}
	return 0;
}
