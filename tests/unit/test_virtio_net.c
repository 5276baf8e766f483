/* Unit tests for the virtio-net model: headers, RX/TX paths and limits over a fake tap. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>
#include <ev.h>

#include "ember/config.h"
#include "ember/log.h"
#include "ember/mmds.h"
#include "ember/net.h"
#include "ember/rate_limiter.h"
#include "ember/snapshot_file.h"
#include "ember/virtio.h"
#include "ember/virtio_devices.h"
#include "netvsock_rig.h"

enum { RXQ, TXQ };

static const uint8_t MAC[6] = { 0x06, 0x00, 0xac, 0x10, 0x00, 0x02 };
#define BASIC ((1ull << VIRTIO_NET_F_MAC) | (1ull << VIRTIO_NET_F_MTU))

/* The fake tap: a SOCK_SEQPACKET pair keeps frame boundaries as a tap does. */
struct t {
	struct ev_loop *loop;
	struct virtio_dev *r;
	struct net_dev *n;
	int peer; /* the "host" end */
	struct net_config cfg;
	struct mmds *store; /* what MMDS answers from, as the VMM hands it */
};

static int setup_cfg(void **state, const struct net_config *cfg)
{
	struct t *t = calloc(1, sizeof(*t));
	char err[256];
	int sv[2];

	assert_non_null(t);
	assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv), 0);
	t->loop = ev_loop_new(EVFLAG_AUTO);
	t->r = nvr_new(2);
	t->cfg = *cfg;
	t->store = mmds_new();
	assert_non_null(t->store);
	t->n = net_dev_new(t->loop, &t->cfg, t->store, sv[0], err, sizeof(err));
	assert_non_null(t->n);
	t->peer = sv[1];
	net_ops.attach(t->n, t->r);
	t->r->ops = &net_ops;
	t->r->dev = t->n;
	assert_int_equal(net_ops.activate(t->n, 0), 0);
	*state = t;
	return 0;
}

static int setup(void **state)
{
	struct net_config cfg = { .id = "eth0", .tap = "tap0", .has_mac = true };

	memcpy(cfg.mac, MAC, 6);
	return setup_cfg(state, &cfg);
}

static int setup_limited(void **state)
{
	struct net_config cfg = { .id = "eth0", .tap = "tap0" };

	cfg.tx_limit.ops.size = 1;
	cfg.tx_limit.ops.refill_time_ms = 100000;
	cfg.rx_limit.ops.size = 1;
	cfg.rx_limit.ops.refill_time_ms = 100000;
	return setup_cfg(state, &cfg);
}

static int teardown(void **state)
{
	struct t *t = *state;

	net_ops.destroy(t->n);
	close(t->peer);
	nvr_free(t->r);
	ev_loop_destroy(t->loop);
	mmds_free(t->store);
	free(t);
	return 0;
}

static void spin(struct t *t)
{
	for (int i = 0; i < 4; i++)
		ev_run(t->loop, EVRUN_NOWAIT);
}

static size_t frame(uint8_t *buf, size_t len, uint8_t seed, bool with_hdr)
{
	size_t off = with_hdr ? NET_HDR_SIZE : 0;

	memset(buf, 0, off);
	for (size_t i = 0; i < len; i++)
		buf[off + i] = (uint8_t)(seed + i * 7);
	return off + len;
}

static void stat_of(void *ctx, const char *key, uint64_t v)
{
	const char **want = ctx;

	if (strcmp(key, want[0]) == 0)
		*(uint64_t *)(void *)want[1] = v;
}

static uint64_t counter(struct t *t, const char *key)
{
	uint64_t v = ~0ull;
	const char *ctx[2] = { key, (const char *)(void *)&v };

	net_ops.stats(t->n, stat_of, ctx);
	return v;
}

static void test_virtio_net_config_has_mac(void **state)
{
	struct t *t = *state;
	uint8_t mac[6];

	assert_int_equal(net_ops.device_id, VIRTIO_ID_NET);
	assert_true(net_ops.features(t->n) & (1ull << VIRTIO_NET_F_MAC));
	net_ops.config_read(t->n, 0, mac, 4);
	net_ops.config_read(t->n, 4, mac + 4, 2);
	assert_memory_equal(mac, MAC, 6);
}

static void test_virtio_net_no_mac_feature_without_mac(void **state)
{
	struct net_config cfg = { .id = "eth1", .tap = "tap1" };
	struct t *t;

	setup_cfg(state, &cfg);
	t = *state;
	assert_int_equal(net_ops.features(t->n) & BASIC, 0);
	teardown(state);
}

/* An mtu is offered with VIRTIO_NET_F_MTU at config offset 10 (little-endian); without
 * one neither the feature nor a value is there. */
