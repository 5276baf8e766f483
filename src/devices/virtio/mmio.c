/* virtio-mmio transport, version 2 (virtio 1.x, 4.2.2): registers, negotiation, kicks, irqs. */
#include "ember/virtio.h"

#include <errno.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <ev.h>
#include <linux/kvm.h>

#include "ember/bus.h"
#include "ember/layout.h"
#include "ember/log.h"
#include "mmio_internal.h"

#define CONFIG_SPACE_MAX (LAYOUT_VIRTIO_MMIO_SIZE - REG_CONFIG)

static struct vq *vq_of(ev_io *w)
{
	return (struct vq *)((char *)w - offsetof(struct vq, kick));
}

/* ---- control thread: activation, model reset, kicks ---- */

/* Give the model live queues: the registers become a struct virtq it may pop. */
void mmio_queues_start(struct virtio_dev *vd, bool keep_indices)
{
	for (unsigned i = 0; i < vd->ops->num_queues; i++) {
		struct vq *v = &vd->queues[i];
		struct virtq *q = &v->q;

		if (!keep_indices)
			q->next_avail = q->next_used = q->signalled_used = 0;
		q->size = v->num;
		q->max_size = vd->ops->queue_max_size;
		q->desc_gpa = v->desc;
		q->avail_gpa = v->avail;
		q->used_gpa = v->used;
		q->event_idx = vd->acked & (1ull << VIRTIO_F_RING_EVENT_IDX);
		q->indirect = vd->acked & (1ull << VIRTIO_F_RING_INDIRECT_DESC);
		q->mem = vd->mem;
		q->ready = v->ready;
	}
}

/* Run what vCPU threads asked for, in order: the model's reset, then its activation. */
void mmio_apply_pending(struct virtio_dev *vd)
{
	unsigned pending = vd->pending;
	uint32_t kicks;

	vd->pending = 0;
	if ((pending & PENDING_RESET) && vd->ops->reset)
		vd->ops->reset(vd->dev);
	if (!(pending & PENDING_ACTIVATE) || vd->activated ||
		(vd->status & (VIRTIO_STATUS_DRIVER_OK | VIRTIO_STATUS_NEEDS_RESET)) !=
			VIRTIO_STATUS_DRIVER_OK)
		return;
	mmio_queues_start(vd, false);
	if (vd->ops->activate && vd->ops->activate(vd->dev, vd->acked)) {
		virtio_needs_reset(vd, "the device refused to start");
		return;
	}
	vd->activated = true;
	/* Kicks that came before activation were held back: deliver them now. */
	kicks = vd->kick_pending;
	vd->kick_pending = 0;
	for (unsigned i = 0; i < vd->ops->num_queues; i++)
		if ((kicks & (1u << i)) && vd->queues[i].q.ready && vd->ops->queue_notify)
			vd->ops->queue_notify(vd->dev, i);
}

/* Serve again the queues whose model stopped at its budget; one that stops again yields
 * again, to the next loop iteration. */
static void resume_yielded(struct virtio_dev *vd)
{
	uint32_t again = vd->yielded;

	vd->yielded = 0;
	for (unsigned i = 0; i < vd->ops->num_queues; i++)
		if ((again & (1u << i)) && vd->activated && vd->queues[i].q.ready &&
			vd->ops->queue_notify)
			vd->ops->queue_notify(vd->dev, i);
}

static void on_wake(struct ev_loop *loop, ev_async *w, int revents)
{
	struct virtio_dev *vd = w->data;

	(void)loop;
	(void)revents;
	pthread_mutex_lock(&vd->lock);
	mmio_apply_pending(vd);
	resume_yielded(vd);
	pthread_mutex_unlock(&vd->lock);
}

