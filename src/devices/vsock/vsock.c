/* virtio-vsock device model (virtio 1.x 5.10): rx, tx and event queues over vsock_uds. */
#include "ember/virtio_devices.h"

#include <errno.h>
#include <ev.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ember/log.h"
#include "ember/snapshot_file.h"
#include "ember/virtio.h"
#include "ember/vsock.h"

enum { RXQ, TXQ, EVQ, NUM_QUEUES };

#define QUEUE_SIZE 256
#define CONFIG_SIZE 8 /* le64 guest_cid */
#define STATE_VERSION 2
#define STATE_PATH_MAX 4096
#define FLAG_RESET_EVENT 1u

struct vsock_dev {
	struct virtio_dev *vd;
	struct vsock_uds *uds;
	uint64_t cid;
	char *uds_path;
	bool tx_stalled;  /* TX left for later: replies had nowhere to go */
	bool reset_event; /* TRANSPORT_RESET owed on the event queue */
	uint64_t rx_packets, tx_packets, bad_packets, events;
	uint8_t pkt[VSOCK_HDR_SIZE + VSOCK_MAX_PAYLOAD];
};

static uint64_t features(void *dev)
{
	(void)dev;
	return 0; /* stream only, implied when no type feature is offered (5.10.3) */
}

static void bad_packet(struct vsock_dev *d, const char *why)
{
	d->bad_packets++;
	log_debug("virtio-vsock: dropped a packet from the guest: %s", why);
}

/* Guest -> host packets. Returns whether anything was taken. */
static bool process_tx(struct vsock_dev *d)
{
	struct virtq *q = virtio_queue(d->vd, TXQ);
	struct virtq_elem e;
	char err[160];
	bool any = false;

	d->tx_stalled = false;
	for (unsigned budget = VIRTIO_KICK_BUDGET;; budget--) {
		struct vsock_hdr h;
		const char *why = NULL;
		int r;

		if (!budget) {
			virtio_queue_yield(d->vd, TXQ);
			break;
		}
		if (!vsock_uds_can_send(d->uds)) {
			d->tx_stalled = true;
			break;
		}
		r = virtq_pop(q, &e, err, sizeof(err));
		if (r == -ENOENT)
			break;
		if (r < 0) {
			virtio_needs_reset(d->vd, err);
			return any;
		}
		any = true;
		if (e.read_len < VSOCK_HDR_SIZE ||
			virtq_read(q, &e, 0, d->pkt, VSOCK_HDR_SIZE) != VSOCK_HDR_SIZE) {
			bad_packet(d, "shorter than the header");
		} else {
			vsock_hdr_decode(&h, d->pkt);
			if (vsock_hdr_check(&h, d->cid, e.read_len - VSOCK_HDR_SIZE, &why) < 0)
				bad_packet(d, why);
			else if (h.len &&
				virtq_read(q, &e, VSOCK_HDR_SIZE, d->pkt + VSOCK_HDR_SIZE, h.len) !=
					(long)h.len)
				bad_packet(d, "payload not readable");
			else {
				d->tx_packets++;
				vsock_uds_send(d->uds, &h, d->pkt + VSOCK_HDR_SIZE);
			}
		}
		if (virtq_push(q, &e, 0) < 0) {
			virtio_needs_reset(d->vd, "tx: cannot return a chain");
			return any;
		}
	}
	if (any)
		virtio_notify(d->vd, TXQ);
	return any;
}

/* Host -> guest packets, while the guest has buffers. */
static void process_rx(struct vsock_dev *d)
{
	struct virtq *q = virtio_queue(d->vd, RXQ);
	struct virtq_elem e;
	char err[160];
	bool any = false;

	for (unsigned budget = VIRTIO_KICK_BUDGET; vsock_uds_pending(d->uds); budget--) {
		struct vsock_hdr h;
		size_t cap;
		int n, r;

		if (!budget) {
			virtio_queue_yield(d->vd, RXQ);
			break;
		}
		r = virtq_pop(q, &e, err, sizeof(err));

		if (r == -ENOENT)
			break;
		if (r < 0) {
			virtio_needs_reset(d->vd, err);
			return;
		}
		if (e.write_len < VSOCK_HDR_SIZE) {
			virtio_needs_reset(d->vd, "rx: buffer smaller than a packet header");
			return;
		}
		cap = e.write_len - VSOCK_HDR_SIZE;
		if (cap > VSOCK_MAX_PAYLOAD)
			cap = VSOCK_MAX_PAYLOAD;
		n = vsock_uds_recv(d->uds, &h, d->pkt + VSOCK_HDR_SIZE, cap);
		if (n < 0) {
			virtq_undo_pop(q);
			break;
		}
		vsock_hdr_encode(d->pkt, &h);
		if (virtq_write(q, &e, 0, d->pkt, VSOCK_HDR_SIZE + (size_t)n) !=
				VSOCK_HDR_SIZE + n ||
			virtq_push(q, &e, VSOCK_HDR_SIZE + (uint32_t)n) < 0) {
			virtio_needs_reset(d->vd, "rx: buffer not writable");
			return;
		}
		d->rx_packets++;
		any = true;
	}
	if (any)
		virtio_notify(d->vd, RXQ);
}

