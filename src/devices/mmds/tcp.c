/* MMDS TCP: a small server on port 80 for the guest's HTTP clients. The link is a
 * point-to-point ring that neither loses nor reorders much, so: no congestion control,
 * in-order data only (anything else is acknowledged and dropped), go-back-N
 * retransmission of the reply on a timer, a bounded table of connections. */
#include "internal.h"

#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#define MMDS_PORT 80
#define MAX_CONNS 30
#define MAX_CTL 32          /* resets and last ACKs waiting to go out */
#define RX_BUF 4096         /* request bytes a connection holds: the receive window */
#define RTO_NS 200000000ull /* first retransmission after 200 ms, then doubled */
#define RTO_MAX_NS 3000000000ull
#define MAX_RETRIES 7
#define DEFAULT_MSS 536 /* RFC 9293 when the SYN names none */

enum conn_state { C_FREE, C_SYN_RCVD, C_OPEN };

struct conn {
	enum conn_state state;
	uint8_t mac[6];
	uint32_t ip;
	uint16_t port;
	uint32_t iss, irs, snd_una, snd_nxt, rcv_nxt;
	uint16_t peer_wnd, mss;
	bool need_ack, fin_rcvd, fin_sent, close_after, probe;
	struct mmds_reply reply; /* the answer being sent (text NULL: none) */
	uint32_t reply_seq;      /* sequence number of reply.text[0] */
	uint64_t rto_at, rto_ns; /* retransmission timer (0: off) */
	uint64_t idle_at;        /* reset if the guest sends nothing on it until then */
	unsigned retries;
	size_t rx_len;
	char rx[RX_BUF];
};

struct tcp_table {
	struct mmds *m;
	struct conn conns[MAX_CONNS];
	struct tcp_seg ctl[MAX_CTL];
	unsigned nr_ctl, next;
};

static int32_t diff(uint32_t a, uint32_t b)
{
	return (int32_t)(a - b);
}

struct tcp_table *tcp_table_new(struct mmds *m)
{
	struct tcp_table *t = calloc(1, sizeof(*t));

	if (t)
		t->m = m;
	return t;
}

static void conn_free(struct conn *c)
{
	free(c->reply.text);
	memset(c, 0, offsetof(struct conn, rx));
	c->state = C_FREE;
}

void tcp_table_clear(struct tcp_table *t)
{
	for (unsigned i = 0; i < MAX_CONNS; i++)
		if (t->conns[i].state != C_FREE)
			conn_free(&t->conns[i]);
	t->nr_ctl = 0;
}

void tcp_table_free(struct tcp_table *t)
{
	if (!t)
		return;
	tcp_table_clear(t);
	free(t);
}

/* Queue a segment that belongs to no connection (a reset, a last ACK). */
static void ctl(struct tcp_table *t, const struct tcp_seg *to, uint32_t seq, uint32_t ack,
	uint8_t flags, struct mmds_stats *st)
{
	struct tcp_seg *s;

	if (t->nr_ctl == MAX_CTL) {
		st->dropped_replies++;
		return;
	}
	s = &t->ctl[t->nr_ctl++];
	*s = (struct tcp_seg){ .ip = to->ip,
		.port = to->port,
		.our_port = to->our_port,
		.seq = seq,
		.ack = ack,
		.flags = flags };
	memcpy(s->mac, to->mac, 6);
	if (flags & TCP_RST)
		st->tx_resets++;
}

/* RFC 9293 3.10.7.1: the reset answering a segment nothing expected. */
static void reset_for(struct tcp_table *t, const struct tcp_seg *seg, struct mmds_stats *st)
{
	if (seg->flags & TCP_ACK)
		ctl(t, seg, seg->ack, 0, TCP_RST, st);
	else
		ctl(t, seg, 0,
			seg->seq + (uint32_t)seg->len + !!(seg->flags & TCP_SYN) +
				!!(seg->flags & TCP_FIN),
			TCP_RST | TCP_ACK, st);
}

