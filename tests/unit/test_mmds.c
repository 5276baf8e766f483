/* Unit tests for MMDS: the guest-facing stack fed with crafted frames (ARP, IPv4, TCP,
 * bad checksums, truncations, fragments, out-of-window segments, many connections), the
 * HTTP/IMDS answers and the V2 tokens, on a clock the tests move by hand. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ember/mmds.h"

#define MS 1000000ull
#define S (1000 * MS)
#define GUEST_IP 0xa9fe0002u /* 169.254.0.2 */
#define MMDS_IP MMDS_DEFAULT_IPV4

static const uint8_t guest_mac[6] = { 0x06, 0, 0xac, 0x10, 0, 2 };
static const uint8_t mmds_mac[6] = MMDS_MAC;

struct rig {
	struct mmds *m;
	struct mmds_stack *s;
	uint64_t now;
};

static int setup(void **state)
{
	struct rig *r = calloc(1, sizeof(*r));
	cJSON *data = cJSON_Parse("{\"latest\":{\"meta-data\":{\"ami-id\":\"ami-1\","
				  "\"net\":{\"a\":\"b\"},\"n\":5}}}");

	assert_non_null(r);
	r->m = mmds_new();
	assert_non_null(r->m);
	assert_int_equal(mmds_set_data(r->m, data), 0);
	r->s = mmds_stack_new(r->m, MMDS_IP);
	assert_non_null(r->s);
	r->now = 1 * S;
	*state = r;
	return 0;
}

static int teardown(void **state)
{
	struct rig *r = *state;

	mmds_stack_free(r->s);
	mmds_free(r->m);
	free(r);
	return 0;
}

/* ---- frames (written here from the RFCs, independent of the stack's own code) ---- */