/* TX may wait for RX to make room for replies; RX may free room for TX. */
static void pump(struct vsock_dev *d)
{
	do {
		process_tx(d);
		process_rx(d);
	} while (d->tx_stalled && vsock_uds_can_send(d->uds));
}

static void deliver_event(struct vsock_dev *d)
{
	struct virtq *q = virtio_queue(d->vd, EVQ);
	static const uint8_t reset_id[4] = { VSOCK_EVENT_TRANSPORT_RESET, 0, 0, 0 };
	struct virtq_elem e;
	char err[160];
	int r;

	if (!d->reset_event)
		return;
	r = virtq_pop(q, &e, err, sizeof(err));
	if (r == -ENOENT)
		return;
	if (r < 0 || virtq_write(q, &e, 0, reset_id, sizeof(reset_id)) != sizeof(reset_id) ||
		virtq_push(q, &e, sizeof(reset_id)) < 0) {
		virtio_needs_reset(d->vd, r < 0 ? err : "event: buffer not writable");
		return;
	}
	d->reset_event = false;
	d->events++;
	virtio_notify(d->vd, EVQ);
}

/* The backend has packets for the guest (its own libev callback, outside any op). */
static void on_backend(void *ctx)
{
	struct vsock_dev *d = ctx;

	virtio_lock(d->vd);
	pump(d);
	virtio_unlock(d->vd);
}

static int activate(void *dev, uint64_t acked)
{
	struct vsock_dev *d = dev;

	(void)acked;
	deliver_event(d);
	pump(d);
	return 0;
}

static void reset(void *dev)
{
	struct vsock_dev *d = dev;

	vsock_uds_reset(d->uds);
	d->tx_stalled = false;
	d->reset_event = false;
}

static void queue_notify(void *dev, unsigned q)
{
	struct vsock_dev *d = dev;

	if (q == EVQ)
		deliver_event(d);
	else
		pump(d);
}

static void config_read(void *dev, uint32_t offset, uint8_t *data, uint32_t len)
{
	const struct vsock_dev *d = dev;

	for (uint32_t i = 0; i < len; i++)
		data[i] = offset + i < CONFIG_SIZE ? (uint8_t)(d->cid >> (8 * (offset + i))) : 0;
}

static void config_write(void *dev, uint32_t offset, const uint8_t *data, uint32_t len)
{
	(void)dev;
	(void)offset;
	(void)data;
	(void)len; /* read-only (5.10.4) */
}

/* State v2: u32 version, local_port_last u32, flags u32. v1 also held the configuration
 * (guest_cid u64 and uds_path string, after the version), which the state file's
 * DEVICE_CONFIG section holds. */
static int save(void *dev, struct snap_writer *w)
{
	const struct vsock_dev *d = dev;
	int ret;

	ret = snap_put_u32(w, STATE_VERSION);
	if (!ret)
		ret = snap_put_u32(w, vsock_uds_local_port_last(d->uds));
	if (!ret)
		ret = snap_put_u32(w, d->reset_event ? FLAG_RESET_EVENT : 0);
	return ret;
}

/* The configuration a v1 state carried. Its uds_path is not used: the device listens
 * where the restore parameters say (vsock_override), which the builder put in the
 * config; its guest_cid is the one the guest knows (it re-reads it after the reset
 * event). */
