/* Unit tests for the virtio-mmio transport, driven through its bus window with a fake model
 * (and the rng model), a real libev loop and no KVM (vm_fd -1). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ember/snapshot_file.h"
#include "ember/virtio.h"
#include "virtio_rig.h"

#define BASE RIG_BASE
#define BASE2 RIG_BASE2
#define RAM_SIZE RIG_RAM_SIZE
#define DESC RIG_DESC
#define AVAIL RIG_AVAIL
#define USED RIG_USED
#define QMAX 8
#define FAKE_ID 42
#define FAKE_FEATURE 3

struct fake {
	struct virtio_dev *vd;
	int activated, resets, notifies, destroyed, restored;
	uint64_t acked;
	uint8_t config[12];
	bool push_on_notify, break_on_notify, refuse_restore;
};

/* ---- the fake model ---- */

static uint64_t fake_features(void *dev)
{
	(void)dev;
	return 1ull << FAKE_FEATURE;
}

static int fake_activate(void *dev, uint64_t acked)
{
	struct fake *f = dev;

	f->activated++;
	f->acked = acked;
	return 0;
}

static void fake_reset(void *dev)
{
	((struct fake *)dev)->resets++;
}

static void fake_queue_notify(void *dev, unsigned qi)
{
	struct fake *f = dev;
	struct virtq *q = virtio_queue(f->vd, qi);
	struct virtq_elem e;
	char err[128];

	f->notifies++;
	if (f->break_on_notify) {
		virtio_needs_reset(f->vd, "fake: broken on purpose");
		return;
	}
	while (f->push_on_notify && virtq_pop(q, &e, err, sizeof(err)) == 0)
		assert_int_equal(virtq_push(q, &e, 0), 0);
	virtio_notify(f->vd, qi);
}

static void fake_config_read(void *dev, uint32_t off, uint8_t *data, uint32_t len)
{
	memcpy(data, ((struct fake *)dev)->config + off, len);
}

static void fake_config_write(void *dev, uint32_t off, const uint8_t *data, uint32_t len)
{
	memcpy(((struct fake *)dev)->config + off, data, len);
}

static int fake_save(void *dev, struct snap_writer *w)
{
	return snap_put(w, ((struct fake *)dev)->config, sizeof(((struct fake *)dev)->config));
}

static int fake_restore(void *dev, struct snap_cursor *c, char *err, size_t errlen)
{
	struct fake *f = dev;

	(void)err; /* says nothing: the transport still names the device */
	(void)errlen;
	if (f->refuse_restore)
		return -EINVAL;
	f->restored++;
	return snap_get(c, f->config, sizeof(f->config));
}

static void fake_destroy(void *dev)
{
	((struct fake *)dev)->destroyed++;
}

static void fake_attach(void *dev, struct virtio_dev *vd)
{
	((struct fake *)dev)->vd = vd;
}

static const struct virtio_dev_ops fake_ops = {
	.kind = "fake",
	.device_id = FAKE_ID,
	.num_queues = 2,
	.queue_max_size = QMAX,
	.config_size = sizeof(((struct fake *)0)->config),
	.features = fake_features,
	.activate = fake_activate,
	.reset = fake_reset,
	.queue_notify = fake_queue_notify,
	.config_read = fake_config_read,
	.config_write = fake_config_write,
	.save = fake_save,
	.restore = fake_restore,
	.destroy = fake_destroy,
	.attach = fake_attach,
};

/* ---- rig: the transport on a fake model ---- */

struct test {
	struct rig *r;
	struct fake fake;
};

static int setup(void **state)
{
	struct test *t = calloc(1, sizeof(*t));
	char err[256];

	assert_non_null(t);
	t->r = rig_new();
	t->r->vd = virtio_mmio_new(&t->r->env, BASE, 5, &fake_ops, &t->fake, err, sizeof(err));
	assert_non_null(t->r->vd);
	*state = t;
	return 0;
}

static int teardown(void **state)
{
	struct test *t = *state;

	rig_free(t->r);
	assert_int_equal(t->fake.destroyed, 1);
	free(t);
	return 0;
}

