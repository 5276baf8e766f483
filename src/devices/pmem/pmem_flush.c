/* virtio-pmem's flush worker: one thread per device that msyncs the mapped file when the
 * device asks, so a FLUSH never blocks the device loop; the result comes back on it. */
#include "pmem_internal.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "ember/seccomp.h"
#include "ember/thread.h"

struct pmem_flusher {
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t work, idle;
	bool asked, running, finished, stop; /* under lock */
	int result;                          /* of the finished flush, under lock */
	void *host;
	size_t len;
	struct ev_loop *loop;
	ev_async async;
	pmem_flush_done_fn *done;
	void *ctx;
};

int pmem_msync(void *host, size_t len)
{
	return msync(host, len, MS_SYNC) ? -errno : 0;
}

static void *flusher_main(void *arg)
{
	struct pmem_flusher *f = arg;

	seccomp_install_thread(SECCOMP_BLOCK_IO);
	pthread_mutex_lock(&f->lock);
	for (;;) {
		int r;

		while (!f->asked && !f->stop)
			pthread_cond_wait(&f->work, &f->lock);
		if (f->stop)
			break;
		f->asked = false;
		f->running = true;
		pthread_mutex_unlock(&f->lock);

		r = pmem_msync(f->host, f->len);

		pthread_mutex_lock(&f->lock);
		f->running = false;
		f->finished = true;
		f->result = r;
		pthread_cond_broadcast(&f->idle);
		ev_async_send(f->loop, &f->async);
	}
	pthread_mutex_unlock(&f->lock);
	return NULL;
}

static void on_async(struct ev_loop *loop, ev_async *w, int revents)
{
	struct pmem_flusher *f = w->data;
	bool finished;
	int r;

	(void)loop;
	(void)revents;
	pthread_mutex_lock(&f->lock);
	finished = f->finished;
	r = f->result;
	f->finished = false;
	pthread_mutex_unlock(&f->lock);
	if (finished)
		f->done(f->ctx, r);
}

struct pmem_flusher *pmem_flusher_new(struct ev_loop *loop, void *host, size_t len,
	pmem_flush_done_fn *done, void *ctx, char *err, size_t errlen)
{
	struct pmem_flusher *f = calloc(1, sizeof(*f));
	int ret;

	if (!f) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	pthread_mutex_init(&f->lock, NULL);
	pthread_cond_init(&f->work, NULL);
	pthread_cond_init(&f->idle, NULL);
	f->host = host;
	f->len = len;
	f->loop = loop;
	f->done = done;
	f->ctx = ctx;
	ev_async_init(&f->async, on_async);
	f->async.data = f;
	ev_async_start(loop, &f->async);
	/* Every signal blocked: process signals and vCPU kicks go elsewhere. */
	ret = thread_spawn(&f->thread, flusher_main, f, NULL);
	if (ret) {
		snprintf(err, errlen, "cannot start the flush thread: %s", strerror(ret));
		ev_async_stop(loop, &f->async);
		pthread_cond_destroy(&f->idle);
		pthread_cond_destroy(&f->work);
		pthread_mutex_destroy(&f->lock);
		free(f);
		return NULL;
	}
	return f;
}

void pmem_flusher_request(struct pmem_flusher *f)
{
	pthread_mutex_lock(&f->lock);
	f->asked = true;
	pthread_cond_signal(&f->work);
	pthread_mutex_unlock(&f->lock);
}

void pmem_flusher_finish(struct pmem_flusher *f, int result)
{
	pthread_mutex_lock(&f->lock);
	while (f->asked || f->running)
		pthread_cond_wait(&f->idle, &f->lock);
	f->finished = true;
	f->result = result;
	ev_async_send(f->loop, &f->async);
	pthread_mutex_unlock(&f->lock);
}

void pmem_flusher_free(struct pmem_flusher *f)
{
	if (!f)
		return;
	pthread_mutex_lock(&f->lock);
	f->stop = true;
	pthread_cond_signal(&f->work);
	pthread_mutex_unlock(&f->lock);
	pthread_join(f->thread, NULL);
	ev_async_stop(f->loop, &f->async);
	pthread_cond_destroy(&f->idle);
	pthread_cond_destroy(&f->work);
	pthread_mutex_destroy(&f->lock);
	free(f);
}
