/* virtio-net's data path: frames from the tap into the rx queue and from the tx queue to
 * the tap, MMDS's frames on the way, rate limits, and the device loop's callbacks. */
#include "net_internal.h"

#include <errno.h>
#include <ev.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "ember/byteorder.h"
#include "ember/clock.h"
#include "ember/mmds.h"
#include "ember/rate_limiter.h"
#include "ember/virtio.h"

#define RX_BURST 256 /* frames per tap wake-up before the loop gets a turn */
#define NET_ETHERTYPE 12
#define NET_ETH_IPV4 0x0800
#define NET_MMDS_DST (14 + 16) /* an IPv4 packet's destination address */

static void arm(struct net_dev *n, ev_timer *t, uint64_t wait_ns)
{
	ev_timer_stop(n->loop, t);
	ev_timer_set(t, (double)wait_ns / 1e9, 0.);
	ev_timer_start(n->loop, t);
}

void net_set_reader(struct net_dev *n, bool on)
{
	if (on && !ev_is_active(&n->rx_w))
		ev_io_start(n->loop, &n->rx_w);
	else if (!on && ev_is_active(&n->rx_w))
		ev_io_stop(n->loop, &n->rx_w);
}

/* Read the next frame from the tap into rx_frame. 1 with a frame, 0 if none waits. */
static int read_frame(struct net_dev *n)
{
	for (;;) {
		ssize_t r = read(n->fd, n->rx_frame, sizeof(n->rx_frame));

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return 0; /* EAGAIN, or a tap gone bad: wait for the next wake-up */
		if ((size_t)r <= NET_HDR_SIZE || net_hdr_check(n->rx_frame, n->acked, false) < 0) {
			n->st.rx_dropped++; /* an offload the driver did not accept */
			continue;
		}
		n->rx_len = (size_t)r;
		n->rx_held = true;
		return 1;
	}
}

/* The next frame MMDS has for the guest into rx_frame. 1 with a frame, 0 if none. */
static int mmds_frame(struct net_dev *n)
{
	size_t len;

	if (!n->mmds)
		return 0;
	len = mmds_stack_output(n->mmds, n->rx_frame + NET_HDR_SIZE, NET_MAX_FRAME, mono_ns());
	if (!len)
		return 0;
	memset(n->rx_frame, 0, NET_HDR_SIZE); /* whole checksums, no segmentation */
	n->rx_len = NET_HDR_SIZE + len;
	n->rx_held = true;
	return 1;
}

/* (Re)net_arm the MMDS timer for the stack's next deadline, or stop it. */
static void mmds_arm(struct net_dev *n)
{
	uint64_t at, now;

	if (!n->mmds)
		return;
	at = mmds_stack_deadline(n->mmds);
	ev_timer_stop(n->loop, &n->mmds_w);
	if (!at)
		return;
	now = mono_ns();
	ev_timer_set(&n->mmds_w, at > now ? (double)(at - now) / 1e9 : 0., 0.);
	ev_timer_start(n->loop, &n->mmds_w);
}

/* MMDS, then tap -> guest, while there are frames, guest buffers and rate budget. Reading
 * stops when any of them runs out; an RX kick or the throttle timer starts it again. */
void net_rx_pump(struct net_dev *n)
{
	struct virtq *q = virtio_queue(n->vd, RXQ);
	char err[160];
	bool any = false, more = true;

	if (!n->active || ev_is_active(&n->rx_throttle_w))
		return;
	for (int i = 0; i < RX_BURST; i++) {
		enum rx_fit fit;
		unsigned nchains;
		uint64_t wait;

		if (!n->rx_held && !mmds_frame(n) && !read_frame(n))
			break;
		fit = net_rx_gather(n, q, n->rx_len, &nchains, err, sizeof(err));
		if (fit == RX_WAIT) {
			more = false; /* the frame waits for the next RX kick */
			break;
		}
		if (fit == RX_BROKEN) {
			n->st.rx_bad_buffers++;
			virtio_needs_reset(n->vd, err);
			more = false;
			break;
		}
		if (fit == RX_DROP) {
			n->st.rx_dropped++;
			n->rx_held = false;
			continue;
		}
		wait = rate_limiter_consume(&n->rx_rl, n->rx_len - NET_HDR_SIZE, 1, mono_ns());
		if (wait) {
			net_rx_undo(q, nchains);
			n->st.rx_throttled++;
			arm(n, &n->rx_throttle_w, wait);
			more = false;
			break;
		}
		if (net_rx_fill(n, q, nchains) < 0) {
			virtio_needs_reset(n->vd, "rx: buffer not writable");
			more = false;
			break;
		}
		n->st.rx_packets++;
		n->st.rx_bytes += n->rx_len - NET_HDR_SIZE;
		n->rx_held = false;
		any = true;
	}
	if (any)
		virtio_notify(n->vd, RXQ);
	net_set_reader(n, more);
	mmds_arm(n);
}

