/* Fakes for the virtio-blk unit tests: transport, libev, and a split-ring driver. */
#include "fake_block_env.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ember/byteorder.h"
#include "guest_mem_fixture.h"

/* ---- transport ---- */

struct virtio_dev *virtio_mmio_new(const struct virtio_env *env, uint64_t base, uint32_t gsi,
	const struct virtio_dev_ops *ops, void *dev, char *err, size_t errlen)
{
	struct virtio_dev *vd = calloc(1, sizeof(*vd));

	(void)base;
	(void)gsi;
	if (!vd) {
		snprintf(err, errlen, "out of memory");
		ops->destroy(dev);
		return NULL;
	}
	vd->ops = ops;
	vd->dev = dev;
	vd->q.max_size = ops->queue_max_size;
	vd->q.mem = env->mem;
	ops->attach(dev, vd);
	return vd;
}

void virtio_free(struct virtio_dev *vd)
{
	if (!vd)
		return;
	vd->ops->destroy(vd->dev);
	free(vd);
}

struct virtq *virtio_queue(struct virtio_dev *vd, unsigned q)
{
	return q == 0 ? &vd->q : NULL;
}

void virtio_notify(struct virtio_dev *vd, unsigned q)
{
	(void)q;
	vd->notifies++;
}

void virtio_config_changed(struct virtio_dev *vd)
{
	vd->config_changes++;
}

void *virtio_model(struct virtio_dev *vd, const struct virtio_dev_ops *ops)
{
	return vd && vd->ops == ops ? vd->dev : NULL;
}

void virtio_needs_reset(struct virtio_dev *vd, const char *why)
{
	vd->needs_reset++;
	vd->q.ready = false;
	snprintf(vd->why, sizeof(vd->why), "%s", why);
}

void virtio_queue_yield(struct virtio_dev *vd, unsigned q)
{
	(void)q;
	vd->yields++;
}

void virtio_lock(struct virtio_dev *vd)
{
	vd->locks++;
}

void virtio_unlock(struct virtio_dev *vd)
{
	(void)vd;
}

/* ---- libev ---- */

#define MAX_ASYNC 4
static ev_async *asyncs[MAX_ASYNC];
static atomic_bool sent[MAX_ASYNC];
static ev_timer *timer;
#define MAX_IO 4
static ev_io *ios[MAX_IO];

void ev_async_start(struct ev_loop *loop, ev_async *w) EV_NOEXCEPT
{
	(void)loop;
	for (int i = 0; i < MAX_ASYNC; i++) {
		if (!asyncs[i]) {
			asyncs[i] = w;
			atomic_store(&sent[i], false);
			((ev_watcher *)(void *)w)->active = 1;
			return;
		}
	}
	abort(); /* a test bug, not guest input */
}

void ev_async_stop(struct ev_loop *loop, ev_async *w) EV_NOEXCEPT
{
	(void)loop;
	for (int i = 0; i < MAX_ASYNC; i++)
		if (asyncs[i] == w)
			asyncs[i] = NULL;
	((ev_watcher *)(void *)w)->active = 0;
}

void ev_async_send(struct ev_loop *loop, ev_async *w) EV_NOEXCEPT
{
	(void)loop;
	for (int i = 0; i < MAX_ASYNC; i++)
		if (asyncs[i] == w)
			atomic_store(&sent[i], true);
}

void ev_timer_start(struct ev_loop *loop, ev_timer *w) EV_NOEXCEPT
{
	(void)loop;
	timer = w;
	((ev_watcher *)(void *)w)->active = 1;
}

void ev_timer_stop(struct ev_loop *loop, ev_timer *w) EV_NOEXCEPT
{
	(void)loop;
	if (timer == w)
		timer = NULL;
	((ev_watcher *)(void *)w)->active = 0;
}

void ev_io_start(struct ev_loop *loop, ev_io *w) EV_NOEXCEPT
{
	(void)loop;
	for (int i = 0; i < MAX_IO; i++) {
		if (!ios[i]) {
			ios[i] = w;
			((ev_watcher *)(void *)w)->active = 1;
			return;
		}
	}
	abort(); /* a test bug, not guest input */
}

void ev_io_stop(struct ev_loop *loop, ev_io *w) EV_NOEXCEPT
{
	(void)loop;
	for (int i = 0; i < MAX_IO; i++)
		if (ios[i] == w)
			ios[i] = NULL;
	((ev_watcher *)(void *)w)->active = 0;
}

