/* Unit tests for virtio-rng on its transport: filling buffers, hostile chains, rate limits. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "ember/clock.h"
#include "ember/rate_limiter.h"
#include "ember/snapshot_file.h"
#include "ember/virtio.h"
#include "ember/virtio_devices.h"
#include "virtio_rig.h"

#define QSIZE 8

static struct rig *rng_rig(const struct rate_limit *limit)
{
	struct rig *r = rig_new();
	char err[256];

	r->vd = virtio_rng_new(&r->env, RIG_BASE, 5, limit, err, sizeof(err));
	assert_non_null(r->vd);
	bring_up_at(r, RIG_BASE, 0, QSIZE);
	return r;
}

static void kick(struct rig *r)
{
	wr(r, QUEUE_NOTIFY, 0);
	run_loop(r);
}

struct stats {
	uint64_t requests, bytes, throttled, bad, needs_reset;
};

static void put_stat(void *ctx, const char *key, uint64_t v)
{
	struct stats *s = ctx;

	if (!strcmp(key, "requests"))
		s->requests = v;
	else if (!strcmp(key, "bytes"))
		s->bytes = v;
	else if (!strcmp(key, "throttled"))
		s->throttled = v;
	else if (!strcmp(key, "bad_requests"))
		s->bad = v;
	else if (!strcmp(key, "needs_reset"))
		s->needs_reset = v;
}

static struct stats stats(struct rig *r)
{
	struct stats s = { 0 };

	virtio_stats(r->vd, put_stat, &s);
	return s;
}

static uint64_t now_ms(void)
{
	return mono_ns() / 1000000;
}

static void test_virtio_rng_identity(void **state)
{
	struct rig *r = rng_rig(NULL);

	(void)state;
	assert_int_equal(rd(r, DEVICE_ID), VIRTIO_ID_RNG);
	assert_string_equal(virtio_kind(r->vd), "rng");
	wr(r, QUEUE_SEL, 1);
	assert_int_equal(rd(r, QUEUE_NUM_MAX), 0); /* one queue only */
	rig_free(r);
}

static void test_virtio_rng_fills_writable_buffers(void **state)
{
	struct rig *r = rng_rig(NULL);
	uint8_t zero[64] = { 0 };
	uint32_t id, len;

	(void)state;
	post(r, 3, 64, D_WRITE);
	post(r, 5, 1, D_WRITE);
	kick(r);
	assert_int_equal(used_idx(r), 2);
	used_elem(r, 0, &id, &len);
	assert_int_equal(id, 3);
	assert_int_equal(len, 64);
	assert_memory_not_equal(ram(r, RIG_BUF + 0x3000), zero, 64);
	used_elem(r, 1, &id, &len);
	assert_int_equal(len, 1);
	assert_int_equal(rd(r, ISR) & 1, 1);
	assert_int_equal(stats(r).bytes, 65);
	rig_free(r);
}

static void test_virtio_rng_caps_one_request(void **state)
{
	struct rig *r = rng_rig(NULL);
	uint32_t id, len;

	(void)state;
	post(r, 0, 200000, D_WRITE);
	kick(r);
	used_elem(r, 0, &id, &len);
	assert_int_equal(len, 65536);
	rig_free(r);
}

static void test_virtio_rng_readable_buffer_gets_nothing(void **state)
{
	struct rig *r = rng_rig(NULL);
	uint32_t id, len;

	(void)state;
	post(r, 0, 16, 0);
	kick(r);
	assert_int_equal(used_idx(r), 1);
	used_elem(r, 0, &id, &len);
	assert_int_equal(len, 0);
	assert_int_equal(stats(r).bad, 1);
	assert_false(rd(r, STATUS) & NEEDS_RESET);
	rig_free(r);
}

