/* virtio-net device model (virtio 1.x 5.1): one rx/tx queue pair over a TAP fd. */
#include "ember/net.h"

#include <errno.h>
#include <ev.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ember/config.h"
#include "ember/log.h"
#include "ember/rate_limiter.h"
#include "ember/snapshot_file.h"
#include "ember/virtio.h"
#include "ember/virtio_devices.h"

enum { RXQ, TXQ, NUM_QUEUES };

#define QUEUE_SIZE 256
#define CONFIG_SIZE 6 /* mac */
#define STATE_VERSION 1
#define STATE_STR_MAX 4096
#define RX_BURST 256 /* frames per tap wake-up before the loop gets a turn */
#define FRAME_BUF (NET_HDR_SIZE + NET_MAX_FRAME)

/* virtio_net_hdr_v1: flags u8, gso_type u8, hdr_len, gso_size, csum_start, csum_offset,
 * num_buffers (le16 each). */
#define HDR_GSO_TYPE 1
#define HDR_NUM_BUFFERS 10

struct net_stats {
	uint64_t rx_packets, rx_bytes, tx_packets, tx_bytes, rx_dropped, tx_dropped,
		tx_malformed, rx_throttled, tx_throttled;
};

struct net_dev {
	struct virtio_dev *vd;
	struct ev_loop *loop;
	char *id, *tap;
	uint8_t mac[6];
	bool has_mac;
	bool active;
	int fd;
	ev_io rx_w;             /* tap readable; active only while a frame could go on */
	ev_timer rx_throttle_w, tx_throttle_w;
	struct rate_limiter rx_rl, tx_rl;
	bool rx_held;           /* rx_frame holds a frame the guest had no buffer for */
	size_t rx_len;
	struct net_stats st;
	uint8_t rx_frame[FRAME_BUF];
	uint8_t tx_frame[FRAME_BUF];
};

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void arm(struct net_dev *n, ev_timer *t, uint64_t wait_ns)
{
	ev_timer_stop(n->loop, t);
	ev_timer_set(t, (double)wait_ns / 1e9, 0.);
	ev_timer_start(n->loop, t);
}

static void set_reader(struct net_dev *n, bool on)
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
		if ((size_t)r <= NET_HDR_SIZE || n->rx_frame[HDR_GSO_TYPE] != 0) {
			n->st.rx_dropped++; /* no offloads were enabled: nothing else is valid */
			continue;
		}
		memset(n->rx_frame, 0, NET_HDR_SIZE);
		n->rx_frame[HDR_NUM_BUFFERS] = 1;
		n->rx_len = (size_t)r;
		n->rx_held = true;
		return 1;
	}
}

/* Tap -> guest, while there are frames, guest buffers and rate budget. Reading stops
 * when any of them runs out; an RX kick or the throttle timer starts it again. */
