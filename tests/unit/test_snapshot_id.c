/* Unit tests for the snapshot id: attribute values, the state file section, the verdict. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "ember/snapshot_file.h"
#include "ember/snapshot_id.h"

static const struct snap_id ID_A = { { 0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef, 0x10, 0x32,
	0x54, 0x76, 0x98, 0xba, 0xdc, 0xfe } };
static const struct snap_id ID_B = { { 0xff, 0xee, 0xdd, 0xcc, 0xbb, 0xaa, 0x99, 0x88, 0x77, 0x66,
	0x55, 0x44, 0x33, 0x22, 0x11, 0x00 } };
#define HEX_A "0123456789abcdef1032547698badcfe"
#define HEX_B "ffeeddccbbaa99887766554433221100"

static void parse(const char *value, struct mem_id *out)
{
	mem_id_parse(value, strlen(value), out);
}

/* ---- ids and attribute values ---- */

static void test_snapshot_id_generate_gives_fresh_ids(void **state)
{
	struct snap_id a, b;

	(void)state;
	assert_int_equal(snap_id_generate(&a), 0);
	assert_int_equal(snap_id_generate(&b), 0);
	assert_false(snap_id_equal(&a, &b));
	assert_true(snap_id_equal(&a, &a));
}

static void test_snapshot_id_format_is_lowercase_hex(void **state)
{
	char hex[SNAP_ID_HEX_LEN + 1];

	(void)state;
	snap_id_format(&ID_A, hex);
	assert_string_equal(hex, HEX_A);
}

static void test_snapshot_id_values_round_trip(void **state)
{
	const enum mem_id_kind kinds[] = { MEM_ID_FULL, MEM_ID_DIFF, MEM_ID_DIFF,
		MEM_ID_INCOMPLETE };
	const bool parents[] = { false, false, true, false };
	const char *want[] = { HEX_A, HEX_A " diff", HEX_A " diff " HEX_B, "incomplete" };
	char buf[SNAP_ID_VALUE_MAX];

	(void)state;
	for (unsigned i = 0; i < 4; i++) {
		struct mem_id m = { .kind = kinds[i],
			.id = ID_A,
			.has_parent = parents[i],
			.parent = ID_B },
			      back;
		int n = mem_id_format(&m, buf, sizeof(buf));

		assert_int_equal(n, (int)strlen(want[i]));
		assert_memory_equal(buf, want[i], (size_t)n);
		mem_id_parse(buf, (size_t)n, &back);
		assert_int_equal(back.kind, kinds[i]);
		assert_int_equal(back.has_parent, parents[i]);
		if (kinds[i] != MEM_ID_INCOMPLETE)
			assert_true(snap_id_equal(&back.id, &ID_A));
		if (parents[i])
			assert_true(snap_id_equal(&back.parent, &ID_B));
	}
}

/* A full snapshot's memory has no parent to write, whatever the struct says. */
static void test_snapshot_id_full_value_carries_no_parent(void **state)
{
	char buf[SNAP_ID_VALUE_MAX];
	int n;

	(void)state;
	n = mem_id_format(&(struct mem_id){ .kind = MEM_ID_FULL,
				  .id = ID_A,
				  .has_parent = true,
				  .parent = ID_B },
		buf, sizeof(buf));
	assert_int_equal(n, SNAP_ID_HEX_LEN);
}

static void test_snapshot_id_format_refuses_none_bad_and_short_buffers(void **state)
{
	char buf[SNAP_ID_VALUE_MAX];

	(void)state;
	assert_int_equal(mem_id_format(&(struct mem_id){ .kind = MEM_ID_NONE }, buf, sizeof(buf)),
		-EINVAL);
	assert_int_equal(mem_id_format(&(struct mem_id){ .kind = MEM_ID_BAD }, buf, sizeof(buf)),
		-EINVAL);
	assert_int_equal(mem_id_format(&(struct mem_id){ .kind = MEM_ID_FULL }, buf, 10), -ENOSPC);
}

static void test_snapshot_id_parse_refuses_anything_else(void **state)
{
	static const char *const bad[] = {
		"",
		"0123",
		HEX_A "0",
		"0123456789ABCDEF1032547698BADCFE", /* upper case */
		"0123456789abcdef1032547698badcfg",
		HEX_A " dif",
		HEX_A " diffs",
		HEX_A "-diff",
		"Incomplete",
		"incomplete ",
		" " HEX_A,
		HEX_A " diff " HEX_B "0",
		HEX_A " diff  " HEX_B,
		HEX_A " diff " HEX_B " ",
		HEX_A " diff 0123456789ABCDEF1032547698BADCFE",
		HEX_A " " HEX_B,
		HEX_A " diff-" HEX_B,
		HEX_A " full " HEX_B,
	};
	struct mem_id m;

	(void)state;
	for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		parse(bad[i], &m);
		assert_int_equal(m.kind, MEM_ID_BAD);
	}
	/* The length decides, not a NUL: a value with an embedded NUL is not an id. */
	mem_id_parse(HEX_A "\0diff", SNAP_ID_HEX_LEN + 5, &m);
	assert_int_equal(m.kind, MEM_ID_BAD);
}

