/* The MMDS endpoint of one network device: picks the guest's frames for the MMDS address
 * out of its transmit path (ARP, IPv4, TCP checked and counted), and makes the frames
 * that answer them. */
#include "internal.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#define ARP_PENDING 4

struct mmds_stack {
	struct mmds *m;
	uint32_t ip;
	uint16_t ip_id;
	unsigned nr_arp;
	struct arp_peer {
		uint8_t mac[6];
		uint32_t ip;
	} arp[ARP_PENDING];
	struct tcp_table *tcp;
	struct mmds_stats st;
};

struct mmds_stack *mmds_stack_new(struct mmds *m, uint32_t ipv4)
{
	struct mmds_stack *s = calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	s->m = m;
	s->ip = ipv4;
	s->tcp = tcp_table_new(m);
	if (!s->tcp) {
		free(s);
		return NULL;
	}
	return s;
}

void mmds_stack_free(struct mmds_stack *s)
{
	if (!s)
		return;
	tcp_table_free(s->tcp);
	free(s);
}

uint32_t mmds_stack_ipv4(const struct mmds_stack *s)
{
	return s->ip;
}

const struct mmds_stats *mmds_stack_stats(const struct mmds_stack *s)
{
	return &s->st;
}

#define STAT(name) \
	{ \
		"mmds_" #name, offsetof(struct mmds_stats, name) \
	}
static const struct {
	const char *key;
	size_t off;
} stat_names[] = {
	STAT(rx_frames),
	STAT(rx_arp),
	STAT(rx_tcp),
	STAT(rx_bad_eth),
	STAT(rx_bad_arp),
	STAT(rx_bad_ip),
	STAT(rx_bad_csum),
	STAT(rx_fragments),
	STAT(rx_not_tcp),
	STAT(rx_bad_tcp),
	STAT(rx_unexpected),
	STAT(rx_out_of_window),
	STAT(tx_frames),
	STAT(tx_bytes),
	STAT(tx_resets),
	STAT(tx_retransmits),
	STAT(conns_created),
	STAT(conns_refused),
	STAT(conns_closed),
	STAT(conns_timed_out),
	STAT(http_requests),
	STAT(http_errors),
	STAT(dropped_replies),
};

void mmds_stats_put(const struct mmds_stats *st,
	void (*put)(void *ctx, const char *key, uint64_t value), void *ctx)
{
	for (size_t i = 0; i < sizeof(stat_names) / sizeof(stat_names[0]); i++) {
		uint64_t v;
		memcpy(&v, (const char *)st + stat_names[i].off, sizeof(v));
		put(ctx, stat_names[i].key, v);
	}
}

void mmds_stack_clear(struct mmds_stack *s)
{
	tcp_table_clear(s->tcp);
	s->nr_arp = 0;
}

static void arp_input(struct mmds_stack *s, const uint8_t *a)
{
	struct arp_peer *p;

	s->st.rx_arp++;
	if (get_be16(a) != 1 || get_be16(a + 2) != ETH_P_IP || a[4] != 6 || a[5] != 4 ||
		(a[8] & 1)) {
		s->st.rx_bad_arp++;
		return;
	}
	if (get_be16(a + 6) != 1)
		return; /* a reply or an announcement about our address: nothing to answer */
	if (s->nr_arp == ARP_PENDING) {
		s->st.dropped_replies++;
		return;
	}
	p = &s->arp[s->nr_arp++];
	memcpy(p->mac, a + 8, 6);
	p->ip = get_be32(a + 14);
}

/* MSS from the options of a SYN; 0 if absent. Malformed options: -1. */
static int mss_option(const uint8_t *o, size_t n)
{
	int mss = 0;

	for (size_t i = 0; i < n;) {
		if (o[i] == 0)
			break;
		if (o[i] == 1) {
			i++;
			continue;
		}
		if (i + 1 >= n || o[i + 1] < 2 || i + o[i + 1] > n)
			return -1;
		if (o[i] == 2 && o[i + 1] == 4)
			mss = get_be16(o + i + 2);
		i += o[i + 1];
	}
	return mss;
}

