/* virtio-blk I/O worker thread: a locked queue in, a locked done list and ev_async out. */
#include "block_internal.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ev.h>

#include "ember/guest_mem.h"
#include "ember/seccomp.h"
#include "ember/thread.h"

/* Bytes of a write copied out of handler-served guest memory at a time. */
#define BOUNCE_BYTES (256u << 10)

/* Lock order: the transport lock (held by callers on the control thread) before w->lock;
 * the worker thread takes only w->lock, and never while calling the backend. */
struct blk_worker {
	struct blk_engine e; /* first: the model holds &e */
	pthread_mutex_t lock;
	pthread_cond_t work; /* todo list gained an entry, or stop */
	pthread_cond_t idle; /* todo list empty and nothing executing */
	struct blk_io *todo, **todo_tail;
	struct blk_io *done, **done_tail;
	bool busy; /* the thread is executing a request */
	bool stop;
	struct block_backend *be;
	const struct guest_mem *mem;
	uint8_t *bounce; /* BOUNCE_BYTES, allocated up front: no mmap under the filter */
	pthread_t thread;
	ev_async async;
	struct ev_loop *loop;
	blk_engine_done_fn done_fn;
	void *opaque;
};

/* A write from guest memory that a page-fault handler serves. If the handler goes away
 * while a chunk is copied, its unserved pages are read as zeros when the fault is woken
 * (uffd_watch); the memory is revoked before that, so a chunk copied is checked before
 * it is written, and the disk never gets zeros the guest did not write. What was written
 * before is the guest's own data. */
static int write_bounced(struct blk_worker *w, uint64_t offset, const struct blk_req *r)
{
	unsigned i = 0;
	size_t at = 0; /* into r->iov[i] */

	while (i < r->iovcnt) {
		struct iovec chunk = { .iov_base = w->bounce, .iov_len = 0 };
		int ret;

		while (i < r->iovcnt && chunk.iov_len < BOUNCE_BYTES) {
			size_t take = r->iov[i].iov_len - at;

			if (take > BOUNCE_BYTES - chunk.iov_len)
				take = BOUNCE_BYTES - chunk.iov_len;
			memcpy(w->bounce + chunk.iov_len, (const uint8_t *)r->iov[i].iov_base + at,
				take);
			chunk.iov_len += take;
			at += take;
			if (at == r->iov[i].iov_len) {
				i++;
				at = 0;
			}
		}
		if (guest_mem_revoked(w->mem))
			return -EIO;
		ret = w->be->ops->write(w->be, offset, &chunk, 1);
		if (ret)
			return ret;
		offset += chunk.iov_len;
	}
	return 0;
}

static int execute(struct blk_worker *w, const struct blk_io *io)
{
	struct block_backend *be = w->be;
	const struct blk_req *r = &io->req;
	uint64_t offset = r->sector << BLK_SECTOR_SHIFT;
	int ret;

	switch (r->type) {
	case VIRTIO_BLK_T_IN:
		return be->ops->read(be, offset, r->iov, r->iovcnt);
	case VIRTIO_BLK_T_OUT:
		if (w->mem && w->mem->handler_served)
			ret = write_bounced(w, offset, r);
		else
			ret = be->ops->write(be, offset, r->iov, r->iovcnt);
		return ret || !io->write_through ? ret : be->ops->flush(be);
	case VIRTIO_BLK_T_FLUSH:
		return be->ops->flush(be);
	default:
		return -EOPNOTSUPP; /* the parser answers every other type itself */
	}
}

static void *worker_main(void *arg)
{
	struct blk_worker *w = arg;

	seccomp_install_thread(SECCOMP_BLOCK_IO);
	pthread_mutex_lock(&w->lock);
	for (;;) {
		struct blk_io *io;

		while (!w->todo && !w->stop)
			pthread_cond_wait(&w->work, &w->lock);
		if (w->stop)
			break; /* the device is going away: what is left is never started */
		io = w->todo;
		w->todo = io->next;
		if (!w->todo)
			w->todo_tail = &w->todo;
		w->busy = true;
		pthread_mutex_unlock(&w->lock);

		io->result = execute(w, io);

		pthread_mutex_lock(&w->lock);
		w->busy = false;
		io->next = NULL;
		*w->done_tail = io;
		w->done_tail = &io->next;
		if (!w->todo)
			pthread_cond_broadcast(&w->idle);
		/* Sends coalesce: the callback takes the whole done list. */
		ev_async_send(w->loop, &w->async);
	}
	pthread_mutex_unlock(&w->lock);
	return NULL;
}