/* ---- tests ---- */

static void test_virtio_mmio_identity_registers(void **state)
{
	struct test *t = *state;
	struct rig *r = t->r;
	uint8_t b2[2] = { 0xaa, 0xaa };

	assert_int_equal(rd(r, MAGIC), 0x74726976);
	assert_int_equal(rd(r, VERSION), 2);
	assert_int_equal(rd(r, DEVICE_ID), FAKE_ID);
	assert_int_equal(rd(r, VENDOR_ID), 0x52424d45);
	assert_int_equal(rd(r, SHM_LEN_LO), 0xffffffff);
	/* Registers take aligned 32-bit accesses only; others read 0 and do nothing. */
	assert_true(bus_access(&r->mmio, BASE + MAGIC, b2, 2, false));
	assert_int_equal(b2[0] | b2[1], 0);
	assert_int_equal(virtio_base(r->vd), BASE);
	assert_int_equal(virtio_gsi(r->vd), 5);
	assert_string_equal(virtio_kind(r->vd), "fake");
}

static void test_virtio_mmio_offers_transport_features(void **state)
{
	struct test *t = *state;
	struct rig *r = t->r;

	wr(r, DEV_FEATURES_SEL, 0);
	assert_int_equal(rd(r, DEV_FEATURES), (1u << FAKE_FEATURE) | (1u << 28) | (1u << 29));
	wr(r, DEV_FEATURES_SEL, 1);
	assert_int_equal(rd(r, DEV_FEATURES), 1); /* VERSION_1 */
	wr(r, DEV_FEATURES_SEL, 2);
	assert_int_equal(rd(r, DEV_FEATURES), 0);
}

static void test_virtio_mmio_negotiation_and_activation(void **state)
{
	struct test *t = *state;
	struct rig *r = t->r;

	assert_int_equal(negotiate_at(r, BASE, (1u << FAKE_FEATURE) | (1u << 29), 1),
		ACK | DRIVER | FEATURES_OK);
	queue_at(r, BASE, 0, QMAX, DESC, AVAIL, USED);
	assert_int_equal(rd(r, QUEUE_READY), 1);
	wr(r, STATUS, ACK | DRIVER | FEATURES_OK | DRIVER_OK);
	assert_int_equal(rd(r, STATUS), ACK | DRIVER | FEATURES_OK | DRIVER_OK);
	/* Activation runs on the control thread (the loop), not in the register write. */
	assert_int_equal(t->fake.activated, 0);
	run_loop(r);
	assert_int_equal(t->fake.activated, 1);
	assert_int_equal(t->fake.acked, (1ull << 32) | (1u << FAKE_FEATURE) | (1u << 29));
	assert_true(virtio_queue(r->vd, 0)->ready);
	assert_true(virtio_queue(r->vd, 0)->event_idx);
	assert_false(virtio_queue(r->vd, 0)->indirect);
	assert_int_equal(virtio_queue(r->vd, 0)->size, QMAX);
	assert_false(virtio_queue(r->vd, 1)->ready); /* never set up */
	assert_null(virtio_queue(r->vd, 2));
	/* Features are frozen after FEATURES_OK. */
	wr(r, DRV_FEATURES_SEL, 0);
	wr(r, DRV_FEATURES, 0);
	run_loop(r);
	assert_int_equal(t->fake.acked & 0xffffffff, (1u << FAKE_FEATURE) | (1u << 29));
}

static void test_virtio_mmio_refuses_features_not_offered(void **state)
{
	struct test *t = *state;
	struct rig *r = t->r;

	assert_int_equal(negotiate_at(r, BASE, 1u << 5, 1), ACK | DRIVER);
	assert_int_equal(negotiate_at(r, BASE, 0, 1u << 3), ACK | DRIVER);            /* bit 35 */
	assert_int_equal(negotiate_at(r, BASE, 1u << FAKE_FEATURE, 0), ACK | DRIVER); /* legacy */
	wr(r, STATUS, 0);
	wr(r, STATUS, ACK | DRIVER);
	wr(r, DRV_FEATURES_SEL, 2);
	wr(r, DRV_FEATURES, 1); /* bit 64: no such feature */
	wr(r, DRV_FEATURES_SEL, 1);
	wr(r, DRV_FEATURES, 1);
	wr(r, STATUS, ACK | DRIVER | FEATURES_OK);
	assert_int_equal(rd(r, STATUS), ACK | DRIVER);
	/* DRIVER_OK without FEATURES_OK breaks the device. */
	wr(r, STATUS, ACK | DRIVER | DRIVER_OK);
	assert_int_equal(rd(r, STATUS), ACK | DRIVER | NEEDS_RESET);
	run_loop(r);
	assert_int_equal(t->fake.activated, 0);
}