static void rx_pump(struct net_dev *n)
{
	struct virtq *q = virtio_queue(n->vd, RXQ);
	struct virtq_elem e;
	char err[160];
	bool any = false, more = true;

	if (!n->active || ev_is_active(&n->rx_throttle_w))
		return;
	for (int i = 0; i < RX_BURST; i++) {
		uint64_t wait;
		int r;

		if (!n->rx_held && !read_frame(n))
			break;
		r = virtq_pop(q, &e, err, sizeof(err));
		if (r == -ENOENT) {
			more = false; /* the frame waits for the next RX kick */
			break;
		}
		if (r < 0) {
			virtio_needs_reset(n->vd, err);
			more = false;
			break;
		}
		if (e.write_len < n->rx_len) {
			/* Without MRG_RXBUF every buffer must hold a whole frame (5.1.6.3.1). */
			virtq_undo_pop(q);
			n->st.rx_dropped++;
			n->rx_held = false;
			continue;
		}
		wait = rate_limiter_consume(&n->rx_rl, n->rx_len - NET_HDR_SIZE, 1, now_ns());
		if (wait) {
			virtq_undo_pop(q);
			n->st.rx_throttled++;
			arm(n, &n->rx_throttle_w, wait);
			more = false;
			break;
		}
		if (virtq_write(q, &e, 0, n->rx_frame, n->rx_len) != (long)n->rx_len ||
		    virtq_push(q, &e, (uint32_t)n->rx_len) < 0) {
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
	set_reader(n, more);
}

/* Guest -> tap. A frame the tap cannot take now is dropped, as a NIC would. */
static void tx_pump(struct net_dev *n)
{
	struct virtq *q = virtio_queue(n->vd, TXQ);
	struct virtq_elem e;
	char err[160];
	bool any = false;

	if (!n->active || ev_is_active(&n->tx_throttle_w))
		return;
	for (;;) {
		uint64_t wait;
		int r = virtq_pop(q, &e, err, sizeof(err));

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
				now_ns());
			if (wait) {
				virtq_undo_pop(q);
				n->st.tx_throttled++;
				arm(n, &n->tx_throttle_w, wait);
				break;
			}
			if (virtq_read(q, &e, 0, n->tx_frame, e.read_len) != (long)e.read_len) {
				n->st.tx_malformed++;
			} else {
				/* No offloads negotiated: the guest's header carries nothing. */
				memset(n->tx_frame, 0, NET_HDR_SIZE);
				if (write(n->fd, n->tx_frame, e.read_len) == (ssize_t)e.read_len) {
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
}

static void on_tap(struct ev_loop *loop, ev_io *w, int revents)
{
	struct net_dev *n = w->data;

	(void)loop;
	(void)revents;
	virtio_lock(n->vd);
	rx_pump(n);
	virtio_unlock(n->vd);
}

static void on_rx_throttle(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct net_dev *n = w->data;

	(void)loop;
	(void)revents;
	virtio_lock(n->vd);
	rx_pump(n);
	virtio_unlock(n->vd);
}

static void on_tx_throttle(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct net_dev *n = w->data;

	(void)loop;
	(void)revents;
	virtio_lock(n->vd);
	tx_pump(n);
	virtio_unlock(n->vd);
}

static uint64_t features(void *dev)
{
	const struct net_dev *n = dev;

	return n->has_mac ? 1ull << VIRTIO_NET_F_MAC : 0;
}

static int activate(void *dev, uint64_t acked)
{
	struct net_dev *n = dev;

	(void)acked;
	n->active = true;
	rx_pump(n);
	tx_pump(n);
	return 0;
}

static void reset(void *dev)
{
	struct net_dev *n = dev;

	n->active = false;
	n->rx_held = false;
	set_reader(n, false);
	ev_timer_stop(n->loop, &n->rx_throttle_w);
	ev_timer_stop(n->loop, &n->tx_throttle_w);
}

static void queue_notify(void *dev, unsigned q)
{
	struct net_dev *n = dev;

	if (q == RXQ)
		rx_pump(n);
	else if (q == TXQ)
		tx_pump(n);
}

static void config_read(void *dev, uint32_t offset, uint8_t *data, uint32_t len)
{
	const struct net_dev *n = dev;

	for (uint32_t i = 0; i < len; i++)
		data[i] = offset + i < sizeof(n->mac) ? n->mac[offset + i] : 0;
}

static void config_write(void *dev, uint32_t offset, const uint8_t *data, uint32_t len)
{
	(void)dev;
	(void)offset;
	(void)data;
	(void)len; /* the MAC is read-only without VIRTIO_NET_F_CTRL_MAC_ADDR */
}

static int put_limiter(struct snap_writer *w, const struct rate_limiter *rl)
{
	struct rate_limiter_state s;
	int ret;

	rate_limiter_save(rl, &s);
	ret = snap_put_u64(w, (uint64_t)s.bandwidth_budget);
	if (!ret)
		ret = snap_put_u64(w, s.bandwidth_burst);
	if (!ret)
		ret = snap_put_u64(w, (uint64_t)s.ops_budget);
	if (!ret)
		ret = snap_put_u64(w, s.ops_burst);
	return ret;
}

static int get_limiter(struct snap_cursor *c, struct rate_limiter_state *s)
{
	uint64_t v[4] = { 0 };

	for (int i = 0; i < 4; i++)
		if (snap_get_u64(c, &v[i]))
			return -EINVAL;
	s->bandwidth_budget = (int64_t)v[0];
	s->bandwidth_burst = v[1];
	s->ops_budget = (int64_t)v[2];
	s->ops_burst = v[3];
	return 0;
}

/* State v1: u32 version, str id, str tap, mac[6] + u16 has_mac, rx and tx limiters
 * (4 x u64 each). No frames: in-flight packets are not saved (as Firecracker). */
static int save(void *dev, struct snap_writer *w)
{
	const struct net_dev *n = dev;
	uint8_t mac[8] = { 0 };
	int ret;

	memcpy(mac, n->mac, 6);
	mac[6] = n->has_mac;
	ret = snap_put_u32(w, STATE_VERSION);
	if (!ret)
		ret = snap_put_str(w, n->id);
	if (!ret)
		ret = snap_put_str(w, n->tap);
	if (!ret)
		ret = snap_put(w, mac, sizeof(mac));
	if (!ret)
		ret = put_limiter(w, &n->rx_rl);
	if (!ret)
		ret = put_limiter(w, &n->tx_rl);
	return ret;
}

/* The tap was opened by name when the device was built (after network overrides); the
 * saved name is only for the record. The MAC is the one the guest knows. */
static int restore(void *dev, struct snap_cursor *c)
{
	struct net_dev *n = dev;
	struct rate_limiter_state rx, tx;
	const char *id = NULL, *tap = NULL;
	uint8_t mac[8];
	uint32_t version = 0;

	if (snap_get_u32(c, &version) || version != STATE_VERSION ||
	    snap_get_str(c, &id, STATE_STR_MAX) || snap_get_str(c, &tap, STATE_STR_MAX) ||
	    snap_get(c, mac, sizeof(mac)) || get_limiter(c, &rx) || get_limiter(c, &tx))
		return -EINVAL;
	if (!id || strcmp(id, n->id) != 0) {
		log_err("net '%s': the snapshot holds interface '%s'", n->id, id ? id : "");
		return -EINVAL;
	}
	if (mac[6] != n->has_mac) {
		log_err("net '%s': the snapshot %s a MAC address", n->id,
			mac[6] ? "has" : "has no");
		return -EINVAL;
	}
	memcpy(n->mac, mac, 6);
	rate_limiter_restore(&n->rx_rl, &rx, now_ns());
	rate_limiter_restore(&n->tx_rl, &tx, now_ns());
	n->rx_held = false;
	return 0;
}

static void destroy(void *dev)
{
	struct net_dev *n = dev;

	if (!n)
		return;
	set_reader(n, false);
	ev_timer_stop(n->loop, &n->rx_throttle_w);
	ev_timer_stop(n->loop, &n->tx_throttle_w);
	if (n->fd >= 0)
		close(n->fd);
	free(n->id);
	free(n->tap);
	free(n);
}

static void attach(void *dev, struct virtio_dev *vd)
{
	((struct net_dev *)dev)->vd = vd;
}

static void stats(void *dev, void (*put)(void *ctx, const char *key, uint64_t value),
	void *ctx)
{
	const struct net_dev *n = dev;

	put(ctx, "rx_packets", n->st.rx_packets);
	put(ctx, "rx_bytes", n->st.rx_bytes);
	put(ctx, "rx_dropped", n->st.rx_dropped);
	put(ctx, "rx_throttled", n->st.rx_throttled);
	put(ctx, "tx_packets", n->st.tx_packets);
	put(ctx, "tx_bytes", n->st.tx_bytes);
	put(ctx, "tx_dropped", n->st.tx_dropped);
	put(ctx, "tx_malformed", n->st.tx_malformed);
	put(ctx, "tx_throttled", n->st.tx_throttled);
}

const struct virtio_dev_ops net_ops = {
	.kind = "net",
	.device_id = VIRTIO_ID_NET,
	.num_queues = NUM_QUEUES,
	.queue_max_size = QUEUE_SIZE,
	.config_size = CONFIG_SIZE,
	.features = features,
	.activate = activate,
	.reset = reset,
	.queue_notify = queue_notify,
	.config_read = config_read,
	.config_write = config_write,
	.save = save,
	.restore = restore,
	.destroy = destroy,
	.attach = attach,
	.stats = stats,
};

static void copy_bucket(struct token_bucket_config *to, const struct bucket_config *from)
{
	to->size = from->size;
	to->one_time_burst = from->one_time_burst;
	to->refill_time_ms = from->refill_time_ms;
}

static int init_limiter(struct rate_limiter *rl, const struct rate_limit_config *cfg,
	const char *id, const char *what, char *err, size_t errlen)
{
	struct rate_limit limit;
	char why[160];

	copy_bucket(&limit.bandwidth, &cfg->bandwidth);
	copy_bucket(&limit.ops, &cfg->ops);
	if (rate_limiter_init(rl, &limit, now_ns(), why, sizeof(why))) {
		snprintf(err, errlen, "net '%s': %s: %s", id, what, why);
		return -EINVAL;
	}
	return 0;
}

struct net_dev *net_dev_new(struct ev_loop *loop, const struct net_config *cfg, int fd,
	char *err, size_t errlen)
{
	const char *id = cfg->id ? cfg->id : "";
	struct net_dev *n = calloc(1, sizeof(*n));

	if (!n || !(n->id = strdup(id)) || !(n->tap = strdup(cfg->tap ? cfg->tap : ""))) {
		snprintf(err, errlen, "net '%s': %s", id, strerror(ENOMEM));
		if (n)
			free(n->id);
		free(n);
		close(fd);
		return NULL;
	}
	n->loop = loop;
	n->fd = fd;
	memcpy(n->mac, cfg->mac, sizeof(n->mac));
	n->has_mac = cfg->has_mac;
	ev_io_init(&n->rx_w, on_tap, fd, EV_READ);
	ev_init(&n->rx_throttle_w, on_rx_throttle);
	ev_init(&n->tx_throttle_w, on_tx_throttle);
	n->rx_w.data = n->rx_throttle_w.data = n->tx_throttle_w.data = n;
	if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) < 0) {
		snprintf(err, errlen, "net '%s': %s", id, strerror(errno));
		goto err_destroy;
	}
	if (init_limiter(&n->rx_rl, &cfg->rx_limit, id, "rx_rate_limiter", err, errlen) ||
	    init_limiter(&n->tx_rl, &cfg->tx_limit, id, "tx_rate_limiter", err, errlen))
		goto err_destroy;
	return n;
err_destroy:
	destroy(n);
	return NULL;
}

struct virtio_dev *virtio_net_new(const struct virtio_env *env, uint64_t base, uint32_t gsi,
	const struct net_config *cfg, char *err, size_t errlen)
{
	char why[256];
	struct net_dev *n;
	int fd = tap_open(cfg->tap, why, sizeof(why));

	if (fd < 0) {
		snprintf(err, errlen, "net '%s': %s", cfg->id ? cfg->id : "", why);
		return NULL;
	}
	n = net_dev_new(env->loop, cfg, fd, err, errlen);
	if (!n)
		return NULL;
	return virtio_mmio_new(env, base, gsi, &net_ops, n, err, errlen);
}
