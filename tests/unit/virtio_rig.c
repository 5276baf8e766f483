/* Test rig for virtio devices: memory, bus, loop and a register-level driver. */
#include "virtio_rig.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ember/byteorder.h"
#include "ember/snapshot_file.h"
#include "guest_mem_fixture.h"

struct rig *rig_new(void)
{
	struct rig *r = calloc(1, sizeof(*r));

	assert_non_null(r);
	r->mmio.name = "mmio";
	assert_int_equal(guest_mem_fixture_init(&r->mem, RIG_RAM_SIZE), 0);
	r->loop = ev_loop_new(EVFLAG_AUTO);
	assert_non_null(r->loop);
	r->env = (struct virtio_env){ .loop = r->loop,
		.mem = &r->mem,
		.vm_fd = -1,
		.mmio = &r->mmio };
	return r;
}

void rig_free(struct rig *r)
{
	virtio_free(r->vd);
	ev_loop_destroy(r->loop);
	guest_mem_fixture_deinit(&r->mem);
	free(r);
}

uint32_t rd_at(struct rig *r, uint64_t base, uint64_t off)
{
	uint8_t b[4];

	assert_true(bus_access(&r->mmio, base + off, b, 4, false));
	return get_le32(b);
}

void wr_at(struct rig *r, uint64_t base, uint64_t off, uint32_t v)
{
	uint8_t b[4];

	put_le32(b, v);
	assert_true(bus_access(&r->mmio, base + off, b, 4, true));
}

uint32_t rd(struct rig *r, uint64_t off)
{
	return rd_at(r, RIG_BASE, off);
}

void wr(struct rig *r, uint64_t off, uint32_t v)
{
	wr_at(r, RIG_BASE, off, v);
}

void run_loop(struct rig *r)
{
	for (int i = 0; i < 4; i++)
		ev_run(r->loop, EVRUN_NOWAIT);
}

uint8_t *ram(struct rig *r, uint64_t gpa)
{
	/* The rig plays the guest: its writes are not ember's, so nothing is marked dirty. */
	uint8_t *p = (uint8_t *)guest_mem_ptr(&r->mem, gpa, 1);

	assert_non_null(p);
	return p;
}

uint32_t negotiate_at(struct rig *r, uint64_t base, uint32_t lo, uint32_t hi)
{
	wr_at(r, base, STATUS, 0);
	wr_at(r, base, STATUS, ACK);
	wr_at(r, base, STATUS, ACK | DRIVER);
	wr_at(r, base, DRV_FEATURES_SEL, 0);
	wr_at(r, base, DRV_FEATURES, lo);
	wr_at(r, base, DRV_FEATURES_SEL, 1);
	wr_at(r, base, DRV_FEATURES, hi);
	wr_at(r, base, STATUS, ACK | DRIVER | FEATURES_OK);
	return rd_at(r, base, STATUS);
}

void queue_at(struct rig *r, uint64_t base, unsigned q, unsigned num, uint64_t desc, uint64_t avail,
	uint64_t used)
{
	wr_at(r, base, QUEUE_SEL, q);
	wr_at(r, base, QUEUE_NUM, num);
	wr_at(r, base, DESC_LO, (uint32_t)desc);
	wr_at(r, base, DESC_HI, (uint32_t)(desc >> 32));
	wr_at(r, base, AVAIL_LO, (uint32_t)avail);
	wr_at(r, base, AVAIL_HI, (uint32_t)(avail >> 32));
	wr_at(r, base, USED_LO, (uint32_t)used);
	wr_at(r, base, USED_HI, (uint32_t)(used >> 32));
	wr_at(r, base, QUEUE_READY, 1);
	if (q == 0)
		r->qsize = (uint16_t)num;
}

void bring_up_at(struct rig *r, uint64_t base, uint32_t lo, uint16_t qsize)
{
	assert_true(negotiate_at(r, base, lo, 1) & FEATURES_OK);
	queue_at(r, base, 0, qsize, RIG_DESC, RIG_AVAIL, RIG_USED);
	wr_at(r, base, STATUS, ACK | DRIVER | FEATURES_OK | DRIVER_OK);
	run_loop(r);
}

void put_desc(struct rig *r, uint16_t d, uint64_t addr, uint32_t len, uint16_t flags, uint16_t next)
{
	uint8_t *p = ram(r, RIG_DESC + 16ull * d);

	memcpy(p, &addr, 8);
	memcpy(p + 8, &len, 4);
	memcpy(p + 12, &flags, 2);
	memcpy(p + 14, &next, 2);
}

void offer(struct rig *r, uint16_t head)
{
	uint16_t idx;

	memcpy(&idx, ram(r, RIG_AVAIL + 2), 2);
	memcpy(ram(r, RIG_AVAIL + 4 + 2 * (idx % r->qsize)), &head, 2);
	idx++;
	memcpy(ram(r, RIG_AVAIL + 2), &idx, 2);
}

void post(struct rig *r, uint16_t d, uint32_t len, uint16_t flags)
{
	put_desc(r, d, RIG_BUF + 0x1000ull * d, len, flags, 0);
	offer(r, d);
}

uint16_t used_idx(struct rig *r)
{
	uint16_t v;

	memcpy(&v, ram(r, RIG_USED + 2), 2);
	return v;
}

void used_elem(struct rig *r, uint16_t i, uint32_t *id, uint32_t *len)
{
	uint64_t at = RIG_USED + 4 + 8ull * (i % r->qsize);

	memcpy(id, ram(r, at), 4);
	memcpy(len, ram(r, at + 4), 4);
}

struct rig_saved *rig_save(struct virtio_dev *vd)
{
	struct rig_saved *s = calloc(1, sizeof(*s));
	const uint8_t *img;
	size_t len;
	char err[256];

	assert_non_null(s);
	s->w = snap_writer_new();
	assert_int_equal(snap_section_begin(s->w, SNAP_SEC_DEVICE, 1), 0);
	assert_int_equal(virtio_save(vd, s->w), 0);
	assert_int_equal(snap_section_end(s->w), 0);
	assert_int_equal(snap_writer_image(s->w, &img, &len), 0);
	assert_int_equal(snap_reader_parse(&s->r, img, len, err, sizeof(err)), 0);
	assert_int_equal(snap_reader_find(s->r, SNAP_SEC_DEVICE, 0, &s->cursor), 0);
	return s;
}

void rig_saved_free(struct rig_saved *s)
{
	snap_reader_free(s->r);
	snap_writer_free(s->w);
	free(s);
}