static void test_virtio_mmio_queue_setup_validation(void **state)
{
	struct test *t = *state;
	struct rig *r = t->r;

	negotiate_at(r, BASE, 0, 1);
	wr(r, QUEUE_SEL, 5);
	assert_int_equal(rd(r, QUEUE_NUM_MAX), 0); /* no such queue */
	wr(r, QUEUE_SEL, 1);
	assert_int_equal(rd(r, QUEUE_NUM_MAX), QMAX);
	queue_at(r, BASE, 1, 6, DESC, AVAIL, USED); /* not a power of two */
	assert_int_equal(rd(r, QUEUE_READY), 0);
	assert_true(rd(r, STATUS) & NEEDS_RESET);

	negotiate_at(r, BASE, 0, 1);
	queue_at(r, BASE, 0, QMAX, RAM_SIZE - 16, AVAIL, USED); /* outside memory */
	assert_int_equal(rd(r, QUEUE_READY), 0);
	assert_true(rd(r, STATUS) & NEEDS_RESET);

	negotiate_at(r, BASE, 0, 1);
	queue_at(r, BASE, 0, QMAX, DESC, AVAIL + 1, USED); /* misaligned */
	assert_true(rd(r, STATUS) & NEEDS_RESET);

	negotiate_at(r, BASE, 0, 1);
	queue_at(r, BASE, 0, QMAX * 2, DESC, AVAIL, USED); /* above QueueNumMax */
	assert_true(rd(r, STATUS) & NEEDS_RESET);

	negotiate_at(r, BASE, 0, 1);
	queue_at(r, BASE, 0, 4, DESC, AVAIL, USED);
	assert_int_equal(rd(r, QUEUE_READY), 1);
	assert_false(rd(r, STATUS) & NEEDS_RESET);
	wr(r, QUEUE_NUM, 2); /* ignored while ready */
	wr(r, DESC_LO, 0x8000);
	assert_int_equal(rd(r, QUEUE_NUM), 4);
	assert_int_equal(rd(r, DESC_LO), DESC);
}

static void test_virtio_mmio_reset_clears_everything(void **state)
{
	struct test *t = *state;
	struct rig *r = t->r;
	int resets;

	bring_up_at(r, BASE, 1u << 29, QMAX);
	resets = t->fake.resets;
	wr(r, STATUS, 0);
	assert_int_equal(rd(r, STATUS), 0);
	assert_false(virtio_queue(r->vd, 0)->ready); /* stopped at once */
	wr(r, QUEUE_SEL, 0);
	assert_int_equal(rd(r, QUEUE_READY), 0);
	assert_int_equal(rd(r, QUEUE_NUM), 0);
	assert_int_equal(rd(r, DESC_LO), 0);
	assert_int_equal(rd(r, QUEUE_NUM_MAX), QMAX);
	run_loop(r);
	assert_int_equal(t->fake.resets, resets + 1);
	/* Reset, set up again and DRIVER_OK before the loop runs: reset, then activate. */
	bring_up_at(r, BASE, 0, QMAX);
	assert_int_equal(t->fake.activated, 2);
	assert_true(virtio_queue(r->vd, 0)->ready);
	assert_false(virtio_queue(r->vd, 0)->event_idx);
}

static void test_virtio_mmio_status_bits_cannot_be_cleared(void **state)
{
	struct test *t = *state;
	struct rig *r = t->r;

	negotiate_at(r, BASE, 0, 1);
	wr(r, STATUS, ACK);
	assert_int_equal(rd(r, STATUS), ACK | DRIVER | FEATURES_OK);
}