static void on_kick(struct ev_loop *loop, ev_io *w, int revents)
{
	struct vq *v = vq_of(w);
	struct virtio_dev *vd = v->vd;
	unsigned i = (unsigned)(v - vd->queues);
	uint64_t n;

	(void)loop;
	(void)revents;
	if (read(v->kick_fd, &n, sizeof(n)) < 0)
		return; /* EAGAIN: someone drained it already */
	pthread_mutex_lock(&vd->lock);
	mmio_apply_pending(vd); /* a kick never overtakes the activation it depends on */
	vd->kicks++;
	if (!vd->activated)
		vd->kick_pending |= 1u << i;
	else if (v->q.ready && vd->ops->queue_notify)
		vd->ops->queue_notify(vd->dev, i);
	pthread_mutex_unlock(&vd->lock);
}

/* ---- construction ---- */

static int ioeventfd(struct virtio_dev *vd, unsigned i, bool assign)
{
	struct kvm_ioeventfd io = {
		.datamatch = i,
		.addr = vd->base + REG_QUEUE_NOTIFY,
		.len = 4,
		.fd = vd->queues[i].kick_fd,
		.flags = KVM_IOEVENTFD_FLAG_DATAMATCH | (assign ? 0 : KVM_IOEVENTFD_FLAG_DEASSIGN),
	};

	return ioctl(vd->vm_fd, KVM_IOEVENTFD, &io) < 0 ? -errno : 0;
}

static int irqfd(struct virtio_dev *vd, bool assign)
{
	struct kvm_irqfd irq = { .fd = (uint32_t)vd->irq_fd,
		.gsi = vd->gsi,
		.flags = assign ? 0 : KVM_IRQFD_FLAG_DEASSIGN };

	return ioctl(vd->vm_fd, KVM_IRQFD, &irq) < 0 ? -errno : 0;
}

static int check_ops(const struct virtio_dev_ops *ops, char *err, size_t errlen)
{
	uint16_t m = ops->queue_max_size;

	if (ops->num_queues == 0 || ops->num_queues > VIRTIO_MAX_QUEUES || m == 0 ||
		m > VIRTQ_MAX_SIZE || (m & (m - 1)) || ops->config_size > CONFIG_SPACE_MAX) {
		snprintf(err, errlen,
			"virtio-%s: bad device description (queues %u, size %u, "
			"config %u bytes)",
			ops->kind, ops->num_queues, m, ops->config_size);
		return -EINVAL;
	}
	return 0;
}

static int wire(struct virtio_dev *vd, const struct virtio_env *env, char *err, size_t errlen)
{
	struct bus_device bd = { .name = vd->name,
		.base = vd->base,
		.len = LAYOUT_VIRTIO_MMIO_SIZE,
		.read = mmio_read,
		.write = mmio_write,
		.opaque = vd,
		.lock = &vd->lock };
	int ret;

	vd->irq_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (vd->irq_fd < 0)
		goto err_errno;
	if (vd->vm_fd >= 0) {
		ret = irqfd(vd, true);
		if (ret) {
			snprintf(err, errlen, "%s: KVM_IRQFD gsi %u: %s", vd->name, vd->gsi,
				strerror(-ret));
			return ret;
		}
		vd->irqfd = true;
	}
	for (unsigned i = 0; i < vd->ops->num_queues; i++) {
		struct vq *v = &vd->queues[i];

		v->kick_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (v->kick_fd < 0)
			goto err_errno;
		if (vd->vm_fd >= 0) {
			ret = ioeventfd(vd, i, true);
			if (ret) {
				snprintf(err, errlen, "%s: KVM_IOEVENTFD queue %u: %s", vd->name, i,
					strerror(-ret));
				return ret;
			}
			v->ioeventfd = true;
		}
		if (vd->loop) {
			ev_io_init(&v->kick, on_kick, v->kick_fd, EV_READ);
			ev_io_start(vd->loop, &v->kick);
		}
	}
	if (vd->loop) {
		ev_async_init(&vd->wake, on_wake);
		vd->wake.data = vd;
		ev_async_start(vd->loop, &vd->wake);
	}
	ret = env->mmio ? bus_register(env->mmio, &bd) : 0;
	if (ret)
		snprintf(err, errlen, "%s: cannot place window 0x%llx on the bus: %s", vd->name,
			(unsigned long long)vd->base, strerror(-ret));
	return ret;
err_errno:
	ret = -errno;
	snprintf(err, errlen, "%s: eventfd: %s", vd->name, strerror(errno));
	return ret;
}