int fake_ev_run_async(void)
{
	int n = 0;

	for (int i = 0; i < MAX_IO; i++) {
		struct pollfd p = { .fd = ios[i] ? ios[i]->fd : -1, .events = POLLIN };

		if (ios[i] && poll(&p, 1, 0) == 1 && (p.revents & POLLIN)) {
			ios[i]->cb(NULL, ios[i], EV_READ);
			n++;
		}
	}

	for (int i = 0; i < MAX_ASYNC; i++) {
		if (asyncs[i] && atomic_exchange(&sent[i], false)) {
			asyncs[i]->cb(NULL, asyncs[i], EV_ASYNC);
			n++;
		}
	}
	return n;
}

ev_timer *fake_ev_timer(void)
{
	return timer;
}

void fake_ev_fire_timer(void)
{
	ev_timer *t = timer;

	if (!t)
		return;
	ev_timer_stop(NULL, t);
	t->cb(NULL, t, EV_TIMER);
}

void fake_ev_reset(void)
{
	memset(asyncs, 0, sizeof(asyncs));
	memset(ios, 0, sizeof(ios));
	timer = NULL;
}

/* ---- driver ---- */

void fake_driver_init(struct fake_driver *d)
{
	memset(d, 0, sizeof(*d));
	if (guest_mem_fixture_init(&d->mem, FAKE_RAM_SIZE))
		abort();
	d->env.mem = &d->mem;
	d->env.vm_fd = -1;
	d->data_top = FAKE_DATA;
}

void fake_driver_deinit(struct fake_driver *d)
{
	guest_mem_fixture_deinit(&d->mem);
}

void fake_driver_attach(struct fake_driver *d, struct virtio_dev *vd)
{
	d->vd = vd;
	vd->q.size = 256;
	vd->q.desc_gpa = FAKE_DESC;
	vd->q.avail_gpa = FAKE_AVAIL;
	vd->q.used_gpa = FAKE_USED;
	vd->q.ready = true;
}

uint8_t *fake_ptr(struct fake_driver *d, uint64_t gpa)
{
	return d->mem.regions[0].host + gpa;
}

uint64_t fake_alloc(struct fake_driver *d, uint32_t len)
{
	uint64_t gpa = d->data_top;

	d->data_top = (d->data_top + len + 15) & ~15ull;
	if (d->data_top > FAKE_RAM_SIZE)
		abort();
	memset(fake_ptr(d, gpa), 0, len);
	return gpa;
}

uint16_t fake_add_chain(struct fake_driver *d, const struct fake_seg *segs, unsigned n)
{
	uint16_t head = d->next_desc;

	for (unsigned i = 0; i < n; i++) {
		uint8_t *p = fake_ptr(d, FAKE_DESC + 16u * d->next_desc);
		uint16_t flags = (uint16_t)((i + 1 < n ? 1 : 0) | (segs[i].write ? 2 : 0));
		uint16_t next = (uint16_t)((d->next_desc + 1) % 256);

		memcpy(p, &segs[i].gpa, 8);
		memcpy(p + 8, &segs[i].len, 4);
		put_le16(p + 12, flags);
		put_le16(p + 14, next);
		d->next_desc = next;
	}
	put_le16(fake_ptr(d, FAKE_AVAIL + 4 + 2u * (d->avail_idx % 256)), head);
	d->avail_idx++;
	__atomic_thread_fence(__ATOMIC_RELEASE);
	put_le16(fake_ptr(d, FAKE_AVAIL + 2), d->avail_idx);
	return head;
}

void fake_kick(struct fake_driver *d)
{
	d->vd->ops->queue_notify(d->vd->dev, 0);
}

uint16_t fake_used_idx(struct fake_driver *d)
{
	return get_le16(fake_ptr(d, FAKE_USED + 2));
}

bool fake_wait_used(struct fake_driver *d, uint16_t want)
{
	for (int i = 0; i < 50000; i++) {
		if (fake_used_idx(d) == want)
			return true;
		if (!fake_ev_run_async())
			usleep(100);
	}
	return fake_used_idx(d) == want;
}

void fake_used_elem(struct fake_driver *d, uint16_t i, uint32_t *id, uint32_t *len)
{
	const uint8_t *p = fake_ptr(d, FAKE_USED + 4 + 8u * (i % 256));

	memcpy(id, p, 4);
	memcpy(len, p + 4, 4);
}