static void test_virtio_net_mtu_feature_and_config(void **state)
{
	struct net_config cfg = { .id = "eth1", .tap = "tap1", .mtu = 9000 };
	uint8_t c[12];
	struct t *t;

	setup_cfg(state, &cfg);
	t = *state;
	assert_int_equal(net_ops.features(t->n) & BASIC, 1ull << VIRTIO_NET_F_MTU);
	assert_true(net_ops.config_size >= sizeof(c));
	net_ops.config_read(t->n, 0, c, sizeof(c));
	assert_int_equal(c[10] | c[11] << 8, 9000);
	assert_int_equal(c[6] | c[7] | c[8] | c[9], 0); /* status, max_virtqueue_pairs */
	net_ops.config_read(t->n, 11, c, 1);
	assert_int_equal(c[0], 9000 >> 8);
	teardown(state);
	setup(state);
	t = *state;
	assert_false(net_ops.features(t->n) & (1ull << VIRTIO_NET_F_MTU));
	net_ops.config_read(t->n, 10, c, 2);
	assert_int_equal(c[0] | c[1], 0);
}

static void test_virtio_net_tx_zeroes_header_and_passes_frame(void **state)
{
	struct t *t = *state;
	uint8_t out[128], got[256];
	size_t len = frame(out, 60, 1, true);
	uint32_t id, ulen;

	memset(out, 0xaa, NET_HDR_SIZE); /* offload bits nobody negotiated */
	nvr_tx(t->r, TXQ, out, (uint32_t)len);
	net_ops.queue_notify(t->n, TXQ);
	assert_int_equal(nvr_used(t->r, TXQ, &id, &ulen), 1);
	assert_int_equal(ulen, 0);
	assert_int_equal(t->r->notifies[TXQ], 1);
	assert_int_equal(read(t->peer, got, sizeof(got)), (ssize_t)len);
	for (int i = 0; i < NET_HDR_SIZE; i++)
		assert_int_equal(got[i], 0);
	assert_memory_equal(got + NET_HDR_SIZE, out + NET_HDR_SIZE, 60);
	assert_int_equal(counter(t, "tx_packets"), 1);
	assert_int_equal(counter(t, "tx_bytes"), 60);
}

static void test_virtio_net_tx_header_and_frame_in_separate_descriptors(void **state)
{
	struct t *t = *state;
	uint8_t hdr[NET_HDR_SIZE] = { 0 }, body[100], got[256];
	struct nvr_seg segs[3] = { { hdr, NET_HDR_SIZE, false }, { body, 40, false },
		{ body + 40, 60, false } };
	uint32_t id, len;

	frame(body, sizeof(body), 9, false);
	nvr_chain(t->r, TXQ, segs, 3, NULL);
	net_ops.queue_notify(t->n, TXQ);
	assert_int_equal(nvr_used(t->r, TXQ, &id, &len), 1);
	assert_int_equal(read(t->peer, got, sizeof(got)), NET_HDR_SIZE + 100);
	assert_memory_equal(got + NET_HDR_SIZE, body, 100);
}

static void test_virtio_net_tx_header_only_is_dropped(void **state)
{
	struct t *t = *state;
	uint8_t hdr[NET_HDR_SIZE] = { 0 }, got[64];
	uint32_t id, len;

	nvr_tx(t->r, TXQ, hdr, 4);
	nvr_tx(t->r, TXQ, hdr, NET_HDR_SIZE);
	net_ops.queue_notify(t->n, TXQ);
	assert_int_equal(nvr_used(t->r, TXQ, &id, &len), 1);
	assert_int_equal(nvr_used(t->r, TXQ, &id, &len), 1);
	assert_int_equal(counter(t, "tx_malformed"), 2);
	assert_int_equal(recv(t->peer, got, sizeof(got), MSG_DONTWAIT), -1);
	assert_int_equal(t->r->needs_reset, 0);
}

static unsigned used_count(struct virtio_dev *r, unsigned q)
{
	uint32_t id, len;
	unsigned n = 0;

	while (nvr_used(r, q, &id, &len) == 1)
		n++;
	return n;
}

/* One call takes at most a budget of chains and asks the transport to come back. */
static void test_virtio_net_tx_stops_at_the_budget_and_yields(void **state)
{
	struct t *t = *state;
	uint8_t hdr[4] = { 0 };

	for (unsigned i = 0; i < VIRTIO_KICK_BUDGET + 6; i++)
		nvr_tx(t->r, TXQ, hdr, sizeof(hdr));
	net_ops.queue_notify(t->n, TXQ);
	assert_int_equal(used_count(t->r, TXQ), VIRTIO_KICK_BUDGET);
	assert_int_equal(t->r->yields[TXQ], 1);
	net_ops.queue_notify(t->n, TXQ); /* as the transport does */
	assert_int_equal(used_count(t->r, TXQ), 6);
	assert_int_equal(t->r->yields[TXQ], 1);
	assert_int_equal(counter(t, "tx_malformed"), VIRTIO_KICK_BUDGET + 6);
}

static void test_virtio_net_tx_out_of_range_descriptor_needs_reset(void **state)
{
	struct t *t = *state;
	uint8_t *desc;
	uint32_t id, len;

	nvr_tx(t->r, TXQ, "x", 1);
	desc = nvr_ptr(t->r, t->r->q[TXQ].desc_gpa);
	memset(desc, 0xff, 8); /* address far outside guest memory */
	net_ops.queue_notify(t->n, TXQ);
	assert_int_equal(t->r->needs_reset, 1);
	assert_int_equal(nvr_used(t->r, TXQ, &id, &len), 0);
}

