/* vsock host side: Unix sockets, the listener and host clients' CONNECT lines, the
 * connection table (Firecracker's hybrid vsock). Packets: vsock_packets.c. */
#include "ember/vsock.h"

#include <errno.h>
#include <ev.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "ember/log.h"
#include "ember/log_ratelimit.h"
#include "ember/unix_socket.h"
#include "vsock_uds_internal.h"

#define ACCEPT_BURST 16

static unsigned bucket(uint32_t local, uint32_t peer)
{
	return (local * 2654435761u ^ peer * 40503u) % HASH_BUCKETS;
}

struct conn *vconn_lookup(struct vsock_uds *u, uint32_t local, uint32_t peer)
{
	for (struct conn *c = u->hash[bucket(local, peer)]; c; c = c->hnext)
		if (c->local_port == local && c->peer_port == peer)
			return c;
	return NULL;
}

void vconn_hash_add(struct conn *c)
{
	struct conn **b = &c->u->hash[bucket(c->local_port, c->peer_port)];

	c->hnext = *b;
	*b = c;
	c->hashed = true;
}

void vconn_hash_del(struct conn *c)
{
	struct conn **p = &c->u->hash[bucket(c->local_port, c->peer_port)];

	if (!c->hashed)
		return;
	while (*p && *p != c)
		p = &(*p)->hnext;
	if (*p)
		*p = c->hnext;
	c->hashed = false;
}

void vconn_enqueue(struct conn *c, unsigned bits)
{
	struct vsock_uds *u = c->u;

	c->owed |= bits;
	if (c->queued)
		return;
	c->qprev = u->qtail;
	c->qnext = NULL;
	if (u->qtail)
		u->qtail->qnext = c;
	else
		u->qhead = c;
	u->qtail = c;
	c->queued = true;
}

void vconn_dequeue(struct conn *c)
{
	struct vsock_uds *u = c->u;

	if (!c->queued)
		return;
	if (c->qprev)
		c->qprev->qnext = c->qnext;
	else
		u->qhead = c->qnext;
	if (c->qnext)
		c->qnext->qprev = c->qprev;
	else
		u->qtail = c->qprev;
	c->queued = false;
}

static void close_socket(struct conn *c)
{
	ev_io_stop(c->u->loop, &c->rd);
	ev_io_stop(c->u->loop, &c->wr);
	ev_timer_stop(c->u->loop, &c->timer);
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
}

void vconn_free(struct conn *c)
{
	struct vsock_uds *u = c->u;

	close_socket(c);
	vconn_hash_del(c);
	vconn_dequeue(c);
	if (c->prev)
		c->prev->next = c->next;
	else
		u->all = c->next;
	if (c->next)
		c->next->prev = c->prev;
	u->st.open--;
	free(c->buf);
	free(c);
}

/* End a connection the guest knows about: close the socket now, tell the guest (RST). */
void vconn_kill(struct conn *c)
{
	if (c->state == CS_LINE) {
		vconn_free(c);
		return;
	}
	close_socket(c);
	vconn_hash_del(c);
	c->state = CS_DEAD;
	c->owed = 0;
	vconn_enqueue(c, P_RST);
}

static void on_read(struct ev_loop *loop, ev_io *w, int revents);
static void on_write(struct ev_loop *loop, ev_io *w, int revents);
static void on_timer(struct ev_loop *loop, ev_timer *w, int revents);

struct conn *vconn_new(struct vsock_uds *u, int fd)
{
	struct conn *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	c->u = u;
	c->fd = fd;
	ev_io_init(&c->rd, on_read, fd, EV_READ);
	ev_io_init(&c->wr, on_write, fd, EV_WRITE);
	ev_init(&c->timer, on_timer);
	c->rd.data = c->wr.data = c->timer.data = c;
	vsock_credit_init(&c->cr, VSOCK_CONN_BUF);
	c->next = u->all;
	if (u->all)
		u->all->prev = c;
	u->all = c;
	u->st.open++;
	u->st.conns++;
	return c;
}

/* Read from the socket only while the guest can take data and nothing is owed yet. */
void vconn_update_reader(struct conn *c)
{
	struct ev_loop *loop = c->u->loop;
	bool want = c->state == CS_LINE ||
		(c->state == CS_ESTABLISHED && !c->sock_eof && !c->peer_no_rcv &&
			!(c->owed & P_DATA) && vsock_credit_peer_free(&c->cr) > 0);

	if (want && !ev_is_active(&c->rd))
		ev_io_start(loop, &c->rd);
	else if (!want && ev_is_active(&c->rd))
		ev_io_stop(loop, &c->rd);
}

