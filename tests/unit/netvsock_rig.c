/* Unit-test rig for the net and vsock models: real rings over test memory, fake transport. */
#include "netvsock_rig.h"

#include <stdlib.h>
#include <string.h>

#include "ember/byteorder.h"
#include "guest_mem_fixture.h"

#define RING_BASE 0x10000u
#define RING_STRIDE 0x4000u
#define BUF_BASE 0x100000u

static uint64_t desc_gpa(unsigned q)
{
	return RING_BASE + (uint64_t)q * RING_STRIDE;
}

struct virtio_dev *nvr_new(unsigned nq)
{
	struct virtio_dev *r = calloc(1, sizeof(*r));

	if (!r || guest_mem_fixture_init(&r->mem, NVR_MEM)) {
		free(r);
		return NULL;
	}
	nvr_reset(r, nq);
	return r;
}

void nvr_reset(struct virtio_dev *r, unsigned nq)
{
	struct guest_mem mem = r->mem;

	memset(mem.regions[0].host, 0, BUF_BASE);
	memset(r, 0, sizeof(*r));
	r->mem = mem;
	r->ram = mem.regions[0].host;
	r->next_buf = BUF_BASE;
	for (unsigned i = 0; i < nq && i < NVR_QUEUES; i++) {
		struct virtq *q = &r->q[i];

		q->size = q->max_size = NVR_QSIZE;
		q->ready = true;
		q->desc_gpa = desc_gpa(i);
		q->avail_gpa = desc_gpa(i) + 16 * NVR_QSIZE;
		q->used_gpa = desc_gpa(i) + 0x2000;
		q->mem = &r->mem;
	}
}

void nvr_free(struct virtio_dev *r)
{
	if (!r)
		return;
	guest_mem_fixture_deinit(&r->mem);
	free(r);
}

void *nvr_ptr(struct virtio_dev *r, uint64_t gpa)
{
	return r->ram + gpa;
}

uint16_t nvr_chain(struct virtio_dev *r, unsigned q, const struct nvr_seg *segs, unsigned n,
	uint64_t *gpa_out)
{
	struct virtq *vq = &r->q[q];
	uint16_t head = r->next_desc[q];
	uint8_t *avail = r->ram + vq->avail_gpa;

	for (unsigned i = 0; i < n; i++) {
		uint16_t d = r->next_desc[q];
		uint8_t *desc = r->ram + vq->desc_gpa + 16u * d;
		uint16_t flags = (uint16_t)((segs[i].write ? 2 : 0) | (i + 1 < n ? 1 : 0));
		uint64_t gpa;

		if (r->next_buf + segs[i].len > NVR_MEM)
			r->next_buf = BUF_BASE;
		gpa = r->next_buf;
		r->next_buf += (segs[i].len + 15) & ~15u;
		if (segs[i].data)
			memcpy(r->ram + gpa, segs[i].data, segs[i].len);
		else
			memset(r->ram + gpa, 0, segs[i].len);
		if (gpa_out)
			gpa_out[i] = gpa;
		r->next_desc[q] = (uint16_t)((d + 1) % NVR_QSIZE);
		memcpy(desc, &gpa, 8);
		memcpy(desc + 8, &segs[i].len, 4);
		put_le16(desc + 12, flags);
		put_le16(desc + 14, r->next_desc[q]);
	}
	put_le16(avail + 4 + 2 * (r->avail_idx[q] % NVR_QSIZE), head);
	r->avail_idx[q]++;
	put_le16(avail + 2, r->avail_idx[q]);
	return head;
}

uint16_t nvr_tx(struct virtio_dev *r, unsigned q, const void *data, uint32_t len)
{
	struct nvr_seg s = { .data = data, .len = len };

	return nvr_chain(r, q, &s, 1, NULL);
}

uint16_t nvr_rx(struct virtio_dev *r, unsigned q, uint32_t len, uint64_t *gpa)
{
	struct nvr_seg s = { .len = len, .write = true };

	return nvr_chain(r, q, &s, 1, gpa);
}

int nvr_used(struct virtio_dev *r, unsigned q, uint32_t *id, uint32_t *len)
{
	const uint8_t *used = r->ram + r->q[q].used_gpa;
	uint16_t idx = (uint16_t)(used[2] | used[3] << 8);
	const uint8_t *el;

	if (idx == r->used_seen[q])
		return 0;
	el = used + 4 + 8 * (r->used_seen[q] % NVR_QSIZE);
	*id = get_le32(el);
	*len = get_le32(el + 4);
	r->used_seen[q]++;
	return 1;
}

/* ---- the fake transport ---- */

struct virtq *virtio_queue(struct virtio_dev *vd, unsigned q)
{
	return q < NVR_QUEUES ? &vd->q[q] : NULL;
}

void virtio_notify(struct virtio_dev *vd, unsigned q)
{
	if (q < NVR_QUEUES)
		vd->notifies[q]++;
}

void virtio_config_changed(struct virtio_dev *vd)
{
	(void)vd;
}

void *virtio_model(struct virtio_dev *vd, const struct virtio_dev_ops *ops)
{
	return vd && vd->ops == ops ? vd->dev : NULL;
}

void virtio_needs_reset(struct virtio_dev *vd, const char *why)
{
	vd->needs_reset++;
	strncpy(vd->last_reset, why, sizeof(vd->last_reset) - 1);
	for (unsigned i = 0; i < NVR_QUEUES; i++)
		vd->q[i].ready = false;
}

void virtio_queue_yield(struct virtio_dev *vd, unsigned q)
{
	if (q < NVR_QUEUES)
		vd->yields[q]++;
}

void virtio_lock(struct virtio_dev *vd)
{
	vd->locks++;
}

void virtio_unlock(struct virtio_dev *vd)
{
	vd->unlocks++;
}

struct virtio_dev *virtio_mmio_new(const struct virtio_env *env, uint64_t base, uint32_t gsi,
	const struct virtio_dev_ops *ops, void *dev, char *err, size_t errlen)
{
	(void)env;
	(void)base;
	(void)gsi;
	(void)err;
	(void)errlen;
	if (ops->destroy)
		ops->destroy(dev);
	return NULL;
}
