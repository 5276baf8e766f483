/* vsock host side: packets from the guest (dispatch, credit, shutdown) and packets for
 * it (control replies, data read from the sockets, RSTs). */
#include "ember/vsock.h"

#include <errno.h>
#include <ev.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "vsock_uds_internal.h"

static void take_data(struct conn *c, const uint8_t *data, uint32_t n)
{
	size_t tail = (c->head + c->len) % VSOCK_CONN_BUF, first = n;

	if (!c->buf && !(c->buf = malloc(VSOCK_CONN_BUF))) {
		vconn_kill(c);
		return;
	}
	if (tail + first > VSOCK_CONN_BUF)
		first = VSOCK_CONN_BUF - tail;
	memcpy(c->buf + tail, data, first);
	memcpy(c->buf, data + first, n - first);
	c->len += n;
	if (vconn_flush(c) < 0)
		vconn_kill(c);
}

/* The guest asks for host port h->dst_port: connect to "<uds_path>_<port>". */
static void rx_shutdown(struct conn *c, uint32_t flags)
{
	if (flags & VSOCK_SHUTDOWN_RCV) {
		c->peer_no_rcv = true;
		c->owed &= ~(unsigned)P_DATA;
	}
	if (flags & VSOCK_SHUTDOWN_SEND)
		c->peer_no_send = true;
	if (c->peer_no_rcv && c->peer_no_send) {
		/* The guest closed: hand on what it sent, then answer RST. */
		c->state = CS_CLOSING;
		vconn_start_timer(c, VSOCK_CLOSE_TIMEOUT_MS);
	}
	if (vconn_flush(c) < 0)
		vconn_kill(c);
	else if (c->state != CS_DEAD)
		vconn_update_reader(c);
}

static void rx_response(struct conn *c)
{
	char ok[32];
	int n = snprintf(ok, sizeof(ok), "OK %u\n", c->local_port);

	ev_timer_stop(c->u->loop, &c->timer);
	/* A fresh socket takes a few bytes whole; if not, the client is broken. */
	if (send(c->fd, ok, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT) != n) {
		vconn_kill(c);
		return;
	}
	c->state = CS_ESTABLISHED;
	vconn_update_reader(c);
}

void vsock_uds_send(struct vsock_uds *u, const struct vsock_hdr *h, const uint8_t *payload)
{
	struct conn *c;

	if (h->dst_cid != VSOCK_HOST_CID) {
		vconn_orphan_rst(u, h);
		return;
	}
	c = vconn_lookup(u, h->dst_port, h->src_port);
	if (!c) {
		if (h->op == VSOCK_OP_REQUEST)
			vconn_guest_connect(u, h);
		else
			vconn_orphan_rst(u, h);
		return;
	}
	vsock_credit_peer(&c->cr, h->buf_alloc, h->fwd_cnt);
	switch (h->op) {
	case VSOCK_OP_RST:
		vconn_free(c);
		return;
	case VSOCK_OP_RESPONSE:
		if (c->state != CS_REQUESTED)
			break;
		rx_response(c);
		return;
	case VSOCK_OP_SHUTDOWN:
		rx_shutdown(c, h->flags);
		return;
	case VSOCK_OP_CREDIT_REQUEST:
		vconn_enqueue(c, P_CREDIT);
		/* fall through */
	case VSOCK_OP_CREDIT_UPDATE:
		vconn_update_reader(c);
		return;
	case VSOCK_OP_RW:
		if (c->state != CS_ESTABLISHED || c->peer_no_send)
			break;
		if (vsock_credit_rx(&c->cr, h->len) < 0) {
			u->st.credit_violations++;
			break;
		}
		take_data(c, payload, h->len);
		if (c->state != CS_DEAD)
			vconn_update_reader(c);
		return;
	default: /* a REQUEST for a connection that exists */
		break;
	}
	vconn_kill(c);
}

bool vsock_uds_can_send(const struct vsock_uds *u)
{
	return u->orphan_len < ORPHAN_RING;
}

