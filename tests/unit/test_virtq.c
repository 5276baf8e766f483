/* Unit tests for split virtqueue walking: good chains, hostile chains, event idx, indirect. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ember/guest_mem.h"
#include "ember/virtio.h"
#include "guest_mem_fixture.h"

/* Guest memory: 1 MiB at 0, and 64 KiB at 4 GiB (a second region, after a gap). */
#define RAM_SIZE 0x100000ull
#define HIGH_GPA 0x100000000ull
#define HIGH_SIZE 0x10000ull
#define DESC_GPA 0x1000ull
#define AVAIL_GPA 0x2000ull
#define USED_GPA 0x3000ull
#define TABLE_GPA 0x5000ull /* indirect tables */
#define BUF_GPA 0x10000ull
#define QSIZE 8

#define F_NEXT 1
#define F_WRITE 2
#define F_INDIRECT 4

struct rig {
	struct guest_mem mem;
	struct virtq q;
	struct virtq_elem e;
	char err[256];
};

static int setup(void **state)
{
	struct rig *r = calloc(1, sizeof(*r));

	assert_non_null(r);
	assert_int_equal(guest_mem_fixture_init(&r->mem, RAM_SIZE), 0);
	assert_int_equal(guest_mem_fixture_add(&r->mem, HIGH_GPA, HIGH_SIZE), 0);
	r->q = (struct virtq){ .size = QSIZE,
		.max_size = 256,
		.ready = true,
		.desc_gpa = DESC_GPA,
		.avail_gpa = AVAIL_GPA,
		.used_gpa = USED_GPA,
		.mem = &r->mem };
	*state = r;
	return 0;
}

static int teardown(void **state)
{
	struct rig *r = *state;

	guest_mem_fixture_deinit(&r->mem);
	free(r);
	return 0;
}

static uint8_t *ram(struct rig *r, uint64_t gpa)
{
	/* The rig plays the guest: its writes are not ember's, so nothing is marked dirty. */
	return (uint8_t *)guest_mem_ptr(&r->mem, gpa, 1);
}

static void put16(struct rig *r, uint64_t gpa, uint16_t v)
{
	memcpy(ram(r, gpa), &v, 2);
}

static uint16_t get16(struct rig *r, uint64_t gpa)
{
	uint16_t v;

	memcpy(&v, ram(r, gpa), 2);
	return v;
}

static uint32_t get32(struct rig *r, uint64_t gpa)
{
	uint32_t v;

	memcpy(&v, ram(r, gpa), 4);
	return v;
}

static void desc_at(struct rig *r, uint64_t table, unsigned i, uint64_t addr, uint32_t len,
	uint16_t flags, uint16_t next)
{
	uint8_t *p = ram(r, table + 16ull * i);

	memcpy(p, &addr, 8);
	memcpy(p + 8, &len, 4);
	memcpy(p + 12, &flags, 2);
	memcpy(p + 14, &next, 2);
}

static void desc(struct rig *r, unsigned i, uint64_t addr, uint32_t len, uint16_t flags,
	uint16_t next)
{
	desc_at(r, DESC_GPA, i, addr, len, flags, next);
}

/* Make `head` available as the next avail entry. */
static void offer(struct rig *r, uint16_t head)
{
	uint16_t idx = get16(r, AVAIL_GPA + 2);

	put16(r, AVAIL_GPA + 4 + 2 * (idx % r->q.size), head);
	put16(r, AVAIL_GPA + 2, (uint16_t)(idx + 1));
}

static int pop(struct rig *r)
{
	r->err[0] = '\0';
	return virtq_pop(&r->q, &r->e, r->err, sizeof(r->err));
}

static void expect_refusal(struct rig *r, const char *msg)
{
	uint16_t before = r->q.next_avail;

	assert_int_equal(pop(r), -EINVAL);
	assert_non_null(strstr(r->err, msg));
	assert_int_equal(r->q.next_avail, before); /* nothing consumed */
}

/* ---- good chains ---- */

static void test_virtq_pop_empty_ring_is_enoent(void **state)
{
	struct rig *r = *state;

	assert_int_equal(pop(r), -ENOENT);
	r->q.ready = false;
	offer(r, 0);
	assert_int_equal(pop(r), -ENOENT);
}

