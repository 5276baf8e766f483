/* virtio-rng (virtio 1.x 5.4): fills device-writable buffers from getrandom, rate limited. */
#include "ember/virtio_devices.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include <ev.h>

#include "ember/clock.h"
#include "ember/rate_limiter.h"
#include "ember/snapshot_file.h"
#include "ember/virtio.h"

#define QUEUE_SIZE 256
#define MAX_REQUEST (64u << 10) /* bytes given per request: bounds the work per chain */
#define STATE_VERSION 1u

struct rng {
	struct virtio_dev *vd;
	struct ev_loop *loop;
	struct rate_limiter rl;
	ev_timer throttle; /* armed while the limiter holds the queue back */
	uint8_t buf[MAX_REQUEST];
	uint64_t requests, bytes, throttled, bad;
};

struct rng_state {
	uint32_t version; /* STATE_VERSION */
	uint32_t pad;
	struct rate_limiter_state rl;
};

static size_t fill_random(uint8_t *buf, size_t len)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n = getrandom(buf + done, len - done, 0);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		done += (size_t)n;
	}
	return done;
}

/* How much one request gets: the buffer, within our cap, and never more than a whole
 * bandwidth bucket (the device may fill less than the buffer: 5.4.6.1). */
static uint32_t request_size(const struct rng *r, uint64_t write_len)
{
	uint64_t n = write_len < MAX_REQUEST ? write_len : MAX_REQUEST;
	uint64_t bucket = r->rl.bandwidth.cfg.size;

	if (bucket && n > bucket)
		n = bucket;
	return (uint32_t)n;
}

/* Serve the queue until it is empty, broken or throttled, or the budget is spent (the
 * transport calls again). Transport lock held. */
static void process(struct rng *r)
{
	struct virtq *q = virtio_queue(r->vd, 0);
	struct virtq_elem e;
	char err[160];
	bool pushed = false;
	size_t served = 0;

	for (unsigned budget = VIRTIO_KICK_BUDGET; !ev_is_active(&r->throttle); budget--) {
		uint64_t wait;
		uint32_t n, got = 0;
		int ret;

		if (!budget || served >= VIRTIO_KICK_BYTES) {
			virtio_queue_yield(r->vd, 0);
			break;
		}
		ret = virtq_pop(q, &e, err, sizeof(err));

		if (ret == -ENOENT)
			break;
		if (ret) {
			r->bad++;
			virtio_needs_reset(r->vd, err);
			break;
		}
		n = request_size(r, e.write_len);
		if (e.nread == 0 && n > 0) {
			wait = rate_limiter_consume(&r->rl, n, 1, mono_ns());
			if (wait) {
				virtq_undo_pop(q);
				r->throttled++;
				ev_timer_set(&r->throttle, (double)wait / 1e9, 0.);
				ev_timer_start(r->loop, &r->throttle);
				break;
			}
			got = (uint32_t)fill_random(r->buf, n);
			if (virtq_write(q, &e, 0, r->buf, got) != (long)got)
				got = 0;
		} else {
			r->bad++; /* 5.4.6.1: only device-writable buffers; this one gets nothing */
		}
		if (virtq_push(q, &e, got))
			break;
		r->requests++;
		r->bytes += got;
		served += got;
		pushed = true;
	}
	if (pushed)
		virtio_notify(r->vd, 0);
}

static void on_throttle(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct rng *r = w->data;

	(void)loop;
	(void)revents;
	virtio_lock(r->vd);
	process(r);
	virtio_unlock(r->vd);
}

/* ---- virtio_dev_ops ---- */

static uint64_t rng_features(void *dev)
{
	(void)dev;
	return 0;
}

static int rng_activate(void *dev, uint64_t acked)
{
	(void)dev;
	(void)acked;
	return 0;
}

static void rng_reset(void *dev)
{
	struct rng *r = dev;

	ev_timer_stop(r->loop, &r->throttle);
}

static void rng_queue_notify(void *dev, unsigned q)
{
	struct rng *r = dev;

	if (q == 0)
		process(r);
}

static int rng_save(void *dev, struct snap_writer *w)
{
	struct rng *r = dev;
	struct rng_state st = { .version = STATE_VERSION };

	rate_limiter_save(&r->rl, &st.rl);
	return snap_put(w, &st, sizeof(st));
}

static int rng_restore(void *dev, struct snap_cursor *c, char *err, size_t errlen)
{
	struct rng *r = dev;
	struct rng_state st;

	if (snap_get(c, &st, sizeof(st))) {
		snprintf(err, errlen, "entropy: saved state is truncated");
		return -EINVAL;
	}
	if (st.version != STATE_VERSION) {
		snprintf(err, errlen, "entropy: saved state version %u, this ember reads %u",
			st.version, STATE_VERSION);
		return -ENOTSUP;
	}
	ev_timer_stop(r->loop, &r->throttle);
	rate_limiter_restore(&r->rl, &st.rl, mono_ns());
	return 0;
}

static void rng_destroy(void *dev)
{
	struct rng *r = dev;

	ev_timer_stop(r->loop, &r->throttle);
	free(r);
}

static void rng_attach(void *dev, struct virtio_dev *vd)
{
	struct rng *r = dev;

	r->vd = vd;
}

static void rng_stats(void *dev, void (*put)(void *ctx, const char *key, uint64_t value), void *ctx)
{
	struct rng *r = dev;

	put(ctx, "requests", r->requests);
	put(ctx, "bytes", r->bytes);
	put(ctx, "throttled", r->throttled);
	put(ctx, "bad_requests", r->bad);
}

static const struct virtio_dev_ops rng_ops = {
	.kind = "rng",
	.device_id = VIRTIO_ID_RNG,
	.num_queues = 1,
	.queue_max_size = QUEUE_SIZE,
	.config_size = 0,
	.features = rng_features,
	.activate = rng_activate,
	.reset = rng_reset,
	.queue_notify = rng_queue_notify,
	.save = rng_save,
	.restore = rng_restore,
	.destroy = rng_destroy,
	.attach = rng_attach,
	.stats = rng_stats,
};

struct virtio_dev *virtio_rng_new(const struct virtio_env *env, uint64_t base, uint32_t gsi,
	const struct rate_limit *limit, char *err, size_t errlen)
{
	struct rng *r = calloc(1, sizeof(*r));
	char why[160];

	if (!r) {
		snprintf(err, errlen, "entropy: out of memory");
		return NULL;
	}
	if (rate_limiter_init(&r->rl, limit, mono_ns(), why, sizeof(why))) {
		snprintf(err, errlen, "entropy: rate_limit: %s", why);
		free(r);
		return NULL;
	}
	r->loop = env->loop;
	ev_timer_init(&r->throttle, on_throttle, 0., 0.);
	r->throttle.data = r;
	return virtio_mmio_new(env, base, gsi, &rng_ops, r, err, errlen);
}
