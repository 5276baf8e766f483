/* virtio-blk io_engine Async: requests go to an io_uring on the image's fd, many in
 * flight; the kernel signals completions on an eventfd that the device loop watches. */
#include "block_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <liburing.h>

#include "ember/block.h"

/* One entry per request the queue can hold: a write-through write and its fsync run one
 * after the other, so the submission queue never fills. */
#define RING_ENTRIES BLK_QUEUE_SIZE

/* Every call but the watcher's comes with the transport lock held, so the ring, the
 * lists and the count have one user at a time. */
struct blk_uring {
	struct blk_engine e; /* first: the model holds &e */
	struct io_uring ring;
	int efd; /* the ring's completion eventfd */
	int fd;  /* the backend's */
	ev_io watch;
	struct ev_loop *loop;
	unsigned in_flight;
	struct blk_io *done, **done_tail;
	blk_engine_done_fn done_fn;
	void *opaque;
};

static struct blk_uring *to_uring(struct blk_engine *e)
{
	return (struct blk_uring *)e;
}

/* The text Firecracker's IoUringError gives for the step that failed. */
static int say(char *err, size_t errlen, const char *what, int ret)
{
	snprintf(err, errlen, "%s: %s (os error %d)", what, strerror(-ret), -ret);
	return ret;
}

/* Queue the request's next step: (the rest of) its transfer, or its fsync. */
static int prep(struct blk_uring *u, struct blk_io *io)
{
	const struct blk_req *r = &io->req;
	struct io_uring_sqe *sqe = io_uring_get_sqe(&u->ring);
	uint64_t offset = (r->sector << BLK_SECTOR_SHIFT) + io->moved;

	if (!sqe)
		return -EBUSY; /* not reached: at most RING_ENTRIES requests at once */
	if (r->type == VIRTIO_BLK_T_FLUSH || io->syncing)
		io_uring_prep_fsync(sqe, u->fd, 0);
	else if (r->type == VIRTIO_BLK_T_IN)
		io_uring_prep_readv(sqe, u->fd, r->iov, r->iovcnt, offset);
	else
		io_uring_prep_writev(sqe, u->fd, r->iov, r->iovcnt, offset);
	io_uring_sqe_set_data(sqe, io);
	u->in_flight++;
	return 0;
}

/* After a short transfer of `n` bytes: the iovecs (the request's own copy) start where it
 * stopped. */
static void advance(struct blk_io *io, uint64_t n)
{
	struct blk_req *r = &io->req;
	unsigned first = 0;

	io->moved += n;
	while (first < r->iovcnt && n >= r->iov[first].iov_len)
		n -= r->iov[first++].iov_len;
	memmove(r->iov, r->iov + first, (r->iovcnt - first) * sizeof(r->iov[0]));
	r->iovcnt -= first;
	if (n) {
		r->iov[0].iov_base = (uint8_t *)r->iov[0].iov_base + n;
		r->iov[0].iov_len -= n;
	}
}

static void put_done(struct blk_uring *u, struct blk_io *io, int result)
{
	io->result = result;
	io->next = NULL;
	*u->done_tail = io;
	u->done_tail = &io->next;
}

static void uring_submit(struct blk_engine *e, struct blk_io *io)
{
	struct blk_uring *u = to_uring(e);
	int ret;

	io->next = NULL;
	io->result = 0;
	io->moved = 0;
	io->syncing = false;
	ret = prep(u, io);
	if (ret) {
		put_done(u, io, ret);
		eventfd_write(u->efd, 1); /* the loop answers it */
	}
}

static void uring_commit(struct blk_engine *e)
{
	struct blk_uring *u = to_uring(e);
	int ret;

	do
		ret = io_uring_submit(&u->ring);
	while (ret == -EINTR);
	/* Anything else leaves the entries queued: the next submit or the drain's wait
	 * hands them over. */
}

/* Queue the request's next step, or fail it if it cannot be queued. */
static void go_on(struct blk_uring *u, struct blk_io *io)
{
	int ret = prep(u, io);

	if (ret)
		put_done(u, io, ret);
}

/* A completion: the request is done, or it goes on (rest of a short transfer, then the
 * fsync of a write-through write). */
static void on_cqe(struct blk_uring *u, struct blk_io *io, int res)
{
	uint64_t want = io->req.len - io->moved;

	u->in_flight--;
	if (res == -EAGAIN || res == -EINTR) {
		go_on(u, io); /* the same step again */
		return;
	}
	if (res < 0) {
		put_done(u, io, res);
		return;
	}
	if (!io->syncing && io->req.type != VIRTIO_BLK_T_FLUSH) {
		if (res == 0 && want) {
			put_done(u, io, -EIO); /* end of file, or a write that made no progress */
			return;
		}
		if ((uint64_t)res < want) {
			advance(io, (uint64_t)res);
			go_on(u, io);
			return;
		}
		if (io->req.type == VIRTIO_BLK_T_OUT && io->write_through) {
			io->syncing = true;
			go_on(u, io);
			return;
		}
	}
	put_done(u, io, 0);
}