static void test_virtio_net_rx_sets_num_buffers(void **state)
{
	struct t *t = *state;
	uint8_t in[128];
	size_t len = frame(in, 64, 3, true);
	uint64_t gpa;
	uint32_t id, ulen;
	const uint8_t *got;

	in[0] = 0; /* flags; the tap never sets offload bits we did not enable */
	nvr_rx(t->r, RXQ, 1526, &gpa);
	assert_int_equal(write(t->peer, in, len), (ssize_t)len);
	spin(t);
	assert_int_equal(nvr_used(t->r, RXQ, &id, &ulen), 1);
	assert_int_equal(ulen, len);
	got = nvr_ptr(t->r, gpa);
	assert_int_equal(got[10], 1);
	assert_int_equal(got[11], 0);
	assert_memory_equal(got + NET_HDR_SIZE, in + NET_HDR_SIZE, 64);
	assert_int_equal(counter(t, "rx_packets"), 1);
}

static void test_virtio_net_rx_waits_for_guest_buffers(void **state)
{
	struct t *t = *state;
	uint8_t in[128];
	size_t len = frame(in, 64, 5, true);
	uint32_t id, ulen;

	assert_int_equal(write(t->peer, in, len), (ssize_t)len);
	assert_int_equal(write(t->peer, in, len), (ssize_t)len);
	spin(t);
	/* no buffer: one frame is held, the other stays in the tap, nothing spins */
	assert_int_equal(nvr_used(t->r, RXQ, &id, &ulen), 0);
	assert_int_equal(counter(t, "rx_dropped"), 0);
	nvr_rx(t->r, RXQ, 1526, NULL);
	nvr_rx(t->r, RXQ, 1526, NULL);
	net_ops.queue_notify(t->n, RXQ);
	spin(t);
	assert_int_equal(nvr_used(t->r, RXQ, &id, &ulen), 1);
	assert_int_equal(nvr_used(t->r, RXQ, &id, &ulen), 1);
	assert_int_equal(counter(t, "rx_packets"), 2);
}

static void test_virtio_net_rx_frame_larger_than_buffer_is_dropped(void **state)
{
	struct t *t = *state;
	uint8_t in[256];
	size_t big = frame(in, 200, 1, true), small;
	uint32_t id, ulen;

	nvr_rx(t->r, RXQ, 100, NULL);
	assert_int_equal(write(t->peer, in, big), (ssize_t)big);
	small = frame(in, 50, 1, true);
	assert_int_equal(write(t->peer, in, small), (ssize_t)small);
	spin(t);
	/* the buffer went to the frame that fits */
	assert_int_equal(nvr_used(t->r, RXQ, &id, &ulen), 1);
	assert_int_equal(ulen, small);
	assert_int_equal(counter(t, "rx_dropped"), 1);
}

static void test_virtio_net_rx_gso_frame_is_dropped(void **state)
{
	struct t *t = *state;
	uint8_t in[128];
	size_t len = frame(in, 64, 1, true);
	uint32_t id, ulen;

	in[1] = 1; /* gso_type TCPV4 */
	nvr_rx(t->r, RXQ, 1526, NULL);
	assert_int_equal(write(t->peer, in, len), (ssize_t)len);
	spin(t);
	assert_int_equal(nvr_used(t->r, RXQ, &id, &ulen), 0);
	assert_int_equal(counter(t, "rx_dropped"), 1);
}

static void test_virtio_net_tx_rate_limit_defers(void **state)
{
	struct t *t = *state;
	uint8_t out[128], got[256];
	size_t len = frame(out, 60, 1, true);
	uint32_t id, ulen;

	nvr_tx(t->r, TXQ, out, (uint32_t)len);
	nvr_tx(t->r, TXQ, out, (uint32_t)len);
	net_ops.queue_notify(t->n, TXQ);
	assert_int_equal(nvr_used(t->r, TXQ, &id, &ulen), 1);
	assert_int_equal(nvr_used(t->r, TXQ, &id, &ulen), 0); /* left in the ring */
	assert_int_equal(counter(t, "tx_throttled"), 1);
	assert_int_equal(read(t->peer, got, sizeof(got)), (ssize_t)len);
	/* a kick while throttled does not spin or send */
	net_ops.queue_notify(t->n, TXQ);
	assert_int_equal(nvr_used(t->r, TXQ, &id, &ulen), 0);
}

static void test_virtio_net_rx_rate_limit_defers(void **state)
{
	struct t *t = *state;
	uint8_t in[128];
	size_t len = frame(in, 64, 1, true);
	uint32_t id, ulen;

	nvr_rx(t->r, RXQ, 1526, NULL);
	nvr_rx(t->r, RXQ, 1526, NULL);
	assert_int_equal(write(t->peer, in, len), (ssize_t)len);
	assert_int_equal(write(t->peer, in, len), (ssize_t)len);
	spin(t);
	assert_int_equal(nvr_used(t->r, RXQ, &id, &ulen), 1);
	assert_int_equal(nvr_used(t->r, RXQ, &id, &ulen), 0);
	assert_true(counter(t, "rx_throttled") >= 1);
}

