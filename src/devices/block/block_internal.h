/* Internals of the virtio-blk model shared by its files (requests, engines, persist).
 * Not a module interface: other modules use include/ember/block.h and virtio_devices.h. */
#ifndef EMBER_BLOCK_INTERNAL_H
#define EMBER_BLOCK_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <ev.h>

#include "ember/block.h"
#include "ember/byteorder.h"
#include "ember/log_ratelimit.h"
#include "ember/rate_limiter.h"

#define BLK_QUEUE_SIZE 256
#define BLK_CONFIG_SIZE 24 /* capacity, size_max, seg_max, geometry (unused), blk_size */

/* One request on its way through the engine. */
struct blk_io {
	struct blk_io *next;
	struct virtq_elem elem;
	struct blk_req req;
	bool write_through; /* a write made durable before it is answered (no FLUSH acked) */
	int result;         /* set by the engine: 0 or -errno from the backend */
	/* Async only: bytes transferred so far (a short transfer goes on from there), and
	 * whether the fsync of a write-through write is what runs now. */
	uint64_t moved;
	bool syncing;
};

/* A request that was done when the VM was saved but not yet in the used ring: the
 * restored device answers it once its queue is live again (block.c, at activation). */
struct blk_saved_done {
	uint16_t head;
	uint8_t status;
	uint32_t written;
	uint64_t status_gpa;
};

struct block_stats {
	uint64_t reads, writes, read_bytes, write_bytes, flushes, errors, throttled;
};

struct block {
	struct virtio_dev *vd;
	struct block_backend *be;
	struct blk_engine *engine;
	struct ev_loop *loop;
	const struct guest_mem *mem;
	char *id, *path;
	char serial[BLK_ID_BYTES];
	bool read_only;
	bool writeback;     /* cache_type Writeback: FLUSH offered (else Unsafe) */
	bool write_through; /* Writeback, and the driver did not ack VIRTIO_BLK_F_FLUSH */
	uint64_t capacity;  /* sectors */
	uint8_t config[BLK_CONFIG_SIZE];
	struct rate_limiter rl;
	ev_timer throttle;    /* armed while the limiter holds the queue back */
	struct blk_io *spare; /* free list, grows to the most requests ever in flight */
	/* Taken from the engine, not yet answered (save keeps them for the loop). */
	struct blk_io *finished, **finished_tail;
	struct blk_saved_done *replay; /* from a restore, answered at activation */
	unsigned nr_replay;
	struct block_stats st;
	struct log_ratelimit complaints; /* about what the guest sent */
};

/* block.c */
/* The model behind a transport, or NULL if it is not a block device. */
struct block *blk_of(struct virtio_dev *vd);
/* Take what the driver made available, until the ring is empty or the limiter says wait
 * (then the throttle timer comes back for the rest). Transport lock held. */
void blk_process(struct block *b);
/* Drop every request in flight or finished, unanswered: the queue is gone. */
void blk_discard(struct block *b);

/* block_persist.c: the model's save/restore ops (restore leaves the answers it owes in
 * b->replay; block.c gives them at activation). */
int blk_save(void *dev, struct snap_writer *w);
int blk_restore(void *dev, struct snap_cursor *c, char *err, size_t errlen);

/* ---- I/O engines: where requests run (io_engine Sync: block_worker.c, a thread per
 * drive; Async: block_uring.c, an io_uring). Every call is made with the transport lock
 * held, on the device or the control thread. ---- */

struct blk_engine;
struct guest_mem;

/* Called on the loop (no lock held) when requests are done; it collects them with
 * blk_engine_take_done. */
typedef void (*blk_engine_done_fn)(void *opaque);

struct blk_engine_ops {
	/* Hand a request over; it comes back through the done list. */
	void (*submit)(struct blk_engine *e, struct blk_io *io);
	/* Start what submit queued (after a batch); NULL if submit starts each at once. */
	void (*commit)(struct blk_engine *e);
	/* Detach every finished request, oldest first. */
	struct blk_io *(*take_done)(struct blk_engine *e);
	/* Block until every submitted request is on the done list (save, reset, backend
	 * swap). Finished requests still have to be taken. */
	void (*drain)(struct blk_engine *e);
	/* Replace the backend; only while drained. */
	void (*set_backend)(struct blk_engine *e, struct block_backend *be);
	/* Stop after what runs now (Sync) or every request in flight (Async); requests
	 * not started and those on the done list are freed unanswered. The backend stays
	 * the caller's. */
	void (*free)(struct blk_engine *e);
};

struct blk_engine {
	const struct blk_engine_ops *ops;
};

/* Start the worker thread (all signals blocked in it). Writes from guest memory `mem`
 * that a page-fault handler serves go through a bounce buffer, checked against
 * guest_mem_revoked before the disk sees them. NULL with err on failure. Control thread. */
struct blk_engine *blk_worker_new(struct block_backend *be, const struct guest_mem *mem,
	struct ev_loop *loop, blk_engine_done_fn done, void *opaque, char *err, size_t errlen);
/* Set up an io_uring on the backend's fd, its completions signalled on an eventfd that
 * `loop` watches. NULL with err (Firecracker's words) on failure. Control thread. */
struct blk_engine *blk_uring_new(struct block_backend *be, struct ev_loop *loop,
	blk_engine_done_fn done, void *opaque, char *err, size_t errlen);

static inline void blk_engine_submit(struct blk_engine *e, struct blk_io *io)
{
	e->ops->submit(e, io);
}

static inline void blk_engine_commit(struct blk_engine *e)
{
	if (e->ops->commit)
		e->ops->commit(e);
}

static inline void blk_engine_drain(struct blk_engine *e)
{
	e->ops->drain(e);
}

static inline void blk_engine_set_backend(struct blk_engine *e, struct block_backend *be)
{
	e->ops->set_backend(e, be);
}

/* NULL is a no-op. */
static inline void blk_engine_free(struct blk_engine *e)
{
	if (e)
		e->ops->free(e);
}

/* ---- shared by the model and its persist file (inline, so calls run one way: block.c
 * calls block_persist.c, never back) ---- */

/* The capacity the driver reads: whole sectors of `bytes` (a partial last sector is not
 * exposed). */
static inline void blk_set_capacity(struct block *b, uint64_t bytes)
{
	b->capacity = bytes >> BLK_SECTOR_SHIFT;
	put_le64(b->config, b->capacity);
}

/* Move what the engine finished onto b->finished (control thread). */
static inline void blk_collect(struct block *b)
{
	struct blk_io *io = b->engine->ops->take_done(b->engine);

	*b->finished_tail = io;
	while (io) {
		b->finished_tail = &io->next;
		io = io->next;
	}
}

#endif