/* Take every completion the kernel posted; returns whether a request went on. */
static bool reap(struct blk_uring *u)
{
	unsigned before = u->in_flight, n = 0, head;
	struct io_uring_cqe *cqe;

	io_uring_for_each_cqe(&u->ring, head, cqe)
	{
		on_cqe(u, io_uring_cqe_get_data(cqe), cqe->res);
		n++;
	}
	io_uring_cq_advance(&u->ring, n);
	return u->in_flight + n > before;
}

static struct blk_io *uring_take_done(struct blk_engine *e)
{
	struct blk_uring *u = to_uring(e);
	struct blk_io *list;

	if (reap(u))
		uring_commit(e);
	list = u->done;
	u->done = NULL;
	u->done_tail = &u->done;
	return list;
}

static void uring_drain(struct blk_engine *e)
{
	struct blk_uring *u = to_uring(e);

	while (u->in_flight) {
		int ret = io_uring_submit_and_wait(&u->ring, 1);

		if (ret < 0 && ret != -EINTR && ret != -EAGAIN && ret != -EBUSY)
			break; /* not reached: the ring is ours and valid */
		if (reap(u))
			uring_commit(e);
	}
}

static void uring_set_backend(struct blk_engine *e, struct block_backend *be)
{
	to_uring(e)->fd = be->ops->fd ? be->ops->fd(be) : -1;
}

static void uring_free(struct blk_engine *e)
{
	struct blk_uring *u = to_uring(e);
	struct blk_io *io;

	/* The kernel may be writing into guest memory: wait for it before letting go. */
	uring_drain(e);
	ev_io_stop(u->loop, &u->watch);
	io_uring_queue_exit(&u->ring);
	close(u->efd);
	while ((io = u->done)) {
		u->done = io->next;
		free(io);
	}
	free(u);
}

static void on_event(struct ev_loop *loop, ev_io *w, int revents)
{
	struct blk_uring *u = w->data;
	uint64_t count;

	(void)loop;
	(void)revents;
	/* Cleared before the ring is read: a completion posted after it signals again. Only
	 * here: requests a save or a swap took (drain) are answered by this callback. */
	while (read(u->efd, &count, sizeof(count)) < 0 && errno == EINTR)
		;
	u->done_fn(u->opaque); /* it takes the lock and calls take_done */
}

static const struct blk_engine_ops uring_ops = {
	.submit = uring_submit,
	.commit = uring_commit,
	.take_done = uring_take_done,
	.drain = uring_drain,
	.set_backend = uring_set_backend,
	.free = uring_free,
};

/* Only the operations prep() submits; then the ring starts. */
static int restrict_ring(struct io_uring *ring)
{
	struct io_uring_restriction r[] = {
		{ .opcode = IORING_RESTRICTION_SQE_OP, .sqe_op = IORING_OP_READV },
		{ .opcode = IORING_RESTRICTION_SQE_OP, .sqe_op = IORING_OP_WRITEV },
		{ .opcode = IORING_RESTRICTION_SQE_OP, .sqe_op = IORING_OP_FSYNC },
		{ .opcode = IORING_RESTRICTION_SQE_FLAGS_ALLOWED, .sqe_flags = 0 },
	};
	int ret = io_uring_register_restrictions(ring, r, sizeof(r) / sizeof(r[0]));

	return ret ? ret : io_uring_enable_rings(ring);
}

struct blk_engine *blk_uring_new(struct block_backend *be, struct ev_loop *loop,
	blk_engine_done_fn done, void *opaque, char *err, size_t errlen)
{
	struct blk_uring *u;
	int ret;

	if (!be->ops->fd || be->ops->fd(be) < 0) {
		snprintf(err, errlen, "io_engine Async needs a file descriptor to read and write");
		return NULL;
	}
	u = calloc(1, sizeof(*u));
	if (!u) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	u->e.ops = &uring_ops;
	u->fd = be->ops->fd(be);
	u->loop = loop;
	u->done_fn = done;
	u->opaque = opaque;
	u->done_tail = &u->done;
	/* Disabled until restricted: the device thread may io_uring_enter, so the ring it
	 * gets takes readv, writev and fsync only, without flags (no openat, no linked or
	 * fixed-file tricks), however its submissions were made. */
	ret = io_uring_queue_init(RING_ENTRIES, &u->ring, IORING_SETUP_R_DISABLED);
	if (ret) {
		say(err, errlen, "Error calling io_uring_setup", ret);
		goto err_free;
	}
	u->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (u->efd < 0) {
		say(err, errlen, "Could not create the completion eventfd", -errno);
		goto err_exit_ring;
	}
	ret = io_uring_register_eventfd(&u->ring, u->efd);
	if (ret) {
		say(err, errlen, "Could not register eventfd", ret);
		goto err_close_efd;
	}
	ret = restrict_ring(&u->ring);
	if (ret) {
		say(err, errlen, "Could not register restrictions", ret);
		goto err_close_efd;
	}
	ev_io_init(&u->watch, on_event, u->efd, EV_READ);
	u->watch.data = u;
	ev_io_start(loop, &u->watch);
	return &u->e;

err_close_efd:
	close(u->efd);
err_exit_ring:
	io_uring_queue_exit(&u->ring);
err_free:
	free(u);
	return NULL;
}
