/* Receive side chain walk: one frame over one chain, or with VIRTIO_NET_F_MRG_RXBUF over
 * as many chains as it needs, num_buffers telling the driver how many (5.1.6.4). */
#include "net_internal.h"

#include <errno.h>
#include <stdio.h>

#include "ember/byteorder.h"

static bool mergeable(const struct net_dev *n)
{
	return n->acked & (1ull << VIRTIO_NET_F_MRG_RXBUF);
}

void net_rx_undo(struct virtq *q, unsigned nchains)
{
	while (nchains--)
		virtq_undo_pop(q);
}

enum rx_fit net_rx_gather(struct net_dev *n, struct virtq *q, size_t len, unsigned *nchains,
	char *err, size_t errlen)
{
	unsigned max = mergeable(n) ? RX_MAX_CHAINS : 1, got = 0;
	uint64_t room = 0;

	*nchains = 0;
	while (room < len) {
		struct virtq_elem *e = &n->rx_chain[got];
		int r;

		if (got == max || got == q->size) {
			/* Never enough: without MRG_RXBUF every buffer must hold a whole frame
			 * (5.1.6.3.1); with it, the whole ring may not hold this one. */
			net_rx_undo(q, got);
			return RX_DROP;
		}
		r = virtq_pop(q, e, err, errlen);
		if (r == -ENOENT) {
			net_rx_undo(q, got);
			return RX_WAIT;
		}
		if (r < 0) {
			net_rx_undo(q, got);
			return RX_BROKEN;
		}
		got++;
		if (mergeable(n) && e->write_len < NET_HDR_SIZE) {
			net_rx_undo(q, got);
			snprintf(err, errlen,
				"rx: buffer %u has %llu writable bytes, less than the %d-byte header "
				"(5.1.6.3.1)",
				e->head, (unsigned long long)e->write_len, NET_HDR_SIZE);
			return RX_BROKEN;
		}
		room += e->write_len;
	}
	*nchains = got;
	return RX_FITS;
}

int net_rx_fill(struct net_dev *n, struct virtq *q, unsigned nchains)
{
	size_t off = 0;

	put_le16(n->rx_frame + NET_HDR_NUM_BUFFERS, (uint16_t)nchains);
	for (unsigned i = 0; i < nchains; i++) {
		const struct virtq_elem *e = &n->rx_chain[i];
		size_t part = n->rx_len - off < e->write_len ? n->rx_len - off : e->write_len;

		if (virtq_write(q, e, 0, n->rx_frame + off, part) != (long)part ||
			virtq_push(q, e, (uint32_t)part) < 0)
			return -EFAULT;
		off += part;
	}
	return 0;
}
