/* virtio-blk device model (virtio 1.x 5.2): one request queue, I/O on a worker thread
 * (io_engine Sync) or an io_uring (Async). */
#include "ember/virtio_devices.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "block_internal.h"
#include "ember/block.h"
#include "ember/byteorder.h"
#include "ember/clock.h"
#include "ember/guest_mem.h"
#include "ember/log.h"

#define SEG_MAX (VIRTQ_MAX_SEGMENTS - 2) /* data segments: the header and status take two */
#define SIZE_MAX_BYTES (1u << 20)        /* largest single data segment we advertise */

/* A bad request from the guest: rate-limited, as the guest may send them in a loop. */
static void complain(struct block *b, const char *why)
{
	log_ratelimited_at(&b->complaints, LOG_WARN, __FILE__, __LINE__,
		"block '%s': bad request: %s", b->id, why);
}

static struct blk_io *io_get(struct block *b)
{
	struct blk_io *io = b->spare;

	if (io) {
		b->spare = io->next;
		return io;
	}
	return malloc(sizeof(*io));
}

static void io_put(struct block *b, struct blk_io *io)
{
	io->next = b->spare;
	b->spare = io;
}

/* Status byte last (after the data), then the used ring. */
static void finish(struct block *b, struct virtq *q, struct blk_io *io, int status)
{
	uint8_t s = (uint8_t)status;
	uint32_t written = status == VIRTIO_BLK_S_OK ? io->req.written : 1;
	const struct virtq_elem *e = &io->elem;

	if (!q->ready) {
		/* Reset or NEEDS_RESET since the request was taken: its buffers are no
		 * longer ours to write. */
		io_put(b, io);
		return;
	}
	if (status != VIRTIO_BLK_S_OK)
		b->st.errors++;
	if (virtq_write(q, e, e->write_len - 1, &s, 1) != 1)
		written = 0; /* cannot happen for a chain the parser accepted */
	if (virtq_push(q, e, written))
		complain(b, "cannot return a request to the used ring");
	io_put(b, io);
}

static void count_done(struct block *b, const struct blk_req *r)
{
	switch (r->type) {
	case VIRTIO_BLK_T_IN:
		b->st.reads++;
		b->st.read_bytes += r->len;
		break;
	case VIRTIO_BLK_T_OUT:
		b->st.writes++;
		b->st.write_bytes += r->len;
		break;
	case VIRTIO_BLK_T_FLUSH:
		b->st.flushes++;
		break;
	}
}

static void throttle(struct block *b, uint64_t wait_ns)
{
	b->st.throttled++;
	ev_timer_set(&b->throttle, (double)wait_ns / 1e9, 0.);
	ev_timer_start(b->loop, &b->throttle);
}

void blk_process(struct block *b)
{
	struct virtq *q = virtio_queue(b->vd, 0);
	bool used = false;
	char err[160];

	if (!q || ev_is_active(&b->throttle))
		return; /* the timer comes back for the rest */
	for (unsigned budget = VIRTIO_KICK_BUDGET;; budget--) {
		struct blk_io *io;
		uint64_t wait;
		int ret;

		if (!budget) {
			virtio_queue_yield(b->vd, 0);
			break;
		}
		io = io_get(b);
		if (!io) {
			log_err("block '%s': out of memory; requests wait for the next kick",
				b->id);
			break;
		}
		ret = virtq_pop(q, &io->elem, err, sizeof(err));
		if (ret) {
			io_put(b, io);
			if (ret != -ENOENT) {
				b->st.errors++;
				virtio_needs_reset(b->vd, err);
			}
			break;
		}
		ret = blk_req_parse(q, &io->elem, b->capacity, b->read_only, b->serial, &io->req);
		if (ret) {
			/* No status byte: the request cannot be answered. The device stops
			 * until the driver resets it, which reclaims every buffer. */
			b->st.errors++;
			io_put(b, io);
			virtio_needs_reset(b->vd,
				"block: request without a device-writable status byte");
			break;
		}
		if (io->req.status >= 0) {
			if (io->req.why)
				complain(b, io->req.why);
			finish(b, q, io, io->req.status);
			used = true;
			continue;
		}
		wait = rate_limiter_consume(&b->rl, io->req.len, 1, mono_ns());
		if (wait) {
			virtq_undo_pop(q);
			io_put(b, io);
			throttle(b, wait);
			break;
		}
		io->write_through = b->write_through;
		blk_engine_submit(b->engine, io);
	}
	blk_engine_commit(b->engine);
	if (used)
		virtio_notify(b->vd, 0);
}

