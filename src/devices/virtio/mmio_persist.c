/* virtio-mmio persist pair: registers, features and queues in a fixed-width versioned struct. */
#include "mmio_internal.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "ember/snapshot_file.h"

#define STATE_VERSION 1u
#define FLAG_ACTIVATED 1u
#define FLAG_ACKED_UNKNOWN 2u

struct queue_state {
	uint64_t desc, avail, used;
	uint16_t num, ready, next_avail, next_used, signalled_used, pad[3];
};

struct transport_state {
	uint32_t version; /* STATE_VERSION */
	uint32_t device_id;
	uint32_t status, isr, generation, queue_sel;
	uint32_t dev_features_sel, drv_features_sel;
	uint64_t acked;
	uint32_t num_queues;
	uint32_t flags; /* FLAG_* */
	struct queue_state queues[VIRTIO_MAX_QUEUES];
};

_Static_assert(sizeof(struct queue_state) == 40, "queue_state has no padding");
_Static_assert(sizeof(struct transport_state) == 48 + 40 * VIRTIO_MAX_QUEUES,
	"transport_state has no padding");

int virtio_save(struct virtio_dev *vd, struct snap_writer *w)
{
	struct transport_state st;
	int ret;

	memset(&st, 0, sizeof(st));
	pthread_mutex_lock(&vd->lock);
	mmio_apply_pending(vd); /* save a settled device, not one between two steps */
	st.version = STATE_VERSION;
	st.device_id = vd->ops->device_id;
	st.status = vd->status;
	st.isr = vd->isr;
	st.generation = vd->generation;
	st.queue_sel = vd->queue_sel;
	st.dev_features_sel = vd->dev_features_sel;
	st.drv_features_sel = vd->drv_features_sel;
	st.acked = vd->acked;
	st.num_queues = vd->ops->num_queues;
	st.flags = (vd->activated ? FLAG_ACTIVATED : 0) |
		(vd->acked_unknown ? FLAG_ACKED_UNKNOWN : 0);
	for (unsigned i = 0; i < vd->ops->num_queues; i++) {
		const struct vq *v = &vd->queues[i];
		struct queue_state *qs = &st.queues[i];

		qs->desc = v->desc;
		qs->avail = v->avail;
		qs->used = v->used;
		qs->num = v->num;
		qs->ready = v->ready;
		qs->next_avail = v->q.next_avail;
		qs->next_used = v->q.next_used;
		qs->signalled_used = v->q.signalled_used;
	}
	ret = snap_put(w, &st, sizeof(st));
	if (!ret && vd->ops->save)
		ret = vd->ops->save(vd->dev, w);
	pthread_mutex_unlock(&vd->lock);
	return ret;
}

/* Everything in the saved state that this device could not take, before anything is set. */
static int check_state(const struct virtio_dev *vd, const struct transport_state *st, char *err,
	size_t errlen)
{
	char why[160];

	if (st->version != STATE_VERSION) {
		snprintf(err, errlen, "%s: device state version %u, this ember reads %u", vd->name,
			st->version, STATE_VERSION);
		return -ENOTSUP;
	}
	if (st->device_id != vd->ops->device_id || st->num_queues != vd->ops->num_queues) {
		snprintf(err, errlen,
			"%s: saved state is of device id %u with %u queues, not %u "
			"with %u",
			vd->name, st->device_id, st->num_queues, vd->ops->device_id,
			vd->ops->num_queues);
		return -EINVAL;
	}
	if ((st->status & ~VIRTIO_STATUS_ALL) ||
		(st->isr & ~(VIRTIO_ISR_QUEUE | VIRTIO_ISR_CONFIG)) ||
		(st->flags & ~(FLAG_ACTIVATED | FLAG_ACKED_UNKNOWN))) {
		snprintf(err, errlen,
			"%s: saved status 0x%x, interrupt status 0x%x or flags 0x%x "
			"are not valid",
			vd->name, st->status, st->isr, st->flags);
		return -EINVAL;
	}
	if (st->acked & ~vd->offered) {
		snprintf(err, errlen,
			"%s: the driver had accepted features 0x%llx that this device "
			"does not offer",
			vd->name, (unsigned long long)(st->acked & ~vd->offered));
		return -EINVAL;
	}
	for (unsigned i = 0; i < st->num_queues; i++) {
		const struct queue_state *qs = &st->queues[i];
		struct virtq q = { .size = qs->num,
			.max_size = vd->ops->queue_max_size,
			.desc_gpa = qs->desc,
			.avail_gpa = qs->avail,
			.used_gpa = qs->used,
			.mem = vd->mem };

		if (qs->ready > 1 || (qs->ready && virtq_validate(&q, why, sizeof(why)))) {
			snprintf(err, errlen, "%s: saved queue %u: %s", vd->name, i,
				qs->ready > 1 ? "bad ready flag" : why);
			return -EINVAL;
		}
	}
	return 0;
}