static void test_virtq_pop_readable_then_writable_chain(void **state)
{
	struct rig *r = *state;

	desc(r, 3, BUF_GPA, 16, F_NEXT, 5);
	desc(r, 5, BUF_GPA + 0x100, 100, F_NEXT | F_WRITE, 1);
	desc(r, 1, HIGH_GPA, 28, F_WRITE, 0);
	offer(r, 3);
	assert_int_equal(pop(r), 0);
	assert_int_equal(r->e.head, 3);
	assert_int_equal(r->e.nsegs, 3);
	assert_int_equal(r->e.nread, 1);
	assert_int_equal(r->e.read_len, 16);
	assert_int_equal(r->e.write_len, 128);
	assert_true(r->e.segs[2].write);
	assert_int_equal(r->e.segs[2].gpa, HIGH_GPA);
	assert_int_equal(r->q.next_avail, 1);
	assert_int_equal(pop(r), -ENOENT);
}

static void test_virtq_read_and_write_cross_segments(void **state)
{
	struct rig *r = *state;
	uint8_t out[20], in[8] = "abcdefgh";

	memcpy(ram(r, BUF_GPA), "0123456789", 10);
	memcpy(ram(r, BUF_GPA + 0x100), "ABCDEFGHIJ", 10);
	desc(r, 0, BUF_GPA, 10, F_NEXT, 1);
	desc(r, 1, BUF_GPA + 0x100, 10, F_NEXT, 2);
	desc(r, 2, BUF_GPA + 0x200, 3, F_WRITE | F_NEXT, 3);
	desc(r, 3, BUF_GPA + 0x300, 5, F_WRITE, 0);
	offer(r, 0);
	assert_int_equal(pop(r), 0);
	assert_int_equal(virtq_read(&r->q, &r->e, 7, out, sizeof(out)), 13);
	assert_memory_equal(out, "789ABCDEFGHIJ", 13);
	assert_int_equal(virtq_write(&r->q, &r->e, 1, in, sizeof(in)), 7);
	assert_memory_equal(ram(r, BUF_GPA + 0x201), "ab", 2);
	assert_memory_equal(ram(r, BUF_GPA + 0x300), "cdefg", 5);
	assert_int_equal(virtq_write(&r->q, &r->e, 8, in, 1), 0);
}

static void test_virtq_push_fills_used_ring(void **state)
{
	struct rig *r = *state;

	desc(r, 2, BUF_GPA, 64, F_WRITE, 0);
	offer(r, 2);
	assert_int_equal(pop(r), 0);
	assert_int_equal(virtq_push(&r->q, &r->e, 65), -EINVAL); /* more than it holds */
	assert_int_equal(virtq_push(&r->q, &r->e, 64), 0);
	assert_int_equal(get16(r, USED_GPA + 2), 1);
	assert_int_equal(get32(r, USED_GPA + 4), 2);
	assert_int_equal(get32(r, USED_GPA + 8), 64);
	r->q.ready = false;
	assert_int_equal(virtq_push(&r->q, &r->e, 0), -EINVAL);
}

static void test_virtq_ring_indices_wrap(void **state)
{
	struct rig *r = *state;

	desc(r, 0, BUF_GPA, 4, F_WRITE, 0);
	r->q.next_avail = r->q.next_used = r->q.signalled_used = 0xfffe;
	put16(r, AVAIL_GPA + 2, 0xfffe);
	put16(r, USED_GPA + 2, 0xfffe);
	for (int i = 0; i < 4; i++) {
		offer(r, 0);
		assert_int_equal(pop(r), 0);
		assert_int_equal(virtq_push(&r->q, &r->e, 4), 0);
	}
	assert_int_equal(r->q.next_avail, 2);
	assert_int_equal(get16(r, USED_GPA + 2), 2);
}

static void test_virtq_zero_length_descriptors_are_skipped(void **state)
{
	struct rig *r = *state;

	desc(r, 0, 0xdead00000000ull, 0, F_NEXT, 1); /* no bytes: its address is never used */
	desc(r, 1, BUF_GPA, 8, F_WRITE | F_NEXT, 2);
	desc(r, 2, 0, 0, 0, 0); /* a zero-length readable after a writable: nothing to order */
	offer(r, 0);
	assert_int_equal(pop(r), 0);
	assert_int_equal(r->e.nsegs, 1);
	assert_int_equal(r->e.write_len, 8);
}

static void test_virtq_undo_pop_gives_the_chain_back(void **state)
{
	struct rig *r = *state;

	desc(r, 4, BUF_GPA, 8, F_WRITE, 0);
	offer(r, 4);
	assert_int_equal(pop(r), 0);
	virtq_undo_pop(&r->q);
	assert_int_equal(pop(r), 0);
	assert_int_equal(r->e.head, 4);
	assert_int_equal(pop(r), -ENOENT);
}