/* ---- the state file section ---- */

static struct snap_reader *reader_with(const struct snap_id *id, uint32_t version, size_t payload,
	unsigned copies)
{
	struct snap_writer *w = snap_writer_new();
	struct snap_reader *r = NULL;
	const uint8_t *data;
	size_t len;
	char err[128];

	assert_non_null(w);
	assert_int_equal(snap_section_begin(w, SNAP_SEC_VM_INFO, 1), 0);
	assert_int_equal(snap_put_u32(w, 1), 0);
	assert_int_equal(snap_section_end(w), 0);
	for (unsigned i = 0; i < copies; i++) {
		if (version == 1 && payload == SNAP_ID_BYTES) {
			assert_int_equal(snap_id_save(w, id, NULL), 0);
			continue;
		}
		if (version == 2 && payload == 2 * SNAP_ID_BYTES) {
			assert_int_equal(snap_id_save(w, id, &ID_A), 0);
			continue;
		}
		assert_int_equal(snap_section_begin(w, SNAP_SEC_SNAPSHOT_ID, version), 0);
		assert_int_equal(snap_put(w, id->b,
					 payload < SNAP_ID_BYTES ? payload : SNAP_ID_BYTES),
			0);
		for (size_t k = SNAP_ID_BYTES; k < payload; k++)
			assert_int_equal(snap_put(w, "x", 1), 0);
		assert_int_equal(snap_section_end(w), 0);
	}
	assert_int_equal(snap_writer_image(w, &data, &len), 0);
	assert_int_equal(snap_reader_parse(&r, data, len, err, sizeof(err)), 0);
	snap_writer_free(w);
	return r;
}

/* Written and read back; and a state file from before ids has none, which is no error. */
static void test_snapshot_id_section_round_trips_or_is_absent(void **state)
{
	(void)state;
	for (unsigned copies = 0; copies <= 1; copies++) {
		struct snap_reader *r = reader_with(&ID_B, 1, SNAP_ID_BYTES, copies);
		struct snap_id id, parent;
		bool found = copies == 0, has_parent = true;
		char err[128] = "";

		assert_int_equal(snap_id_load(r, &id, &found, &parent, &has_parent, err,
					 sizeof(err)),
			0);
		assert_int_equal(found, copies == 1);
		assert_false(has_parent);
		if (found)
			assert_true(snap_id_equal(&id, &ID_B));
		snap_reader_free(r);
	}
}

/* A diff's section is version 2: its id, then its parent's. */
static void test_snapshot_id_section_carries_a_diffs_parent(void **state)
{
	struct snap_reader *r = reader_with(&ID_B, 2, 2 * SNAP_ID_BYTES, 1);
	struct snap_id id, parent;
	bool found = false, has_parent = false;
	char err[128] = "";

	(void)state;
	assert_int_equal(snap_id_load(r, &id, &found, &parent, &has_parent, err, sizeof(err)), 0);
	assert_true(found && has_parent);
	assert_true(snap_id_equal(&id, &ID_B));
	assert_true(snap_id_equal(&parent, &ID_A));
	/* A reader that does not ask for the parent gets the id all the same. */
	assert_int_equal(snap_id_load(r, &id, &found, NULL, NULL, err, sizeof(err)), 0);
	assert_true(found && snap_id_equal(&id, &ID_B));
	snap_reader_free(r);
}

static void test_snapshot_id_section_refuses_malformed(void **state)
{
	struct {
		uint32_t version;
		size_t payload;
		unsigned copies;
		const char *want;
	} cases[] = {
		{ 1, 15, 1, "snapshot id section is malformed" },
		{ 1, 17, 1, "snapshot id section is malformed" },
		{ 2, 16, 1, "snapshot id section is malformed" },
		{ 2, 33, 1, "snapshot id section is malformed" },
		{ 3, 32, 1, "snapshot id section version 3, this ember reads 1 and 2" },
		{ 1, 16, 2, "more than one snapshot id section" },
	};

	(void)state;
	for (unsigned i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct snap_reader *r = reader_with(&ID_A, cases[i].version, cases[i].payload,
			cases[i].copies);
		struct snap_id id;
		bool found = true;
		char err[128] = "";

		assert_int_equal(snap_id_load(r, &id, &found, NULL, NULL, err, sizeof(err)),
			-EINVAL);
		assert_false(found);
		assert_non_null(strstr(err, cases[i].want));
		snap_reader_free(r);
	}
}