/* Answer every request the engine finished. Transport lock held. */
static void complete(struct block *b)
{
	struct virtq *q = virtio_queue(b->vd, 0);
	struct blk_io *io;
	bool any;

	blk_collect(b);
	io = b->finished;
	any = io != NULL;
	b->finished = NULL;
	b->finished_tail = &b->finished;
	while (io) {
		struct blk_io *next = io->next;

		if (io->result) {
			/* The guest can repeat a failing request at will. */
			log_warn_ratelimited("block '%s': %s at sector %llu failed: %s", b->id,
				io->req.type == VIRTIO_BLK_T_IN            ? "read"
					: io->req.type == VIRTIO_BLK_T_OUT ? "write"
									   : "flush",
				(unsigned long long)io->req.sector, strerror(-io->result));
			finish(b, q, io, VIRTIO_BLK_S_IOERR);
		} else {
			count_done(b, &io->req);
			finish(b, q, io, VIRTIO_BLK_S_OK);
		}
		io = next;
	}
	if (any)
		virtio_notify(b->vd, 0);
}

void blk_discard(struct block *b)
{
	struct blk_io *io;

	blk_engine_drain(b->engine);
	blk_collect(b);
	io = b->finished;
	b->finished = NULL;
	b->finished_tail = &b->finished;
	while (io) {
		struct blk_io *next = io->next;
		io_put(b, io);
		io = next;
	}
	free(b->replay);
	b->replay = NULL;
	b->nr_replay = 0;
}

/* ---- callbacks from the loop (control thread, no lock held) ---- */

static void on_done(void *opaque)
{
	struct block *b = opaque;

	virtio_lock(b->vd);
	complete(b);
	virtio_unlock(b->vd);
}

static void on_throttle(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct block *b = t->data;

	(void)loop;
	(void)revents;
	virtio_lock(b->vd);
	blk_process(b);
	virtio_unlock(b->vd);
}

/* After a restore: answer the requests that were done when the VM was saved (status
 * byte, then the used ring), once the queue is live again. */
static void replay(struct block *b)
{
	struct virtq *q = virtio_queue(b->vd, 0);
	unsigned n = b->nr_replay;

	for (unsigned i = 0; q && i < n; i++) {
		const struct blk_saved_done *r = &b->replay[i];
		struct virtq_elem e = { .head = r->head, .write_len = r->written };
		uint8_t *status = guest_mem_ptr_mut(b->mem, r->status_gpa, 1);

		/* The state file is outside input too: a bad entry is dropped, not trusted. */
		if (!status) {
			log_warn("block '%s': a saved request could not be answered", b->id);
			continue;
		}
		*status = r->status; /* status byte first, then the used ring */
		if (virtq_push(q, &e, r->written))
			log_warn("block '%s': a saved request could not be answered", b->id);
	}
	free(b->replay);
	b->replay = NULL;
	b->nr_replay = 0;
	if (n)
		virtio_notify(b->vd, 0);
}

/* ---- virtio_dev_ops ---- */