static int get_v1_config(struct vsock_dev *d, struct snap_cursor *c, char *err, size_t errlen)
{
	const char *path = NULL;
	uint64_t cid = 0;

	if (snap_get_u64(c, &cid) || snap_get_str(c, &path, STATE_PATH_MAX)) {
		snprintf(err, errlen, "virtio-vsock: saved state is malformed (version 1)");
		return -EINVAL;
	}
	if (cid < 3 || cid > UINT32_MAX) {
		snprintf(err, errlen, "virtio-vsock: saved guest_cid %llu is out of range",
			(unsigned long long)cid);
		return -EINVAL;
	}
	if (cid != d->cid) {
		log_warn("virtio-vsock: guest_cid %llu from the snapshot replaces %llu",
			(unsigned long long)cid, (unsigned long long)d->cid);
		d->cid = cid;
		vsock_uds_set_guest_cid(d->uds, cid);
	}
	return 0;
}

/* Connections of the saved VM are gone, so the guest hears of a transport reset (as
 * with Firecracker). */
static int restore(void *dev, struct snap_cursor *c, char *err, size_t errlen)
{
	struct vsock_dev *d = dev;
	uint32_t version = 0, port = 0, flags = 0;
	int ret;

	if (snap_get_u32(c, &version) || version < 1 || version > STATE_VERSION) {
		snprintf(err, errlen,
			"virtio-vsock: saved state version %u, this ember reads 1 "
			"to %u",
			version, STATE_VERSION);
		return -EINVAL;
	}
	ret = version == 1 ? get_v1_config(d, c, err, errlen) : 0;
	if (ret)
		return ret;
	if (snap_get_u32(c, &port) || snap_get_u32(c, &flags)) {
		snprintf(err, errlen, "virtio-vsock: saved state is malformed (version %u)",
			version);
		return -EINVAL;
	}
	vsock_uds_reset(d->uds);
	vsock_uds_set_local_port_last(d->uds, port);
	d->tx_stalled = false;
	d->reset_event = true;
	return 0;
}

static void destroy(void *dev)
{
	struct vsock_dev *d = dev;

	if (!d)
		return;
	vsock_uds_free(d->uds);
	free(d->uds_path);
	free(d);
}

static void attach(void *dev, struct virtio_dev *vd)
{
	((struct vsock_dev *)dev)->vd = vd;
}

static void stats(void *dev, void (*put)(void *ctx, const char *key, uint64_t value), void *ctx)
{
	const struct vsock_dev *d = dev;
	struct vsock_uds_stats s;

	vsock_uds_stats(d->uds, &s);
	put(ctx, "rx_packets", d->rx_packets);
	put(ctx, "tx_packets", d->tx_packets);
	put(ctx, "bad_packets", d->bad_packets);
	put(ctx, "events", d->events);
	put(ctx, "conns_open", s.open);
	put(ctx, "conns_host", s.conns_host);
	put(ctx, "conns_guest", s.conns_guest);
	put(ctx, "conns_refused", s.conn_refused);
	put(ctx, "rst_sent", s.rst_sent);
	put(ctx, "tx_bytes", s.tx_bytes);
	put(ctx, "rx_bytes", s.rx_bytes);
	put(ctx, "credit_violations", s.credit_violations);
	put(ctx, "bad_connect_lines", s.bad_connect_lines);
}

const struct virtio_dev_ops vsock_ops = {
	.kind = "vsock",
	.device_id = VIRTIO_ID_VSOCK,
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

struct vsock_dev *vsock_dev_new(struct ev_loop *loop, const struct vsock_config *cfg, char *err,
	size_t errlen)
{
	struct vsock_dev *d;

	if (!cfg->uds_path || cfg->guest_cid < 3 || cfg->guest_cid > UINT32_MAX) {
		snprintf(err, errlen, "vsock: needs guest_cid 3..4294967295 and a uds_path");
		return NULL;
	}
	d = calloc(1, sizeof(*d));
	if (!d || !(d->uds_path = strdup(cfg->uds_path))) {
		snprintf(err, errlen, "vsock: %s", strerror(ENOMEM));
		free(d);
		return NULL;
	}
	d->cid = cfg->guest_cid;
	d->uds = vsock_uds_new(loop, cfg->uds_path, d->cid, on_backend, d, err, errlen);
	if (!d->uds) {
		destroy(d);
		return NULL;
	}
	return d;
}

struct virtio_dev *virtio_vsock_new(const struct virtio_env *env, uint64_t base, uint32_t gsi,
	const struct vsock_config *cfg, char *err, size_t errlen)
{
	struct vsock_dev *d = vsock_dev_new(env->loop, cfg, err, errlen);

	if (!d)
		return NULL;
	if (env->control_loop)
		vsock_uds_serve_from(d->uds, env->control_loop);
	return virtio_mmio_new(env, base, gsi, &vsock_ops, d, err, errlen);
}
