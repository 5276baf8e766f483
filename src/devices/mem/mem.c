/* virtio-mem (virtio 1.2, 5.15): the hotplug area's config space, the guest's PLUG,
 * UNPLUG, UNPLUG_ALL and STATE requests with the spec's checks, and the host's requested
 * size. The blocks and slots: mem_slots.c; the snapshot section: mem_persist.c. */
#include "ember/virtio_devices.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ember/byteorder.h"
#include "ember/guest_mem.h"
#include "ember/log_ratelimit.h"
#include "ember/virtio.h"
#include "mem_internal.h"

#define QUEUE_SIZE 128
#define REQ_SIZE 24  /* struct virtio_mem_req */
#define RESP_SIZE 10 /* struct virtio_mem_resp */

/* ---- requests ---- */

/* The blocks a PLUG, UNPLUG or STATE names, if the spec lets the device act on them:
 * aligned, at least one block, inside the usable region (5.15.6.1-3). */
static bool request_range(const struct vmem *m, uint64_t addr, uint16_t nb, uint64_t *first)
{
	uint64_t off = addr - m->addr;

	if (nb == 0 || addr < m->addr || off % m->block_size || off >= m->usable_size ||
		(uint64_t)nb > (m->usable_size - off) / m->block_size)
		return false;
	*first = off / m->block_size;
	return true;
}

/* One request: the answer's type (and state for STATE) in resp. */
static void handle(struct vmem *m, const uint8_t *req, uint8_t *resp)
{
	uint16_t type = get_le16(req), nb = get_le16(req + 16);
	uint64_t addr = get_le64(req + 8), first = 0;
	uint16_t answer = VIRTIO_MEM_RESP_ERROR;
	char err[160] = "";

	switch (type) {
	case VIRTIO_MEM_REQ_PLUG:
		m->plugs++;
		if (!request_range(m, addr, nb, &first) ||
			mem_range_state(m, first, nb) != VIRTIO_MEM_STATE_UNPLUGGED)
			break;
		if (m->plugged_size + nb * m->block_size > m->requested_size) {
			answer = VIRTIO_MEM_RESP_NACK;
			break;
		}
		answer = mem_set_blocks(m, first, nb, true, err, sizeof(err))
			? VIRTIO_MEM_RESP_ERROR
			: VIRTIO_MEM_RESP_ACK;
		break;
	case VIRTIO_MEM_REQ_UNPLUG:
		m->unplugs++;
		if (!request_range(m, addr, nb, &first) ||
			mem_range_state(m, first, nb) != VIRTIO_MEM_STATE_PLUGGED)
			break;
		answer = mem_set_blocks(m, first, nb, false, err, sizeof(err))
			? VIRTIO_MEM_RESP_ERROR
			: VIRTIO_MEM_RESP_ACK;
		break;
	case VIRTIO_MEM_REQ_UNPLUG_ALL:
		m->unplug_alls++;
		answer = VIRTIO_MEM_RESP_ACK;
		for (uint64_t b = 0; answer == VIRTIO_MEM_RESP_ACK && b < m->nr_blocks; b++)
			if (mem_range_state(m, b, 1) == VIRTIO_MEM_STATE_PLUGGED &&
				mem_set_blocks(m, b, 1, false, err, sizeof(err)))
				answer = VIRTIO_MEM_RESP_ERROR;
		/* Now the device may shrink the usable region (5.15.5.2): to what is asked. */
		if (answer == VIRTIO_MEM_RESP_ACK)
			m->usable_size = (m->requested_size + m->slot_size - 1) / m->slot_size *
				m->slot_size;
		break;
	case VIRTIO_MEM_REQ_STATE:
		m->states++;
		if (!request_range(m, addr, nb, &first))
			break;
		answer = VIRTIO_MEM_RESP_ACK;
		put_le16(resp + 8, (uint16_t)mem_range_state(m, first, nb));
		break;
	default:
		break;
	}
	/* The host failed, not the guest (KVM refused a slot, a discard failed): say so. */
	if (answer == VIRTIO_MEM_RESP_ERROR && err[0])
		log_warn_ratelimited("virtio-mem: %s", err);
	if (answer == VIRTIO_MEM_RESP_ERROR)
		m->errors++;
	if (answer == VIRTIO_MEM_RESP_NACK)
		m->nacks++;
	put_le16(resp, answer);
}