uint64_t blk_features_for(bool read_only, bool writeback)
{
	uint64_t f = 1ull << VIRTIO_BLK_F_SIZE_MAX | 1ull << VIRTIO_BLK_F_SEG_MAX |
		1ull << VIRTIO_BLK_F_BLK_SIZE;

	if (writeback)
		f |= 1ull << VIRTIO_BLK_F_FLUSH;
	return read_only ? f | 1ull << VIRTIO_BLK_F_RO : f;
}

static uint64_t blk_features(void *dev)
{
	const struct block *b = dev;

	return blk_features_for(b->read_only, b->writeback);
}

static int blk_activate(void *dev, uint64_t acked)
{
	struct block *b = dev;

	/* A driver that did not take an offered FLUSH counts on a write-through disk
	 * (5.2.6.2). Unsafe offers none and syncs nothing, as Firecracker: the guest sees a
	 * write-through disk that is not one. FLUSH requests are served either way. */
	b->write_through = b->writeback && !(acked & (1ull << VIRTIO_BLK_F_FLUSH));
	replay(b);
	return 0;
}

static void blk_reset(void *dev)
{
	struct block *b = dev;

	/* The driver may reuse its buffers as soon as the reset is seen: wait for the
	 * worker (short I/O) rather than let it write into memory that is no longer ours. */
	ev_timer_stop(b->loop, &b->throttle);
	blk_discard(b);
}

static void blk_queue_notify(void *dev, unsigned q)
{
	if (q == 0)
		blk_process(dev);
}

static void blk_config_read(void *dev, uint32_t offset, uint8_t *data, uint32_t len)
{
	struct block *b = dev;

	if (offset >= BLK_CONFIG_SIZE || len > BLK_CONFIG_SIZE - offset) {
		memset(data, 0, len);
		return;
	}
	memcpy(data, b->config + offset, len);
}

static void blk_config_write(void *dev, uint32_t offset, const uint8_t *data, uint32_t len)
{
	(void)dev; /* nothing is writable (no VIRTIO_BLK_F_CONFIG_WCE) */
	(void)offset;
	(void)data;
	(void)len;
}

static void blk_destroy(void *dev)
{
	struct block *b = dev;
	struct blk_io *io;

	if (!b)
		return;
	ev_timer_stop(b->loop, &b->throttle);
	blk_engine_free(b->engine);
	for (io = b->finished; io; io = b->finished) {
		b->finished = io->next;
		free(io);
	}
	free(b->replay);
	if (b->be)
		b->be->ops->close(b->be);
	while ((io = b->spare)) {
		b->spare = io->next;
		free(io);
	}
	free(b->id);
	free(b->path);
	free(b);
}

static void blk_attach(void *dev, struct virtio_dev *vd)
{
	((struct block *)dev)->vd = vd;
}

static void blk_stats(void *dev, void (*put)(void *ctx, const char *key, uint64_t value), void *ctx)
{
	const struct block *b = dev;

	put(ctx, "reads", b->st.reads);
	put(ctx, "writes", b->st.writes);
	put(ctx, "read_bytes", b->st.read_bytes);
	put(ctx, "write_bytes", b->st.write_bytes);
	put(ctx, "flushes", b->st.flushes);
	put(ctx, "errors", b->st.errors);
	put(ctx, "throttled", b->st.throttled);
}

static const struct virtio_dev_ops block_ops = {
	.kind = "block",
	.device_id = VIRTIO_ID_BLOCK,
	.num_queues = 1,
	.queue_max_size = BLK_QUEUE_SIZE,
	.config_size = BLK_CONFIG_SIZE,
	.features = blk_features,
	.activate = blk_activate,
	.reset = blk_reset,
	.queue_notify = blk_queue_notify,
	.config_read = blk_config_read,
	.config_write = blk_config_write,
	.save = blk_save,
	.restore = blk_restore,
	.destroy = blk_destroy,
	.attach = blk_attach,
	.stats = blk_stats,
};

struct block *blk_of(struct virtio_dev *vd)
{
	return virtio_model(vd, &block_ops);
}

/* ---- construction ---- */