struct virtio_dev *virtio_mmio_new(const struct virtio_env *env, uint64_t base, uint32_t gsi,
	const struct virtio_dev_ops *ops, void *dev, char *err, size_t errlen)
{
	struct virtio_dev *vd;

	if (check_ops(ops, err, errlen))
		goto err_destroy_dev;
	vd = calloc(1, sizeof(*vd));
	if (!vd) {
		snprintf(err, errlen, "virtio-%s: out of memory", ops->kind);
		goto err_destroy_dev;
	}
	pthread_mutex_init(&vd->lock, NULL);
	vd->ops = ops;
	vd->dev = dev;
	vd->loop = env->loop;
	vd->mem = env->mem;
	vd->vm_fd = env->vm_fd;
	vd->base = base;
	vd->gsi = gsi;
	vd->irq_fd = -1;
	snprintf(vd->name, sizeof(vd->name), "virtio-%s@0x%llx", ops->kind,
		(unsigned long long)base);
	for (unsigned i = 0; i < VIRTIO_MAX_QUEUES; i++) {
		vd->queues[i].vd = vd;
		vd->queues[i].kick_fd = -1;
	}
	if (ops->attach)
		ops->attach(dev, vd);
	vd->offered = (ops->features ? ops->features(dev) : 0) | (1ull << VIRTIO_F_VERSION_1) |
		(1ull << VIRTIO_F_RING_INDIRECT_DESC) | (1ull << VIRTIO_F_RING_EVENT_IDX);
	if (wire(vd, env, err, errlen)) {
		virtio_free(vd);
		return NULL;
	}
	return vd;
err_destroy_dev:
	if (ops->destroy)
		ops->destroy(dev);
	return NULL;
}

void virtio_free(struct virtio_dev *vd)
{
	if (!vd)
		return;
	if (vd->loop)
		ev_async_stop(vd->loop, &vd->wake);
	for (unsigned i = 0; i < VIRTIO_MAX_QUEUES; i++) {
		struct vq *v = &vd->queues[i];

		if (v->kick_fd < 0)
			continue;
		if (vd->loop)
			ev_io_stop(vd->loop, &v->kick);
		if (v->ioeventfd && ioeventfd(vd, i, false))
			log_warn("%s: cannot remove the ioeventfd of queue %u", vd->name, i);
		close(v->kick_fd);
	}
	if (vd->irqfd && irqfd(vd, false))
		log_warn("%s: cannot remove the irqfd", vd->name);
	if (vd->irq_fd >= 0)
		close(vd->irq_fd);
	if (vd->ops->destroy)
		vd->ops->destroy(vd->dev);
	pthread_mutex_destroy(&vd->lock);
	free(vd);
}

uint64_t virtio_base(const struct virtio_dev *vd)
{
	return vd->base;
}

uint32_t virtio_gsi(const struct virtio_dev *vd)
{
	return vd->gsi;
}

void *virtio_model(struct virtio_dev *vd, const struct virtio_dev_ops *ops)
{
	return vd && vd->ops == ops ? vd->dev : NULL;
}

const char *virtio_kind(const struct virtio_dev *vd)
{
	return vd->ops->kind;
}

void virtio_stats(struct virtio_dev *vd, void (*put)(void *ctx, const char *key, uint64_t value),
	void *ctx)
{
	uint64_t kicks, irqs, resets;

	pthread_mutex_lock(&vd->lock);
	kicks = vd->kicks;
	irqs = vd->interrupts;
	resets = vd->needs_reset_count;
	pthread_mutex_unlock(&vd->lock);
	put(ctx, "kicks", kicks);
	put(ctx, "interrupts", irqs);
	put(ctx, "needs_reset", resets);
	if (vd->ops->stats)
		vd->ops->stats(vd->dev, put, ctx);
}
