/* Sockets for guest-initiated vsock connections, made ahead of need on the control
 * thread: the device thread, which serves the guest's connection requests, may not call
 * socket(2) under its filter. Each one taken is replaced at once through the control
 * loop; a guest that opens connections faster than that finds none and is refused (RST),
 * as when the host port does not listen. */
#include "vsock_uds_internal.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static int new_socket(void)
{
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	return fd < 0 ? -errno : fd;
}

/* Control thread. */
static void refill(struct vsock_spares *s)
{
	pthread_mutex_lock(&s->lock);
	while (s->n < VSOCK_SPARES) {
		int fd = new_socket();
		if (fd < 0)
			break; /* out of descriptors: the next take refuses, the next refill retries */
		s->fds[s->n++] = fd;
	}
	pthread_mutex_unlock(&s->lock);
}

static void on_refill(struct ev_loop *loop, ev_async *w, int revents)
{
	(void)loop;
	(void)revents;
	refill(w->data);
}

void vsock_spares_init(struct vsock_spares *s)
{
	memset(s, 0, sizeof(*s));
	pthread_mutex_init(&s->lock, NULL);
}

void vsock_spares_start(struct vsock_spares *s, struct ev_loop *control)
{
	s->control = control;
	ev_async_init(&s->refill, on_refill);
	s->refill.data = s;
	ev_async_start(control, &s->refill);
	refill(s);
}

int vsock_spares_take(struct vsock_spares *s)
{
	int fd = -EAGAIN;

	if (!s->control)
		return new_socket(); /* one thread does everything (unit tests) */
	pthread_mutex_lock(&s->lock);
	if (s->n)
		fd = s->fds[--s->n];
	pthread_mutex_unlock(&s->lock);
	ev_async_send(s->control, &s->refill);
	return fd;
}

void vsock_spares_deinit(struct vsock_spares *s)
{
	if (s->control)
		ev_async_stop(s->control, &s->refill);
	while (s->n)
		close(s->fds[--s->n]);
	pthread_mutex_destroy(&s->lock);
}