/* ---- hostile chains ---- */

static void test_virtq_pop_rejects_a_loop(void **state)
{
	struct rig *r = *state;

	desc(r, 0, BUF_GPA, 4, F_NEXT, 1);
	desc(r, 1, BUF_GPA, 4, F_NEXT, 0);
	offer(r, 0);
	expect_refusal(r, "chain from head 0 loops back to descriptor 0");
	/* In a big queue the loop is named as such, before the segment cap trips. */
	r->q.size = 128;
	put16(r, AVAIL_GPA + 2, 0);
	offer(r, 0);
	expect_refusal(r, "chain from head 0 loops back to descriptor 0");
}

static void test_virtq_pop_rejects_a_zero_length_loop(void **state)
{
	struct rig *r = *state;

	desc(r, 6, 0, 0, F_NEXT, 6);
	offer(r, 6);
	expect_refusal(r, "chain from head 6 loops back to descriptor 6");
}

static void test_virtq_pop_rejects_out_of_range_descriptor(void **state)
{
	struct rig *r = *state;

	offer(r, QSIZE);
	expect_refusal(r, "avail ring entry 0 names descriptor 8, outside the queue of 8");
}

static void test_virtq_pop_rejects_out_of_range_next(void **state)
{
	struct rig *r = *state;

	desc(r, 0, BUF_GPA, 4, F_NEXT, 200);
	offer(r, 0);
	expect_refusal(r, "descriptor 0: next 200 is outside its table of 8");
}

static void test_virtq_pop_rejects_address_outside_memory(void **state)
{
	struct rig *r = *state;

	desc(r, 0, RAM_SIZE - 4, 8, F_WRITE, 0); /* runs past the end of the region */
	offer(r, 0);
	expect_refusal(r, "descriptor 0 points outside guest memory (0xffffc, 8 bytes)");
	desc(r, 0, UINT64_MAX - 2, 8, F_WRITE, 0); /* wraps around */
	expect_refusal(r, "descriptor 0 points outside guest memory");
	desc(r, 0, 0xc0000000ull, 1, 0, 0); /* in the MMIO gap */
	expect_refusal(r, "outside guest memory");
}

static void test_virtq_pop_rejects_too_many_segments(void **state)
{
	struct rig *r = *state;
	unsigned n = VIRTQ_MAX_SEGMENTS + 1;

	r->q.size = 128;
	for (unsigned i = 0; i < n; i++)
		desc(r, i, BUF_GPA + i, 1, i + 1 < n ? F_NEXT : 0, (uint16_t)(i + 1));
	offer(r, 0);
	expect_refusal(r, "chain from head 0 has more than 64 segments");
	desc(r, n - 2, BUF_GPA, 1, 0, 0); /* exactly 64: fine */
	assert_int_equal(pop(r), 0);
	assert_int_equal(r->e.nsegs, VIRTQ_MAX_SEGMENTS);
}

static void test_virtq_pop_rejects_avail_index_jump(void **state)
{
	struct rig *r = *state;

	put16(r, AVAIL_GPA + 2, QSIZE + 1);
	expect_refusal(r, "avail index moved from 0 to 9, more than the queue size 8");
	put16(r, AVAIL_GPA + 2, 0xffff); /* backwards is a huge jump too */
	expect_refusal(r, "more than the queue size");
}

static void test_virtq_pop_rejects_readable_after_writable(void **state)
{
	struct rig *r = *state;

	desc(r, 0, BUF_GPA, 4, F_WRITE | F_NEXT, 1);
	desc(r, 1, BUF_GPA, 4, 0, 0);
	offer(r, 0);
	expect_refusal(r, "descriptor 1 is device-readable after a device-writable one");
}

static void test_virtq_pop_rejects_bad_ring_layout(void **state)
{
	struct rig *r = *state;

	r->q.used_gpa = RAM_SIZE - 8;
	expect_refusal(r, "used ring at 0xffff8 (70 bytes) is outside guest memory");
	r->q.used_gpa = USED_GPA + 2;
	expect_refusal(r, "used ring at 0x3002 is not 4-byte aligned");
	r->q.used_gpa = USED_GPA;
	r->q.size = 6;
	expect_refusal(r, "size 6 is not a power of two");
	r->q.size = 512;
	expect_refusal(r, "size 512 is not a power of two from 1 to 256");
}

/* ---- indirect tables ---- */

