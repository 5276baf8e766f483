/* Unit tests for virtio-mem on its transport: the configuration's checks, config space,
 * the requested size, and each request with the spec's checks (virtio 1.2, 5.15.6). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include <cmocka.h>

#include "ember/byteorder.h"
#include "ember/snapshot_file.h"
#include "ember/virtio.h"
#include "ember/virtio_devices.h"
#include "ember/virtio_mem.h"
#include "virtio_rig.h"

#define QSIZE 8
#define AREA 0x100000000ull
#define MIB (1ull << 20)
#define TOTAL_MIB 256u
#define BLOCK (2 * MIB)
#define REQ_DESC RIG_BUF
#define RESP_DESC (RIG_BUF + 0x1000)

static const struct mem_hotplug_config CFG = { .enabled = true,
	.total_mib = TOTAL_MIB,
	.block_mib = 2,
	.slot_mib = 128 };

/* ---- the configuration's checks ---- */

static void expect_refused(struct mem_hotplug_config c, const char *want)
{
	char err[160] = "";

	assert_int_equal(mem_hotplug_config_check(&c, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, want);
}

static void test_virtio_mem_config_check_says_firecrackers_words(void **state)
{
	struct mem_hotplug_config c = CFG;
	char err[160];

	(void)state;
	assert_int_equal(mem_hotplug_config_check(&c, err, sizeof(err)), 0);
	c.block_mib = 1;
	expect_refused(c, "Block size must not be lower than 2 MiB");
	c.block_mib = 6;
	expect_refused(c, "Block size must be a power of 2");
	c = CFG;
	c.slot_mib = 64;
	expect_refused(c, "Slot size must not be lower than 128 MiB");
	c.block_mib = 256;
	c.slot_mib = 384;
	expect_refused(c, "Slot size must be a multiple of block size (256 MiB)");
	c = CFG;
	c.total_mib = 64;
	expect_refused(c, "Total size must not be lower than slot size (128 MiB)");
	c.total_mib = 200;
	expect_refused(c, "Total size must be a multiple of slot size (128 MiB)");
	c.total_mib = (MEM_HOTPLUG_MAX_TOTAL_MIB / 128 + 1) * 128;
	expect_refused(c, "Total size must not be more than 1048576 MiB");
	/* block == slot is allowed (strict protection). */
	c = (struct mem_hotplug_config){ .total_mib = 1024, .block_mib = 128, .slot_mib = 128 };
	assert_int_equal(mem_hotplug_config_check(&c, err, sizeof(err)), 0);
}

/* ---- the device ---- */

static uint8_t *area; /* the hotplug area's host memory, mapped as guest_mem would */
static uint64_t notify_base = RIG_BASE; /* the window request() kicks */

static struct rig *mem_rig(bool up)
{
	struct rig *r = rig_new();
	char err[256];

	area = mmap(NULL, TOTAL_MIB * MIB, PROT_READ | PROT_WRITE,
		MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	assert_true(area != MAP_FAILED);
	r->mem.regions[r->mem.nr_regions++] = (struct guest_mem_region){ .gpa = AREA,
		.size = TOTAL_MIB * MIB,
		.host = area };
	r->mem.nr_device = 1;
	r->vd = virtio_mem_new(&r->env, RIG_BASE, 5, &CFG, err, sizeof(err));
	assert_non_null(r->vd);
	if (up)
		bring_up_at(r, RIG_BASE, 1u << VIRTIO_MEM_F_UNPLUGGED_INACCESSIBLE, QSIZE);
	return r;
}

static void mem_rig_free(struct rig *r)
{
	virtio_free(r->vd);
	r->vd = NULL;
	munmap(area, TOTAL_MIB * MIB);
	r->mem.nr_regions--;
	rig_free(r);
}

static uint64_t cfg64(struct rig *r, unsigned off)
{
	return rd(r, CONFIG + off) | (uint64_t)rd(r, CONFIG + off + 4) << 32;
}

/* Send one request; the answer's type, and its state in *st (STATE). */
static uint16_t request(struct rig *r, uint16_t type, uint64_t addr, uint16_t nb, uint16_t *st)
{
	uint8_t *req = ram(r, REQ_DESC), *resp = ram(r, RESP_DESC);
	uint16_t before = used_idx(r);

	memset(req, 0, 24);
	memset(resp, 0xee, 10);
	put_le16(req, type);
	put_le64(req + 8, addr);
	put_le16(req + 16, nb);
	put_desc(r, 0, REQ_DESC, 24, D_NEXT, 1);
	put_desc(r, 1, RESP_DESC, 10, D_WRITE, 0);
	offer(r, 0);
	wr_at(r, notify_base, QUEUE_NOTIFY, 0);
	run_loop(r);
	assert_int_equal(used_idx(r), (uint16_t)(before + 1));
	if (st)
		*st = get_le16(resp + 8);
	return get_le16(resp);
}

static void test_virtio_mem_identity_and_config_space(void **state)
{
	struct rig *r = mem_rig(false);

	(void)state;
	assert_int_equal(rd(r, DEVICE_ID), VIRTIO_ID_MEM);
	assert_string_equal(virtio_kind(r->vd), "mem");
	wr(r, DEV_FEATURES_SEL, 0);
	assert_true(rd(r, DEV_FEATURES) & 1u << VIRTIO_MEM_F_UNPLUGGED_INACCESSIBLE);
	assert_int_equal(cfg64(r, 0), BLOCK);
	assert_int_equal(rd(r, CONFIG + 8) & 0xffff, 0); /* node_id */
	assert_int_equal(cfg64(r, 16), AREA);
	assert_int_equal(cfg64(r, 24), TOTAL_MIB * MIB);
	assert_int_equal(cfg64(r, 32), 0); /* usable */
	assert_int_equal(cfg64(r, 40), 0); /* plugged */
	assert_int_equal(cfg64(r, 48), 0); /* requested */
	/* Before the driver starts it: Firecracker's "Device is not active". */
	assert_int_equal(virtio_mem_set_requested(r->vd, 4), -EAGAIN);
	mem_rig_free(r);
}

static void test_virtio_mem_requested_size_checks_and_notifies(void **state)
{
	struct rig *r = mem_rig(true);
	struct mem_hotplug_status st;
	uint32_t gen = rd(r, GENERATION);

	(void)state;
	assert_int_equal(virtio_mem_set_requested(r->vd, 3), -EINVAL);   /* not whole blocks */
	assert_int_equal(virtio_mem_set_requested(r->vd, 258), -EINVAL); /* above the total */
	assert_int_equal(virtio_mem_set_requested(r->vd, 6), 0);
	assert_int_equal(cfg64(r, 48), 6 * MIB);
	assert_int_equal(cfg64(r, 32), 128 * MIB); /* usable: whole slots */
	assert_int_not_equal(rd(r, GENERATION), gen);
	assert_true(rd(r, ISR) & 2); /* config change */
	virtio_mem_status(r->vd, &st);
	assert_int_equal(st.total_mib, TOTAL_MIB);
	assert_int_equal(st.block_mib, 2);
	assert_int_equal(st.slot_mib, 128);
	assert_int_equal(st.requested_mib, 6);
	assert_int_equal(st.plugged_mib, 0);
	mem_rig_free(r);
}

static void test_virtio_mem_plug_unplug_state_with_the_specs_checks(void **state)
{
	struct rig *r = mem_rig(true);
	uint16_t st;

	(void)state;
	assert_int_equal(virtio_mem_set_requested(r->vd, 6), 0);
	/* Bad ranges: ERROR. */
	assert_int_equal(request(r, VIRTIO_MEM_REQ_PLUG, AREA + 4096, 1, NULL),
		VIRTIO_MEM_RESP_ERROR); /* not aligned */
	assert_int_equal(request(r, VIRTIO_MEM_REQ_PLUG, AREA, 0, NULL), VIRTIO_MEM_RESP_ERROR);
	assert_int_equal(request(r, VIRTIO_MEM_REQ_PLUG, AREA - BLOCK, 1, NULL),
		VIRTIO_MEM_RESP_ERROR); /* below the area */
	assert_int_equal(request(r, VIRTIO_MEM_REQ_PLUG, AREA + 128 * MIB, 1, NULL),
		VIRTIO_MEM_RESP_ERROR); /* beyond usable */
	assert_int_equal(request(r, VIRTIO_MEM_REQ_PLUG, AREA + 126 * MIB, 2, NULL),
		VIRTIO_MEM_RESP_ERROR); /* runs past it */
	assert_int_equal(request(r, VIRTIO_MEM_REQ_STATE, AREA, 65535, NULL),
		VIRTIO_MEM_RESP_ERROR);
	assert_int_equal(request(r, 7, AREA, 1, NULL), VIRTIO_MEM_RESP_ERROR); /* unknown */
	/* More than requested: NACK. */
	assert_int_equal(request(r, VIRTIO_MEM_REQ_PLUG, AREA, 4, NULL), VIRTIO_MEM_RESP_NACK);
	/* Plug two blocks, then a third elsewhere. */
	assert_int_equal(request(r, VIRTIO_MEM_REQ_PLUG, AREA, 2, NULL), VIRTIO_MEM_RESP_ACK);
	assert_int_equal(cfg64(r, 40), 4 * MIB);
	assert_int_equal(request(r, VIRTIO_MEM_REQ_PLUG, AREA + BLOCK, 1, NULL),
		VIRTIO_MEM_RESP_ERROR); /* plugged already */
	assert_int_equal(request(r, VIRTIO_MEM_REQ_PLUG, AREA + 10 * BLOCK, 1, NULL),
		VIRTIO_MEM_RESP_ACK);
	assert_int_equal(request(r, VIRTIO_MEM_REQ_STATE, AREA, 2, &st), VIRTIO_MEM_RESP_ACK);
	assert_int_equal(st, VIRTIO_MEM_STATE_PLUGGED);
	assert_int_equal(request(r, VIRTIO_MEM_REQ_STATE, AREA, 3, &st), VIRTIO_MEM_RESP_ACK);
	assert_int_equal(st, VIRTIO_MEM_STATE_MIXED);
	assert_int_equal(request(r, VIRTIO_MEM_REQ_STATE, AREA + 2 * BLOCK, 8, &st),
		VIRTIO_MEM_RESP_ACK);
	assert_int_equal(st, VIRTIO_MEM_STATE_UNPLUGGED);
	/* The guest writes plugged memory; an unplug discards it (zeros again). */
	memset(area + BLOCK, 0x5a, BLOCK);
	assert_int_equal(request(r, VIRTIO_MEM_REQ_UNPLUG, AREA, 3, NULL),
		VIRTIO_MEM_RESP_ERROR); /* block 2 is not plugged */
	assert_int_equal(request(r, VIRTIO_MEM_REQ_UNPLUG, AREA + BLOCK, 1, NULL),
		VIRTIO_MEM_RESP_ACK);
	assert_int_equal(area[BLOCK], 0);
	assert_int_equal(area[2 * BLOCK - 1], 0);
	assert_int_equal(cfg64(r, 40), 4 * MIB);
	/* UNPLUG_ALL: nothing plugged, usable shrinks to what is requested (whole slots). */
	assert_int_equal(request(r, VIRTIO_MEM_REQ_UNPLUG_ALL, 0, 0, NULL), VIRTIO_MEM_RESP_ACK);
	assert_int_equal(cfg64(r, 40), 0);
	assert_int_equal(cfg64(r, 32), 128 * MIB);
	assert_int_equal(request(r, VIRTIO_MEM_REQ_STATE, AREA, 64, &st), VIRTIO_MEM_RESP_ACK);
	assert_int_equal(st, VIRTIO_MEM_STATE_UNPLUGGED);
	assert_int_equal(rd(r, STATUS) & NEEDS_RESET, 0);
	mem_rig_free(r);
}

static void test_virtio_mem_short_buffers_need_reset(void **state)
{
	struct rig *r = mem_rig(true);

	(void)state;
	/* A response buffer of 4 bytes cannot hold the answer. */
	put_desc(r, 0, REQ_DESC, 24, D_NEXT, 1);
	put_desc(r, 1, RESP_DESC, 4, D_WRITE, 0);
	offer(r, 0);
	wr(r, QUEUE_NOTIFY, 0);
	run_loop(r);
	assert_true(rd(r, STATUS) & NEEDS_RESET);
	assert_int_equal(used_idx(r), 0);
	mem_rig_free(r);
}

/* The device's state goes into a snapshot and comes back in a new device (on the same
 * rings and memory, at the second window, as the rng's test does). */
static void test_virtio_mem_state_round_trip(void **state)
{
	struct rig *r = mem_rig(true);
	struct snap_writer *w = snap_writer_new();
	struct mem_hotplug_status st;
	struct snap_reader *rd_;
	struct snap_cursor c;
	struct virtio_dev *vd2;
	const uint8_t *img;
	size_t len;
	uint16_t s;
	char err[256];

	(void)state;
	assert_non_null(w);
	assert_int_equal(virtio_mem_set_requested(r->vd, 8), 0);
	assert_int_equal(request(r, VIRTIO_MEM_REQ_PLUG, AREA + 4 * BLOCK, 3, NULL),
		VIRTIO_MEM_RESP_ACK);
	assert_int_equal(snap_section_begin(w, SNAP_SEC_DEVICE, 1), 0);
	assert_int_equal(virtio_save(r->vd, w), 0);
	assert_int_equal(snap_section_end(w), 0);
	assert_int_equal(snap_writer_image(w, &img, &len), 0);
	assert_int_equal(snap_reader_parse(&rd_, img, len, err, sizeof(err)), 0);
	assert_int_equal(snap_reader_find(rd_, SNAP_SEC_DEVICE, 0, &c), 0);
	vd2 = virtio_mem_new(&r->env, RIG_BASE2, 6, &CFG, err, sizeof(err));
	assert_non_null(vd2);
	assert_int_equal(virtio_restore(vd2, &c, err, sizeof(err)), 0);
	assert_int_equal(c.left, 0);
	virtio_free(r->vd);
	r->vd = vd2;
	notify_base = RIG_BASE2;
	virtio_mem_status(vd2, &st);
	assert_int_equal(st.plugged_mib, 6);
	assert_int_equal(st.requested_mib, 8);
	assert_int_equal(request(r, VIRTIO_MEM_REQ_STATE, AREA + 4 * BLOCK, 3, &s),
		VIRTIO_MEM_RESP_ACK);
	assert_int_equal(s, VIRTIO_MEM_STATE_PLUGGED);
	assert_int_equal(request(r, VIRTIO_MEM_REQ_STATE, AREA, 4, &s), VIRTIO_MEM_RESP_ACK);
	assert_int_equal(s, VIRTIO_MEM_STATE_UNPLUGGED);
	notify_base = RIG_BASE;
	snap_reader_free(rd_);
	snap_writer_free(w);
	mem_rig_free(r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_virtio_mem_config_check_says_firecrackers_words),
		cmocka_unit_test(test_virtio_mem_identity_and_config_space),
		cmocka_unit_test(test_virtio_mem_requested_size_checks_and_notifies),
		cmocka_unit_test(test_virtio_mem_plug_unplug_state_with_the_specs_checks),
		cmocka_unit_test(test_virtio_mem_short_buffers_need_reset),
		cmocka_unit_test(test_virtio_mem_state_round_trip),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