static void test_virtio_net_set_limits_releases_held_frames(void **state)
{
	struct t *t = *state;
	struct rate_limit_update keep = { 0 }, off = { .ops_set = true };
	uint8_t out[128], in[128], got[256];
	size_t len = frame(out, 60, 1, true), ilen = frame(in, 64, 2, true);
	uint32_t id, ulen;
	char err[256];

	nvr_tx(t->r, TXQ, out, (uint32_t)len);
	nvr_tx(t->r, TXQ, out, (uint32_t)len);
	net_ops.queue_notify(t->n, TXQ);
	assert_int_equal(nvr_used(t->r, TXQ, &id, &ulen), 1);
	assert_int_equal(nvr_used(t->r, TXQ, &id, &ulen), 0);
	/* tx loses its ops bucket: the held frame goes out at once; rx is left alone. */
	assert_int_equal(virtio_net_set_limits(t->r, &keep, &off, err, sizeof(err)), 0);
	assert_int_equal(nvr_used(t->r, TXQ, &id, &ulen), 1);
	assert_int_equal(read(t->peer, got, sizeof(got)), (ssize_t)len);
	assert_int_equal(read(t->peer, got, sizeof(got)), (ssize_t)len);
	nvr_rx(t->r, RXQ, 1526, NULL);
	nvr_rx(t->r, RXQ, 1526, NULL);
	assert_int_equal(write(t->peer, in, ilen), (ssize_t)ilen);
	assert_int_equal(write(t->peer, in, ilen), (ssize_t)ilen);
	spin(t);
	assert_int_equal(nvr_used(t->r, RXQ, &id, &ulen), 1);
	assert_int_equal(nvr_used(t->r, RXQ, &id, &ulen), 0);
	/* Now rx too: the frame waiting in the tap reaches the guest. */
	assert_int_equal(virtio_net_set_limits(t->r, &off, &keep, err, sizeof(err)), 0);
	assert_int_equal(nvr_used(t->r, RXQ, &id, &ulen), 1);
}

static void test_virtio_net_set_limits_bad_bucket_changes_nothing(void **state)
{
	struct t *t = *state;
	struct rate_limit_update off = { .ops_set = true },
				 bad = { .bandwidth_set = true,
					 .limit.bandwidth = { .size = 100 } };
	uint8_t out[128];
	size_t len = frame(out, 60, 1, true);
	uint32_t id, ulen;
	char err[256];

	assert_int_equal(virtio_net_set_limits(t->r, &off, &bad, err, sizeof(err)), -EINVAL);
	assert_string_equal(err,
		"net 'eth0': tx_rate_limiter: bandwidth: refill_time_ms must be "
		"> 0 when size is set");
	/* The rx part was not applied either: still one frame per bucket. */
	nvr_tx(t->r, TXQ, out, (uint32_t)len);
	nvr_tx(t->r, TXQ, out, (uint32_t)len);
	net_ops.queue_notify(t->n, TXQ);
	assert_int_equal(nvr_used(t->r, TXQ, &id, &ulen), 1);
	assert_int_equal(nvr_used(t->r, TXQ, &id, &ulen), 0);
	assert_int_equal(counter(t, "tx_throttled"), 1);
	assert_int_equal(virtio_net_set_limits(NULL, &off, &off, err, sizeof(err)), -ENODEV);
}

/* Save the device into a one-section image and return a reader on it. */
static struct snap_reader *save(struct t *t)
{
	struct snap_writer *w = snap_writer_new();
	struct snap_reader *rd = NULL;
	const uint8_t *img;
	size_t len;
	char err[128];

	assert_int_equal(snap_section_begin(w, SNAP_SEC_DEVICE, 1), 0);
	assert_int_equal(net_ops.save(t->n, w), 0);
	assert_int_equal(snap_section_end(w), 0);
	assert_int_equal(snap_writer_image(w, &img, &len), 0);
	assert_int_equal(snap_reader_parse(&rd, img, len, err, sizeof(err)), 0);
	snap_writer_free(w);
	return rd;
}

static void test_virtio_net_save_restore_round_trip(void **state)
{
	struct t *t = *state;
	struct snap_reader *rd = save(t);
	struct snap_cursor c;
	uint8_t mac[6];
	char err[160];

	assert_int_equal(snap_reader_find(rd, SNAP_SEC_DEVICE, 0, &c), 0);
	assert_int_equal(net_ops.restore(t->n, &c, err, sizeof(err)), 0);
	net_ops.config_read(t->n, 0, mac, 6);
	assert_memory_equal(mac, MAC, 6);
	/* a truncated state is refused */
	assert_int_equal(snap_reader_find(rd, SNAP_SEC_DEVICE, 0, &c), 0);
	c.left = 10;
	assert_int_equal(net_ops.restore(t->n, &c, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "saved state is malformed"));
	snap_reader_free(rd);
}

/* Save `from` and restore it into `to`. */
static int transplant(struct t *from, struct t *to)
{
	struct snap_reader *rd = save(from);
	struct snap_cursor c;
	char err[160];
	int ret;

	assert_int_equal(snap_reader_find(rd, SNAP_SEC_DEVICE, 0, &c), 0);
	ret = net_ops.restore(to->n, &c, err, sizeof(err));
	snap_reader_free(rd);
	return ret;
}