static void process(struct vmem *m)
{
	struct virtq *q = virtio_queue(m->vd, 0);
	struct virtq_elem e;
	char err[160];
	bool pushed = false;

	for (unsigned budget = VIRTIO_KICK_BUDGET;; budget--) {
		uint8_t req[REQ_SIZE], resp[RESP_SIZE] = { 0 };
		int ret;

		if (!budget) {
			virtio_queue_yield(m->vd, 0);
			break;
		}
		ret = virtq_pop(q, &e, err, sizeof(err));
		if (ret == -ENOENT)
			break;
		if (ret) {
			m->bad++;
			virtio_needs_reset(m->vd, err);
			break;
		}
		/* A chain without a whole request and room for the answer has nowhere to be
		 * told so (5.15.6): the driver broke the protocol. */
		if (e.read_len < REQ_SIZE || e.write_len < RESP_SIZE ||
			virtq_read(q, &e, 0, req, REQ_SIZE) != REQ_SIZE) {
			m->bad++;
			virtio_needs_reset(m->vd,
				"virtio-mem: request or response buffer too short");
			break;
		}
		handle(m, req, resp);
		if (virtq_write(q, &e, 0, resp, RESP_SIZE) != RESP_SIZE ||
			virtq_push(q, &e, RESP_SIZE))
			break;
		pushed = true;
	}
	if (pushed)
		virtio_notify(m->vd, 0);
}

/* ---- virtio_dev_ops ---- */

static uint64_t features(void *dev)
{
	(void)dev;
	return 1ULL << VIRTIO_MEM_F_UNPLUGGED_INACCESSIBLE;
}

static int activate(void *dev, uint64_t acked)
{
	(void)acked;
	((struct vmem *)dev)->active = true;
	return 0;
}

/* A reset leaves the blocks as they are (the driver asks UNPLUG_ALL when it starts). */
static void reset(void *dev)
{
	((struct vmem *)dev)->active = false;
}

static void queue_notify(void *dev, unsigned q)
{
	if (q == 0)
		process(dev);
}

static void config_read(void *dev, uint32_t offset, uint8_t *data, uint32_t len)
{
	const struct vmem *m = dev;
	uint8_t cfg[MEM_CONFIG_SIZE] = { 0 };

	put_le64(cfg, m->block_size);
	/* node_id (16) and padding stay 0 */
	put_le64(cfg + 16, m->addr);
	put_le64(cfg + 24, m->region_size);
	put_le64(cfg + 32, m->usable_size);
	put_le64(cfg + 40, m->plugged_size);
	put_le64(cfg + 48, m->requested_size);
	if (offset < MEM_CONFIG_SIZE && len <= MEM_CONFIG_SIZE - offset)
		memcpy(data, cfg + offset, len);
}

/* The whole config space is read-only for the driver. */
static void config_write(void *dev, uint32_t offset, const uint8_t *data, uint32_t len)
{
	(void)dev;
	(void)offset;
	(void)data;
	(void)len;
}

static void destroy(void *dev)
{
	struct vmem *m = dev;

	free(m->plugged);
	free(m->slot_plugged);
	free(m);
}

static void attach(void *dev, struct virtio_dev *vd)
{
	((struct vmem *)dev)->vd = vd;
}

static void stats(void *dev, void (*put)(void *ctx, const char *key, uint64_t value), void *ctx)
{
	const struct vmem *m = dev;

	put(ctx, "plugged_bytes", m->plugged_size);
	put(ctx, "requested_bytes", m->requested_size);
	put(ctx, "plug_requests", m->plugs);
	put(ctx, "unplug_requests", m->unplugs);
	put(ctx, "unplug_all_requests", m->unplug_alls);
	put(ctx, "state_requests", m->states);
	put(ctx, "error_answers", m->errors);
	put(ctx, "nack_answers", m->nacks);
	put(ctx, "bad_requests", m->bad);
}

