/* libFuzzer harness for virtio-net's receive-side chain walk (src/devices/net/net_rx.c):
 * a frame spread over random rx rings, with and without MRG_RXBUF.
 *
 * Input: control byte (bits 0-3: queue size exponent mod 9; bit 4: MRG_RXBUF accepted;
 * bit 5: indirect descriptors), two bytes of frame length (folded into 13..65562), then
 * guest memory from 0 (descriptor table at 0, avail ring at 0x1000, used ring at 0x2000,
 * buffers after; 32 KiB). Frames are placed until the walker says WAIT, DROP or BROKEN.
 * Checked: a gathered set holds the frame and no more chains than allowed; every other
 * answer has taken nothing (next_avail back where it was); a BROKEN says why; a fill pushes
 * exactly the gathered chains with num_buffers equal to their count. Any violation traps. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "ember/guest_mem.h"
#include "ember/virtio.h"

#include "fuzz.h"
#include "net_internal.h"

#define MEM_SIZE 0x8000u
#define CTL_BYTES 3u

static uint8_t ram[MEM_SIZE];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct net_dev n; /* the walker uses acked, rx_chain, rx_frame, rx_len */
	struct guest_mem mem = { .nr_regions = 1, .fd = -1 };
	struct virtq q = { .max_size = VIRTQ_MAX_SIZE,
		.ready = true,
		.avail_gpa = 0x1000,
		.used_gpa = 0x2000,
		.mem = &mem };
	char err[256];

	if (size < CTL_BYTES)
		return 0;
	q.size = (uint16_t)(1u << ((data[0] & 15) % 9));
	q.indirect = data[0] & 32;
	n.acked = (data[0] & 16) ? 1ull << VIRTIO_NET_F_MRG_RXBUF : 0;
	n.rx_len = NET_HDR_SIZE + 1 + (size_t)(data[1] | data[2] << 8) % NET_MAX_FRAME;
	memset(n.rx_frame, 0xa5, n.rx_len);
	mem.regions[0] = (struct guest_mem_region){ .gpa = 0, .size = MEM_SIZE, .host = ram };
	memset(ram, 0, sizeof(ram));
	memcpy(ram, data + CTL_BYTES, size - CTL_BYTES < MEM_SIZE ? size - CTL_BYTES : MEM_SIZE);
	if (virtq_validate(&q, err, sizeof(err)))
		return 0;
	for (unsigned frames = 0; frames < 2u * q.size + 4; frames++) {
		uint16_t avail = q.next_avail, used = q.next_used, got_used;
		unsigned nchains = ~0u;
		uint64_t room = 0;
		enum rx_fit fit;

		err[0] = '\0';
		fit = net_rx_gather(&n, &q, n.rx_len, &nchains, err, sizeof(err));
		if (fit != RX_FITS) {
			CHECK(q.next_avail == avail && nchains == 0);
			CHECK(fit != RX_BROKEN || err[0] != '\0');
			return 0;
		}
		CHECK(nchains >= 1 && nchains <= (n.acked ? RX_MAX_CHAINS : 1u));
		CHECK(q.next_avail == (uint16_t)(avail + nchains));
		for (unsigned i = 0; i < nchains; i++) {
			CHECK(!n.acked || n.rx_chain[i].write_len >= NET_HDR_SIZE);
			room += n.rx_chain[i].write_len;
		}
		CHECK(room >= n.rx_len);
		if (net_rx_fill(&n, &q, nchains))
			return 0; /* a chain that could not be written: the device needs a reset */
		CHECK(q.next_used == (uint16_t)(used + nchains));
		memcpy(&got_used, ram + 0x2000 + 2, 2);
		CHECK(got_used == q.next_used);
		CHECK(n.rx_frame[NET_HDR_NUM_BUFFERS] == (uint8_t)nchains);
	}
	return 0;
}