/* ---- the verdict ---- */

static int verdict(const struct snap_id *state_id, const char *value, char *err, size_t len)
{
	struct mem_id m = { .kind = MEM_ID_NONE };

	if (value)
		parse(value, &m);
	err[0] = '\0';
	return snap_id_check_pair("/s/vm.state", state_id, "/m/vm.mem", &m, err, len);
}

static void test_snapshot_id_check_accepts_the_pair_and_unmarked_files(void **state)
{
	char err[512];

	(void)state;
	assert_int_equal(verdict(&ID_A, HEX_A, err, sizeof(err)), 0);
	assert_int_equal(verdict(&ID_A, NULL, err, sizeof(err)), 0); /* Firecracker's file */
	assert_int_equal(verdict(NULL, HEX_B, err, sizeof(err)), 0); /* an older state file */
	assert_int_equal(verdict(NULL, NULL, err, sizeof(err)), 0);
	assert_string_equal(err, "");
}

static void test_snapshot_id_check_refuses_another_snapshots_memory(void **state)
{
	char err[512];

	(void)state;
	assert_int_equal(verdict(&ID_A, HEX_B, err, sizeof(err)), -EINVAL);
	assert_string_equal(err,
		"snapshot mismatch: state file /s/vm.state is snapshot " HEX_A
		", but memory file /m/vm.mem belongs to snapshot " HEX_B
		" (a crash between writing "
		"the two, or files from different snapshots)");
	assert_int_equal(verdict(&ID_A, HEX_B " diff", err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "snapshot mismatch"));
}

static void test_snapshot_id_check_refuses_unmerged_diff_and_broken_files(void **state)
{
	char err[512];

	(void)state;
	assert_int_equal(verdict(&ID_A, HEX_A " diff", err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "merge it onto its base"));
	assert_non_null(strstr(err, "/m/vm.mem"));
	assert_non_null(strstr(err, "/s/vm.state"));
	/* Whatever the state file says: an interrupted merge, an unreadable attribute. */
	assert_int_equal(verdict(NULL, "incomplete", err, sizeof(err)), -EINVAL);
	assert_string_equal(err,
		"memory file /m/vm.mem is incomplete: a merge into it was "
		"interrupted");
	assert_int_equal(verdict(&ID_A, "junk", err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "user.ember.snapshot attribute is not a snapshot id"));
}

/* ---- merging a diff onto a base ---- */

#define DIFF_OF_B_AFTER_A HEX_B " diff " HEX_A

static int merge_verdict(const char *base, const char *diff, struct mem_id *result, char *err,
	size_t len)
{
	struct mem_id b = { .kind = MEM_ID_NONE }, d = { .kind = MEM_ID_NONE };

	if (base)
		parse(base, &b);
	if (diff)
		parse(diff, &d);
	err[0] = '\0';
	return snap_id_check_merge("/m/base.mem", &b, "/m/diff.mem", &d, result, err, len);
}

static void test_snapshot_id_merge_accepts_the_parents_memory(void **state)
{
	struct mem_id result;
	char err[512];

	(void)state;
	assert_int_equal(merge_verdict(HEX_A, DIFF_OF_B_AFTER_A, &result, err, sizeof(err)), 0);
	assert_int_equal(result.kind, MEM_ID_FULL);
	assert_true(snap_id_equal(&result.id, &ID_B));
	assert_false(result.has_parent);
	/* Without an id on either side it cannot tell, and merges as before ids. */
	assert_int_equal(merge_verdict(NULL, DIFF_OF_B_AFTER_A, &result, err, sizeof(err)), 0);
	assert_int_equal(result.kind, MEM_ID_FULL);
	assert_int_equal(merge_verdict(NULL, HEX_B " diff", &result, err, sizeof(err)), 0);
	assert_int_equal(merge_verdict(HEX_A, NULL, &result, err, sizeof(err)), 0);
	assert_int_equal(result.kind, MEM_ID_NONE);
	assert_string_equal(err, "");
}

static void test_snapshot_id_merge_refuses_a_wrong_base(void **state)
{
	struct mem_id result;
	char err[512];

	(void)state;
	/* B was taken after A; a base holding B itself (d2 onto d1's merge, twice) or any
	 * other snapshot is the wrong one. */
	assert_int_equal(merge_verdict(HEX_B, DIFF_OF_B_AFTER_A, &result, err, sizeof(err)),
		-EINVAL);
	assert_string_equal(err,
		"wrong base: diff /m/diff.mem (snapshot " HEX_B ") was taken "
		"after snapshot " HEX_A ", but /m/base.mem holds snapshot " HEX_B
		" (merge diffs in "
		"the order they were taken, onto the memory of the snapshot before the first)");
}

