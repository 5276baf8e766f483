/* Internals of the virtio-net model shared by its files (queues, persist). Not a module
 * interface: other modules use include/ember/net.h and virtio_devices.h. */
#ifndef EMBER_NET_INTERNAL_H
#define EMBER_NET_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <ev.h>

#include "ember/net.h"
#include "ember/rate_limiter.h"
#include "ember/virtio.h"

struct mmds_stack;
struct snap_cursor;
struct snap_writer;
struct virtio_dev;

enum { RXQ, TXQ, NUM_QUEUES };

#define FRAME_BUF (NET_HDR_SIZE + NET_MAX_FRAME)
/* Chains one received frame may take with MRG_RXBUF: Linux's smallest mergeable buffer
 * (1518 bytes) times this covers FRAME_BUF; a frame needing more is dropped. */
#define RX_MAX_CHAINS 64

/* virtio_net_hdr_v1 (5.1.6): flags, gso_type, then le16 hdr_len, gso_size, csum_start,
 * csum_offset, num_buffers. */
#define NET_HDR_FLAGS 0
#define NET_HDR_GSO_TYPE 1
#define NET_HDR_CSUM_START 6
#define NET_HDR_CSUM_OFFSET 8
#define NET_HDR_NUM_BUFFERS 10
#define NET_HDR_F_NEEDS_CSUM 1
#define NET_HDR_F_DATA_VALID 2
#define NET_GSO_NONE 0
#define NET_GSO_TCPV4 1
#define NET_GSO_UDP 3
#define NET_GSO_TCPV6 4

struct net_stats {
	uint64_t rx_packets, rx_bytes, tx_packets, tx_bytes, rx_dropped, tx_dropped, tx_malformed,
		rx_throttled, tx_throttled, rx_bad_buffers;
};

struct net_dev {
	struct virtio_dev *vd;
	struct ev_loop *loop;
	char *id, *tap;
	uint8_t mac[6];
	bool has_mac;
	uint16_t mtu;   /* 0: not advertised */
	bool offloads;  /* offered (the configuration's no_offloads unset) */
	uint64_t acked; /* what the driver accepted, from activate until reset */
	bool active;
	int fd;
	ev_io rx_w; /* tap readable; active only while a frame could go on */
	ev_timer rx_throttle_w, tx_throttle_w;
	struct rate_limiter rx_rl, tx_rl;
	bool rx_held; /* rx_frame holds a frame the guest had no buffer for */
	size_t rx_len;
	struct net_stats st;
	/* MMDS on this interface (NULL: off): the guest's frames for it stop here, its
	 * answers go into the rx queue before anything from the tap. */
	struct mmds_stack *mmds;
	struct mmds *store; /* where MMDS answers come from (virtio_env.mmds), or NULL */
	struct net_mmds_config mmds_cfg;
	ev_timer mmds_w;                           /* the stack's retransmission timer */
	struct virtq_elem rx_chain[RX_MAX_CHAINS]; /* the chains a frame is being spread over */
	uint8_t rx_frame[FRAME_BUF];
	uint8_t tx_frame[FRAME_BUF];
};

/* net.c */
/* Turn MMDS on for this interface with `cfg` (n->store takes its version and IMDS
 * compatibility); -EINVAL without a store, -ENOMEM. Control thread, device not running. */
int net_mmds_enable(struct net_dev *n, const struct net_mmds_config *cfg);

/* net_queues.c: the data path (device thread; the pumps with the transport lock held). */
/* Watch the tap for frames, or stop watching (nothing could go on). */
void net_set_reader(struct net_dev *n, bool on);
/* Move what can go now: tap and MMDS frames into the rx queue; the tx queue's frames to
 * the tap or MMDS. Each stops at a rate limit (its timer armed) or an empty queue. */
void net_rx_pump(struct net_dev *n);
void net_tx_pump(struct net_dev *n);
/* libev callbacks: the tap readable, a rate limiter's wait over, MMDS's timer. */
void net_on_tap(struct ev_loop *loop, ev_io *w, int revents);
void net_on_throttle(struct ev_loop *loop, ev_timer *w, int revents);
void net_on_mmds_timer(struct ev_loop *loop, ev_timer *w, int revents);

/* net_offload.c */
/* The feature bits the device offers. */
uint64_t net_offered(const struct net_dev *n);
/* TUN_F_* flags for the tap from the features the driver accepted. */
unsigned net_tap_flags(uint64_t acked);
/* Make a header crossing towards the tap (host: the guest's) or towards the guest (the
 * tap's) keep to `acked`: num_buffers zeroed, flags not negotiated dropped, and without
 * the checksum feature the whole header zeroed. -EINVAL for a gso_type not negotiated. */
int net_hdr_check(uint8_t *hdr, uint64_t acked, bool host);
/* Finish a partial checksum (NEEDS_CSUM: the sum over frame[csum_start..len) goes at
 * csum_start + csum_offset) and clear the flag. -EINVAL if it points outside `len`. */
int net_csum_finish(uint8_t *hdr, uint8_t *frame, size_t len);

/* net_rx.c: spreading a frame over the rx queue's chains (lock held). */
enum rx_fit {
	RX_FITS,   /* n->rx_chain[0..*nchains) hold it: net_rx_fill, or net_rx_undo */
	RX_WAIT,   /* not enough buffers yet: nothing taken */
	RX_DROP,   /* the frame can never fit: nothing taken */
	RX_BROKEN, /* a hostile chain: err says why, the device needs a reset */
};
enum rx_fit net_rx_gather(struct net_dev *n, struct virtq *q, size_t len, unsigned *nchains,
	char *err, size_t errlen);
void net_rx_undo(struct virtq *q, unsigned nchains);
/* Copy rx_frame (rx_len bytes, num_buffers set to nchains) over the gathered chains and
 * return them to the driver. 0, or -EFAULT (device needs a reset). */
int net_rx_fill(struct net_dev *n, struct virtq *q, unsigned nchains);

/* net_persist.c: the model's save/restore ops (transport lock held, paused VM). */
int net_save(void *dev, struct snap_writer *w);
int net_restore(void *dev, struct snap_cursor *c, char *err, size_t errlen);

#endif