/* A restored interface is built without MMDS (the snapshot's device configuration has
 * none); its state brings the MMDS configuration back, and the VM reads it from there. */
static void test_virtio_net_restore_brings_back_the_mmds_config(void **state)
{
	struct t *plain = *state, *with;
	struct net_config cfg = { .id = "eth0",
		.tap = "tap0",
		.has_mac = true,
		.mmds = { .enabled = true, .ipv4 = 0xa9fe0102, .version = 2, .imds_compat = true } };
	struct net_mmds_config got;
	void *saved = NULL;

	memcpy(cfg.mac, MAC, 6);
	assert_int_equal(setup_cfg(&saved, &cfg), 0);
	with = saved;
	assert_int_equal(virtio_net_mmds_config(plain->r, &got), 0);
	assert_false(got.enabled);
	assert_int_equal(transplant(with, plain), 0);
	assert_int_equal(virtio_net_mmds_config(plain->r, &got), 0);
	assert_true(got.enabled);
	assert_int_equal(got.ipv4, 0xa9fe0102);
	assert_int_equal(got.version, 2);
	assert_true(got.imds_compat);

	/* And a state without MMDS turns it off. */
	teardown(&saved);
	assert_int_equal(setup(&saved), 0);
	assert_int_equal(transplant(saved, plain), 0);
	assert_int_equal(virtio_net_mmds_config(plain->r, &got), 0);
	assert_false(got.enabled);
	teardown(&saved);
	assert_int_equal(virtio_net_mmds_config(NULL, &got), -ENODEV);
}

/* An interface asked to answer MMDS with no store to answer from is refused, named. */
static void test_virtio_net_mmds_without_a_store_is_refused(void **state)
{
	struct net_config cfg = { .id = "eth1",
		.tap = "tap0",
		.mmds = { .enabled = true, .ipv4 = MMDS_DEFAULT_IPV4, .version = 1 } };
	struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
	char err[256];
	int sv[2];

	(void)state;
	assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv), 0);
	assert_null(net_dev_new(loop, &cfg, NULL, sv[0], err, sizeof(err)));
	assert_string_equal(err, "net 'eth1': mmds: no MMDS store to answer from");
	close(sv[1]);
	ev_loop_destroy(loop);
}

/* A v2 state (before the interface's configuration was stored only in DEVICE_CONFIG: it
 * held id, tap and MAC) still restores, and one of another interface is refused, named. */
static void test_virtio_net_restores_a_version_2_state(void **state)
{
	struct t *t = *state;
	const char *ids[2] = { "eth0", "eth9" };
	uint8_t mac[8] = { 0 };
	char err[160];

	memcpy(mac, MAC, 6);
	mac[6] = 1; /* has_mac */
	for (int k = 0; k < 2; k++) {
		struct snap_writer *w = snap_writer_new();
		struct snap_reader *rd = NULL;
		struct snap_cursor c;
		const uint8_t *img;
		size_t len;

		assert_int_equal(snap_section_begin(w, SNAP_SEC_DEVICE, 1), 0);
		assert_int_equal(snap_put_u32(w, 2), 0);
		assert_int_equal(snap_put_str(w, ids[k]), 0);
		assert_int_equal(snap_put_str(w, "tap0"), 0);
		assert_int_equal(snap_put(w, mac, sizeof(mac)), 0);
		for (int i = 0; i < 8; i++) /* rx and tx limiters */
			assert_int_equal(snap_put_u64(w, 0), 0);
		for (int i = 0; i < 3; i++) /* no MMDS */
			assert_int_equal(snap_put_u32(w, 0), 0);
		assert_int_equal(snap_section_end(w), 0);
		assert_int_equal(snap_writer_image(w, &img, &len), 0);
		assert_int_equal(snap_reader_parse(&rd, img, len, err, sizeof(err)), 0);
		assert_int_equal(snap_reader_find(rd, SNAP_SEC_DEVICE, 0, &c), 0);
		if (k == 0) {
			assert_int_equal(net_ops.restore(t->n, &c, err, sizeof(err)), 0);
			assert_int_equal(c.left, 0);
		} else {
			assert_int_equal(net_ops.restore(t->n, &c, err, sizeof(err)), -EINVAL);
			assert_string_equal(err, "net 'eth0': the snapshot holds interface 'eth9'");
		}
		snap_reader_free(rd);
		snap_writer_free(w);
	}
}

static void test_virtio_net_bad_tap_name_is_named(void **state)
{
	struct net_config cfg = { .id = "eth0", .tap = "a-tap-name-that-is-too-long" };
	struct virtio_env env = { 0 };
	char err[256];

	(void)state;
	assert_null(virtio_net_new(&env, 0, 5, &cfg, err, sizeof(err)));
	assert_string_equal(err,
		"net 'eth0': cannot open tap 'a-tap-name-that-is-too-long': "
		"Invalid interface name: the name must be 1..15 bytes");
}

#define F(b) (1ull << VIRTIO_NET_F_##b)
#define ALL_OFFLOADS \
	(F(CSUM) | F(GUEST_CSUM) | F(GUEST_TSO4) | F(GUEST_TSO6) | F(GUEST_UFO) | F(HOST_TSO4) | \
		F(HOST_TSO6) | F(HOST_UFO) | F(MRG_RXBUF))

