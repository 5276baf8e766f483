/* Internals of the MMDS module shared by its files (store, tokens, frames, TCP, HTTP).
 * Not a module interface: other modules use include/ember/mmds.h. */
#ifndef EMBER_MMDS_INTERNAL_H
#define EMBER_MMDS_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ember/byteorder.h"
#include "ember/mmds.h"

#define MMDS_MAX_TOKENS 256 /* live V2 tokens; the one expiring first makes room */

struct mmds_token {
	char text[MMDS_TOKEN_LEN + 1];
	uint64_t expiry_ns; /* 0: free slot */
};

/* The device thread reads the store and makes tokens while the control thread's API
 * replaces the data: `lock` is held by every public entry point (recursive, for those
 * that call each other). */
struct mmds {
	pthread_mutex_t lock;
	cJSON *data;
	enum mmds_version version;
	bool imds_compat;
	size_t size_limit; /* bytes of compact JSON the store takes (--mmds-size-limit) */
	struct mmds_token tokens[MMDS_MAX_TOKENS];
};

/* ---- frame.c: Ethernet, ARP, IPv4 and TCP headers ---- */

#define ETH_HLEN 14
#define ETH_P_IP 0x0800
#define ETH_P_ARP 0x0806
#define ARP_LEN 28
#define IP_HLEN 20
#define TCP_HLEN 20
#define IP_PROTO_TCP 6
#define MMDS_MTU 1500
#define MMDS_MSS (MMDS_MTU - IP_HLEN - TCP_HLEN)

enum { TCP_FIN = 0x01, TCP_SYN = 0x02, TCP_RST = 0x04, TCP_PSH = 0x08, TCP_ACK = 0x10 };

/* One's complement sum of `len` bytes folded into `sum` (not inverted). */
uint32_t csum_add(uint32_t sum, const uint8_t *p, size_t len);
uint16_t csum_fold(uint32_t sum);
/* The TCP checksum's pseudo-header sum for src, dst and a segment of `len` bytes. */
uint32_t csum_pseudo(uint32_t src, uint32_t dst, size_t len);

/* A TCP segment as received (validated) or to be sent. */
struct tcp_seg {
	uint8_t mac[6]; /* the guest's (source on input, destination on output) */
	uint32_t ip;    /* the guest's address */
	uint16_t port, our_port;
	uint32_t seq, ack;
	uint8_t flags;
	uint16_t window;
	uint16_t mss; /* SYN option; 0 if absent / not sent */
	const uint8_t *data;
	size_t len;
};

/* Write an Ethernet + IPv4 + TCP frame for `seg` from (MMDS MAC, `our_ip`) into buf.
 * Returns its length, or 0 if cap is too small. */
size_t frame_tcp(uint8_t *buf, size_t cap, uint32_t our_ip, uint16_t ip_id,
	const struct tcp_seg *seg);
/* An ARP reply telling `to_mac`/`to_ip` that `our_ip` is at the MMDS MAC. */
size_t frame_arp_reply(uint8_t *buf, size_t cap, uint32_t our_ip, const uint8_t *to_mac,
	uint32_t to_ip);

/* ---- tcp.c: the connections of one stack ---- */

struct tcp_table;
struct tcp_table *tcp_table_new(struct mmds *m);
void tcp_table_free(struct tcp_table *t);
void tcp_table_clear(struct tcp_table *t);
/* A valid segment for us: update connections, maybe queue a reset. */
void tcp_input(struct tcp_table *t, const struct tcp_seg *seg, uint64_t now_ns,
	struct mmds_stats *st);
/* The next segment to send into *seg (data points into the table): true if there is one. */
bool tcp_output(struct tcp_table *t, struct tcp_seg *seg, uint64_t now_ns, struct mmds_stats *st);
uint64_t tcp_deadline(const struct tcp_table *t);
void tcp_tick(struct tcp_table *t, uint64_t now_ns, struct mmds_stats *st);

/* ---- imds.c: the answer to a GET ---- */

/* The value at `path` ("/latest/meta-data", query removed) rendered as JSON or IMDS text
 * into *body (malloc'd): 200, 404 (no such value), 501 (IMDS cannot show that type). On
 * an error status *body holds the message. -ENOMEM if memory ran out. */
int imds_render(const cJSON *root, const char *path, size_t path_len, bool json, char **body);

#endif
