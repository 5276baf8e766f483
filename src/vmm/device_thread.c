/* The device thread: it runs the devices' own libev loop (virtqueue kicks, taps, vsock
 * sockets, the MMDS stack, rate-limit timers, block completions), so every byte the guest
 * controls is handled under the devices' seccomp filter, apart from the control thread,
 * which runs the operator's Lua, the REPL and the API and may open files at will.
 *
 * Sharing follows libev's documented locking pattern: the thread holds `lock` except
 * while it waits in the kernel for events (the loop's release/acquire callbacks), so the
 * control thread takes `lock` to read or change device state (API and Lua calls,
 * snapshots) and never waits for more than one batch of callbacks. `gate` gives the
 * control thread precedence: the device thread passes it before taking `lock` again, so
 * a guest that keeps its queues busy cannot keep the operator out. */
#include "vm_internal.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "ember/log.h"
#include "ember/seccomp.h"
#include "ember/thread.h"

static void loop_release(struct ev_loop *loop)
{
	struct dev_thread *t = ev_userdata(loop);

	pthread_mutex_unlock(&t->lock);
}

static void loop_acquire(struct ev_loop *loop)
{
	struct dev_thread *t = ev_userdata(loop);

	pthread_mutex_lock(&t->gate);
	pthread_mutex_lock(&t->lock);
	pthread_mutex_unlock(&t->gate);
}

/* Wakes the loop after the control thread changed watchers, or to stop it. */
static void on_wake(struct ev_loop *loop, ev_async *w, int revents)
{
	struct dev_thread *t = w->data;

	(void)revents;
	if (atomic_load(&t->stopping))
		ev_break(loop, EVBREAK_ALL);
}

int dev_thread_init(struct dev_thread *t, char *err, size_t errlen)
{
	memset(t, 0, sizeof(*t));
	t->loop = ev_loop_new(EVFLAG_AUTO | EVFLAG_NOSIGMASK);
	if (!t->loop) {
		snprintf(err, errlen, "devices: cannot create the device thread's event loop");
		return -ENOMEM;
	}
	pthread_mutex_init(&t->lock, NULL);
	pthread_mutex_init(&t->gate, NULL);
	pthread_mutex_init(&t->ready_lock, NULL);
	pthread_cond_init(&t->ready_cond, NULL);
	ev_set_userdata(t->loop, t);
	ev_set_loop_release_cb(t->loop, loop_release, loop_acquire);
	ev_async_init(&t->wake, on_wake);
	t->wake.data = t;
	ev_async_start(t->loop, &t->wake);
	return 0;
}

static void *run(void *arg)
{
	struct dev_thread *t = arg;
	char err[160];
	int ret;

	/* Signals are for the control thread (SIGINT, SIGTERM) and the vCPUs (the kick):
	 * none is handled here, so no handler's calls need to be on the filter. */
	ret = seccomp_install(SECCOMP_DEVICES, err, sizeof(err));
	pthread_mutex_lock(&t->ready_lock);
	t->ready = true;
	t->start_ret = ret;
	if (ret)
		snprintf(t->start_err, sizeof(t->start_err), "%s", err);
	pthread_cond_signal(&t->ready_cond);
	pthread_mutex_unlock(&t->ready_lock);
	if (ret)
		return NULL; /* fails closed: the guest's data is never read unfiltered */
	pthread_mutex_lock(&t->lock);
	ev_run(t->loop, 0);
	pthread_mutex_unlock(&t->lock);
	return NULL;
}

int dev_thread_start(struct dev_thread *t, char *err, size_t errlen)
{
	/* Every signal blocked (run says why). */
	int ret = thread_spawn(&t->tid, run, t, NULL);

	if (ret) {
		snprintf(err, errlen, "devices: cannot start the device thread: %s", strerror(ret));
		return -ret;
	}
	t->started = true;
	pthread_mutex_lock(&t->ready_lock);
	while (!t->ready)
		pthread_cond_wait(&t->ready_cond, &t->ready_lock);
	ret = t->start_ret;
	pthread_mutex_unlock(&t->ready_lock);
	if (ret) {
		snprintf(err, errlen, "devices: %s", t->start_err);
		dev_thread_stop(t);
	}
	return ret;
}

void dev_thread_lock(struct dev_thread *t)
{
	if (!t->started)
		return; /* building or torn down: the control thread is the only user */
	pthread_mutex_lock(&t->gate);
	pthread_mutex_lock(&t->lock);
}

void dev_thread_unlock(struct dev_thread *t)
{
	if (!t->started)
		return;
	/* Watchers may have changed: the loop must look at them again. */
	ev_async_send(t->loop, &t->wake);
	pthread_mutex_unlock(&t->lock);
	pthread_mutex_unlock(&t->gate);
}

void dev_thread_stop(struct dev_thread *t)
{
	if (!t->started)
		return;
	atomic_store(&t->stopping, true);
	ev_async_send(t->loop, &t->wake);
	pthread_join(t->tid, NULL);
	t->started = false;
	atomic_store(&t->stopping, false);
	t->ready = false;
}

void dev_thread_deinit(struct dev_thread *t)
{
	if (!t->loop)
		return;
	dev_thread_stop(t);
	ev_async_stop(t->loop, &t->wake);
	ev_loop_destroy(t->loop);
	t->loop = NULL;
	pthread_mutex_destroy(&t->lock);
	pthread_mutex_destroy(&t->gate);
	pthread_mutex_destroy(&t->ready_lock);
	pthread_cond_destroy(&t->ready_cond);
}