static void reply_hdr(const struct conn *c, struct vsock_hdr *h, uint16_t op)
{
	memset(h, 0, sizeof(*h));
	h->src_cid = VSOCK_HOST_CID;
	h->dst_cid = c->u->guest_cid;
	h->src_port = c->local_port;
	h->dst_port = c->peer_port;
	h->type = VSOCK_TYPE_STREAM;
	h->op = op;
	h->buf_alloc = c->cr.buf_alloc;
	h->fwd_cnt = c->cr.fwd_cnt;
}

/* Data or EOF from the socket, or a credit update if it had nothing after all. */
static int recv_data(struct conn *c, struct vsock_hdr *h, uint8_t *buf, size_t cap)
{
	uint32_t credit = vsock_credit_peer_free(&c->cr);
	ssize_t n;

	c->owed &= ~(unsigned)P_DATA;
	if (cap > credit)
		cap = credit;
	if (cap > VSOCK_MAX_PAYLOAD)
		cap = VSOCK_MAX_PAYLOAD;
	n = cap ? recv(c->fd, buf, cap, MSG_DONTWAIT) : -1;
	if (n > 0) {
		reply_hdr(c, h, VSOCK_OP_RW);
		h->len = (uint32_t)n;
		c->cr.tx_cnt += (uint32_t)n;
		c->u->st.rx_bytes += (uint64_t)n;
	} else if (n == 0) {
		c->sock_eof = true;
		reply_hdr(c, h, VSOCK_OP_SHUTDOWN);
		h->flags = VSOCK_SHUTDOWN_SEND | (c->peer_no_send ? VSOCK_SHUTDOWN_RCV : 0);
	} else if (cap && errno != EAGAIN && errno != EINTR) {
		vconn_kill(c);
		return -EAGAIN; /* the RST goes out next */
	} else {
		reply_hdr(c, h, VSOCK_OP_CREDIT_UPDATE);
	}
	vconn_update_reader(c);
	return (int)h->len;
}

int vsock_uds_recv(struct vsock_uds *u, struct vsock_hdr *h, uint8_t *buf, size_t cap)
{
	for (;;) {
		struct conn *c = u->qhead;
		int r = 0;

		if (u->orphan_len) {
			struct orphan *o = &u->orphans[u->orphan_head];

			memset(h, 0, sizeof(*h));
			h->src_cid = o->cid;
			h->dst_cid = u->guest_cid;
			h->src_port = o->src_port;
			h->dst_port = o->dst_port;
			h->type = VSOCK_TYPE_STREAM;
			h->op = VSOCK_OP_RST;
			u->orphan_head = (u->orphan_head + 1) % ORPHAN_RING;
			u->orphan_len--;
			u->st.rst_sent++;
			return 0;
		}
		if (!c)
			return -ENOENT;
		if (c->owed & P_RST) {
			reply_hdr(c, h, VSOCK_OP_RST);
			u->st.rst_sent++;
			vconn_free(c);
			return 0;
		}
		if (c->owed & P_RESPONSE) {
			c->owed &= ~(unsigned)P_RESPONSE;
			reply_hdr(c, h, VSOCK_OP_RESPONSE);
		} else if (c->owed & P_REQUEST) {
			c->owed &= ~(unsigned)P_REQUEST;
			reply_hdr(c, h, VSOCK_OP_REQUEST);
		} else if (c->owed & P_SHUTDOWN) {
			c->owed &= ~(unsigned)P_SHUTDOWN;
			reply_hdr(c, h, VSOCK_OP_SHUTDOWN);
			h->flags = c->shut_flags;
		} else if (c->owed & P_DATA) {
			r = recv_data(c, h, buf, cap);
			if (r < 0)
				continue;
		} else {
			c->owed &= ~(unsigned)P_CREDIT;
			reply_hdr(c, h, VSOCK_OP_CREDIT_UPDATE);
		}
		/* Every packet carries fwd_cnt: any credit update owed is now sent. */
		c->cr.fwd_cnt_sent = c->cr.fwd_cnt;
		c->owed &= ~(unsigned)P_CREDIT;
		/* Round robin: a connection that owes more goes to the back. */
		vconn_dequeue(c);
		if (c->owed)
			vconn_enqueue(c, 0);
		return r;
	}
}
