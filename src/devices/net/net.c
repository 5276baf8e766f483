/* virtio-net device model (virtio 1.x 5.1): one rx/tx queue pair over a TAP fd. */
#include "net_internal.h"

#include <errno.h>
#include <ev.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ember/clock.h"
#include "ember/log.h"
#include "ember/mmds.h"
#include "ember/rate_limiter.h"
#include "ember/virtio.h"
#include "ember/virtio_devices.h"

#define QUEUE_SIZE 256
/* 5.1.4: mac[6], status, max_virtqueue_pairs, mtu (le16 each); ember offers neither
 * VIRTIO_NET_F_STATUS nor VIRTIO_NET_F_MQ, so those two read as 0. */
#define CONFIG_SIZE 12
#define CONFIG_MTU 10
static uint64_t features(void *dev)
{
	return net_offered(dev);
}

/* The tap may put into its frames what the driver accepted (and nothing after a reset).
 * A socketpair in tests is no tap (ENOTTY): nothing to tell. */
static void tell_tap(struct net_dev *n, uint64_t acked)
{
	int ret = tap_set_offload(n->fd, net_tap_flags(acked));

	if (ret && ret != -ENOTTY)
		log_warn("net '%s': tap '%s': TUNSETOFFLOAD: %s", n->id, n->tap, strerror(-ret));
}

static int activate(void *dev, uint64_t acked)
{
	struct net_dev *n = dev;

	n->acked = acked;
	tell_tap(n, acked);
	n->active = true;
	net_rx_pump(n);
	net_tx_pump(n);
	return 0;
}

static void reset(void *dev)
{
	struct net_dev *n = dev;

	n->active = false;
	n->rx_held = false;
	n->acked = 0;
	tell_tap(n, 0);
	net_set_reader(n, false);
	ev_timer_stop(n->loop, &n->rx_throttle_w);
	ev_timer_stop(n->loop, &n->tx_throttle_w);
	ev_timer_stop(n->loop, &n->mmds_w);
	if (n->mmds)
		mmds_stack_clear(n->mmds);
}

static void queue_notify(void *dev, unsigned q)
{
	struct net_dev *n = dev;

	if (q == RXQ)
		net_rx_pump(n);
	else if (q == TXQ)
		net_tx_pump(n);
}

static void config_read(void *dev, uint32_t offset, uint8_t *data, uint32_t len)
{
	const struct net_dev *n = dev;

	uint8_t cfg[CONFIG_SIZE] = { 0 };

	memcpy(cfg, n->mac, sizeof(n->mac));
	cfg[CONFIG_MTU] = (uint8_t)n->mtu;
	cfg[CONFIG_MTU + 1] = (uint8_t)(n->mtu >> 8);
	for (uint32_t i = 0; i < len; i++)
		data[i] = offset + i < CONFIG_SIZE ? cfg[offset + i] : 0;
}

static void config_write(void *dev, uint32_t offset, const uint8_t *data, uint32_t len)
{
	(void)dev;
	(void)offset;
	(void)data;
	(void)len; /* the MAC is read-only without VIRTIO_NET_F_CTRL_MAC_ADDR */
}

static void destroy(void *dev)
{
	struct net_dev *n = dev;

	if (!n)
		return;
	net_set_reader(n, false);
	ev_timer_stop(n->loop, &n->rx_throttle_w);
	ev_timer_stop(n->loop, &n->tx_throttle_w);
	ev_timer_stop(n->loop, &n->mmds_w);
	mmds_stack_free(n->mmds);
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

static void stats(void *dev, void (*put)(void *ctx, const char *key, uint64_t value), void *ctx)
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
	put(ctx, "rx_bad_buffers", n->st.rx_bad_buffers);
	if (n->mmds)
		mmds_stats_put(mmds_stack_stats(n->mmds), put, ctx);
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
	.save = net_save,
	.restore = net_restore,
	.destroy = destroy,
	.attach = attach,
	.stats = stats,
};

/* `rl` with the update `u` applied, into *out; the original is left as it is. */
static int updated(const struct net_dev *n, const struct rate_limiter *rl,
	const struct rate_limit_update *u, const char *what, struct rate_limiter *out, char *err,
	size_t errlen)
{
	char why[160];

	*out = *rl;
	if (rate_limiter_update(out, u, mono_ns(), why, sizeof(why)) == 0)
		return 0;
	snprintf(err, errlen, "net '%s': %s: %s", n->id, what, why);
	return -EINVAL;
}

/* What a direction's old limit held back is weighed against its new one now (the pump
 * arms the timer again if it still has to wait). */
static void release(struct net_dev *n, ev_timer *held, void (*pump)(struct net_dev *))
{
	if (!ev_is_active(held))
		return;
	ev_timer_stop(n->loop, held);
	pump(n);
}