/* tx_frame (len bytes with the header) was MMDS's: answered here, not sent on. A
 * partial checksum is finished first (MMDS checks it); a TSO frame is taken as one large
 * segment, which MMDS's stack accepts up to its 4 KiB window, so nothing is cut. */
static bool to_mmds(struct net_dev *n, size_t len)
{
	uint8_t *f = n->tx_frame + NET_HDR_SIZE;

	if (!n->mmds)
		return false;
	len -= NET_HDR_SIZE;
	if (len >= NET_MMDS_DST + 4 && get_be16(f + NET_ETHERTYPE) == NET_ETH_IPV4 &&
		get_be32(f + NET_MMDS_DST) == n->mmds_cfg.ipv4 &&
		net_csum_finish(n->tx_frame, f, len) < 0) {
		n->st.tx_malformed++; /* its checksum would go outside the frame */
		return true;
	}
	return mmds_stack_input(n->mmds, f, len, mono_ns());
}

/* Guest -> tap. A frame the tap cannot take now is dropped, as a NIC would. */
void net_tx_pump(struct net_dev *n)
{
	struct virtq *q = virtio_queue(n->vd, TXQ);
	struct virtq_elem e;
	char err[160];
	bool any = false, mmds_in = false;
	size_t sent = 0;

	if (!n->active || ev_is_active(&n->tx_throttle_w))
		return;
	for (unsigned budget = VIRTIO_KICK_BUDGET;; budget--) {
		uint64_t wait;
		int r;

		if (!budget || sent >= VIRTIO_KICK_BYTES) {
			virtio_queue_yield(n->vd, TXQ);
			break;
		}
		r = virtq_pop(q, &e, err, sizeof(err));
		if (r == -ENOENT)
			break;
		if (r < 0) {
			virtio_needs_reset(n->vd, err);
			break;
		}
		if (e.read_len <= NET_HDR_SIZE || e.read_len > FRAME_BUF) {
			n->st.tx_malformed++;
		} else {
			wait = rate_limiter_consume(&n->tx_rl, e.read_len - NET_HDR_SIZE, 1,
				mono_ns());
			if (wait) {
				virtq_undo_pop(q);
				n->st.tx_throttled++;
				arm(n, &n->tx_throttle_w, wait);
				break;
			}
			sent += e.read_len;
			if (virtq_read(q, &e, 0, n->tx_frame, e.read_len) != (long)e.read_len) {
				n->st.tx_malformed++;
			} else {
				if (net_hdr_check(n->tx_frame, n->acked, true) < 0) {
					n->st.tx_malformed++; /* an offload not negotiated */
				} else if (to_mmds(n, e.read_len)) {
					mmds_in = true; /* MMDS's: answered, not sent on */
				} else if (write(n->fd, n->tx_frame, e.read_len) ==
					(ssize_t)e.read_len) {
					n->st.tx_packets++;
					n->st.tx_bytes += e.read_len - NET_HDR_SIZE;
				} else {
					n->st.tx_dropped++;
				}
			}
		}
		if (virtq_push(q, &e, 0) < 0) {
			virtio_needs_reset(n->vd, "tx: cannot return a chain");
			break;
		}
		any = true;
	}
	if (any)
		virtio_notify(n->vd, TXQ);
	if (mmds_in)
		net_rx_pump(n); /* MMDS's answers go out now, if the guest has buffers */
}

/* Run a pump from a libev callback (no lock held there). */
static void pump_locked(struct net_dev *n, void (*pump)(struct net_dev *))
{
	virtio_lock(n->vd);
	pump(n);
	virtio_unlock(n->vd);
}

/* The tap has a frame: carry on towards the guest. */
void net_on_tap(struct ev_loop *loop, ev_io *w, int revents)
{
	(void)loop;
	(void)revents;
	pump_locked(w->data, net_rx_pump);
}

/* A rate limiter's wait is over: the direction it held back goes on. */
void net_on_throttle(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct net_dev *n = w->data;

	(void)loop;
	(void)revents;
	pump_locked(n, w == &n->rx_throttle_w ? net_rx_pump : net_tx_pump);
}

/* MMDS's retransmission timer: resend what the guest has not acknowledged. */
void net_on_mmds_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct net_dev *n = w->data;

	(void)loop;
	(void)revents;
	virtio_lock(n->vd);
	mmds_stack_tick(n->mmds, mono_ns());
	if (n->active)
		net_rx_pump(n);
	mmds_arm(n);
	virtio_unlock(n->vd);
}