static void ip_input(struct mmds_stack *s, const uint8_t *f, size_t len, uint64_t now)
{
	const uint8_t *ip = f + ETH_HLEN, *tcp;
	size_t ihl = (size_t)(ip[0] & 15) * 4, total = get_be16(ip + 2), tlen, doff;
	struct tcp_seg seg = { 0 };
	int mss;

	if ((ip[0] >> 4) != 4 || ihl < IP_HLEN || total < ihl || total > len - ETH_HLEN) {
		s->st.rx_bad_ip++;
		return;
	}
	if (csum_fold(csum_add(0, ip, ihl)) != 0xffff) {
		s->st.rx_bad_csum++;
		return;
	}
	if (get_be16(ip + 6) & 0x3fff) { /* more fragments, or an offset */
		s->st.rx_fragments++;
		return;
	}
	if (ip[9] != IP_PROTO_TCP) {
		s->st.rx_not_tcp++;
		return;
	}
	if (f[6] & 1) {
		s->st.rx_bad_eth++; /* a group address cannot be a TCP peer */
		return;
	}
	tcp = ip + ihl;
	tlen = total - ihl;
	doff = tlen >= TCP_HLEN ? (size_t)(tcp[12] >> 4) * 4 : 0;
	if (tlen < TCP_HLEN || doff < TCP_HLEN || doff > tlen) {
		s->st.rx_bad_tcp++;
		return;
	}
	if (csum_fold(csum_add(csum_pseudo(get_be32(ip + 12), s->ip, tlen), tcp, tlen)) != 0xffff) {
		s->st.rx_bad_csum++;
		return;
	}
	mss = mss_option(tcp + TCP_HLEN, doff - TCP_HLEN);
	if (mss < 0) {
		s->st.rx_bad_tcp++;
		return;
	}
	s->st.rx_tcp++;
	memcpy(seg.mac, f + 6, 6);
	seg.ip = get_be32(ip + 12);
	seg.port = get_be16(tcp);
	seg.our_port = get_be16(tcp + 2);
	seg.seq = get_be32(tcp + 4);
	seg.ack = get_be32(tcp + 8);
	seg.flags = tcp[13] & 0x3f;
	seg.window = get_be16(tcp + 14);
	seg.mss = (tcp[13] & TCP_SYN) ? (uint16_t)mss : 0;
	seg.data = tcp + doff;
	seg.len = tlen - doff;
	tcp_input(s->tcp, &seg, now, &s->st);
}

bool mmds_stack_input(struct mmds_stack *s, const uint8_t *f, size_t len, uint64_t now)
{
	uint16_t type;

	if (len < ETH_HLEN)
		return false;
	type = get_be16(f + 12);
	if (type == ETH_P_ARP) {
		if (len < ETH_HLEN + ARP_LEN || get_be32(f + ETH_HLEN + 24) != s->ip)
			return false;
		s->st.rx_frames++;
		arp_input(s, f + ETH_HLEN);
		return true;
	}
	if (type != ETH_P_IP || len < ETH_HLEN + IP_HLEN || get_be32(f + ETH_HLEN + 16) != s->ip)
		return false;
	s->st.rx_frames++;
	ip_input(s, f, len, now);
	return true;
}

size_t mmds_stack_output(struct mmds_stack *s, uint8_t *buf, size_t cap, uint64_t now)
{
	struct tcp_seg seg;
	size_t n = 0;

	if (s->nr_arp) {
		n = frame_arp_reply(buf, cap, s->ip, s->arp[0].mac, s->arp[0].ip);
		memmove(s->arp, s->arp + 1, --s->nr_arp * sizeof(s->arp[0]));
	} else if (tcp_output(s->tcp, &seg, now, &s->st)) {
		n = frame_tcp(buf, cap, s->ip, s->ip_id++, &seg);
	}
	if (n) {
		s->st.tx_frames++;
		s->st.tx_bytes += n;
	}
	return n;
}

uint64_t mmds_stack_deadline(const struct mmds_stack *s)
{
	return tcp_deadline(s->tcp);
}

void mmds_stack_tick(struct mmds_stack *s, uint64_t now)
{
	tcp_tick(s->tcp, now, &s->st);
}