void vconn_start_timer(struct conn *c, unsigned ms)
{
	ev_timer_stop(c->u->loop, &c->timer);
	ev_timer_set(&c->timer, ms / 1000.0, 0.);
	ev_timer_start(c->u->loop, &c->timer);
}

/* Write buffered guest bytes to the socket. 0, or -errno when the connection is broken. */
int vconn_flush(struct conn *c)
{
	while (c->len) {
		size_t chunk = c->len;
		ssize_t n;

		if (c->head + chunk > VSOCK_CONN_BUF)
			chunk = VSOCK_CONN_BUF - c->head;
		n = send(c->fd, c->buf + c->head, chunk, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			break;
		if (n <= 0)
			return n < 0 ? -errno : -EPIPE;
		c->head = (c->head + (size_t)n) % VSOCK_CONN_BUF;
		c->len -= (size_t)n;
		c->cr.fwd_cnt += (uint32_t)n;
		c->u->st.tx_bytes += (uint64_t)n;
	}
	if (c->len && !ev_is_active(&c->wr))
		ev_io_start(c->u->loop, &c->wr);
	else if (!c->len && ev_is_active(&c->wr))
		ev_io_stop(c->u->loop, &c->wr);
	if (vsock_credit_update_due(&c->cr))
		vconn_enqueue(c, P_CREDIT);
	if (c->len)
		return 0;
	if (c->state == CS_CLOSING) {
		vconn_kill(c);
	} else if (c->peer_no_send && !c->shut_wr) {
		shutdown(c->fd, SHUT_WR);
		c->shut_wr = true;
	}
	return 0;
}

bool vsock_uds_pending(const struct vsock_uds *u)
{
	return u->orphan_len || u->qhead;
}

static void wake(struct vsock_uds *u)
{
	if (vsock_uds_pending(u))
		u->wake(u->ctx);
}

static uint32_t next_local_port(struct vsock_uds *u)
{
	for (;;) {
		uint32_t p = u->local_port_last + 1;
		bool used = false;

		if (p < VSOCK_LOCAL_PORT_FIRST)
			p = VSOCK_LOCAL_PORT_FIRST;
		u->local_port_last = p;
		for (struct conn *c = u->all; c && !used; c = c->next)
			used = c->host_initiated && c->state != CS_LINE && c->local_port == p;
		if (!used)
			return p;
	}
}

/* A host client's first line, consumed up to its '\n' and no further. */
static void read_line(struct conn *c)
{
	size_t room = sizeof(c->line) - c->line_len;
	ssize_t n = recv(c->fd, c->line + c->line_len, room, MSG_PEEK | MSG_DONTWAIT);
	char *nl;
	uint32_t port = 0;
	int r;

	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		vconn_free(c);
		return;
	}
	nl = memchr(c->line + c->line_len, '\n', (size_t)n);
	if (nl)
		n = nl - (c->line + c->line_len) + 1;
	if (recv(c->fd, c->line + c->line_len, (size_t)n, MSG_DONTWAIT) != n) {
		vconn_free(c);
		return;
	}
	c->line_len += (size_t)n;
	r = vsock_parse_connect(c->line, c->line_len, &port);
	if (r == 0)
		return;
	if (r < 0) {
		c->u->st.bad_connect_lines++;
		log_warn_ratelimited("vsock: bad CONNECT line from a host client, closing it");
		vconn_free(c);
		return;
	}
	c->state = CS_REQUESTED;
	c->peer_port = port;
	c->local_port = next_local_port(c->u);
	vconn_hash_add(c);
	vconn_update_reader(c);
	vconn_start_timer(c, VSOCK_CONNECT_TIMEOUT_MS);
	vconn_enqueue(c, P_REQUEST);
}

static void on_read(struct ev_loop *loop, ev_io *w, int revents)
{
	struct conn *c = w->data;
	struct vsock_uds *u = c->u;

	(void)loop;
	(void)revents;
	if (c->state == CS_LINE) {
		read_line(c);
	} else {
		/* Data (or EOF) is waiting: the guest takes it when it has a buffer. */
		vconn_enqueue(c, P_DATA);
		vconn_update_reader(c);
	}
	wake(u);
}

static void on_write(struct ev_loop *loop, ev_io *w, int revents)
{
	struct conn *c = w->data;
	struct vsock_uds *u = c->u;

	(void)loop;
	(void)revents;
	if (vconn_flush(c) < 0)
		vconn_kill(c);
	wake(u);
}

static void on_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct conn *c = w->data;
	struct vsock_uds *u = c->u;

	(void)loop;
	(void)revents;
	if (c->state == CS_REQUESTED) {
		static struct log_ratelimit quiet_port; /* the guest decides how often */
		log_ratelimited_at(&quiet_port, LOG_INFO, __FILE__, __LINE__,
			"vsock: guest port %u did not answer a host connection", c->peer_port);
	}
	if (c->state == CS_REQUESTED || c->state == CS_CLOSING)
		vconn_kill(c);
	wake(u);
}