/* As a driver that accepted `acked`: reset, then DRIVER_OK again. */
static void acked_as(struct t *t, uint64_t acked)
{
	net_ops.reset(t->n);
	assert_int_equal(net_ops.activate(t->n, acked), 0);
}

/* Firecracker's set: checksum, TSO and UFO both ways and mergeable buffers; none of
 * them with offloads = false. */
static void test_virtio_net_offers_offloads_unless_switched_off(void **state)
{
	struct net_config cfg = { .id = "eth1", .tap = "tap1", .no_offloads = true };
	struct t *t = *state;

	assert_int_equal(net_ops.features(t->n), ALL_OFFLOADS | F(MAC));
	teardown(state);
	setup_cfg(state, &cfg);
	t = *state;
	assert_int_equal(net_ops.features(t->n), 0);
}

static void hdr_set(uint8_t *h, uint8_t flags, uint8_t gso, uint16_t hdr_len, uint16_t gso_size,
	uint16_t csum_start, uint16_t csum_off)
{
	uint16_t v[4] = { hdr_len, gso_size, csum_start, csum_off };

	memset(h, 0, NET_HDR_SIZE);
	h[0] = flags;
	h[1] = gso;
	for (int i = 0; i < 4; i++) {
		h[2 + 2 * i] = (uint8_t)v[i];
		h[3 + 2 * i] = (uint8_t)(v[i] >> 8);
	}
}

/* With CSUM and HOST_TSO4 the guest's header reaches the tap as it is (num_buffers 0);
 * a gso_type it did not negotiate (UDP without HOST_UFO) is malformed, never sent. */
static void test_virtio_net_tx_passes_the_offload_header(void **state)
{
	struct t *t = *state;
	uint8_t out[3000], got[4096];
	size_t len = frame(out, 2900, 4, true);
	uint32_t id, ulen;

	acked_as(t, F(CSUM) | F(HOST_TSO4));
	hdr_set(out, 1, 1, 66, 1448, 34, 16);
	nvr_tx(t->r, TXQ, out, (uint32_t)len);
	hdr_set(out, 1, 3, 42, 1472, 34, 6);
	nvr_tx(t->r, TXQ, out, (uint32_t)len);
	net_ops.queue_notify(t->n, TXQ);
	assert_int_equal(used_count(t->r, TXQ), 2);
	assert_int_equal(read(t->peer, got, sizeof(got)), (ssize_t)len);
	hdr_set(out, 1, 1, 66, 1448, 34, 16);
	assert_memory_equal(got, out, len);
	assert_int_equal(recv(t->peer, got, sizeof(got), MSG_DONTWAIT), -1);
	assert_int_equal(counter(t, "tx_malformed"), 1);
	assert_int_equal(counter(t, "tx_bytes"), 2900);
	(void)id;
	(void)ulen;
}

/* The tap's header (NEEDS_CSUM, TSO4) reaches a driver that accepted GUEST_CSUM and
 * GUEST_TSO4, num_buffers 1. */
static void test_virtio_net_rx_passes_the_offload_header(void **state)
{
	struct t *t = *state;
	uint8_t in[2000], want[NET_HDR_SIZE];
	size_t len = frame(in, 1800, 6, true);
	uint64_t gpa;
	uint32_t id, ulen;

	acked_as(t, F(GUEST_CSUM) | F(GUEST_TSO4));
	hdr_set(in, 1, 1, 66, 1448, 34, 16);
	memcpy(want, in, NET_HDR_SIZE);
	want[10] = 1;
	nvr_rx(t->r, RXQ, 4096, &gpa);
	assert_int_equal(write(t->peer, in, len), (ssize_t)len);
	spin(t);
	assert_int_equal(nvr_used(t->r, RXQ, &id, &ulen), 1);
	assert_int_equal(ulen, len);
	assert_memory_equal(nvr_ptr(t->r, gpa), want, NET_HDR_SIZE);
	assert_memory_equal((uint8_t *)nvr_ptr(t->r, gpa) + NET_HDR_SIZE, in + NET_HDR_SIZE, 1800);
}

/* The host side sends a frame; the loop turns. */
static void tap_sends(struct t *t, const uint8_t *f, size_t len)
{
	assert_int_equal(write(t->peer, f, len), (ssize_t)len);
	spin(t);
}

/* Post `n` receive buffers of `size` bytes, their addresses into gpa[]. */
static void post_rx(struct t *t, unsigned n, uint32_t size, uint64_t *gpa)
{
	for (unsigned i = 0; i < n; i++)
		nvr_rx(t->r, RXQ, size, gpa ? &gpa[i] : NULL);
}

/* Take `n` used rx entries and check they hold `want` (len bytes) in order. */
static void expect_spread(struct t *t, const uint64_t *gpa, unsigned n, uint32_t size,
	const uint8_t *want, size_t len)
{
	size_t off = 0;

	for (unsigned i = 0; i < n; i++) {
		uint32_t id, ulen, part = len - off < size ? (uint32_t)(len - off) : size;

		assert_int_equal(nvr_used(t->r, RXQ, &id, &ulen), 1);
		assert_int_equal(ulen, part);
		assert_memory_equal(nvr_ptr(t->r, gpa[i]), want + off, part);
		off += part;
	}
	assert_int_equal(off, len);
}