static void test_virtio_mmio_kick_notify_and_interrupt(void **state)
{
	struct test *t = *state;
	struct rig *r = t->r;

	t->fake.push_on_notify = true;
	assert_true(negotiate_at(r, BASE, 0, 1) & FEATURES_OK);
	queue_at(r, BASE, 0, QMAX, DESC, AVAIL, USED);
	post(r, 0, 16, D_WRITE);
	wr(r, QUEUE_NOTIFY, 0); /* a kick before DRIVER_OK is held back... */
	run_loop(r);
	assert_int_equal(t->fake.notifies, 0);
	wr(r, STATUS, ACK | DRIVER | FEATURES_OK | DRIVER_OK);
	run_loop(r); /* ...and delivered after activation */
	assert_int_equal(t->fake.notifies, 1);
	assert_int_equal(used_idx(r), 1);
	assert_int_equal(rd(r, ISR), 1);
	wr(r, ISR_ACK, 1);
	assert_int_equal(rd(r, ISR), 0);
	wr(r, QUEUE_NOTIFY, 7); /* no such queue: nothing */
	run_loop(r);
	assert_int_equal(t->fake.notifies, 1);
	post(r, 1, 16, D_WRITE);
	wr(r, QUEUE_NOTIFY, 0);
	run_loop(r);
	assert_int_equal(used_idx(r), 2);
	assert_int_equal(rd(r, ISR), 1);
}

static void test_virtio_mmio_needs_reset_stops_device(void **state)
{
	struct test *t = *state;
	struct rig *r = t->r;

	t->fake.break_on_notify = true;
	bring_up_at(r, BASE, 0, QMAX);
	wr(r, QUEUE_NOTIFY, 0);
	run_loop(r);
	assert_int_equal(rd(r, STATUS), ACK | DRIVER | FEATURES_OK | DRIVER_OK | NEEDS_RESET);
	assert_int_equal(rd(r, ISR), 2); /* told as a config change */
	assert_false(virtio_queue(r->vd, 0)->ready);
	wr(r, QUEUE_NOTIFY, 0);
	run_loop(r);
	assert_int_equal(t->fake.notifies, 1); /* no more processing */
	t->fake.break_on_notify = false;
	bring_up_at(r, BASE, 0, QMAX); /* a reset brings it back */
	assert_int_equal(rd(r, STATUS), ACK | DRIVER | FEATURES_OK | DRIVER_OK);
	assert_true(virtio_queue(r->vd, 0)->ready);
}

static void test_virtio_mmio_config_space_and_generation(void **state)
{
	struct test *t = *state;
	struct rig *r = t->r;
	uint8_t b[8];
	uint32_t gen;

	memcpy(t->fake.config, "\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c", 12);
	assert_int_equal(rd(r, CONFIG + 4), 0x08070605);
	assert_true(bus_access(&r->mmio, BASE + CONFIG + 10, b, 2, false));
	assert_memory_equal(b, "\x0b\x0c", 2);
	assert_true(bus_access(&r->mmio, BASE + CONFIG + 10, b, 4, false)); /* past the end */
	assert_memory_equal(b, "\0\0\0\0", 4);
	b[0] = 0x77;
	assert_true(bus_access(&r->mmio, BASE + CONFIG + 1, b, 1, true));
	assert_int_equal(t->fake.config[1], 0x77);
	gen = rd(r, GENERATION);
	bring_up_at(r, BASE, 0, QMAX);
	virtio_lock(r->vd);
	virtio_config_changed(r->vd);
	virtio_unlock(r->vd);
	assert_int_equal(rd(r, GENERATION), gen + 1);
	assert_int_equal(rd(r, ISR), 2);
}