static const struct virtio_dev_ops mem_ops = {
	.kind = "mem",
	.device_id = VIRTIO_ID_MEM,
	.num_queues = 1,
	.queue_max_size = QUEUE_SIZE,
	.config_size = MEM_CONFIG_SIZE,
	.features = features,
	.activate = activate,
	.reset = reset,
	.queue_notify = queue_notify,
	.config_read = config_read,
	.config_write = config_write,
	.save = mem_save,
	.restore = mem_restore,
	.destroy = destroy,
	.attach = attach,
	.stats = stats,
};

/* ---- public ---- */

struct virtio_dev *virtio_mem_new(const struct virtio_env *env, uint64_t base, uint32_t gsi,
	const struct mem_hotplug_config *cfg, char *err, size_t errlen)
{
	const struct guest_mem_region *area = guest_mem_device_region(env->mem);
	struct vmem *m = calloc(1, sizeof(*m));
	char why[160];

	if (!m) {
		snprintf(err, errlen, "memory hotplug: out of memory");
		return NULL;
	}
	if (mem_hotplug_config_check(cfg, why, sizeof(why))) {
		snprintf(err, errlen, "memory hotplug: %s", why);
		goto err_free;
	}
	m->mem = env->mem;
	m->vm_fd = env->vm_fd;
	m->log_dirty = env->log_dirty;
	m->region_size = (uint64_t)cfg->total_mib << 20;
	m->block_size = (uint64_t)cfg->block_mib << 20;
	m->slot_size = (uint64_t)cfg->slot_mib << 20;
	m->nr_blocks = m->region_size / m->block_size;
	m->nr_slots = m->region_size / m->slot_size;
	if (!area || area->size != m->region_size) {
		snprintf(err, errlen, "memory hotplug: guest memory has no %u MiB area",
			cfg->total_mib);
		goto err_free;
	}
	m->addr = area->gpa;
	m->host = area->host;
	m->plugged = calloc((m->nr_blocks + 63) / 64, 8);
	m->slot_plugged = calloc(m->nr_slots, sizeof(*m->slot_plugged));
	if (!m->plugged || !m->slot_plugged) {
		snprintf(err, errlen, "memory hotplug: out of memory");
		goto err_free;
	}
	return virtio_mmio_new(env, base, gsi, &mem_ops, m, err, errlen);
err_free:
	destroy(m);
	return NULL;
}

int virtio_mem_set_requested(struct virtio_dev *vd, uint32_t mib)
{
	struct vmem *m = virtio_model(vd, &mem_ops);
	uint64_t size = (uint64_t)mib << 20;

	if (!m)
		return -ENODEV;
	if (size % m->block_size || size > m->region_size)
		return -EINVAL;
	virtio_lock(vd);
	if (!m->active) {
		virtio_unlock(vd);
		return -EAGAIN;
	}
	m->requested_size = size;
	/* Room for the guest to plug what is asked (it shrinks only on UNPLUG_ALL). */
	if (m->usable_size < size)
		m->usable_size = (size + m->slot_size - 1) / m->slot_size * m->slot_size;
	virtio_config_changed(vd);
	virtio_unlock(vd);
	return 0;
}

int virtio_mem_dirty_log(struct virtio_dev *vd, unsigned long *bitmap, char *err, size_t errlen)
{
	struct vmem *m = virtio_model(vd, &mem_ops);
	int ret;

	if (!m)
		return -ENODEV;
	virtio_lock(vd);
	ret = mem_slots_dirty_log(m, bitmap, err, errlen);
	virtio_unlock(vd);
	return ret;
}

void virtio_mem_status(struct virtio_dev *vd, struct mem_hotplug_status *out)
{
	struct vmem *m = virtio_model(vd, &mem_ops);

	memset(out, 0, sizeof(*out));
	if (!m)
		return;
	virtio_lock(vd);
	out->total_mib = (uint32_t)(m->region_size >> 20);
	out->block_mib = (uint32_t)(m->block_size >> 20);
	out->slot_mib = (uint32_t)(m->slot_size >> 20);
	out->plugged_mib = (uint32_t)(m->plugged_size >> 20);
	out->requested_mib = (uint32_t)(m->requested_size >> 20);
	virtio_unlock(vd);
}