/* With MRG_RXBUF a 64 KiB frame (the largest, 65562 bytes with the header) is spread
 * over 1526-byte buffers, num_buffers in the first header saying how many. */
static void test_virtio_net_rx_mergeable_spreads_a_64k_frame(void **state)
{
	struct t *t = *state;
	static uint8_t in[NET_HDR_SIZE + NET_MAX_FRAME];
	uint64_t gpa[44];
	size_t len = frame(in, NET_MAX_FRAME, 8, true);
	unsigned need = (unsigned)((len + 1525) / 1526);
	uint32_t id, ulen;

	assert_int_equal(len, 65562);
	assert_int_equal(need, 43);
	acked_as(t, F(MRG_RXBUF));
	post_rx(t, 44, 1526, gpa);
	tap_sends(t, in, len);
	in[10] = (uint8_t)need; /* num_buffers, little-endian */
	expect_spread(t, gpa, need, 1526, in, len);
	assert_int_equal(nvr_used(t->r, RXQ, &id, &ulen), 0); /* the 44th is left */
	assert_int_equal(counter(t, "rx_packets"), 1);
	assert_int_equal(counter(t, "rx_bytes"), NET_MAX_FRAME);
}

/* Too few buffers for a frame: none is taken, the frame waits for more and then goes
 * over old and new ones. */
static void test_virtio_net_rx_mergeable_waits_for_enough_buffers(void **state)
{
	struct t *t = *state;
	uint8_t in[5100];
	uint64_t gpa[4];
	size_t len = frame(in, 5000, 2, true);
	uint32_t id, ulen;

	acked_as(t, F(MRG_RXBUF));
	post_rx(t, 2, 1526, gpa);
	tap_sends(t, in, len);
	assert_int_equal(nvr_used(t->r, RXQ, &id, &ulen), 0);
	post_rx(t, 2, 1526, gpa + 2);
	net_ops.queue_notify(t->n, RXQ);
	spin(t);
	in[10] = 4;
	expect_spread(t, gpa, 4, 1526, in, len);
	assert_int_equal(counter(t, "rx_dropped"), 0);
}

/* A mergeable buffer smaller than the header is a broken driver: counted, the device
 * needs a reset, nothing is written. A frame no ring could hold is dropped. */
static void test_virtio_net_rx_mergeable_bad_buffers(void **state)
{
	struct t *t = *state;
	static uint8_t in[NET_HDR_SIZE + NET_MAX_FRAME];
	size_t len = frame(in, 100, 2, true);
	uint32_t id, ulen;

	acked_as(t, F(MRG_RXBUF));
	post_rx(t, 1, 8, NULL);
	tap_sends(t, in, len);
	assert_int_equal(t->r->needs_reset, 1);
	assert_int_equal(counter(t, "rx_bad_buffers"), 1);
	assert_int_equal(nvr_used(t->r, RXQ, &id, &ulen), 0);

	nvr_reset(t->r, 2);
	acked_as(t, F(MRG_RXBUF));
	post_rx(t, 64 /* RX_MAX_CHAINS */ + 1, 64, NULL);
	len = frame(in, NET_MAX_FRAME, 1, true);
	tap_sends(t, in, len);
	assert_int_equal(counter(t, "rx_dropped"), 1);
	assert_int_equal(nvr_used(t->r, RXQ, &id, &ulen), 0);
}

/* Internet checksum of a buffer (the test's own, to build and check frames). */
static uint16_t cksum(uint32_t sum, const uint8_t *p, size_t n)
{
	for (size_t i = 0; i + 1 < n; i += 2)
		sum += (uint32_t)p[i] << 8 | p[i + 1];
	if (n & 1)
		sum += (uint32_t)p[n - 1] << 8;
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)sum;
}

/* A SYN to MMDS with a partial checksum (NEEDS_CSUM, only the pseudo-header's sum in the
 * field, as a guest with CSUM sends it) is finished by the device and answered. */