static void test_virtq_pop_follows_indirect_table(void **state)
{
	struct rig *r = *state;

	r->q.indirect = true;
	desc(r, 0, BUF_GPA, 4, F_NEXT, 1);
	desc(r, 1, TABLE_GPA, 3 * 16, F_INDIRECT | F_WRITE, 0); /* WRITE is ignored here */
	desc_at(r, TABLE_GPA, 0, BUF_GPA + 0x10, 8, F_NEXT, 2);
	desc_at(r, TABLE_GPA, 2, BUF_GPA + 0x20, 16, F_WRITE | F_NEXT, 1);
	desc_at(r, TABLE_GPA, 1, HIGH_GPA, 32, F_WRITE, 0);
	offer(r, 0);
	assert_int_equal(pop(r), 0);
	assert_int_equal(r->e.nsegs, 4);
	assert_int_equal(r->e.nread, 2);
	assert_int_equal(r->e.read_len, 12);
	assert_int_equal(r->e.write_len, 48);
	assert_int_equal(r->e.segs[3].gpa, HIGH_GPA);
}

static void test_virtq_pop_rejects_indirect_without_the_feature(void **state)
{
	struct rig *r = *state;

	desc(r, 0, TABLE_GPA, 16, F_INDIRECT, 0);
	desc_at(r, TABLE_GPA, 0, BUF_GPA, 8, F_WRITE, 0);
	offer(r, 0);
	expect_refusal(r, "VIRTIO_F_RING_INDIRECT_DESC was not negotiated");
}

static void test_virtq_pop_rejects_nested_indirect(void **state)
{
	struct rig *r = *state;

	r->q.indirect = true;
	desc(r, 0, TABLE_GPA, 32, F_INDIRECT, 0);
	desc_at(r, TABLE_GPA, 0, BUF_GPA, 8, F_NEXT, 1);
	desc_at(r, TABLE_GPA, 1, TABLE_GPA + 0x100, 16, F_INDIRECT, 0);
	offer(r, 0);
	expect_refusal(r, "indirect descriptor 1 (table in descriptor 0) nests another");
}

static void test_virtq_pop_rejects_bad_indirect_tables(void **state)
{
	struct rig *r = *state;

	r->q.indirect = true;
	offer(r, 0);
	desc(r, 0, TABLE_GPA, 0, F_INDIRECT, 0);
	expect_refusal(r, "indirect table of 0 bytes");
	desc(r, 0, TABLE_GPA, 24, F_INDIRECT, 0);
	expect_refusal(r, "indirect table of 24 bytes");
	desc(r, 0, TABLE_GPA, 16 * 257, F_INDIRECT, 0);
	expect_refusal(r, "at most 256 entries");
	desc(r, 0, RAM_SIZE - 16, 32, F_INDIRECT, 0);
	expect_refusal(r, "indirect table at 0xffff0 (32 bytes) is outside guest memory");
	desc(r, 0, TABLE_GPA, 16, F_INDIRECT | F_NEXT, 1);
	expect_refusal(r, "descriptor 0 is indirect and has NEXT set");
	desc(r, 0, TABLE_GPA, 32, F_INDIRECT, 0);
	desc_at(r, TABLE_GPA, 0, BUF_GPA, 8, F_NEXT, 1);
	desc_at(r, TABLE_GPA, 1, BUF_GPA, 8, F_NEXT, 0);
	expect_refusal(r, "indirect table in descriptor 0 loops back to its entry 0");
	desc_at(r, TABLE_GPA, 1, BUF_GPA, 8, F_NEXT, 2);
	expect_refusal(r, "indirect descriptor 1 (table in descriptor 0): next 2 is outside");
	desc_at(r, TABLE_GPA, 1, HIGH_GPA + HIGH_SIZE, 1, 0, 0);
	expect_refusal(r, "indirect descriptor 1 (table in descriptor 0) points outside");
}

/* ---- notifications ---- */

static void push_one(struct rig *r)
{
	desc(r, 0, BUF_GPA, 4, F_WRITE, 0);
	offer(r, 0);
	assert_int_equal(pop(r), 0);
	assert_int_equal(virtq_push(&r->q, &r->e, 4), 0);
}

static void test_virtq_needs_notify_honours_no_interrupt_flag(void **state)
{
	struct rig *r = *state;

	assert_false(virtq_needs_notify(&r->q)); /* nothing pushed */
	push_one(r);
	assert_true(virtq_needs_notify(&r->q));
	assert_false(virtq_needs_notify(&r->q)); /* already told */
	put16(r, AVAIL_GPA, 1);                  /* VIRTQ_AVAIL_F_NO_INTERRUPT */
	push_one(r);
	assert_false(virtq_needs_notify(&r->q));
}