static void test_virtio_mmio_bad_model_is_refused_and_destroyed(void **state)
{
	struct test *t = *state;
	struct rig *r = t->r;
	struct virtio_dev_ops bad = fake_ops;
	struct fake f = { 0 };
	char err[256];

	bad.queue_max_size = 12;
	assert_null(virtio_mmio_new(&r->env, BASE2, 6, &bad, &f, err, sizeof(err)));
	assert_string_equal(err,
		"virtio-fake: bad device description (queues 2, size 12, "
		"config 12 bytes)");
	assert_int_equal(f.destroyed, 1);
	assert_null(virtio_mmio_new(&r->env, BASE, 6, &fake_ops, &f, err, sizeof(err)));
	assert_non_null(strstr(err, "cannot place window 0xd0001000 on the bus"));
	assert_int_equal(f.destroyed, 2);
}

/* ---- persist pair ---- */

/* The payload virtio_save writes, copied out of a real state file image. */
static uint8_t *save_payload(struct virtio_dev *vd, size_t *len)
{
	struct snap_writer *w = snap_writer_new();
	struct snap_reader *rd_;
	struct snap_cursor c;
	const uint8_t *img;
	size_t img_len;
	uint8_t *copy;
	char err[256];

	assert_non_null(w);
	assert_int_equal(snap_section_begin(w, SNAP_SEC_DEVICE, 1), 0);
	assert_int_equal(virtio_save(vd, w), 0);
	assert_int_equal(snap_section_end(w), 0);
	assert_int_equal(snap_writer_image(w, &img, &img_len), 0);
	assert_int_equal(snap_reader_parse(&rd_, img, img_len, err, sizeof(err)), 0);
	assert_int_equal(snap_reader_find(rd_, SNAP_SEC_DEVICE, 0, &c), 0);
	copy = malloc(c.left);
	assert_non_null(copy);
	memcpy(copy, c.p, c.left);
	*len = c.left;
	snap_reader_free(rd_);
	snap_writer_free(w);
	return copy;
}

static int restore_payload(struct virtio_dev *vd, const uint8_t *p, size_t len, char *err,
	size_t errlen)
{
	struct snap_cursor c = { .p = p, .left = len, .id = SNAP_SEC_DEVICE, .version = 1 };

	return virtio_restore(vd, &c, err, errlen);
}

static void test_virtio_mmio_save_restore_round_trip(void **state)
{
	struct test *t = *state;
	struct rig *r = t->r;
	struct fake f2 = { 0 };
	struct virtio_dev *vd2;
	struct virtq *q2;
	uint8_t *st;
	size_t len;
	char err[256];

	t->fake.push_on_notify = true;
	memcpy(t->fake.config, "snapshotted!", 12);
	bring_up_at(r, BASE, 1u << 29, QMAX);
	queue_at(r, BASE, 1, 2, DESC + 0x800, AVAIL + 0x800, USED + 0x800);
	post(r, 0, 16, D_WRITE);
	post(r, 1, 16, D_WRITE);
	wr(r, QUEUE_NOTIFY, 0);
	run_loop(r);
	assert_int_equal(used_idx(r), 2);
	st = save_payload(r->vd, &len);

	vd2 = virtio_mmio_new(&r->env, BASE2, 6, &fake_ops, &f2, err, sizeof(err));
	assert_non_null(vd2);
	assert_int_equal(restore_payload(vd2, st, len, err, sizeof(err)), 0);
	assert_int_equal(f2.restored, 1);
	assert_int_equal(f2.activated, 1);
	assert_int_equal(f2.acked, (1ull << 32) | (1u << 29));
	assert_memory_equal(f2.config, "snapshotted!", 12);
	assert_int_equal(rd_at(r, BASE2, STATUS), ACK | DRIVER | FEATURES_OK | DRIVER_OK);
	assert_int_equal(rd_at(r, BASE2, ISR), 1);
	wr_at(r, BASE2, QUEUE_SEL, 1);
	assert_int_equal(rd_at(r, BASE2, QUEUE_NUM), 2);
	assert_int_equal(rd_at(r, BASE2, USED_LO), USED + 0x800);
	q2 = virtio_queue(vd2, 0);
	assert_true(q2->ready);
	assert_true(q2->event_idx);
	assert_int_equal(q2->next_avail, 2);
	assert_int_equal(q2->next_used, 2);
	run_loop(r); /* each live queue is looked at once after restore */
	assert_int_equal(f2.notifies, 2);
	virtio_free(vd2);
	assert_int_equal(f2.destroyed, 1);
	free(st);
}