static void on_accept(struct ev_loop *loop, ev_io *w, int revents)
{
	struct vsock_uds *u = w->data;

	(void)loop;
	(void)revents;
	for (int i = 0; i < ACCEPT_BURST; i++) {
		int fd = accept4(u->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		struct conn *c;

		if (fd < 0)
			return;
		if (u->st.open >= VSOCK_MAX_CONNS || !(c = vconn_new(u, fd))) {
			u->st.conn_refused++;
			close(fd);
			continue;
		}
		c->host_initiated = true;
		u->st.conns_host++;
		c->state = CS_LINE;
		vconn_update_reader(c);
	}
}

void vconn_guest_connect(struct vsock_uds *u, const struct vsock_hdr *h)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct conn *c;
	int fd, n;

	u->st.conns_guest++;
	n = snprintf(sa.sun_path, sizeof(sa.sun_path), "%s_%u", u->path, h->dst_port);
	if (n < 0 || (size_t)n >= sizeof(sa.sun_path) || u->st.open >= VSOCK_MAX_CONNS)
		goto refuse;
	fd = vsock_spares_take(&u->spares);
	if (fd < 0)
		goto refuse;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || !(c = vconn_new(u, fd))) {
		log_debug("vsock: guest connection to %s: %s", sa.sun_path, strerror(errno));
		close(fd);
		goto refuse;
	}
	c->state = CS_ESTABLISHED;
	c->local_port = h->dst_port;
	c->peer_port = h->src_port;
	vsock_credit_peer(&c->cr, h->buf_alloc, h->fwd_cnt);
	vconn_hash_add(c);
	vconn_enqueue(c, P_RESPONSE);
	vconn_update_reader(c);
	return;
refuse:
	u->st.conn_refused++;
	vconn_orphan_rst(u, h);
}

void vsock_uds_reset(struct vsock_uds *u)
{
	while (u->all)
		vconn_free(u->all);
	u->orphan_len = 0;
	u->orphan_head = 0;
}

void vsock_uds_serve_from(struct vsock_uds *u, struct ev_loop *control)
{
	vsock_spares_start(&u->spares, control);
}

void vsock_uds_set_guest_cid(struct vsock_uds *u, uint64_t cid)
{
	u->guest_cid = cid;
}

uint32_t vsock_uds_local_port_last(const struct vsock_uds *u)
{
	return u->local_port_last;
}

void vsock_uds_set_local_port_last(struct vsock_uds *u, uint32_t port)
{
	u->local_port_last = port;
}

void vsock_uds_stats(const struct vsock_uds *u, struct vsock_uds_stats *s)
{
	*s = u->st;
}

struct vsock_uds *vsock_uds_new(struct ev_loop *loop, const char *path, uint64_t guest_cid,
	vsock_wake_fn wake_fn, void *ctx, char *err, size_t errlen)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct vsock_uds *u;

	if (strlen(path) >= sizeof(sa.sun_path)) {
		snprintf(err, errlen, "vsock: uds_path %s is longer than %zu bytes", path,
			sizeof(sa.sun_path) - 1);
		return NULL;
	}
	strcpy(sa.sun_path, path);
	u = calloc(1, sizeof(*u));
	if (!u || !(u->path = strdup(path))) {
		snprintf(err, errlen, "vsock: %s", strerror(ENOMEM));
		free(u);
		return NULL;
	}
	u->loop = loop;
	u->guest_cid = guest_cid;
	u->wake = wake_fn;
	u->ctx = ctx;
	u->local_port_last = VSOCK_LOCAL_PORT_FIRST - 1;
	vsock_spares_init(&u->spares);
	u->listen_fd = unix_listen("vsock: cannot listen on", path, 64, &u->sock_id, err, errlen);
	if (u->listen_fd < 0) {
		vsock_spares_deinit(&u->spares);
		free(u->path);
		free(u);
		return NULL;
	}
	ev_io_init(&u->accept_w, on_accept, u->listen_fd, EV_READ);
	u->accept_w.data = u;
	ev_io_start(loop, &u->accept_w);
	return u;
}

void vsock_uds_free(struct vsock_uds *u)
{
	if (!u)
		return;
	vsock_uds_reset(u);
	ev_io_stop(u->loop, &u->accept_w);
	close(u->listen_fd);
	/* Only our own socket: a VM restored from this one's snapshot may listen there now. */
	unix_unlink_own(u->path, &u->sock_id);
	vsock_spares_deinit(&u->spares);
	free(u->path);
	free(u);
}
