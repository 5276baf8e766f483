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

struct mmds_stack;
struct snap_cursor;
struct snap_writer;
struct virtio_dev;

enum { RXQ, TXQ, NUM_QUEUES };

#define FRAME_BUF (NET_HDR_SIZE + NET_MAX_FRAME)

struct net_stats {
	uint64_t rx_packets, rx_bytes, tx_packets, tx_bytes, rx_dropped, tx_dropped, tx_malformed,
		rx_throttled, tx_throttled;
};

struct net_dev {
	struct virtio_dev *vd;
	struct ev_loop *loop;
	char *id, *tap;
	uint8_t mac[6];
	bool has_mac;
	uint16_t mtu; /* 0: not advertised */
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
	ev_timer mmds_w; /* the stack's retransmission timer */
	uint8_t rx_frame[FRAME_BUF];
	uint8_t tx_frame[FRAME_BUF];
};

/* net.c */
/* Turn MMDS on for this interface with `cfg` (n->store takes its version and IMDS
 * compatibility); -EINVAL without a store, -ENOMEM. Control thread, device not running. */
int net_mmds_enable(struct net_dev *n, const struct net_mmds_config *cfg);

/* net_persist.c: the model's save/restore ops (transport lock held, paused VM). */
int net_save(void *dev, struct snap_writer *w);
int net_restore(void *dev, struct snap_cursor *c, char *err, size_t errlen);

#endif