/* Give up on a connection: a reset tells the guest, and the slot is free again. */
static void abort_conn(struct tcp_table *t, struct conn *c, struct mmds_stats *st)
{
	struct tcp_seg to = { .ip = c->ip, .port = c->port, .our_port = MMDS_PORT };

	memcpy(to.mac, c->mac, 6);
	ctl(t, &to, c->snd_nxt, 0, TCP_RST, st);
	conn_free(c);
}

static struct conn *find(struct tcp_table *t, uint32_t ip, uint16_t port)
{
	for (unsigned i = 0; i < MAX_CONNS; i++)
		if (t->conns[i].state != C_FREE && t->conns[i].ip == ip && t->conns[i].port == port)
			return &t->conns[i];
	return NULL;
}

static uint32_t random_iss(void)
{
	uint32_t v = 0;

	if (getrandom(&v, sizeof(v), GRND_NONBLOCK) != (ssize_t)sizeof(v))
		v = (uint32_t)(uintptr_t)&v * 2654435761u; /* no entropy yet: still varies */
	return v;
}

static void accept_syn(struct tcp_table *t, const struct tcp_seg *seg, uint64_t now,
	struct mmds_stats *st)
{
	struct conn *c = NULL;

	for (unsigned i = 0; i < MAX_CONNS && !c; i++)
		if (t->conns[i].state == C_FREE)
			c = &t->conns[i];
	if (!c || seg->our_port != MMDS_PORT) {
		if (!c)
			st->conns_refused++;
		reset_for(t, seg, st);
		return;
	}
	memset(c, 0, offsetof(struct conn, rx));
	c->state = C_SYN_RCVD;
	memcpy(c->mac, seg->mac, 6);
	c->ip = seg->ip;
	c->port = seg->port;
	c->irs = seg->seq;
	c->rcv_nxt = seg->seq + 1;
	c->iss = c->snd_una = c->snd_nxt = random_iss();
	c->peer_wnd = seg->window;
	c->mss = seg->mss ? seg->mss : DEFAULT_MSS;
	if (c->mss > MMDS_MSS)
		c->mss = MMDS_MSS;
	c->rto_ns = RTO_NS;
	c->idle_at = now + MMDS_TCP_IDLE_TIMEOUT_NS;
	st->conns_created++;
}

/* Answer the requests waiting in rx, one at a time (the next when this one is acked). */
static void serve(struct tcp_table *t, struct conn *c, uint64_t now, struct mmds_stats *st)
{
	size_t used;

	if (c->reply.text || c->close_after || c->rx_len == 0)
		return;
	used = mmds_http_handle(t->m, c->rx, c->rx_len, now, &c->reply);
	if (used == 0) {
		if (c->rx_len == RX_BUF) { /* a request larger than we hold: give up on it */
			st->http_errors++;
			abort_conn(t, c, st);
		}
		return;
	}
	if (used > c->rx_len)
		used = c->rx_len;
	memmove(c->rx, c->rx + used, c->rx_len - used);
	c->rx_len -= used;
	st->http_requests++;
	if (c->reply.status >= 400)
		st->http_errors++;
	c->reply_seq = c->snd_nxt;
	c->close_after = c->reply.close || !c->reply.text;
	if (!c->reply.text)
		c->reply.len = 0;
}

static uint32_t reply_end(const struct conn *c)
{
	return c->reply_seq + (uint32_t)c->reply.len;
}

/* The peer acknowledged up to `ack`. */
static void acked(struct conn *c, uint32_t ack, uint64_t now)
{
	c->snd_una = ack;
	c->retries = 0;
	c->rto_ns = RTO_NS;
	c->rto_at = c->snd_una == c->snd_nxt ? 0 : now + c->rto_ns;
	if (c->reply.text && diff(c->snd_una, reply_end(c)) >= 0) {
		free(c->reply.text);
		c->reply.text = NULL;
		c->reply.len = 0;
	}
}

