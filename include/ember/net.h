/* virtio-net (virtio 1.x 5.1) over a host TAP device: the TAP backend and the device model
 * that virtio_net_new (ember/virtio_devices.h) puts on a transport.
 *
 * Frames carry the 12-byte virtio_net_hdr (v1, with num_buffers) on both sides: the tap
 * is opened with IFF_VNET_HDR and a header size of 12, so a frame moves between the tap
 * and guest buffers without reshaping. As Firecracker, the device offers checksum, TSO
 * and UFO offloads both ways and mergeable receive buffers; the offloads the driver
 * accepts are given to the tap (TUNSETOFFLOAD), so the headers pass through as they
 * are (num_buffers filled towards the guest). */
#ifndef EMBER_NET_H
#define EMBER_NET_H

#include <stddef.h>
#include <stdint.h>

#include "ember/rate_limiter.h"

struct ev_loop;
struct virtio_dev_ops;

/* MMDS on an interface (Firecracker's /mmds/config, copied to each interface it names):
 * the guest's frames for `ipv4` are answered by ember's MMDS instead of reaching the tap. */
struct net_mmds_config {
	bool enabled;
	uint32_t ipv4;    /* host byte order, link-local (169.254.0.0/16) */
	unsigned version; /* 1 (V1) or 2 (V2) */
	bool imds_compat; /* always answer in IMDS text, whatever Accept says */
};

/* An interface as a definition describes it (copied by the device). */
struct net_config {
	char *id;  /* iface id, as in Firecracker's API */
	char *tap; /* host TAP device name */
	uint8_t mac[6];
	bool has_mac;
	uint16_t mtu; /* advertised with VIRTIO_NET_F_MTU; 0: none (the guest's 1500) */
	struct rate_limit rx_limit, tx_limit;
	struct net_mmds_config mmds;
	bool no_offloads; /* offer only MAC and MTU (Lua `offloads = false`, for benches) */
	/* The tap already opened (at PUT /network-interfaces, or from --config-file), owned
	 * by this configuration until a device takes it; has_fd false: opened at build. */
	bool has_fd;
	int tap_fd;
};

/* virtio 1.2 5.1.3 */
#define VIRTIO_NET_F_CSUM 0
#define VIRTIO_NET_F_GUEST_CSUM 1
#define VIRTIO_NET_F_MTU 3
#define VIRTIO_NET_F_MAC 5
#define VIRTIO_NET_F_GUEST_TSO4 7
#define VIRTIO_NET_F_GUEST_TSO6 8
#define VIRTIO_NET_F_GUEST_UFO 10
#define VIRTIO_NET_F_HOST_TSO4 11
#define VIRTIO_NET_F_HOST_TSO6 12
#define VIRTIO_NET_F_HOST_UFO 14
#define VIRTIO_NET_F_MRG_RXBUF 15
#define NET_MTU_MIN 68      /* as Firecracker: IPv4's minimum datagram */
#define NET_HDR_SIZE 12     /* struct virtio_net_hdr_v1 */
#define NET_MAX_FRAME 65550 /* Ethernet frame without the header: a 64 KiB GSO packet */

/* Open the TAP device `name` (which must exist or be creatable by this process):
 * /dev/net/tun, TUNSETIFF with IFF_TAP | IFF_NO_PI | IFF_VNET_HDR, TUNSETVNETHDRSZ 12,
 * non-blocking, close-on-exec. Returns the fd, or -errno with err in Firecracker's words
 * for its TapError ("Error while creating ifreq structure: Resource busy (os error 16).
 * Invalid TUN/TAP Backend provided by tap0. Check our documentation on setting up the
 * network devices."): the caller says which interface. */
__attribute__((warn_unused_result)) int tap_open(const char *name, char *err, size_t errlen);
/* Tell the tap which offloads it may use in frames it gives us (TUN_F_* bits, 0: none).
 * 0 or -errno (-ENOTTY when `fd` is not a tap, as in tests). */
__attribute__((warn_unused_result)) int tap_set_offload(int fd, unsigned tun_flags);

/* The model's ops, and a model over `fd` (a tap from tap_open, or in tests one end of a
 * SOCK_SEQPACKET socketpair; it is made non-blocking and owned from here on, closed even
 * on failure). MMDS answers come from `store` (not owned; NULL: cfg->mmds must be off).
 * NULL with err ("net 'eth0': ..."). Control thread. */
struct mmds;
struct net_dev;
extern const struct virtio_dev_ops net_ops;
struct net_dev *net_dev_new(struct ev_loop *loop, const struct net_config *cfg, struct mmds *store,
	int fd, char *err, size_t errlen);

/* Change the rx and tx rate-limit buckets of a running interface in place (see
 * rate_limiter_update; an update that sets nothing leaves that direction alone); frames
 * held back by an old limit are weighed against the new one at once. -EINVAL with err
 * ("net 'eth0': tx_rate_limiter: ops: ...") and nothing changed, -ENODEV if `vd` is not
 * a network device. Control thread. */
struct rate_limit_update;
struct virtio_dev;
__attribute__((warn_unused_result)) int virtio_net_set_limits(struct virtio_dev *vd,
	const struct rate_limit_update *rx, const struct rate_limit_update *tx, char *err,
	size_t errlen);

/* The interface's MMDS configuration as the device has it now, into *out: after a
 * restore, what the snapshot's net state held (the store's data is not saved). *out is
 * all zero (enabled false) when the interface answers no MMDS. -ENODEV if `vd` is not a
 * network device. Control thread, VM paused or not started. */
__attribute__((warn_unused_result)) int virtio_net_mmds_config(struct virtio_dev *vd,
	struct net_mmds_config *out);

#endif