int virtio_net_set_limits(struct virtio_dev *vd, const struct rate_limit_update *rx,
	const struct rate_limit_update *tx, char *err, size_t errlen)
{
	struct net_dev *n = virtio_model(vd, &net_ops);
	struct rate_limiter new_rx, new_tx;
	int ret;

	if (!n) {
		snprintf(err, errlen, "not a network device");
		return -ENODEV;
	}
	virtio_lock(vd);
	/* Both checked before either changes: all or nothing. */
	ret = updated(n, &n->rx_rl, rx, "rx_rate_limiter", &new_rx, err, errlen);
	if (!ret)
		ret = updated(n, &n->tx_rl, tx, "tx_rate_limiter", &new_tx, err, errlen);
	if (!ret) {
		n->rx_rl = new_rx;
		n->tx_rl = new_tx;
		release(n, &n->rx_throttle_w, net_rx_pump);
		release(n, &n->tx_throttle_w, net_tx_pump);
	}
	virtio_unlock(vd);
	return ret;
}

static int init_limiter(struct rate_limiter *rl, const struct rate_limit *limit, const char *id,
	const char *what, char *err, size_t errlen)
{
	char why[160];

	if (rate_limiter_init(rl, limit, mono_ns(), why, sizeof(why))) {
		snprintf(err, errlen, "net '%s': %s: %s", id, what, why);
		return -EINVAL;
	}
	return 0;
}

struct net_dev *net_dev_new(struct ev_loop *loop, const struct net_config *cfg, struct mmds *store,
	int fd, char *err, size_t errlen)
{
	const char *id = cfg->id ? cfg->id : "";
	struct net_dev *n = calloc(1, sizeof(*n));
	int ret;

	if (!n || !(n->id = strdup(id)) || !(n->tap = strdup(cfg->tap ? cfg->tap : ""))) {
		snprintf(err, errlen, "net '%s': %s", id, strerror(ENOMEM));
		if (n)
			free(n->id);
		free(n);
		close(fd);
		return NULL;
	}
	n->loop = loop;
	n->store = store;
	n->fd = fd;
	memcpy(n->mac, cfg->mac, sizeof(n->mac));
	n->has_mac = cfg->has_mac;
	n->mtu = cfg->mtu;
	n->offloads = !cfg->no_offloads;
	ev_io_init(&n->rx_w, net_on_tap, fd, EV_READ);
	ev_init(&n->rx_throttle_w, net_on_throttle);
	ev_init(&n->tx_throttle_w, net_on_throttle);
	ev_init(&n->mmds_w, net_on_mmds_timer);
	n->rx_w.data = n->rx_throttle_w.data = n->tx_throttle_w.data = n->mmds_w.data = n;
	if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) < 0) {
		snprintf(err, errlen, "net '%s': %s", id, strerror(errno));
		goto err_destroy;
	}
	if (init_limiter(&n->rx_rl, &cfg->rx_limit, id, "rx_rate_limiter", err, errlen) ||
		init_limiter(&n->tx_rl, &cfg->tx_limit, id, "tx_rate_limiter", err, errlen))
		goto err_destroy;
	if (cfg->mmds.enabled && (ret = net_mmds_enable(n, &cfg->mmds))) {
		snprintf(err, errlen, "net '%s': mmds: %s", id,
			ret == -EINVAL ? "no MMDS store to answer from" : strerror(-ret));
		goto err_destroy;
	}
	return n;
err_destroy:
	destroy(n);
	return NULL;
}

struct virtio_dev *virtio_net_new(const struct virtio_env *env, uint64_t base, uint32_t gsi,
	const struct net_config *cfg, char *err, size_t errlen)
{
	const char *id = cfg->id ? cfg->id : "";
	char why[384];
	struct net_dev *n;
	int fd;

	if (cfg->has_fd) {
		/* Opened at PUT: the configuration keeps its own, the device takes a copy. */
		fd = fcntl(cfg->tap_fd, F_DUPFD_CLOEXEC, 0);
		if (fd < 0) {
			snprintf(err, errlen, "net '%s': tap '%s': %s", id, cfg->tap,
				strerror(errno));
			return NULL;
		}
	} else if ((fd = tap_open(cfg->tap, why, sizeof(why))) < 0) {
		snprintf(err, errlen, "net '%s': cannot open tap '%s': %s", id,
			cfg->tap ? cfg->tap : "", why);
		return NULL;
	}
	n = net_dev_new(env->loop, cfg, env->mmds, fd, err, errlen);
	if (!n)
		return NULL;
	return virtio_mmio_new(env, base, gsi, &net_ops, n, err, errlen);
}

int virtio_net_mmds_config(struct virtio_dev *vd, struct net_mmds_config *out)
{
	const struct net_dev *n = virtio_model(vd, &net_ops);

	if (!n)
		return -ENODEV;
	*out = n->mmds ? n->mmds_cfg : (struct net_mmds_config){ 0 };
	return 0;
}