static void load_state(struct virtio_dev *vd, const struct transport_state *st)
{
	vd->status = st->status;
	vd->isr = st->isr;
	vd->generation = st->generation;
	vd->queue_sel = st->queue_sel;
	vd->dev_features_sel = st->dev_features_sel;
	vd->drv_features_sel = st->drv_features_sel;
	vd->acked = st->acked;
	vd->acked_unknown = st->flags & FLAG_ACKED_UNKNOWN;
	vd->activated = false;
	vd->pending = 0;
	vd->kick_pending = 0;
	vd->yielded = 0;
	for (unsigned i = 0; i < vd->ops->num_queues; i++) {
		const struct queue_state *qs = &st->queues[i];
		struct vq *v = &vd->queues[i];

		v->desc = qs->desc;
		v->avail = qs->avail;
		v->used = qs->used;
		v->num = qs->num;
		v->ready = qs->ready;
		memset(&v->q, 0, sizeof(v->q));
		v->q.next_avail = qs->next_avail;
		v->q.next_used = qs->next_used;
		v->q.signalled_used = qs->signalled_used;
	}
}

static void signal_fd(int fd)
{
	uint64_t one = 1;

	if (write(fd, &one, sizeof(one)) < 0)
		return; /* EAGAIN: already signalled */
}

int virtio_restore(struct virtio_dev *vd, struct snap_cursor *c, char *err, size_t errlen)
{
	struct transport_state st;
	int ret;

	if (snap_get(c, &st, sizeof(st))) {
		snprintf(err, errlen, "%s: device state is truncated", vd->name);
		return -EINVAL;
	}
	ret = check_state(vd, &st, err, errlen);
	if (ret)
		return ret;
	pthread_mutex_lock(&vd->lock);
	load_state(vd, &st);
	err[0] = '\0';
	ret = vd->ops->restore ? vd->ops->restore(vd->dev, c, err, errlen) : 0;
	if (ret) {
		if (!err[0]) /* a model that gave no reason still gets its device named */
			snprintf(err, errlen, "%s: device model state refused: %s", vd->name,
				strerror(-ret));
		goto out_unlock;
	}
	if ((st.flags & FLAG_ACTIVATED) &&
		(vd->status & (VIRTIO_STATUS_DRIVER_OK | VIRTIO_STATUS_NEEDS_RESET)) ==
			VIRTIO_STATUS_DRIVER_OK) {
		mmio_queues_start(vd, true);
		if (vd->ops->activate && vd->ops->activate(vd->dev, vd->acked))
			virtio_needs_reset(vd, "the device refused to start after restore");
		else
			vd->activated = true;
	}
	/* A kick or an interrupt may have been in flight when the snapshot was taken: the
	 * queues are looked at once more, and a pending interrupt is signalled again. */
	for (unsigned i = 0; i < vd->ops->num_queues; i++)
		if (vd->queues[i].q.ready)
			signal_fd(vd->queues[i].kick_fd);
	if (vd->isr)
		signal_fd(vd->irq_fd);
out_unlock:
	pthread_mutex_unlock(&vd->lock);
	return ret;
}