static void test_virtio_rng_hostile_chain_needs_reset_and_recovers(void **state)
{
	struct rig *r = rng_rig(NULL);

	(void)state;
	put_desc(r, 0, RIG_BUF, 8, D_WRITE | D_NEXT, 1);
	put_desc(r, 1, RIG_BUF, 8, D_WRITE | D_NEXT, 0);
	offer(r, 0);
	kick(r);
	assert_true(rd(r, STATUS) & NEEDS_RESET);
	assert_int_equal(rd(r, ISR), 2);
	assert_int_equal(used_idx(r), 0);
	assert_int_equal(stats(r).needs_reset, 1);
	/* The driver resets and starts again: the device works. */
	memset(ram(r, RIG_AVAIL), 0, 0x2000);
	bring_up_at(r, RIG_BASE, 0, QSIZE);
	post(r, 2, 8, D_WRITE);
	kick(r);
	assert_int_equal(used_idx(r), 1);
	rig_free(r);
}

static void test_virtio_rng_rate_limit_waits_on_a_timer(void **state)
{
	struct rate_limit limit = { .bandwidth = { .size = 100, .refill_time_ms = 100 } };
	struct rig *r = rng_rig(&limit);
	uint64_t t0;
	uint32_t id, len;

	(void)state;
	post(r, 0, 100, D_WRITE);
	post(r, 1, 100, D_WRITE);
	post(r, 2, 500, D_WRITE); /* larger than the bucket: gets one bucket's worth */
	t0 = now_ms();
	kick(r);
	assert_int_equal(used_idx(r), 1); /* the bucket held 100 bytes */
	assert_int_equal(stats(r).throttled, 1);
	while (used_idx(r) < 3 && now_ms() - t0 < 2000)
		ev_run(r->loop, EVRUN_ONCE); /* sleeps until the throttle timer fires */
	assert_int_equal(used_idx(r), 3);
	assert_in_range(now_ms() - t0, 190, 1000);
	used_elem(r, 2, &id, &len);
	assert_int_equal(id, 2);
	assert_int_equal(len, 100);
	rig_free(r);
}

static void test_virtio_rng_reset_drops_a_throttled_request(void **state)
{
	struct rate_limit limit = { .ops = { .size = 1, .refill_time_ms = 50 } };
	struct rig *r = rng_rig(&limit);
	struct timespec pause = { .tv_nsec = 120 * 1000000 };

	(void)state;
	post(r, 0, 8, D_WRITE);
	post(r, 1, 8, D_WRITE);
	kick(r);
	assert_int_equal(used_idx(r), 1);
	wr(r, STATUS, 0);
	run_loop(r); /* the model's reset stops its timer */
	nanosleep(&pause, NULL);
	run_loop(r);
	assert_int_equal(used_idx(r), 1);
	rig_free(r);
}

static void test_virtio_rng_budget_survives_save_restore(void **state)
{
	struct rate_limit limit = { .bandwidth = { .size = 64, .refill_time_ms = 60000 } };
	struct rig *r = rng_rig(&limit);
	struct snap_writer *w = snap_writer_new();
	struct snap_reader *rd_;
	struct snap_cursor c;
	struct virtio_dev *vd2;
	const uint8_t *img;
	size_t len;
	char err[256];

	(void)state;
	post(r, 0, 64, D_WRITE);
	kick(r);
	assert_int_equal(used_idx(r), 1); /* the whole bucket is spent */
	assert_int_equal(snap_section_begin(w, SNAP_SEC_DEVICE, 1), 0);
	assert_int_equal(virtio_save(r->vd, w), 0);
	assert_int_equal(snap_section_end(w), 0);
	assert_int_equal(snap_writer_image(w, &img, &len), 0);
	assert_int_equal(snap_reader_parse(&rd_, img, len, err, sizeof(err)), 0);
	assert_int_equal(snap_reader_find(rd_, SNAP_SEC_DEVICE, 0, &c), 0);

	vd2 = virtio_rng_new(&r->env, RIG_BASE2, 6, &limit, err, sizeof(err));
	assert_non_null(vd2);
	assert_int_equal(virtio_restore(vd2, &c, err, sizeof(err)), 0);
	assert_int_equal(c.left, 0);
	virtio_free(r->vd); /* the restored device takes over the same rings */
	r->vd = vd2;
	post(r, 1, 64, D_WRITE);
	wr_at(r, RIG_BASE2, QUEUE_NOTIFY, 0);
	run_loop(r);
	assert_int_equal(used_idx(r), 1); /* still empty after the restore: throttled */
	assert_int_equal(stats(r).throttled, 1);
	snap_reader_free(rd_);
	snap_writer_free(w);
	rig_free(r);
}