/* Data (and FIN) of an in-order segment; false if the segment was not acceptable. */
static bool take_data(struct conn *c, const struct tcp_seg *seg, struct mmds_stats *st)
{
	const uint8_t *p = seg->data;
	size_t len = seg->len, room;
	uint32_t off = c->rcv_nxt - seg->seq;
	bool fin = seg->flags & TCP_FIN;

	if (!len && !fin)
		return true;
	if (diff(c->rcv_nxt, seg->seq) < 0 || off > len || (off == len && !fin && len)) {
		st->rx_out_of_window++; /* ahead of what we expect, or wholly old: re-ACK */
		c->need_ack = true;
		return false;
	}
	if (c->fin_rcvd) {
		c->need_ack = true;
		return true;
	}
	p += off;
	len -= off;
	room = RX_BUF - c->rx_len;
	if (len > room) {
		st->rx_out_of_window++;
		len = room;
		fin = false; /* the FIN comes after bytes we did not take */
	}
	memcpy(c->rx + c->rx_len, p, len);
	c->rx_len += len;
	c->rcv_nxt += (uint32_t)len;
	if (fin) {
		c->fin_rcvd = true;
		c->rcv_nxt++;
	}
	c->need_ack = true;
	return true;
}

void tcp_input(struct tcp_table *t, const struct tcp_seg *seg, uint64_t now, struct mmds_stats *st)
{
	struct conn *c = find(t, seg->ip, seg->port);

	if (!c || seg->our_port != MMDS_PORT) {
		if (seg->flags & TCP_RST)
			return;
		if ((seg->flags & (TCP_SYN | TCP_ACK | TCP_FIN)) == TCP_SYN && !c) {
			accept_syn(t, seg, now, st);
			return;
		}
		st->rx_unexpected++;
		reset_for(t, seg, st);
		return;
	}
	c->idle_at = now + MMDS_TCP_IDLE_TIMEOUT_NS; /* the guest still uses it */
	if (seg->flags & TCP_RST) {
		/* RFC 5961: only a reset at exactly the next sequence number closes. */
		if (seg->seq == c->rcv_nxt) {
			conn_free(c);
			st->conns_closed++;
		} else {
			st->rx_out_of_window++;
		}
		return;
	}
	if (seg->flags & TCP_SYN) {
		if (c->state == C_SYN_RCVD && seg->seq == c->irs) {
			c->snd_nxt = c->iss; /* our SYN-ACK was lost: again */
			return;
		}
		st->rx_unexpected++;
		ctl(t, seg, c->snd_nxt, 0, TCP_RST, st);
		conn_free(c);
		return;
	}
	if (!(seg->flags & TCP_ACK)) {
		st->rx_bad_tcp++;
		return;
	}
	if (c->state == C_SYN_RCVD) {
		if (seg->ack != c->iss + 1) {
			st->rx_unexpected++;
			reset_for(t, seg, st);
			return;
		}
		c->state = C_OPEN;
	}
	if (diff(seg->ack, c->snd_nxt) > 0) {
		st->rx_out_of_window++; /* acknowledges what we never sent */
		c->need_ack = true;
		return;
	}
	if (diff(seg->ack, c->snd_una) > 0)
		acked(c, seg->ack, now);
	c->peer_wnd = seg->window;
	if (!take_data(c, seg, st))
		return;
	if (c->fin_sent && c->fin_rcvd && c->snd_una == c->snd_nxt) {
		/* Both sides closed and our FIN is acknowledged: the last ACK goes alone. */
		if (c->need_ack)
			ctl(t, seg, c->snd_nxt, c->rcv_nxt, TCP_ACK, st);
		conn_free(c);
		st->conns_closed++;
		return;
	}
	serve(t, c, now, st);
}

static void arm(struct conn *c, uint64_t now)
{
	if (!c->rto_at)
		c->rto_at = now + c->rto_ns;
}