static void be16(uint8_t *p, unsigned v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static void be32(uint8_t *p, uint32_t v)
{
	be16(p, v >> 16);
	be16(p + 2, v & 0xffff);
}

static unsigned rd16(const uint8_t *p)
{
	return (unsigned)p[0] << 8 | p[1];
}

static uint32_t rd32(const uint8_t *p)
{
	return (uint32_t)rd16(p) << 16 | rd16(p + 2);
}

static uint16_t cksum(const uint8_t *p, size_t n, uint32_t sum)
{
	for (size_t i = 0; i + 1 < n; i += 2)
		sum += rd16(p + i);
	if (n & 1)
		sum += (uint32_t)p[n - 1] << 8;
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

static size_t arp_request(uint8_t *f, uint32_t target)
{
	memset(f, 0xff, 6);
	memcpy(f + 6, guest_mac, 6);
	be16(f + 12, 0x0806);
	be16(f + 14, 1);
	be16(f + 16, 0x0800);
	f[18] = 6;
	f[19] = 4;
	be16(f + 20, 1);
	memcpy(f + 22, guest_mac, 6);
	be32(f + 28, GUEST_IP);
	memset(f + 32, 0, 6);
	be32(f + 38, target);
	return 42;
}

struct seg {
	uint16_t sport, dport;
	uint32_t seq, ack;
	uint8_t flags;
	uint16_t window;
	const char *data;
	size_t len;
	bool mss;
};

enum { FIN = 1, SYN = 2, RST = 4, PSH = 8, ACK = 16 };

static size_t tcp_frame(uint8_t *f, const struct seg *s)
{
	size_t thl = s->mss ? 24 : 20, tot = 20 + thl + s->len;
	uint8_t *ip = f + 14, *t = ip + 20, ph[12];
	uint32_t sum = 0;

	memcpy(f, mmds_mac, 6);
	memcpy(f + 6, guest_mac, 6);
	be16(f + 12, 0x0800);
	memset(ip, 0, 20);
	ip[0] = 0x45;
	be16(ip + 2, (unsigned)tot);
	ip[8] = 64;
	ip[9] = 6;
	be32(ip + 12, GUEST_IP);
	be32(ip + 16, MMDS_IP);
	be16(ip + 10, cksum(ip, 20, 0));
	memset(t, 0, thl);
	be16(t, s->sport);
	be16(t + 2, s->dport ? s->dport : 80);
	be32(t + 4, s->seq);
	be32(t + 8, s->ack);
	t[12] = (uint8_t)(thl / 4 << 4);
	t[13] = s->flags;
	be16(t + 14, s->window ? s->window : 65535);
	if (s->mss) {
		t[20] = 2;
		t[21] = 4;
		be16(t + 22, 1460);
	}
	if (s->len) /* memcpy with a NULL source is undefined even for 0 bytes */
		memcpy(t + thl, s->data, s->len);
	be32(ph, GUEST_IP);
	be32(ph + 4, MMDS_IP);
	ph[8] = 0;
	ph[9] = 6;
	be16(ph + 10, (unsigned)(thl + s->len));
	for (int i = 0; i < 12; i += 2)
		sum += rd16(ph + i);
	be16(t + 16, cksum(t, thl + s->len, sum));
	return 14 + tot;
}

/* A frame the stack sent, checked (checksums, addresses) and taken apart. */
struct out {
	size_t len;
	uint8_t f[2048];
	uint8_t flags;
	uint32_t seq, ack;
	uint16_t sport, dport, window, mss;
	const uint8_t *data;
	size_t dlen;
};

static bool next(struct rig *r, struct out *o)
{
	uint8_t *ip = o->f + 14, *t = ip + 20, ph[12];
	uint32_t sum = 0;
	size_t tot, thl;

	memset(o, 0, sizeof(*o));
	o->len = mmds_stack_output(r->s, o->f, sizeof(o->f), r->now);
	if (!o->len)
		return false;
	assert_memory_equal(o->f, guest_mac, 6);
	assert_memory_equal(o->f + 6, mmds_mac, 6);
	if (rd16(o->f + 12) != 0x0800)
		return true;
	assert_int_equal(cksum(ip, 20, 0), 0);
	assert_int_equal(rd32(ip + 12), MMDS_IP);
	assert_int_equal(rd32(ip + 16), GUEST_IP);
	tot = rd16(ip + 2);
	assert_int_equal(o->len, 14 + tot);
	be32(ph, MMDS_IP);
	be32(ph + 4, GUEST_IP);
	ph[8] = 0;
	ph[9] = 6;
	be16(ph + 10, (unsigned)(tot - 20));
	for (int i = 0; i < 12; i += 2)
		sum += rd16(ph + i);
	assert_int_equal(cksum(t, tot - 20, sum), 0);
	thl = (size_t)(t[12] >> 4) * 4;
	o->sport = (uint16_t)rd16(t);
	o->dport = (uint16_t)rd16(t + 2);
	o->seq = rd32(t + 4);
	o->ack = rd32(t + 8);
	o->flags = t[13];
	o->window = (uint16_t)rd16(t + 14);
	if (thl == 24 && t[20] == 2)
		o->mss = (uint16_t)rd16(t + 22);
	o->data = t + thl;
	o->dlen = tot - 20 - thl;
	return true;
}

static bool in(struct rig *r, const struct seg *s)
{
	uint8_t f[2048];
	size_t n = tcp_frame(f, s);

	return mmds_stack_input(r->s, f, n, r->now);
}

/* Three-way handshake from port `port`; returns our ISS + 1 (the next seq we expect). */
static uint32_t connect_from(struct rig *r, uint16_t port, uint32_t iss)
{
	struct out o;

	assert_true(in(r, &(struct seg){ .sport = port, .seq = iss, .flags = SYN, .mss = true }));
	assert_true(next(r, &o));
	assert_int_equal(o.flags, SYN | ACK);
	assert_int_equal(o.ack, iss + 1);
	assert_int_equal(o.mss, 1460);
	assert_int_equal(o.dport, port);
	assert_true(in(r,
		&(struct seg){ .sport = port, .seq = iss + 1, .ack = o.seq + 1, .flags = ACK }));
	return o.seq + 1;
}

/* Everything the stack sends now, its TCP payloads concatenated into buf. */
static size_t drain(struct rig *r, char *buf, size_t cap, uint8_t *flags)
{
	struct out o;
	size_t n = 0;

	*flags = 0;
	while (next(r, &o)) {
		*flags |= o.flags;
		assert_true(n + o.dlen <= cap);
		memcpy(buf + n, o.data, o.dlen);
		n += o.dlen;
	}
	buf[n] = '\0';
	return n;
}

/* ---- tests ---- */

static void test_mmds_arp_request_for_mmds_is_answered(void **state)
{
	struct rig *r = *state;
	uint8_t f[64];
	struct out o;
	size_t n = arp_request(f, MMDS_IP);

	assert_true(mmds_stack_input(r->s, f, n, r->now));
	assert_true(next(r, &o));
	assert_int_equal(o.len, 42);
	assert_int_equal(rd16(o.f + 12), 0x0806);
	assert_int_equal(rd16(o.f + 20), 2);
	assert_memory_equal(o.f + 22, mmds_mac, 6);
	assert_int_equal(rd32(o.f + 28), MMDS_IP);
	assert_memory_equal(o.f + 32, guest_mac, 6);
	assert_int_equal(rd32(o.f + 38), GUEST_IP);
	assert_false(next(r, &o));
	/* for another address: not ours, it goes to the tap */
	n = arp_request(f, 0xa9fe0001u);
	assert_false(mmds_stack_input(r->s, f, n, r->now));
	/* truncated: cannot be told apart, so not consumed */
	n = arp_request(f, MMDS_IP);
	assert_false(mmds_stack_input(r->s, f, 30, r->now));
	/* a bad hardware type for our address: consumed, counted, unanswered */
	f[15] = 9;
	assert_true(mmds_stack_input(r->s, f, n, r->now));
	assert_false(next(r, &o));
	assert_int_equal(mmds_stack_stats(r->s)->rx_bad_arp, 1);
}

static void test_mmds_other_traffic_is_not_consumed(void **state)
{
	struct rig *r = *state;
	uint8_t f[128];
	size_t n = tcp_frame(f, &(struct seg){ .sport = 1000, .seq = 1, .flags = SYN });

	f[14 + 16 + 3] = 1; /* another destination address */
	assert_false(mmds_stack_input(r->s, f, n, r->now));
	f[12] = 0x86; /* IPv6 */
	f[13] = 0xdd;
	assert_false(mmds_stack_input(r->s, f, n, r->now));
	assert_false(mmds_stack_input(r->s, f, 5, r->now));
	assert_int_equal(mmds_stack_stats(r->s)->rx_frames, 0);
}

static void test_mmds_bad_ip_and_tcp_are_dropped_and_counted(void **state)
{
	struct rig *r = *state;
	const struct mmds_stats *st = mmds_stack_stats(r->s);
	uint8_t f[128], g[128];
	struct out o;
	size_t n = tcp_frame(f, &(struct seg){ .sport = 1000, .seq = 1, .flags = SYN });

	memcpy(g, f, n);
	g[14 + 10] ^= 1; /* IP header checksum */
	assert_true(mmds_stack_input(r->s, g, n, r->now));
	memcpy(g, f, n);
	g[14 + 20 + 16] ^= 1; /* TCP checksum */
	assert_true(mmds_stack_input(r->s, g, n, r->now));
	assert_int_equal(st->rx_bad_csum, 2);
	memcpy(g, f, n);
	assert_true(mmds_stack_input(r->s, g, 14 + 20 + 10, r->now)); /* truncated TCP */
	g[14] = 0x4f; /* IHL 60 bytes, beyond the packet */
	assert_true(mmds_stack_input(r->s, g, n, r->now));
	assert_int_equal(st->rx_bad_ip, 2);
	memcpy(g, f, n);
	g[14 + 6] = 0x20; /* more fragments (header checksum redone) */
	g[14 + 10] = g[14 + 11] = 0;
	be16(g + 14 + 10, cksum(g + 14, 20, 0));
	assert_true(mmds_stack_input(r->s, g, n, r->now));
	assert_int_equal(st->rx_fragments, 1);
	memcpy(g, f, n);
	g[14 + 9] = 17; /* UDP */
	g[14 + 10] = g[14 + 11] = 0;
	be16(g + 14 + 10, cksum(g + 14, 20, 0));
	assert_true(mmds_stack_input(r->s, g, n, r->now));
	assert_int_equal(st->rx_not_tcp, 1);
	assert_false(next(r, &o)); /* none of them was answered */
	assert_int_equal(st->conns_created, 0);
}

static void test_mmds_get_over_tcp_v1(void **state)
{
	struct rig *r = *state;
	static const char req[] = "GET /latest/meta-data/ami-id HTTP/1.1\r\nHost: x\r\n\r\n";
	uint32_t ours = connect_from(r, 40000, 1000);
	char buf[4096];
	uint8_t flags;
	struct out o;
	size_t n;

	assert_true(in(r,
		&(struct seg){ .sport = 40000,
			.seq = 1001,
			.ack = ours,
			.flags = ACK | PSH,
			.data = req,
			.len = sizeof(req) - 1 }));
	assert_true(next(r, &o));
	assert_int_equal(o.seq, ours);
	assert_int_equal(o.ack, 1001 + sizeof(req) - 1);
	assert_true(o.dlen > 0);
	memcpy(buf, o.data, o.dlen);
	buf[o.dlen] = 0;
	assert_non_null(strstr(buf, "HTTP/1.1 200 OK\r\n"));
	assert_non_null(strstr(buf, "Content-Type: text/plain\r\n"));
	assert_non_null(strstr(buf, "\r\n\r\nami-1"));
	n = o.dlen;
	/* acknowledged, then the guest closes: our FIN follows */
	assert_true(in(r,
		&(struct seg){ .sport = 40000,
			.seq = 1001 + sizeof(req) - 1,
			.ack = ours + (uint32_t)n,
			.flags = ACK | FIN }));
	drain(r, buf, sizeof(buf), &flags);
	assert_true(flags & FIN);
	assert_true(in(r,
		&(struct seg){ .sport = 40000,
			.seq = 1001 + sizeof(req),
			.ack = ours + (uint32_t)n + 1,
			.flags = ACK }));
	assert_int_equal(mmds_stack_stats(r->s)->conns_closed, 1);
	assert_false(next(r, &o));
}

static void test_mmds_reply_is_retransmitted_until_acked(void **state)
{
	struct rig *r = *state;
	static const char req[] = "GET /latest HTTP/1.1\r\n\r\n";
	uint32_t ours = connect_from(r, 40001, 5);
	struct out o, again;

	assert_true(in(r,
		&(struct seg){ .sport = 40001,
			.seq = 6,
			.ack = ours,
			.flags = ACK,
			.data = req,
			.len = sizeof(req) - 1 }));
	assert_true(next(r, &o));
	assert_false(next(r, &again));
	assert_true(mmds_stack_deadline(r->s) > r->now);
	r->now = mmds_stack_deadline(r->s);
	mmds_stack_tick(r->s, r->now);
	assert_true(next(r, &again));
	assert_int_equal(again.seq, o.seq);
	assert_int_equal(again.dlen, o.dlen);
	assert_memory_equal(again.data, o.data, o.dlen);
	assert_int_equal(mmds_stack_stats(r->s)->tx_retransmits, 1);
	assert_true(in(r,
		&(struct seg){ .sport = 40001,
			.seq = 6 + sizeof(req) - 1,
			.ack = ours + (uint32_t)o.dlen,
			.flags = ACK }));
	/* No retransmission left to time: only the idle timeout, from the last segment. */
	assert_int_equal(mmds_stack_deadline(r->s), r->now + MMDS_TCP_IDLE_TIMEOUT_NS);
}

static void test_mmds_unacked_connection_gives_up_with_reset(void **state)
{
	struct rig *r = *state;
	struct out o;
	int synacks = 0;
	bool reset = false;

	assert_true(in(r, &(struct seg){ .sport = 40002, .seq = 9, .flags = SYN }));
	assert_true(next(r, &o));
	for (int i = 0; i < 20 && mmds_stack_deadline(r->s); i++) {
		r->now = mmds_stack_deadline(r->s);
		mmds_stack_tick(r->s, r->now);
		while (next(r, &o)) {
			synacks += o.flags == (SYN | ACK);
			reset |= (o.flags & RST) != 0;
		}
	}
	assert_true(reset);
	assert_int_equal(synacks, 7);
	assert_int_equal(mmds_stack_stats(r->s)->conns_timed_out, 1);
	assert_int_equal(mmds_stack_deadline(r->s), 0);
}

/* An open connection the guest leaves silent is reset after the idle timeout, and its
 * slot serves a new one; a connection in use is not. */
static void test_mmds_idle_connection_is_reset_after_the_timeout(void **state)
{
	struct rig *r = *state;
	uint64_t start = r->now;
	struct out o;

	connect_from(r, 43000, 500);
	connect_from(r, 43001, 700);
	assert_false(next(r, &o));
	assert_int_equal(mmds_stack_deadline(r->s), start + MMDS_TCP_IDLE_TIMEOUT_NS);
	/* Half-way, 43001 speaks (a bare ACK): its idle time starts again. */
	r->now = start + MMDS_TCP_IDLE_TIMEOUT_NS / 2;
	assert_true(in(r, &(struct seg){ .sport = 43001, .seq = 701, .flags = ACK, .ack = 0 }));
	while (next(r, &o))
		;
	r->now = start + MMDS_TCP_IDLE_TIMEOUT_NS - 1;
	mmds_stack_tick(r->s, r->now);
	assert_false(next(r, &o));
	r->now = mmds_stack_deadline(r->s);
	assert_int_equal(r->now, start + MMDS_TCP_IDLE_TIMEOUT_NS);
	mmds_stack_tick(r->s, r->now);
	assert_true(next(r, &o));
	assert_int_equal(o.flags, RST);
	assert_int_equal(o.dport, 43000);
	assert_false(next(r, &o));
	assert_int_equal(mmds_stack_stats(r->s)->conns_timed_out, 1);
	/* 43001 lives until its own timeout, counted from its last segment. */
	assert_int_equal(mmds_stack_deadline(r->s),
		start + MMDS_TCP_IDLE_TIMEOUT_NS / 2 + MMDS_TCP_IDLE_TIMEOUT_NS);
	r->now = mmds_stack_deadline(r->s);
	mmds_stack_tick(r->s, r->now);
	assert_true(next(r, &o));
	assert_int_equal(o.dport, 43001);
	assert_int_equal(mmds_stack_deadline(r->s), 0);
}

static void test_mmds_unexpected_segments_get_resets(void **state)
{
	struct rig *r = *state;
	uint32_t ours;
	struct out o;

	/* an ACK for no connection: RST with its ack as seq */
	assert_true(in(r, &(struct seg){ .sport = 41000, .seq = 7, .ack = 1234, .flags = ACK }));
	assert_true(next(r, &o));
	assert_int_equal(o.flags, RST);
	assert_int_equal(o.seq, 1234);
	/* a SYN to another port: RST|ACK */
	assert_true(in(r, &(struct seg){ .sport = 41001, .dport = 8080, .seq = 7, .flags = SYN }));
	assert_true(next(r, &o));
	assert_int_equal(o.flags, RST | ACK);
	assert_int_equal(o.ack, 8);
	/* a reset for nothing gets nothing */
	assert_true(in(r, &(struct seg){ .sport = 41002, .seq = 7, .flags = RST }));
	assert_false(next(r, &o));
	/* an ACK from the future on a live connection: re-ACK, data dropped */
	ours = connect_from(r, 41003, 100);
	assert_true(in(r,
		&(struct seg){ .sport = 41003,
			.seq = 101,
			.ack = ours + 50,
			.flags = ACK,
			.data = "GET",
			.len = 3 }));
	assert_true(next(r, &o));
	assert_int_equal(o.flags, ACK);
	assert_int_equal(o.ack, 101);
	/* a reset not at the next sequence number is ignored; the one at it closes */
	assert_true(in(r, &(struct seg){ .sport = 41003, .seq = 5000, .flags = RST }));
	assert_int_equal(mmds_stack_stats(r->s)->conns_closed, 0);
	assert_true(in(r, &(struct seg){ .sport = 41003, .seq = 101, .flags = RST }));
	assert_int_equal(mmds_stack_stats(r->s)->conns_closed, 1);
}

static void test_mmds_out_of_order_data_is_dropped_and_reacked(void **state)
{
	struct rig *r = *state;
	static const char a[] = "GET /latest/meta-data/ami-id HT", b[] = "TP/1.1\r\n\r\n";
	uint32_t ours = connect_from(r, 42000, 0xfffffff0u); /* sequence numbers wrap */
	char buf[4096];
	uint8_t flags;
	struct out o;

	/* the second half first: ahead of what is expected */
	assert_true(in(r,
		&(struct seg){ .sport = 42000,
			.seq = (uint32_t)(0xfffffff1u + sizeof(a) - 1),
			.ack = ours,
			.flags = ACK,
			.data = b,
			.len = sizeof(b) - 1 }));
	assert_true(next(r, &o));
	assert_int_equal(o.ack, 0xfffffff1u);
	assert_int_equal(o.dlen, 0);
	assert_int_equal(mmds_stack_stats(r->s)->rx_out_of_window, 1);
	assert_true(in(r,
		&(struct seg){ .sport = 42000,
			.seq = 0xfffffff1u,
			.ack = ours,
			.flags = ACK,
			.data = a,
			.len = sizeof(a) - 1 }));
	/* a retransmission overlapping what we have: only the new bytes count */
	assert_true(in(r,
		&(struct seg){ .sport = 42000,
			.seq = 0xfffffff1u + 4,
			.ack = ours,
			.flags = ACK,
			.data = a + 4,
			.len = sizeof(a) - 5 }));
	assert_true(in(r,
		&(struct seg){ .sport = 42000,
			.seq = (uint32_t)(0xfffffff1u + sizeof(a) - 1),
			.ack = ours,
			.flags = ACK,
			.data = b,
			.len = sizeof(b) - 1 }));
	drain(r, buf, sizeof(buf), &flags);
	assert_non_null(strstr(buf, "200 OK"));
	assert_non_null(strstr(buf, "ami-1"));
	assert_int_equal(mmds_stack_stats(r->s)->http_requests, 1);
}

static void test_mmds_many_connections_are_bounded(void **state)
{
	struct rig *r = *state;
	int refused = 0;
	struct out o;

	for (int i = 0; i < 40; i++) {
		assert_true(in(r,
			&(struct seg){ .sport = (uint16_t)(50000 + i), .seq = 1, .flags = SYN }));
		while (next(r, &o))
			refused += (o.flags & RST) != 0;
	}
	assert_int_equal(refused, 10);
	assert_int_equal(mmds_stack_stats(r->s)->conns_created, 30);
	assert_int_equal(mmds_stack_stats(r->s)->conns_refused, 10);
	mmds_stack_clear(r->s);
	assert_true(in(r, &(struct seg){ .sport = 60000, .seq = 1, .flags = SYN }));
	assert_true(next(r, &o));
	assert_int_equal(o.flags, SYN | ACK);
}

static void test_mmds_oversized_request_resets(void **state)
{
	struct rig *r = *state;
	uint32_t ours = connect_from(r, 43000, 10), seq = 11;
	static char junk[1000];
	bool reset = false;
	struct out o;

	memset(junk, 'a', sizeof(junk));
	memcpy(junk, "GET /", 5); /* a request line that never ends */
	for (int i = 0; i < 6 && !reset; i++) {
		in(r,
			&(struct seg){ .sport = 43000,
				.seq = seq,
				.ack = ours,
				.flags = ACK,
				.data = i ? junk + 5 : junk,
				.len = sizeof(junk) - 5 });
		while (next(r, &o)) {
			reset |= (o.flags & RST) != 0;
			if (!(o.flags & RST))
				seq = o.ack;
		}
	}
	assert_true(reset);
}

/* ---- HTTP and IMDS ---- */

static char *ask(struct mmds *m, const char *req, uint64_t now, int *status)
{
	struct mmds_reply rep = { 0 };
	size_t used = mmds_http_handle(m, req, strlen(req), now, &rep);
	char *body;

	assert_int_equal(used, strlen(req));
	assert_non_null(rep.text);
	*status = rep.status;
	body = strstr(rep.text, "\r\n\r\n");
	assert_non_null(body);
	memmove(rep.text, body + 4, strlen(body + 4) + 1);
	return rep.text;
}

static void expect(struct mmds *m, const char *req, uint64_t now, int status, const char *body)
{
	int got;
	char *b = ask(m, req, now, &got);

	if (got != status || strcmp(b, body))
		fail_msg("%s -> %d '%s', want %d '%s'", req, got, b, status, body);
	free(b);
}

static void test_mmds_http_imds_and_json_answers(void **state)
{
	struct rig *r = *state;
	struct mmds_reply rep = { 0 };

	expect(r->m, "GET /latest HTTP/1.1\r\n\r\n", 0, 200, "meta-data/");
	expect(r->m, "GET /latest/meta-data/ HTTP/1.1\r\n\r\n", 0, 200, "ami-id\nnet/\nn");
	expect(r->m, "GET /latest/meta-data/ami-id?x=1 HTTP/1.1\r\n\r\n", 0, 200, "ami-1");
	expect(r->m, "GET /latest/meta-data/n HTTP/1.1\r\n\r\n", 0, 501,
		"Cannot retrieve value. The value has an invalid format.");
	expect(r->m, "GET /latest/meta-data/net HTTP/1.1\r\nAccept: application/json\r\n\r\n", 0,
		200, "{\"a\":\"b\"}");
	expect(r->m, "GET /latest/meta-data/n HTTP/1.1\r\naccept: application/json\r\n\r\n", 0, 200,
		"5");
	expect(r->m, "GET /latest/nope HTTP/1.1\r\n\r\n", 0, 404,
		"Resource not found: /latest/nope.");
	expect(r->m, "POST /latest HTTP/1.1\r\nContent-Length: 0\r\n\r\n", 0, 405,
		"Not allowed HTTP method.");
	expect(r->m, "PUT /latest HTTP/1.1\r\n\r\n", 0, 404, "Resource not found: /latest.");
	expect(r->m, "GET /latest HTTP/1.1\r\nContent-Length: 2\r\n\r\nab", 0, 400,
		"GET request cannot have a body.");
	/* IMDS compatibility: text whatever Accept says */
	mmds_configure(r->m, MMDS_V1, true);
	expect(r->m, "GET /latest/meta-data/net HTTP/1.1\r\nAccept: application/json\r\n\r\n", 0,
		200, "a");
	/* incomplete: nothing consumed; garbage: 400 and close */
	assert_int_equal(mmds_http_handle(r->m, "GET /lat", 8, 0, &rep), 0);
	assert_int_equal(mmds_http_handle(r->m, "\x01\x02 junk\r\n\r\n", 10, 0, &rep), 10);
	assert_int_equal(rep.status, 400);
	assert_true(rep.close);
	free(rep.text);
	/* an empty store: 404 */
	mmds_reset(r->m);
	expect(r->m, "GET / HTTP/1.1\r\n\r\n", 0, 404, "Resource not found: /.");
}

static void test_mmds_v2_tokens_expire(void **state)
{
	struct rig *r = *state;
	char req[256], *tok;
	int status;

	mmds_configure(r->m, MMDS_V2, false);
	expect(r->m, "GET /latest HTTP/1.1\r\n\r\n", 0, 401,
		"No MMDS token provided. Use "
		"`X-metadata-token` header to specify the session token.");
	expect(r->m, "GET /latest HTTP/1.1\r\nX-metadata-token: abc\r\n\r\n", 0, 401,
		"MMDS token not valid.");
	expect(r->m, "PUT /latest/api/token HTTP/1.1\r\n\r\n", 0, 400,
		"Token time to live "
		"value not found. Use `X-metadata-token-ttl-seconds` header to specify the token's "
		"lifetime.");
	expect(r->m, "PUT /latest/api/token HTTP/1.1\r\nX-metadata-token-ttl-seconds: 0\r\n\r\n", 0,
		400,
		"Invalid time to live value provided for token: 0. Please provide a value "
		"between 1 and 21600.");
	expect(r->m,
		"PUT /latest/api/token HTTP/1.1\r\nX-metadata-token-ttl-seconds: 21601\r\n"
		"\r\n",
		0, 400,
		"Invalid time to live value provided for token: 21601. Please "
		"provide a value between 1 and 21600.");
	expect(r->m,
		"PUT /latest/api/token HTTP/1.1\r\nX-metadata-token-ttl-seconds: 5\r\n"
		"X-Forwarded-For: 1.2.3.4\r\n\r\n",
		0, 400,
		"Invalid header. Reason: Unsupported "
		"header name. Key: X-Forwarded-For");
	tok = ask(r->m,
		"PUT /latest/api/token HTTP/1.1\r\nx-metadata-token-ttl-seconds: 10\r\n"
		"\r\n",
		100 * S, &status);
	assert_int_equal(status, 200);
	assert_int_equal(strlen(tok), MMDS_TOKEN_LEN);
	snprintf(req, sizeof(req),
		"GET /latest/meta-data/ami-id HTTP/1.1\r\nX-metadata-token: "
		"%s\r\n\r\n",
		tok);
	expect(r->m, req, 109 * S, 200, "ami-1");
	expect(r->m, req, 110 * S, 401, "MMDS token not valid.");
	/* the AWS header names work too; two tokens differ */
	free(tok);
	tok = ask(r->m,
		"PUT /latest/api/token HTTP/1.1\r\nX-aws-ec2-metadata-token-ttl-seconds: "
		"60\r\n\r\n",
		200 * S, &status);
	assert_int_equal(status, 200);
	snprintf(req, sizeof(req), "GET /latest HTTP/1.1\r\nX-aws-ec2-metadata-token: %s\r\n\r\n",
		tok);
	expect(r->m, req, 201 * S, 200, "meta-data/");
	assert_false(mmds_token_valid(r->m, tok, strlen(tok) - 1, 201 * S));
	free(tok);
	/* V1: tokens are not checked */
	mmds_configure(r->m, MMDS_V1, false);
	expect(r->m, "GET /latest HTTP/1.1\r\nX-metadata-token: bogus\r\n\r\n", 0, 200,
		"meta-data/");
}

static void test_mmds_store_limit(void **state)
{
	struct rig *r = *state;
	char *big = malloc(MMDS_DATA_LIMIT + 16);
	cJSON *v;

	memset(big, 'x', MMDS_DATA_LIMIT + 15);
	big[MMDS_DATA_LIMIT + 15] = 0;
	v = cJSON_CreateString(big);
	assert_int_equal(mmds_set_data(r->m, v), -EFBIG);
	assert_int_equal(mmds_data_copy(r->m, &v), 0); /* unchanged */
	cJSON_Delete(v);
	free(big);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
		T(test_mmds_arp_request_for_mmds_is_answered),
		T(test_mmds_other_traffic_is_not_consumed),
		T(test_mmds_bad_ip_and_tcp_are_dropped_and_counted),
		T(test_mmds_get_over_tcp_v1),
		T(test_mmds_idle_connection_is_reset_after_the_timeout),
		T(test_mmds_reply_is_retransmitted_until_acked),
		T(test_mmds_unacked_connection_gives_up_with_reset),
		T(test_mmds_unexpected_segments_get_resets),
		T(test_mmds_out_of_order_data_is_dropped_and_reacked),
		T(test_mmds_many_connections_are_bounded),
		T(test_mmds_oversized_request_resets),
		T(test_mmds_http_imds_and_json_answers),
		T(test_mmds_v2_tokens_expire),
		T(test_mmds_store_limit),
#undef T
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
