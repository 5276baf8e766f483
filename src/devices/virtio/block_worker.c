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

#include "ember/seccomp.h"

/* Lock order: the transport lock (held by callers on the control thread) before w->lock;
 * the worker thread takes only w->lock, and never while calling the backend. */
struct blk_worker {
	pthread_mutex_t lock;
	pthread_cond_t work;  /* todo list gained an entry, or stop */
	pthread_cond_t idle;  /* todo list empty and nothing executing */
	struct blk_io *todo, **todo_tail;
	struct blk_io *done, **done_tail;
	bool busy;            /* the thread is executing a request */
	bool stop;
	struct block_backend *be;
	pthread_t thread;
	ev_async async;
	struct ev_loop *loop;
	blk_worker_done_fn done_fn;
	void *opaque;
};

static int execute(struct block_backend *be, const struct blk_io *io)
{
	const struct blk_req *r = &io->req;
	uint64_t offset = r->sector << BLK_SECTOR_SHIFT;
	int ret;

	switch (r->type) {
	case VIRTIO_BLK_T_IN:
		return be->ops->read(be, offset, r->iov, r->iovcnt);
	case VIRTIO_BLK_T_OUT:
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

		io->result = execute(w->be, io);

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

struct blk_worker *blk_worker_new(struct block_backend *be, struct ev_loop *loop,
	blk_worker_done_fn done, void *opaque, char *err, size_t errlen)
{
	struct blk_worker *w = calloc(1, sizeof(*w));
	sigset_t all, old;
	int ret;

	if (!w) {
		snprintf(err, errlen, "out of memory");
		return NULL;
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

	/* The thread inherits the mask: process signals and vCPU kicks go elsewhere. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	ret = pthread_create(&w->thread, NULL, worker_main, w);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (ret) {
		snprintf(err, errlen, "cannot start the I/O thread: %s", strerror(ret));
		goto err_stop_async;
	}
	return w;

err_stop_async:
	ev_async_stop(loop, &w->async);
	pthread_cond_destroy(&w->idle);
	pthread_cond_destroy(&w->work);
	pthread_mutex_destroy(&w->lock);
	free(w);
	return NULL;
}

void blk_worker_submit(struct blk_worker *w, struct blk_io *io)
{
	io->next = NULL;
	io->result = 0;
	pthread_mutex_lock(&w->lock);
	*w->todo_tail = io;
	w->todo_tail = &io->next;
	pthread_cond_signal(&w->work);
	pthread_mutex_unlock(&w->lock);
}

struct blk_io *blk_worker_take_done(struct blk_worker *w)
{
	struct blk_io *list;

	pthread_mutex_lock(&w->lock);
	list = w->done;
	w->done = NULL;
	w->done_tail = &w->done;
	pthread_mutex_unlock(&w->lock);
	return list;
}

void blk_worker_drain(struct blk_worker *w)
{
	pthread_mutex_lock(&w->lock);
	while (w->todo || w->busy)
		pthread_cond_wait(&w->idle, &w->lock);
	pthread_mutex_unlock(&w->lock);
}

void blk_worker_set_backend(struct blk_worker *w, struct block_backend *be)
{
	pthread_mutex_lock(&w->lock);
	w->be = be;
	pthread_mutex_unlock(&w->lock);
}

void blk_worker_free(struct blk_worker *w)
{
	struct blk_io *io;

	if (!w)
		return;
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
	free(w);
}