/* The next segment of one connection, if it has one. */
static bool conn_output(struct conn *c, struct tcp_seg *s, uint64_t now)
{
	uint32_t in_flight = c->snd_nxt - c->snd_una;
	size_t off, avail, n;

	*s = (struct tcp_seg){ .ip = c->ip,
		.port = c->port,
		.our_port = MMDS_PORT,
		.ack = c->rcv_nxt,
		.flags = TCP_ACK,
		.window = (uint16_t)(RX_BUF - c->rx_len) };
	memcpy(s->mac, c->mac, 6);
	if (c->state == C_SYN_RCVD) {
		if (c->snd_nxt != c->iss)
			return false;
		s->seq = c->iss;
		s->flags = TCP_SYN | TCP_ACK;
		s->mss = MMDS_MSS;
		c->snd_nxt = c->iss + 1;
		arm(c, now);
		return true;
	}
	s->seq = c->snd_nxt;
	if (c->reply.text && diff(c->snd_nxt, reply_end(c)) < 0) {
		off = c->snd_nxt - c->reply_seq;
		avail = c->reply.len - off;
		n = c->peer_wnd > in_flight ? c->peer_wnd - in_flight : 0;
		if (c->probe && n == 0)
			n = 1; /* zero window: one byte asks whether it opened */
		n = n < avail ? n : avail;
		n = n < c->mss ? n : c->mss;
		if (n) {
			s->data = (const uint8_t *)c->reply.text + off;
			s->len = n;
			if (n == avail)
				s->flags |= TCP_PSH;
			c->snd_nxt += (uint32_t)n;
			c->probe = false;
			c->need_ack = false;
			arm(c, now);
			return true;
		}
		if (!c->rto_at)
			c->rto_at = now + c->rto_ns; /* to probe a zero window */
	}
	/* Close when the reply said so, or when the peer closed and nothing is left. */
	if (!c->fin_sent && (!c->reply.text || c->snd_nxt == reply_end(c)) &&
		(c->close_after || (c->fin_rcvd && !c->reply.text))) {
		s->flags |= TCP_FIN;
		c->fin_sent = true;
		c->snd_nxt++;
		c->need_ack = false;
		arm(c, now);
		return true;
	}
	if (c->need_ack) {
		c->need_ack = false;
		return true;
	}
	return false;
}

bool tcp_output(struct tcp_table *t, struct tcp_seg *seg, uint64_t now, struct mmds_stats *st)
{
	(void)st;
	if (t->nr_ctl) {
		*seg = t->ctl[0];
		memmove(t->ctl, t->ctl + 1, --t->nr_ctl * sizeof(t->ctl[0]));
		return true;
	}
	for (unsigned k = 0; k < MAX_CONNS; k++) {
		unsigned i = (t->next + k) % MAX_CONNS;
		if (t->conns[i].state != C_FREE && conn_output(&t->conns[i], seg, now)) {
			t->next = (i + 1) % MAX_CONNS;
			return true;
		}
	}
	return false;
}

uint64_t tcp_deadline(const struct tcp_table *t)
{
	uint64_t d = 0;

	for (unsigned i = 0; i < MAX_CONNS; i++) {
		const struct conn *c = &t->conns[i];
		if (c->state == C_FREE)
			continue;
		if (c->rto_at && (!d || c->rto_at < d))
			d = c->rto_at;
		if (!d || c->idle_at < d)
			d = c->idle_at;
	}
	return d;
}

void tcp_tick(struct tcp_table *t, uint64_t now, struct mmds_stats *st)
{
	for (unsigned i = 0; i < MAX_CONNS; i++) {
		struct conn *c = &t->conns[i];
		if (c->state != C_FREE && c->idle_at <= now) {
			abort_conn(t, c, st);
			st->conns_timed_out++;
			continue;
		}
		if (c->state == C_FREE || !c->rto_at || c->rto_at > now)
			continue;
		if (++c->retries > MAX_RETRIES) {
			abort_conn(t, c, st);
			st->conns_timed_out++;
			continue;
		}
		/* Go back to the oldest unacknowledged byte (or SYN, or FIN) and send again. */
		if (c->snd_nxt == c->snd_una)
			c->probe = true;
		c->snd_nxt = c->snd_una;
		if (c->fin_sent && (!c->reply.text || diff(c->snd_una, reply_end(c)) >= 0))
			c->fin_sent = false;
		c->rto_ns = c->rto_ns * 2 > RTO_MAX_NS ? RTO_MAX_NS : c->rto_ns * 2;
		c->rto_at = 0;
		st->tx_retransmits++;
	}
}