static void on_async(struct ev_loop *loop, ev_async *a, int revents)
{
	struct blk_worker *w = a->data;

	(void)loop;
	(void)revents;
	w->done_fn(w->opaque);
}

static const struct blk_engine_ops worker_ops;

struct blk_engine *blk_worker_new(struct block_backend *be, const struct guest_mem *mem,
	struct ev_loop *loop, blk_engine_done_fn done, void *opaque, char *err, size_t errlen)
{
	struct blk_worker *w = calloc(1, sizeof(*w));
	int ret;

	if (!w) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	w->e.ops = &worker_ops;
	w->mem = mem;
	if (mem && mem->handler_served) {
		w->bounce = malloc(BOUNCE_BYTES);
		if (!w->bounce) {
			snprintf(err, errlen, "out of memory");
			free(w);
			return NULL;
		}
	}
	pthread_mutex_init(&w->lock, NULL);
	pthread_cond_init(&w->work, NULL);
	pthread_cond_init(&w->idle, NULL);
	w->todo_tail = &w->todo;
	w->done_tail = &w->done;
	w->be = be;
	w->loop = loop;
	w->done_fn = done;
	w->opaque = opaque;
	ev_async_init(&w->async, on_async);
	w->async.data = w;
	ev_async_start(loop, &w->async);

	/* Every signal blocked: process signals and vCPU kicks go elsewhere. */
	ret = thread_spawn(&w->thread, worker_main, w, NULL);
	if (ret) {
		snprintf(err, errlen, "cannot start the I/O thread: %s", strerror(ret));
		goto err_stop_async;
	}
	return &w->e;

err_stop_async:
	ev_async_stop(loop, &w->async);
	pthread_cond_destroy(&w->idle);
	pthread_cond_destroy(&w->work);
	pthread_mutex_destroy(&w->lock);
	free(w->bounce);
	free(w);
	return NULL;
}

static struct blk_worker *to_worker(struct blk_engine *e)
{
	return (struct blk_worker *)e;
}

static void worker_submit(struct blk_engine *e, struct blk_io *io)
{
	struct blk_worker *w = to_worker(e);

	io->next = NULL;
	io->result = 0;
	pthread_mutex_lock(&w->lock);
	*w->todo_tail = io;
	w->todo_tail = &io->next;
	pthread_cond_signal(&w->work);
	pthread_mutex_unlock(&w->lock);
}

static struct blk_io *worker_take_done(struct blk_engine *e)
{
	struct blk_worker *w = to_worker(e);
	struct blk_io *list;

	pthread_mutex_lock(&w->lock);
	list = w->done;
	w->done = NULL;
	w->done_tail = &w->done;
	pthread_mutex_unlock(&w->lock);
	return list;
}

static void worker_drain(struct blk_engine *e)
{
	struct blk_worker *w = to_worker(e);

	pthread_mutex_lock(&w->lock);
	while (w->todo || w->busy)
		pthread_cond_wait(&w->idle, &w->lock);
	pthread_mutex_unlock(&w->lock);
}

static void worker_set_backend(struct blk_engine *e, struct block_backend *be)
{
	struct blk_worker *w = to_worker(e);

	pthread_mutex_lock(&w->lock);
	w->be = be;
	pthread_mutex_unlock(&w->lock);
}

static void worker_free(struct blk_engine *e)
{
	struct blk_worker *w = to_worker(e);
	struct blk_io *io;

	pthread_mutex_lock(&w->lock);
	w->stop = true;
	pthread_cond_signal(&w->work);
	pthread_mutex_unlock(&w->lock);
	pthread_join(w->thread, NULL); /* after the request it is executing, if any */
	ev_async_stop(w->loop, &w->async);
	while ((io = w->todo)) {
		w->todo = io->next;
		free(io);
	}
	while ((io = w->done)) {
		w->done = io->next;
		free(io);
	}
	pthread_cond_destroy(&w->idle);
	pthread_cond_destroy(&w->work);
	pthread_mutex_destroy(&w->lock);
	free(w->bounce);
	free(w);
}

static const struct blk_engine_ops worker_ops = {
	.submit = worker_submit,
	.take_done = worker_take_done,
	.drain = worker_drain,
	.set_backend = worker_set_backend,
	.free = worker_free,
};