static void test_virtio_net_mmds_answers_a_partial_checksum_syn(void **state)
{
	struct net_config cfg = { .id = "eth0",
		.tap = "tap0",
		.mmds = { .enabled = true, .ipv4 = 0xa9fea9fe, .version = 1 } };
	uint8_t f[NET_HDR_SIZE + 54] = { 0 }, *e = f + NET_HDR_SIZE, *ip = e + 14, *tcp = ip + 20;
	static const uint8_t src[4] = { 172, 16, 0, 2 }, dst[4] = { 169, 254, 169, 254 };
	uint8_t ph[12] = { 0 };
	uint64_t gpa;
	uint32_t id, ulen;
	const uint8_t *got;
	struct t *t;

	teardown(state);
	setup_cfg(state, &cfg);
	t = *state;
	acked_as(t, F(CSUM));
	memset(e, 0xff, 6);
	memcpy(e + 6, MAC, 6);
	e[12] = 0x08;
	ip[0] = 0x45;
	ip[3] = 40;
	ip[8] = 64;
	ip[9] = 6;
	memcpy(ip + 12, src, 4);
	memcpy(ip + 16, dst, 4);
	ip[10] = (uint8_t)(~cksum(0, ip, 20) >> 8);
	ip[11] = (uint8_t)~cksum(0, ip, 20);
	tcp[0] = 0x9c; /* port 40000 -> 80 */
	tcp[1] = 0x40;
	tcp[3] = 80;
	tcp[7] = 1;
	tcp[12] = 0x50;
	tcp[13] = 0x02; /* SYN */
	tcp[14] = 0xff;
	memcpy(ph, src, 4);
	memcpy(ph + 4, dst, 4);
	ph[9] = 6;
	ph[11] = 20;
	tcp[16] = (uint8_t)(cksum(0, ph, 12) >> 8); /* not complemented: partial */
	tcp[17] = (uint8_t)cksum(0, ph, 12);
	hdr_set(f, 1, 0, 0, 0, 34, 16);
	nvr_rx(t->r, RXQ, 1526, &gpa);
	nvr_tx(t->r, TXQ, f, sizeof(f));
	net_ops.queue_notify(t->n, TXQ);
	assert_int_equal(nvr_used(t->r, RXQ, &id, &ulen), 1);
	got = nvr_ptr(t->r, gpa);
	assert_true(ulen >= NET_HDR_SIZE + 54);
	assert_int_equal(got[NET_HDR_SIZE + 14 + 20 + 13], 0x12);        /* SYN-ACK */
	assert_int_equal(recv(t->peer, f, sizeof(f), MSG_DONTWAIT), -1); /* not to the tap */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_virtio_net_config_has_mac, setup, teardown),
		cmocka_unit_test_teardown(test_virtio_net_mtu_feature_and_config, teardown),
		cmocka_unit_test(test_virtio_net_no_mac_feature_without_mac),
		cmocka_unit_test_setup_teardown(test_virtio_net_tx_zeroes_header_and_passes_frame,
			setup, teardown),
		cmocka_unit_test_setup_teardown(
			test_virtio_net_tx_header_and_frame_in_separate_descriptors, setup,
			teardown),
		cmocka_unit_test_setup_teardown(test_virtio_net_tx_header_only_is_dropped, setup,
			teardown),
		cmocka_unit_test_setup_teardown(test_virtio_net_tx_stops_at_the_budget_and_yields,
			setup, teardown),
		cmocka_unit_test_setup_teardown(test_virtio_net_tx_out_of_range_descriptor_needs_reset,
			setup, teardown),
		cmocka_unit_test_setup_teardown(test_virtio_net_rx_sets_num_buffers, setup,
			teardown),
		cmocka_unit_test_setup_teardown(test_virtio_net_rx_waits_for_guest_buffers, setup,
			teardown),
		cmocka_unit_test_setup_teardown(test_virtio_net_rx_frame_larger_than_buffer_is_dropped,
			setup, teardown),
		cmocka_unit_test_setup_teardown(test_virtio_net_rx_gso_frame_is_dropped, setup,
			teardown),
		cmocka_unit_test_setup_teardown(test_virtio_net_tx_rate_limit_defers, setup_limited,
			teardown),
		cmocka_unit_test_setup_teardown(test_virtio_net_rx_rate_limit_defers, setup_limited,
			teardown),
		cmocka_unit_test_setup_teardown(test_virtio_net_set_limits_releases_held_frames,
			setup_limited, teardown),
		cmocka_unit_test_setup_teardown(test_virtio_net_set_limits_bad_bucket_changes_nothing,
			setup_limited, teardown),
		cmocka_unit_test_setup_teardown(test_virtio_net_save_restore_round_trip, setup,
			teardown),
		cmocka_unit_test_setup_teardown(test_virtio_net_restores_a_version_2_state, setup,
			teardown),
		cmocka_unit_test_setup_teardown(test_virtio_net_restore_brings_back_the_mmds_config,
			setup, teardown),
		cmocka_unit_test(test_virtio_net_mmds_without_a_store_is_refused),
		cmocka_unit_test(test_virtio_net_bad_tap_name_is_named),
		cmocka_unit_test_setup_teardown(test_virtio_net_offers_offloads_unless_switched_off,
			setup, teardown),
		cmocka_unit_test_setup_teardown(test_virtio_net_tx_passes_the_offload_header, setup,
			teardown),
		cmocka_unit_test_setup_teardown(test_virtio_net_rx_passes_the_offload_header, setup,
			teardown),
		cmocka_unit_test_setup_teardown(test_virtio_net_rx_mergeable_spreads_a_64k_frame,
			setup, teardown),
		cmocka_unit_test_setup_teardown(test_virtio_net_rx_mergeable_waits_for_enough_buffers,
			setup, teardown),
		cmocka_unit_test_setup_teardown(test_virtio_net_rx_mergeable_bad_buffers, setup,
			teardown),
		cmocka_unit_test_setup_teardown(test_virtio_net_mmds_answers_a_partial_checksum_syn,
			setup, teardown),
	};

	log_set_level(LOG_ERROR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