static void test_snapshot_id_merge_refuses_a_booted_vms_diff_onto_a_base(void **state)
{
	struct mem_id result;
	char err[512];

	(void)state;
	assert_int_equal(merge_verdict(HEX_A, HEX_B " diff", &result, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "diff /m/diff.mem (snapshot " HEX_B ") records no parent"));
	assert_non_null(strstr(err, "not since snapshot " HEX_A " (/m/base.mem)"));
}

static void test_snapshot_id_merge_refuses_what_is_not_a_diff_or_a_base(void **state)
{
	static const struct {
		const char *base, *diff, *want;
	} cases[] = {
		{ HEX_A, HEX_B, "/m/diff.mem is a full snapshot's memory file, not a diff" },
		{ HEX_A, "incomplete", "diff /m/diff.mem: its user.ember.snapshot attribute says" },
		{ HEX_A, "junk", "diff /m/diff.mem: its user.ember.snapshot attribute says" },
		{ HEX_A " diff", DIFF_OF_B_AFTER_A, "base /m/base.mem is itself a diff" },
		{ "incomplete", DIFF_OF_B_AFTER_A, "base /m/base.mem is incomplete" },
		{ "junk", DIFF_OF_B_AFTER_A,
			"base /m/base.mem: its user.ember.snapshot attribute" },
	};
	struct mem_id result;
	char err[512];

	(void)state;
	for (unsigned i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		assert_int_equal(merge_verdict(cases[i].base, cases[i].diff, &result, err,
					 sizeof(err)),
			-EINVAL);
		assert_non_null(strstr(err, cases[i].want));
	}
}

/* ---- the attribute on a real file ---- */

static void test_snapshot_id_attribute_on_a_file(void **state)
{
	char path[] = "/tmp/test_snapshot_id.XXXXXX";
	int fd = mkstemp(path);
	struct mem_id m;
	int ret;

	(void)state;
	assert_true(fd >= 0);
	unlink(path);
	ret = mem_id_read(fd, &m);
	assert_true(ret == 0 || ret == -ENOTSUP);
	assert_int_equal(m.kind, MEM_ID_NONE);
	ret = mem_id_write(fd, &(struct mem_id){ .kind = MEM_ID_DIFF, .id = ID_B });
	if (ret == -ENOTSUP) {
		close(fd);
		skip(); /* this file system has no user xattrs */
	}
	assert_int_equal(ret, 0);
	assert_int_equal(mem_id_read(fd, &m), 0);
	assert_int_equal(m.kind, MEM_ID_DIFF);
	assert_true(snap_id_equal(&m.id, &ID_B));
	assert_int_equal(mem_id_write(fd, &(struct mem_id){ .kind = MEM_ID_NONE }), 0);
	assert_int_equal(mem_id_read(fd, &m), 0);
	assert_int_equal(m.kind, MEM_ID_NONE);
	/* Removing what is not there is fine. */
	assert_int_equal(mem_id_write(fd, &(struct mem_id){ .kind = MEM_ID_NONE }), 0);
	close(fd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_snapshot_id_generate_gives_fresh_ids),
		cmocka_unit_test(test_snapshot_id_format_is_lowercase_hex),
		cmocka_unit_test(test_snapshot_id_values_round_trip),
		cmocka_unit_test(test_snapshot_id_full_value_carries_no_parent),
		cmocka_unit_test(test_snapshot_id_format_refuses_none_bad_and_short_buffers),
		cmocka_unit_test(test_snapshot_id_parse_refuses_anything_else),
		cmocka_unit_test(test_snapshot_id_section_round_trips_or_is_absent),
		cmocka_unit_test(test_snapshot_id_section_carries_a_diffs_parent),
		cmocka_unit_test(test_snapshot_id_section_refuses_malformed),
		cmocka_unit_test(test_snapshot_id_check_accepts_the_pair_and_unmarked_files),
		cmocka_unit_test(test_snapshot_id_check_refuses_another_snapshots_memory),
		cmocka_unit_test(test_snapshot_id_check_refuses_unmerged_diff_and_broken_files),
		cmocka_unit_test(test_snapshot_id_merge_accepts_the_parents_memory),
		cmocka_unit_test(test_snapshot_id_merge_refuses_a_wrong_base),
		cmocka_unit_test(test_snapshot_id_merge_refuses_a_booted_vms_diff_onto_a_base),
		cmocka_unit_test(test_snapshot_id_merge_refuses_what_is_not_a_diff_or_a_base),
		cmocka_unit_test(test_snapshot_id_attribute_on_a_file),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