static void test_virtq_event_idx_notify_decisions(void **state)
{
	struct rig *r = *state;
	uint64_t used_event = AVAIL_GPA + 4 + 2 * QSIZE;

	r->q.event_idx = true;
	put16(r, AVAIL_GPA, 1);  /* flags are ignored with event idx */
	put16(r, used_event, 0); /* interrupt when used idx passes 0 */
	push_one(r);
	assert_true(virtq_needs_notify(&r->q));
	push_one(r); /* used idx 2, used_event still 0: already signalled past it */
	assert_false(virtq_needs_notify(&r->q));
	put16(r, used_event, 3); /* interrupt when used idx goes past 3 */
	push_one(r);             /* 3 */
	assert_false(virtq_needs_notify(&r->q));
	push_one(r); /* 4 */
	assert_true(virtq_needs_notify(&r->q));
	put16(r, used_event, 5);
	push_one(r); /* 5 */
	push_one(r); /* 6: the event (5) lies in [old=4, 6): notify once for both */
	assert_true(virtq_needs_notify(&r->q));
	assert_false(virtq_needs_notify(&r->q));
}

static void test_virtq_event_idx_pop_publishes_avail_event(void **state)
{
	struct rig *r = *state;
	uint64_t avail_event = USED_GPA + 4 + 8 * QSIZE;

	r->q.event_idx = true;
	put16(r, avail_event, 0x5555);
	push_one(r);
	assert_int_equal(pop(r), -ENOENT);
	assert_int_equal(get16(r, avail_event), 1); /* kick me when chain 1 is made available */
}

static void test_virtq_device_writes_are_marked_dirty(void **state)
{
	struct rig *r = *state;
	unsigned long bits[(RAM_SIZE / 4096 + 63) / 64] = { 0 };
	uint8_t b[4] = "abc";

	assert_int_equal(guest_mem_track_dirty(&r->mem), 0);
	r->q.event_idx = true;
	desc(r, 0, BUF_GPA + 0x5000 - 2, 4, F_WRITE, 0); /* straddles two pages */
	offer(r, 0);
	assert_int_equal(pop(r), 0);
	assert_int_equal(virtq_write(&r->q, &r->e, 0, b, 4), 4);
	assert_int_equal(virtq_push(&r->q, &r->e, 4), 0);
	assert_int_equal(pop(r), -ENOENT); /* writes avail_event */
	guest_mem_take_dirty(&r->mem, 0, bits);
	for (unsigned p = 0; p < RAM_SIZE / 4096; p++) {
		bool want = p == USED_GPA / 4096 || p == (BUF_GPA + 0x4000) / 4096 ||
			p == (BUF_GPA + 0x5000) / 4096;
		assert_int_equal(!!(bits[p / 64] & (1ul << (p % 64))), want);
	}
	for (unsigned i = 0; i < r->mem.nr_regions; i++) {
		free((void *)r->mem.dirty[i]);
		r->mem.dirty[i] = NULL;
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
		T(test_virtq_pop_empty_ring_is_enoent),
		T(test_virtq_pop_readable_then_writable_chain),
		T(test_virtq_read_and_write_cross_segments),
		T(test_virtq_push_fills_used_ring),
		T(test_virtq_ring_indices_wrap),
		T(test_virtq_zero_length_descriptors_are_skipped),
		T(test_virtq_undo_pop_gives_the_chain_back),
		T(test_virtq_pop_rejects_a_loop),
		T(test_virtq_pop_rejects_a_zero_length_loop),
		T(test_virtq_pop_rejects_out_of_range_descriptor),
		T(test_virtq_pop_rejects_out_of_range_next),
		T(test_virtq_pop_rejects_address_outside_memory),
		T(test_virtq_pop_rejects_too_many_segments),
		T(test_virtq_pop_rejects_avail_index_jump),
		T(test_virtq_pop_rejects_readable_after_writable),
		T(test_virtq_pop_rejects_bad_ring_layout),
		T(test_virtq_pop_follows_indirect_table),
		T(test_virtq_pop_rejects_indirect_without_the_feature),
		T(test_virtq_pop_rejects_nested_indirect),
		T(test_virtq_pop_rejects_bad_indirect_tables),
		T(test_virtq_needs_notify_honours_no_interrupt_flag),
		T(test_virtq_event_idx_notify_decisions),
		T(test_virtq_event_idx_pop_publishes_avail_event),
		T(test_virtq_device_writes_are_marked_dirty),
#undef T
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