/* A queue with more chains than the budget is served in slices, one per loop iteration,
 * and the transport comes back for the rest without another kick. */
static void test_virtio_rng_kick_is_served_in_budgeted_slices(void **state)
{
	struct rig *r = rig_new();
	const uint16_t chains = VIRTIO_KICK_BUDGET * 2 + 10;
	char err[256];

	(void)state;
	r->vd = virtio_rng_new(&r->env, RIG_BASE, 5, NULL, err, sizeof(err));
	assert_non_null(r->vd);
	bring_up_at(r, RIG_BASE, 0, 256);
	for (uint16_t d = 0; d < chains; d++)
		post(r, d, 16, D_WRITE);
	wr(r, QUEUE_NOTIFY, 0);
	ev_run(r->loop, EVRUN_NOWAIT); /* the kick */
	assert_int_equal(used_idx(r), VIRTIO_KICK_BUDGET);
	ev_run(r->loop, EVRUN_NOWAIT); /* the transport's second call */
	assert_int_equal(used_idx(r), 2 * VIRTIO_KICK_BUDGET);
	run_loop(r);
	assert_int_equal(used_idx(r), chains);
	assert_int_equal(stats(r).requests, chains);
	rig_free(r);
}

/* A reset drops the rest of a slice: the old queue is no longer the driver's. */
static void test_virtio_rng_reset_drops_the_rest_of_a_slice(void **state)
{
	struct rig *r = rig_new();
	char err[256];

	(void)state;
	r->vd = virtio_rng_new(&r->env, RIG_BASE, 5, NULL, err, sizeof(err));
	assert_non_null(r->vd);
	bring_up_at(r, RIG_BASE, 0, 256);
	for (uint16_t d = 0; d < VIRTIO_KICK_BUDGET + 5; d++)
		post(r, d, 16, D_WRITE);
	wr(r, QUEUE_NOTIFY, 0);
	ev_run(r->loop, EVRUN_NOWAIT);
	assert_int_equal(stats(r).requests, VIRTIO_KICK_BUDGET);
	wr(r, STATUS, 0);
	run_loop(r);
	assert_int_equal(stats(r).requests, VIRTIO_KICK_BUDGET);
	rig_free(r);
}

static void test_virtio_rng_refuses_a_bad_limit(void **state)
{
	struct rate_limit limit = { .bandwidth = { .size = 100 } };
	struct rig *r = rig_new();
	char err[256];

	(void)state;
	assert_null(virtio_rng_new(&r->env, RIG_BASE, 5, &limit, err, sizeof(err)));
	assert_string_equal(err,
		"entropy: rate_limit: bandwidth: refill_time_ms must be > 0 "
		"when size is set");
	rig_free(r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_virtio_rng_identity),
		cmocka_unit_test(test_virtio_rng_fills_writable_buffers),
		cmocka_unit_test(test_virtio_rng_caps_one_request),
		cmocka_unit_test(test_virtio_rng_readable_buffer_gets_nothing),
		cmocka_unit_test(test_virtio_rng_hostile_chain_needs_reset_and_recovers),
		cmocka_unit_test(test_virtio_rng_rate_limit_waits_on_a_timer),
		cmocka_unit_test(test_virtio_rng_reset_drops_a_throttled_request),
		cmocka_unit_test(test_virtio_rng_budget_survives_save_restore),
		cmocka_unit_test(test_virtio_rng_refuses_a_bad_limit),
		cmocka_unit_test(test_virtio_rng_kick_is_served_in_budgeted_slices),
		cmocka_unit_test(test_virtio_rng_reset_drops_the_rest_of_a_slice),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
