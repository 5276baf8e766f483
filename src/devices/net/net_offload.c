/* virtio-net offloads (virtio 1.2 5.1.6): the features offered, the tap flags that
 * follow from what the driver accepted, the rules a virtio_net_hdr must keep in each
 * direction, and a partial checksum finished in software (frames MMDS answers). */
#include "net_internal.h"

#include <errno.h>
#include <linux/if_tun.h>
#include <string.h>

#include "ember/byteorder.h"

#define F(bit) (1ull << (bit))
#define OFFLOADS \
	(F(VIRTIO_NET_F_CSUM) | F(VIRTIO_NET_F_GUEST_CSUM) | F(VIRTIO_NET_F_GUEST_TSO4) | \
		F(VIRTIO_NET_F_GUEST_TSO6) | F(VIRTIO_NET_F_GUEST_UFO) | \
		F(VIRTIO_NET_F_HOST_TSO4) | F(VIRTIO_NET_F_HOST_TSO6) | F(VIRTIO_NET_F_HOST_UFO) | \
		F(VIRTIO_NET_F_MRG_RXBUF))

uint64_t net_offered(const struct net_dev *n)
{
	return (n->has_mac ? F(VIRTIO_NET_F_MAC) : 0) | (n->mtu ? F(VIRTIO_NET_F_MTU) : 0) |
		(n->offloads ? OFFLOADS : 0);
}

unsigned net_tap_flags(uint64_t acked)
{
	unsigned f = 0;

	if (!(acked & F(VIRTIO_NET_F_GUEST_CSUM)))
		return 0; /* the tap segments only frames whose checksum the guest may leave */
	f |= TUN_F_CSUM;
	if (acked & F(VIRTIO_NET_F_GUEST_TSO4))
		f |= TUN_F_TSO4;
	if (acked & F(VIRTIO_NET_F_GUEST_TSO6))
		f |= TUN_F_TSO6;
	if (acked & F(VIRTIO_NET_F_GUEST_UFO))
		f |= TUN_F_UFO;
	return f;
}

/* The feature a gso_type needs on the side named by `tso4` (HOST_ or GUEST_TSO4 ...);
 * 0 for a type nobody may use. */
static uint64_t gso_needs(uint8_t gso_type, bool host)
{
	switch (gso_type) {
	case NET_GSO_NONE:
		return 0;
	case NET_GSO_TCPV4:
		return F(host ? VIRTIO_NET_F_HOST_TSO4 : VIRTIO_NET_F_GUEST_TSO4);
	case NET_GSO_UDP:
		return F(host ? VIRTIO_NET_F_HOST_UFO : VIRTIO_NET_F_GUEST_UFO);
	case NET_GSO_TCPV6:
		return F(host ? VIRTIO_NET_F_HOST_TSO6 : VIRTIO_NET_F_GUEST_TSO6);
	default:
		return ~0ull; /* ECN (no HOST_ECN offered) or unknown */
	}
}

int net_hdr_check(uint8_t *hdr, uint64_t acked, bool host)
{
	uint64_t csum = F(host ? VIRTIO_NET_F_CSUM : VIRTIO_NET_F_GUEST_CSUM);
	uint64_t need = gso_needs(hdr[NET_HDR_GSO_TYPE], host);

	put_le16(hdr + NET_HDR_NUM_BUFFERS, 0);
	if (!(acked & csum)) {
		/* Without the checksum feature a header carries nothing (5.1.6.2): the
		 * guest's is ignored, a tap's segmented frame cannot be given to it. */
		if (!host && hdr[NET_HDR_GSO_TYPE] != NET_GSO_NONE)
			return -EINVAL;
		memset(hdr, 0, NET_HDR_SIZE);
		return 0;
	}
	if (need && (need == ~0ull || !(acked & need)))
		return -EINVAL;
	if (host)
		hdr[NET_HDR_FLAGS] &= NET_HDR_F_NEEDS_CSUM;
	else
		hdr[NET_HDR_FLAGS] &= NET_HDR_F_NEEDS_CSUM | NET_HDR_F_DATA_VALID;
	return 0;
}

int net_csum_finish(uint8_t *hdr, uint8_t *frame, size_t len)
{
	size_t start = get_le16(hdr + NET_HDR_CSUM_START);
	size_t at = start + get_le16(hdr + NET_HDR_CSUM_OFFSET);
	uint32_t sum = 0;

	if (!(hdr[NET_HDR_FLAGS] & NET_HDR_F_NEEDS_CSUM))
		return 0;
	if (start >= len || at + 2 > len)
		return -EINVAL;
	/* The guest left the pseudo-header's sum in the field: add the rest, complement. */
	for (size_t i = start; i + 1 < len; i += 2)
		sum += (uint32_t)frame[i] << 8 | frame[i + 1];
	if ((len - start) & 1)
		sum += (uint32_t)frame[len - 1] << 8;
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	put_be16(frame + at, (uint16_t)~sum);
	hdr[NET_HDR_FLAGS] &= (uint8_t)~NET_HDR_F_NEEDS_CSUM;
	return 0;
}