/* Async runs on an io_uring, unless guest memory is served by a page-fault handler: a
 * write from it must be copied and checked before the disk sees it (block_worker.c), so
 * such a drive keeps the worker thread. */
static struct blk_engine *make_engine(const struct virtio_env *env, const struct drive_config *cfg,
	struct block_backend *be, struct block *b, char *err, size_t errlen)
{
	if (!cfg->async_io)
		return blk_worker_new(be, env->mem, env->loop, on_done, b, err, errlen);
	if (env->mem && env->mem->handler_served) {
		log_info("block '%s': io_engine Async runs on the I/O thread: guest memory is "
			 "served by a page-fault handler",
			cfg->id);
		return blk_worker_new(be, env->mem, env->loop, on_done, b, err, errlen);
	}
	return blk_uring_new(be, env->loop, on_done, b, err, errlen);
}

static struct block *block_alloc(const struct virtio_env *env, const struct drive_config *cfg,
	struct block_backend *be, char *err, size_t errlen)
{
	char why[160];
	struct block *b = calloc(1, sizeof(*b));

	if (!b || !(b->id = strdup(cfg->id)) || !(b->path = strdup(cfg->path))) {
		snprintf(err, errlen, "drive '%s': out of memory", cfg->id);
		goto err_free;
	}
	b->be = be;
	b->loop = env->loop;
	b->mem = env->mem;
	b->finished_tail = &b->finished;
	b->read_only = cfg->read_only;
	b->writeback = cfg->writeback;
	/* The serial is the id's first 20 bytes, NUL padded (not terminated at 20). */
	memcpy(b->serial, cfg->id, strnlen(cfg->id, sizeof(b->serial)));
	blk_set_capacity(b, be->ops->size(be));
	put_le32(b->config + 8, SIZE_MAX_BYTES);
	put_le32(b->config + 12, SEG_MAX);
	put_le32(b->config + 20, BLK_SECTOR_SIZE);
	if (rate_limiter_init(&b->rl, &cfg->limit, mono_ns(), why, sizeof(why))) {
		snprintf(err, errlen, "drive '%s': rate_limit: %s", cfg->id, why);
		goto err_free;
	}
	ev_timer_init(&b->throttle, on_throttle, 0., 0.);
	b->throttle.data = b;
	b->engine = make_engine(env, cfg, be, b, why, sizeof(why));
	if (!b->engine) {
		snprintf(err, errlen, "drive '%s': %s", cfg->id, why);
		goto err_free;
	}
	return b;

err_free:
	if (b) {
		free(b->id);
		free(b->path);
		free(b);
	}
	return NULL;
}

struct virtio_dev *virtio_block_new_backend(const struct virtio_env *env, uint64_t base,
	uint32_t gsi, const struct drive_config *cfg, struct block_backend *be, char *err,
	size_t errlen)
{
	struct block *b = NULL;

	if (!cfg->id || !cfg->path)
		snprintf(err, errlen, "drive '%s': needs an id and a path",
			cfg->id ? cfg->id : "?");
	else
		b = block_alloc(env, cfg, be, err, errlen);
	if (!b) {
		be->ops->close(be);
		return NULL;
	}
	/* From here the transport owns b: on failure it calls blk_destroy itself. */
	return virtio_mmio_new(env, base, gsi, &block_ops, b, err, errlen);
}

struct virtio_dev *virtio_block_new(const struct virtio_env *env, uint64_t base, uint32_t gsi,
	const struct drive_config *cfg, char *err, size_t errlen)
{
	struct block_backend *be;

	if (!cfg->id || !cfg->path) {
		snprintf(err, errlen, "drive '%s': needs an id and a path",
			cfg->id ? cfg->id : "?");
		return NULL;
	}
	if (block_file_open(cfg->id, cfg->path, cfg->read_only, &be, err, errlen))
		return NULL;
	return virtio_block_new_backend(env, base, gsi, cfg, be, err, errlen);
}
