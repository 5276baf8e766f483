/* virtio-mmio transport: what the models and the register file call to signal the
 * driver (interrupts, NEEDS_RESET, config changes) and to reach their queues; below both
 * the lifecycle (mmio.c) and the registers (mmio_regs.c). */
#include "ember/virtio.h"

#include <pthread.h>
#include <stdio.h>
#include <unistd.h>

#include <ev.h>

#include "ember/log.h"
#include "mmio_internal.h"

/* ---- interrupts and NEEDS_RESET (transport lock held) ---- */

static void raise_irq(struct virtio_dev *vd, uint32_t why)
{
	uint64_t one = 1;

	vd->isr |= why;
	vd->interrupts++;
	if (write(vd->irq_fd, &one, sizeof(one)) < 0)
		return; /* EAGAIN: the counter is already pending in KVM */
}

/* Stop the model's view of every queue: pops find nothing, pushes fail. */
static void queues_stop(struct virtio_dev *vd)
{
	for (unsigned i = 0; i < vd->ops->num_queues; i++)
		vd->queues[i].q.ready = false;
}

void virtio_needs_reset(struct virtio_dev *vd, const char *why)
{
	vd->needs_reset_count++;
	log_ratelimited_at(&vd->log_rl, LOG_WARN, __FILE__, __LINE__, "%s: device needs reset: %s",
		vd->name, why);
	if (vd->status & VIRTIO_STATUS_NEEDS_RESET)
		return;
	vd->status |= VIRTIO_STATUS_NEEDS_RESET;
	queues_stop(vd);
	/* 2.1.2: with DRIVER_OK set, the driver hears of it as a config change. */
	if (vd->status & VIRTIO_STATUS_DRIVER_OK)
		raise_irq(vd, VIRTIO_ISR_CONFIG);
}

void virtio_notify(struct virtio_dev *vd, unsigned q)
{
	if (q < vd->ops->num_queues && virtq_needs_notify(&vd->queues[q].q))
		raise_irq(vd, VIRTIO_ISR_QUEUE);
}

void virtio_config_changed(struct virtio_dev *vd)
{
	vd->generation++;
	if (vd->status & VIRTIO_STATUS_DRIVER_OK)
		raise_irq(vd, VIRTIO_ISR_CONFIG);
}

struct virtq *virtio_queue(struct virtio_dev *vd, unsigned q)
{
	return q < vd->ops->num_queues ? &vd->queues[q].q : NULL;
}

void virtio_queue_yield(struct virtio_dev *vd, unsigned q)
{
	if (q >= vd->ops->num_queues)
		return;
	vd->yielded |= 1u << q;
	/* Through the wake-up watcher, not an ev_idle: idle watchers wait until nothing else
	 * is pending, which a busy tap or a kicking guest could put off for ever. */
	if (vd->loop)
		ev_async_send(vd->loop, &vd->wake);
}

void virtio_lock(struct virtio_dev *vd)
{
	pthread_mutex_lock(&vd->lock);
}

void virtio_unlock(struct virtio_dev *vd)
{
	pthread_mutex_unlock(&vd->lock);
}

/* The queue as the driver set it up, checked; for QueueReady, DRIVER_OK and restore. */
int mmio_queue_check(const struct virtio_dev *vd, unsigned i, char *err, size_t errlen)
{
	const struct vq *v = &vd->queues[i];
	struct virtq q = { .size = v->num,
		.max_size = vd->ops->queue_max_size,
		.desc_gpa = v->desc,
		.avail_gpa = v->avail,
		.used_gpa = v->used,
		.mem = vd->mem };
	char why[160];
	int ret = virtq_validate(&q, why, sizeof(why));

	if (ret)
		snprintf(err, errlen, "queue %u: %s", i, why);
	return ret;
}
