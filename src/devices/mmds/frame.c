/* MMDS frames: Internet checksums, and the Ethernet/IPv4/TCP and ARP frames MMDS sends. */
#include "internal.h"

#include <string.h>

static const uint8_t mmds_mac[6] = MMDS_MAC;

uint32_t csum_add(uint32_t sum, const uint8_t *p, size_t len)
{
	uint64_t s = sum;

	for (; len >= 2; p += 2, len -= 2)
		s += get_be16(p);
	if (len)
		s += (uint32_t)p[0] << 8;
	while (s >> 32)
		s = (s & 0xffffffffu) + (s >> 32);
	return (uint32_t)s;
}

uint16_t csum_fold(uint32_t sum)
{
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)sum;
}

uint32_t csum_pseudo(uint32_t src, uint32_t dst, size_t len)
{
	uint8_t ph[12];

	put_be32(ph, src);
	put_be32(ph + 4, dst);
	ph[8] = 0;
	ph[9] = IP_PROTO_TCP;
	put_be16(ph + 10, (uint16_t)len);
	return csum_add(0, ph, sizeof(ph));
}

static void eth_header(uint8_t *f, const uint8_t *dst, uint16_t type)
{
	memcpy(f, dst, 6);
	memcpy(f + 6, mmds_mac, 6);
	put_be16(f + 12, type);
}

size_t frame_tcp(uint8_t *buf, size_t cap, uint32_t our_ip, uint16_t ip_id,
	const struct tcp_seg *seg)
{
	size_t thl = TCP_HLEN + (seg->mss ? 4 : 0);
	size_t total = ETH_HLEN + IP_HLEN + thl + seg->len;
	uint8_t *ip = buf + ETH_HLEN, *tcp = ip + IP_HLEN;
	uint32_t sum;

	if (cap < total || IP_HLEN + thl + seg->len > MMDS_MTU)
		return 0;
	eth_header(buf, seg->mac, ETH_P_IP);
	memset(ip, 0, IP_HLEN);
	ip[0] = 0x45;
	put_be16(ip + 2, (uint16_t)(IP_HLEN + thl + seg->len));
	put_be16(ip + 4, ip_id);
	put_be16(ip + 6, 0x4000); /* don't fragment */
	ip[8] = 64;
	ip[9] = IP_PROTO_TCP;
	put_be32(ip + 12, our_ip);
	put_be32(ip + 16, seg->ip);
	put_be16(ip + 10, (uint16_t)~csum_fold(csum_add(0, ip, IP_HLEN)));

	put_be16(tcp, seg->our_port);
	put_be16(tcp + 2, seg->port);
	put_be32(tcp + 4, seg->seq);
	put_be32(tcp + 8, seg->ack);
	tcp[12] = (uint8_t)((thl / 4) << 4);
	tcp[13] = seg->flags;
	put_be16(tcp + 14, seg->window);
	put_be16(tcp + 16, 0);
	put_be16(tcp + 18, 0);
	if (seg->mss) {
		tcp[20] = 2; /* MSS option */
		tcp[21] = 4;
		put_be16(tcp + 22, seg->mss);
	}
	if (seg->len)
		memcpy(tcp + thl, seg->data, seg->len);
	sum = csum_add(csum_pseudo(our_ip, seg->ip, thl + seg->len), tcp, thl + seg->len);
	put_be16(tcp + 16, (uint16_t)~csum_fold(sum));
	return total;
}

size_t frame_arp_reply(uint8_t *buf, size_t cap, uint32_t our_ip, const uint8_t *to_mac,
	uint32_t to_ip)
{
	uint8_t *a = buf + ETH_HLEN;

	if (cap < ETH_HLEN + ARP_LEN)
		return 0;
	eth_header(buf, to_mac, ETH_P_ARP);
	put_be16(a, 1); /* Ethernet */
	put_be16(a + 2, ETH_P_IP);
	a[4] = 6;
	a[5] = 4;
	put_be16(a + 6, 2); /* reply */
	memcpy(a + 8, mmds_mac, 6);
	put_be32(a + 14, our_ip);
	memcpy(a + 18, to_mac, 6);
	put_be32(a + 24, to_ip);
	return ETH_HLEN + ARP_LEN;
}