static void test_virtio_mmio_restore_refuses_mismatched_state(void **state)
{
	struct test *t = *state;
	struct rig *r = t->r;
	struct virtio_dev_ops other = fake_ops, plain = fake_ops;
	struct guest_mem small = r->mem;
	struct virtio_env env2 = r->env;
	struct fake f2 = { 0 };
	struct virtio_dev *vd2;
	uint8_t *st;
	size_t len;
	char err[256];

	bring_up_at(r, BASE, 1u << FAKE_FEATURE, QMAX);
	st = save_payload(r->vd, &len);

	other.device_id = FAKE_ID + 1;
	vd2 = virtio_mmio_new(&r->env, 0xd0002000ull, 6, &other, &f2, err, sizeof(err));
	assert_non_null(vd2);
	assert_int_equal(restore_payload(vd2, st, len, err, sizeof(err)), -EINVAL);
	assert_string_equal(err,
		"virtio-fake@0xd0002000: saved state is of device id 42 with 2 "
		"queues, not 43 with 2");
	assert_int_equal(restore_payload(vd2, st, 20, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "virtio-fake@0xd0002000: device state is truncated");
	virtio_free(vd2);

	plain.features = NULL;
	vd2 = virtio_mmio_new(&r->env, 0xd0003000ull, 6, &plain, &f2, err, sizeof(err));
	assert_non_null(vd2);
	assert_int_equal(restore_payload(vd2, st, len, err, sizeof(err)), -EINVAL);
	assert_string_equal(err,
		"virtio-fake@0xd0003000: the driver had accepted features 0x8 "
		"that this device does not offer");
	st[0] = 9; /* version */
	assert_int_equal(restore_payload(vd2, st, len, err, sizeof(err)), -ENOTSUP);
	assert_string_equal(err,
		"virtio-fake@0xd0003000: device state version 9, this ember "
		"reads 1");
	st[0] = 1;
	virtio_free(vd2);

	small.regions[0].size = 0x3000; /* the used ring at 0x3000 is gone */
	env2.mem = &small;
	vd2 = virtio_mmio_new(&env2, 0xd0004000ull, 6, &fake_ops, &f2, err, sizeof(err));
	assert_non_null(vd2);
	assert_int_equal(restore_payload(vd2, st, len, err, sizeof(err)), -EINVAL);
	assert_string_equal(err,
		"virtio-fake@0xd0004000: saved queue 0: virtq: used ring at "
		"0x3000 (70 bytes) is outside guest memory");
	assert_int_equal(f2.restored, 0); /* refused before anything was set */
	virtio_free(vd2);

	f2.refuse_restore = true;
	vd2 = virtio_mmio_new(&r->env, 0xd0005000ull, 6, &fake_ops, &f2, err, sizeof(err));
	assert_non_null(vd2);
	assert_int_equal(restore_payload(vd2, st, len, err, sizeof(err)), -EINVAL);
	assert_string_equal(err,
		"virtio-fake@0xd0005000: device model state refused: Invalid "
		"argument");
	virtio_free(vd2);
	free(st);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
		T(test_virtio_mmio_identity_registers),
		T(test_virtio_mmio_offers_transport_features),
		T(test_virtio_mmio_negotiation_and_activation),
		T(test_virtio_mmio_refuses_features_not_offered),
		T(test_virtio_mmio_queue_setup_validation),
		T(test_virtio_mmio_reset_clears_everything),
		T(test_virtio_mmio_status_bits_cannot_be_cleared),
		T(test_virtio_mmio_kick_notify_and_interrupt),
		T(test_virtio_mmio_needs_reset_stops_device),
		T(test_virtio_mmio_config_space_and_generation),
		T(test_virtio_mmio_bad_model_is_refused_and_destroyed),
		T(test_virtio_mmio_save_restore_round_trip),
		T(test_virtio_mmio_restore_refuses_mismatched_state),
#undef T
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
