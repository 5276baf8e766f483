/* Unit tests for the snapshot state file: CRC-64/Jones, round trip, every refusal, atomic commit. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "ember/crc64.h"
#include "ember/snapshot_file.h"
#include "ember/snapshot_publish.h"

/* ---- helpers ---- */

static void put_le(uint8_t *p, uint64_t v, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get_le(const uint8_t *p, unsigned n)
{
	uint64_t v = 0;

	for (unsigned i = 0; i < n; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

/* Rewrite the trailer after a deliberate edit, so the edit reaches the later checks. */
static void fix_crc(uint8_t *img, size_t len)
{
	put_le(img + len - 8, crc64_jones(0, img, len - 8), 8);
}

/* A heap copy of the writer's image (the writer's is only valid until its next call). */
static uint8_t *image_copy(struct snap_writer *w, size_t *len, size_t extra)
{
	const uint8_t *data;
	uint8_t *copy;

	assert_int_equal(snap_writer_image(w, &data, len), 0);
	copy = calloc(1, *len + extra);
	assert_non_null(copy);
	memcpy(copy, data, *len);
	return copy;
}

/* Three sections: VM_INFO (u32, u64, strings), VCPU (8 bytes), DEVICE (empty). */
static struct snap_writer *sample_writer(void)
{
	struct snap_writer *w = snap_writer_new();

	assert_non_null(w);
	assert_int_equal(snap_section_begin(w, SNAP_SEC_VM_INFO, 1), 0);
	assert_int_equal(snap_put_u32(w, 256), 0);
	assert_int_equal(snap_put_u64(w, 0x0123456789abcdefULL), 0);
	assert_int_equal(snap_put_str(w, "vmlinux"), 0);
	assert_int_equal(snap_put_str(w, NULL), 0);
	assert_int_equal(snap_put_str(w, ""), 0);
	assert_int_equal(snap_section_end(w), 0);
	assert_int_equal(snap_section_begin(w, SNAP_SEC_VCPU, 2), 0);
	assert_int_equal(snap_put_u64(w, 42), 0);
	assert_int_equal(snap_section_end(w), 0);
	assert_int_equal(snap_section_begin(w, SNAP_SEC_DEVICE, 1), 0);
	assert_int_equal(snap_section_end(w), 0);
	return w;
}

static uint8_t *sample_image(size_t *len, size_t extra)
{
	struct snap_writer *w = sample_writer();
	uint8_t *img = image_copy(w, len, extra);

	snap_writer_free(w);
	return img;
}

/* An image whose only section holds exactly `payload`. */
static uint8_t *one_section_image(const void *payload, size_t plen, size_t *len)
{
	struct snap_writer *w = snap_writer_new();
	uint8_t *img;

	assert_non_null(w);
	assert_int_equal(snap_section_begin(w, SNAP_SEC_DEVICE, 1), 0);
	assert_int_equal(snap_put(w, payload, plen), 0);
	assert_int_equal(snap_section_end(w), 0);
	img = image_copy(w, len, 0);
	snap_writer_free(w);
	return img;
}

/* Parse must fail with `ret` and exactly `msg`. */
static void expect_refusal(const uint8_t *img, size_t len, int ret, const char *msg)
{
	struct snap_reader *r = (struct snap_reader *)1;
	char err[256] = "";

	assert_int_equal(snap_reader_parse(&r, img, len, err, sizeof(err)), ret);
	assert_null(r);
	assert_string_equal(err, msg);
}

static void write_file(const char *path, const void *data, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, len), (ssize_t)len);
	assert_int_equal(close(fd), 0);
}

static size_t read_file(const char *path, uint8_t *buf, size_t cap)
{
	int fd = open(path, O_RDONLY);
	ssize_t n;

	assert_true(fd >= 0);
	n = read(fd, buf, cap);
	assert_true(n >= 0);
	close(fd);
	return (size_t)n;
}

/* Names in a directory other than . and .. */
static unsigned dir_entries(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	unsigned n = 0;

	assert_non_null(d);
	while ((e = readdir(d)))
		n += strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0;
	closedir(d);
	return n;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static int tmpdir_setup(void **state)
{
	char *dir = strdup("/tmp/ember-state-file-XXXXXX");

	if (!dir || !mkdtemp(dir)) {
		free(dir);
		return -1;
	}
	*state = dir;
	return 0;
}

static int tmpdir_teardown(void **state)
{
	char *dir = *state;

	chmod(dir, 0700);
	nftw(dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
	free(dir);
	return 0;
}

/* ---- CRC ---- */

static void test_state_file_crc_check_value(void **state)
{
	const char *s = "123456789";

	(void)state;
	assert_true(crc64_jones(0, s, 9) == 0xe9c6d914c4b8d9caULL);
	/* Incremental use gives the same answer as one pass. */
	assert_true(crc64_jones(crc64_jones(0, s, 4), s + 4, 5) == 0xe9c6d914c4b8d9caULL);
	assert_true(crc64_jones(0, s, 0) == 0);
	assert_true(crc64_jones(0x1234, s, 0) == 0x1234);
}

/* Bit-at-a-time reference: the definition the table was generated from. */
static uint64_t crc_bitwise(uint64_t crc, const uint8_t *p, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		crc ^= p[i];
		for (int b = 0; b < 8; b++)
			crc = (crc >> 1) ^ ((crc & 1) ? 0x95ac9329ac4bc9b5ULL : 0);
	}
	return crc;
}

static void test_state_file_crc_table_matches_bitwise_definition(void **state)
{
	uint8_t buf[1024];
	uint32_t x = 12345;

	(void)state;
	for (unsigned b = 0; b < 256; b++) {
		uint8_t byte = (uint8_t)b;

		assert_true(crc64_jones(0, &byte, 1) == crc_bitwise(0, &byte, 1));
	}
	for (size_t i = 0; i < sizeof(buf); i++) {
		x = x * 1103515245u + 12345u;
		buf[i] = (uint8_t)(x >> 16);
	}
	assert_true(crc64_jones(0, buf, sizeof(buf)) == crc_bitwise(0, buf, sizeof(buf)));
	assert_true(crc64_jones(7, buf, 100) == crc_bitwise(7, buf, 100));
	/* Eight bytes at a time from 64 on: every length and misalignment around it, and a
	 * long run split where the byte-wise tail and the next call's start meet. */
	for (size_t off = 0; off < 8; off++)
		for (size_t len = 0; len < 200; len++)
			assert_true(crc64_jones(off, buf + off, len) ==
				crc_bitwise(off, buf + off, len));
	assert_true(crc64_jones(crc64_jones(0, buf, 517), buf + 517, sizeof(buf) - 517) ==
		crc_bitwise(0, buf, sizeof(buf)));
}

/* ---- writing and reading back ---- */

static void test_state_file_round_trip_of_several_sections(void **state)
{
	struct snap_reader *r;
	struct snap_cursor c;
	const char *s;
	uint8_t *img;
	uint64_t v64;
	uint32_t v32;
	unsigned major, minor;
	size_t len;
	char err[256] = "";

	(void)state;
	img = sample_image(&len, 0);
	/* CRC-64/Jones has residue 0: the CRC over the image including its trailer. */
	assert_true(crc64_jones(0, img, len) == 0);
	assert_int_equal(snap_reader_parse(&r, img, len, err, sizeof(err)), 0);
	memset(img, 0xee, len); /* the reader works on its own copy */
	free(img);

	snap_reader_version(r, &major, &minor);
	assert_int_equal(major, SNAP_MAJOR);
	assert_int_equal(minor, SNAP_MINOR);
	assert_int_equal(snap_reader_count(r), 3);
	assert_int_equal(snap_reader_count_id(r, SNAP_SEC_VM_INFO), 1);
	assert_int_equal(snap_reader_count_id(r, SNAP_SEC_VCPU), 1);
	assert_int_equal(snap_reader_count_id(r, SNAP_SEC_MEMORY), 0);

	assert_int_equal(snap_reader_find(r, SNAP_SEC_VM_INFO, 0, &c), 0);
	assert_int_equal(c.id, SNAP_SEC_VM_INFO);
	assert_int_equal(c.version, 1);
	assert_int_equal(snap_get_u32(&c, &v32), 0);
	assert_int_equal(v32, 256);
	assert_int_equal(snap_get_u64(&c, &v64), 0);
	assert_true(v64 == 0x0123456789abcdefULL);
	assert_int_equal(snap_get_str(&c, &s, 64), 0);
	assert_string_equal(s, "vmlinux");
	s = "not touched";
	assert_int_equal(snap_get_str(&c, &s, 64), 0);
	assert_null(s);
	assert_int_equal(snap_get_str(&c, &s, 0), 0);
	assert_string_equal(s, "");
	assert_int_equal(c.left, 0);
	assert_false(c.bad);

	assert_int_equal(snap_reader_find(r, SNAP_SEC_VCPU, 0, &c), 0);
	assert_int_equal(c.version, 2);
	assert_int_equal(snap_get_u64(&c, &v64), 0);
	assert_int_equal(v64, 42);

	assert_int_equal(snap_reader_find(r, SNAP_SEC_DEVICE, 0, &c), 0);
	assert_int_equal(c.left, 0);
	assert_false(c.bad);

	assert_int_equal(snap_reader_find(r, SNAP_SEC_VCPU, 1, &c), -ENOENT);
	assert_true(c.bad);
	assert_int_equal(snap_reader_find(r, SNAP_SEC_MEMORY, 0, &c), -ENOENT);
	snap_reader_free(r);
	snap_reader_free(NULL);
}

static void test_state_file_find_returns_the_nth_section_with_an_id(void **state)
{
	struct snap_writer *w = snap_writer_new();
	struct snap_reader *r;
	struct snap_cursor c;
	const uint8_t *data;
	size_t len;
	uint32_t v;

	(void)state;
	assert_non_null(w);
	for (uint32_t i = 0; i < 4; i++) {
		assert_int_equal(snap_section_begin(w, SNAP_SEC_VCPU, 1), 0);
		assert_int_equal(snap_put_u32(w, 100 + i), 0);
		assert_int_equal(snap_section_end(w), 0);
		assert_int_equal(snap_section_begin(w, SNAP_SEC_DEVICE, 1), 0);
		assert_int_equal(snap_section_end(w), 0);
	}
	assert_int_equal(snap_writer_image(w, &data, &len), 0);
	assert_int_equal(snap_reader_parse(&r, data, len, NULL, 0), 0);
	assert_int_equal(snap_reader_count(r), 8);
	assert_int_equal(snap_reader_count_id(r, SNAP_SEC_VCPU), 4);
	for (unsigned i = 0; i < 4; i++) {
		assert_int_equal(snap_reader_find(r, SNAP_SEC_VCPU, i, &c), 0);
		assert_int_equal(snap_get_u32(&c, &v), 0);
		assert_int_equal(v, 100 + i);
	}
	snap_reader_free(r);
	snap_writer_free(w);
}

/* The on-disk layout is a contract: pin it byte for byte. */
static void test_state_file_header_and_section_layout(void **state)
{
	static const uint8_t magic[8] = { 'E', 'M', 'B', 'E', 'R', 'S', 'N', 0 };
	uint8_t *img;
	size_t len;

	(void)state;
	img = sample_image(&len, 0);
	assert_memory_equal(img, magic, 8);
	assert_int_equal(get_le(img + 8, 2), SNAP_MAJOR);
	assert_int_equal(get_le(img + 10, 2), SNAP_MINOR);
	assert_int_equal(get_le(img + 12, 4), 0); /* flags */
	assert_int_equal(get_le(img + 16, 4), 3); /* sections */
	assert_int_equal(get_le(img + 20, 4), 0); /* reserved */
	/* First section: id, version, length = 4 + 8 + (4 + 7 + 1) + 4 + (4 + 0 + 1) = 33. */
	assert_int_equal(get_le(img + 24, 4), SNAP_SEC_VM_INFO);
	assert_int_equal(get_le(img + 28, 4), 1);
	assert_int_equal(get_le(img + 32, 8), 33);
	assert_int_equal(get_le(img + 40, 4), 256);
	assert_int_equal(get_le(img + 52, 4), 7);
	assert_memory_equal(img + 56, "vmlinux", 8);
	assert_true(get_le(img + 64, 4) == 0xffffffffu);
	assert_int_equal(len, 24 + (16 + 33) + (16 + 8) + 16 + 8);
	free(img);
}

static void test_state_file_image_can_be_taken_again_after_more_sections(void **state)
{
	struct snap_writer *w = sample_writer();
	struct snap_reader *r;
	const uint8_t *data;
	size_t len;

	(void)state;
	assert_int_equal(snap_writer_image(w, &data, &len), 0);
	assert_int_equal(snap_section_begin(w, SNAP_SEC_MEMORY, 1), 0);
	assert_int_equal(snap_put_u64(w, 1), 0);
	assert_int_equal(snap_section_end(w), 0);
	assert_int_equal(snap_writer_image(w, &data, &len), 0);
	assert_int_equal(snap_reader_parse(&r, data, len, NULL, 0), 0);
	assert_int_equal(snap_reader_count(r), 4);
	assert_int_equal(snap_reader_count_id(r, SNAP_SEC_MEMORY), 1);
	snap_reader_free(r);
	snap_writer_free(w);
}

static void test_state_file_writer_refuses_misuse(void **state)
{
	struct snap_writer *w = snap_writer_new();
	const uint8_t *data;
	size_t len;

	(void)state;
	assert_non_null(w);
	assert_int_equal(snap_put_u32(w, 1), -EINVAL);
	assert_int_equal(snap_put_str(w, "x"), -EINVAL);
	assert_int_equal(snap_put_str(w, NULL), -EINVAL);
	assert_int_equal(snap_section_end(w), -EINVAL);
	assert_int_equal(snap_section_begin(w, 1, 1), 0);
	assert_int_equal(snap_section_begin(w, 2, 1), -EINVAL);
	assert_int_equal(snap_writer_image(w, &data, &len), -EINVAL);
	assert_int_equal(snap_put(w, NULL, 0), 0);
	assert_int_equal(snap_section_end(w), 0);
	assert_int_equal(snap_writer_image(w, &data, &len), 0);
	snap_writer_free(w);
	snap_writer_free(NULL);
}

static void test_state_file_writer_refuses_an_image_the_reader_would_refuse(void **state)
{
	struct snap_writer *w = snap_writer_new();
	struct snap_reader *r;
	const uint8_t *data;
	size_t len, big = SNAP_MAX_FILE - SNAP_HEADER_SIZE - SNAP_SECTION_HEADER_SIZE - 8;
	uint8_t *blob = calloc(1, big + 1);

	(void)state;
	assert_non_null(w);
	assert_non_null(blob);
	/* One byte too many for SNAP_MAX_FILE is refused and appends nothing... */
	assert_int_equal(snap_section_begin(w, SNAP_SEC_MEMORY, 1), 0);
	assert_int_equal(snap_put(w, blob, big + 1), -EFBIG);
	/* ...exactly SNAP_MAX_FILE is written and read back. */
	assert_int_equal(snap_put(w, blob, big), 0);
	assert_int_equal(snap_put_u32(w, 0), -EFBIG);
	assert_int_equal(snap_section_end(w), 0);
	assert_int_equal(snap_writer_image(w, &data, &len), 0);
	assert_int_equal(len, SNAP_MAX_FILE);
	assert_int_equal(snap_reader_parse(&r, data, len, NULL, 0), 0);
	snap_reader_free(r);
	free(blob);
	snap_writer_free(w);
}

static void test_state_file_writer_stops_at_max_sections(void **state)
{
	struct snap_writer *w = snap_writer_new();
	struct snap_reader *r;
	const uint8_t *data;
	size_t len;

	(void)state;
	assert_non_null(w);
	for (unsigned i = 0; i < SNAP_MAX_SECTIONS; i++) {
		assert_int_equal(snap_section_begin(w, SNAP_SEC_DEVICE, 1), 0);
		assert_int_equal(snap_section_end(w), 0);
	}
	assert_int_equal(snap_section_begin(w, SNAP_SEC_DEVICE, 1), -E2BIG);
	assert_int_equal(snap_writer_image(w, &data, &len), 0);
	assert_int_equal(snap_reader_parse(&r, data, len, NULL, 0), 0);
	assert_int_equal(snap_reader_count(r), SNAP_MAX_SECTIONS);
	snap_reader_free(r);
	snap_writer_free(w);
}

/* ---- refusals, in the order the reader checks ---- */

static void test_state_file_refuses_empty_and_short_images(void **state)
{
	uint8_t *img;
	size_t len;

	(void)state;
	expect_refusal(NULL, 0, -EINVAL, "state file: too short (0 bytes, at least 32 needed)");
	img = sample_image(&len, 0);
	expect_refusal(img, 31, -EINVAL, "state file: too short (31 bytes, at least 32 needed)");
	expect_refusal(img, 7, -EINVAL, "state file: too short (7 bytes, at least 32 needed)");
	/* Truncated anywhere past the header: the CRC no longer matches. */
	expect_refusal(img, len - 1, -EINVAL, "state file: CRC mismatch (file is corrupt)");
	free(img);
}

static void test_state_file_refuses_bad_magic(void **state)
{
	uint8_t *img;
	size_t len;

	(void)state;
	img = sample_image(&len, 0);
	img[0] = 'X';
	fix_crc(img, len);
	expect_refusal(img, len, -EINVAL, "state file: bad magic (not an ember snapshot)");
	free(img);
}

static void test_state_file_refuses_newer_major(void **state)
{
	uint8_t *img;
	size_t len;

	(void)state;
	img = sample_image(&len, 0);
	put_le(img + 8, SNAP_MAJOR + 1, 2);
	fix_crc(img, len);
	expect_refusal(img, len, -ENOTSUP,
		"state file: format version 2.0, this ember reads 1.0 and older minors");
	put_le(img + 8, SNAP_MAJOR - 1, 2);
	fix_crc(img, len);
	expect_refusal(img, len, -ENOTSUP,
		"state file: format version 0.0, this ember reads 1.0 and older minors");
	free(img);
}

static void test_state_file_refuses_newer_minor(void **state)
{
	uint8_t *img;
	size_t len;

	(void)state;
	img = sample_image(&len, 0);
	put_le(img + 10, SNAP_MINOR + 1, 2);
	fix_crc(img, len);
	expect_refusal(img, len, -ENOTSUP,
		"state file: format version 1.1, this ember reads 1.0 and older minors");
	put_le(img + 10, 0xffff, 2);
	fix_crc(img, len);
	expect_refusal(img, len, -ENOTSUP,
		"state file: format version 1.65535, this ember reads 1.0 and older minors");
	free(img);
}

static void test_state_file_accepts_older_and_equal_minors(void **state)
{
	struct snap_reader *r;
	unsigned major, minor;
	uint8_t *img;
	size_t len;

	(void)state;
	img = sample_image(&len, 0);
	for (unsigned m = 0; m <= SNAP_MINOR; m++) {
		put_le(img + 10, m, 2);
		fix_crc(img, len);
		assert_int_equal(snap_reader_parse(&r, img, len, NULL, 0), 0);
		snap_reader_version(r, &major, &minor);
		assert_int_equal(major, SNAP_MAJOR);
		assert_int_equal(minor, m);
		snap_reader_free(r);
	}
	free(img);
}

static void test_state_file_refuses_any_flipped_bit(void **state)
{
	uint8_t *img;
	size_t len;

	(void)state;
	img = sample_image(&len, 0);
	for (size_t i = 0; i < len; i++) {
		for (unsigned b = 0; b < 8; b++) {
			struct snap_reader *r = NULL;
			char err[256] = "";

			img[i] ^= (uint8_t)(1u << b);
			assert_int_not_equal(snap_reader_parse(&r, img, len, err, sizeof(err)), 0);
			assert_null(r);
			if (i < 8)
				assert_string_equal(err,
					"state file: bad magic (not an ember snapshot)");
			else if (i < 12)
				assert_non_null(strstr(err, "format version"));
			else
				assert_string_equal(err,
					"state file: CRC mismatch (file is corrupt)");
			img[i] ^= (uint8_t)(1u << b);
		}
	}
	free(img);
}

static void test_state_file_refuses_too_many_sections(void **state)
{
	uint8_t *img;
	size_t len;

	(void)state;
	img = sample_image(&len, 0);
	put_le(img + 16, SNAP_MAX_SECTIONS + 1, 4);
	fix_crc(img, len);
	expect_refusal(img, len, -EINVAL, "state file: 4097 sections, at most 4096 allowed");
	put_le(img + 16, 0xffffffff, 4);
	fix_crc(img, len);
	expect_refusal(img, len, -EINVAL, "state file: 4294967295 sections, at most 4096 allowed");
	free(img);
}

static void test_state_file_refuses_section_length_past_end(void **state)
{
	uint8_t *img;
	size_t len, vcpu_len = 24 + 16 + 33 + 8; /* the VCPU section's length field */

	(void)state;
	img = sample_image(&len, 0);
	put_le(img + vcpu_len, 25, 8); /* 24 bytes follow: its 8 and the DEVICE header */
	fix_crc(img, len);
	expect_refusal(img, len, -EINVAL, "state file: section 1 (id 4) runs past the end");
	/* Long enough to swallow the next section's header partly. */
	put_le(img + vcpu_len, 9, 8);
	fix_crc(img, len);
	expect_refusal(img, len, -EINVAL, "state file: section 2 runs past the end");
	/* A length that would wrap a size_t must not. */
	put_le(img + vcpu_len, UINT64_MAX, 8);
	fix_crc(img, len);
	expect_refusal(img, len, -EINVAL, "state file: section 1 (id 4) runs past the end");
	put_le(img + vcpu_len, UINT64_MAX - 15, 8);
	fix_crc(img, len);
	expect_refusal(img, len, -EINVAL, "state file: section 1 (id 4) runs past the end");
	free(img);
}

static void test_state_file_refuses_more_sections_counted_than_present(void **state)
{
	uint8_t *img;
	size_t len;

	(void)state;
	img = sample_image(&len, 0);
	put_le(img + 16, 4, 4);
	fix_crc(img, len);
	expect_refusal(img, len, -EINVAL, "state file: section 3 runs past the end");
	free(img);
}

static void test_state_file_refuses_trailing_garbage_before_the_crc(void **state)
{
	uint8_t *img;
	size_t len;

	(void)state;
	/* Three stray bytes between the last section and the CRC. */
	img = sample_image(&len, 3);
	memmove(img + len - 8 + 3, img + len - 8, 8);
	memset(img + len - 8, 0xaa, 3);
	len += 3;
	fix_crc(img, len);
	expect_refusal(img, len, -EINVAL, "state file: 3 unexpected bytes after the last section");
	free(img);

	/* A count lower than the sections present leaves the rest as garbage. */
	img = sample_image(&len, 0);
	put_le(img + 16, 2, 4);
	fix_crc(img, len);
	expect_refusal(img, len, -EINVAL, "state file: 16 unexpected bytes after the last section");
	free(img);
}

static void test_state_file_parse_tolerates_a_null_error_buffer(void **state)
{
	struct snap_reader *r;
	char err[8];

	(void)state;
	assert_int_equal(snap_reader_parse(&r, NULL, 0, NULL, 0), -EINVAL);
	/* A short buffer gets a truncated, terminated message. */
	assert_int_equal(snap_reader_parse(&r, NULL, 0, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "state f");
}

/* ---- cursors ---- */

static void test_state_file_str_without_nul_is_refused(void **state)
{
	static const uint8_t payload[] = { 3, 0, 0, 0, 'a', 'b', 'c', 'd' };
	struct snap_reader *r;
	struct snap_cursor c;
	const char *s = "x";
	uint8_t *img;
	size_t len;

	(void)state;
	img = one_section_image(payload, sizeof(payload), &len);
	assert_int_equal(snap_reader_parse(&r, img, len, NULL, 0), 0);
	assert_int_equal(snap_reader_find(r, SNAP_SEC_DEVICE, 0, &c), 0);
	assert_int_equal(snap_get_str(&c, &s, 64), -EINVAL);
	assert_null(s);
	assert_true(c.bad);
	snap_reader_free(r);
	free(img);

	/* The NUL would be the first byte past the section. */
	img = one_section_image(payload, 7, &len);
	assert_int_equal(snap_reader_parse(&r, img, len, NULL, 0), 0);
	assert_int_equal(snap_reader_find(r, SNAP_SEC_DEVICE, 0, &c), 0);
	assert_int_equal(snap_get_str(&c, &s, 64), -EINVAL);
	assert_true(c.bad);
	snap_reader_free(r);
	free(img);
}

static void test_state_file_str_with_inner_nul_is_refused(void **state)
{
	static const uint8_t payload[] = { 3, 0, 0, 0, 'a', 0, 'c', 0 };
	struct snap_reader *r;
	struct snap_cursor c;
	const char *s;
	uint8_t *img;
	size_t len;

	(void)state;
	img = one_section_image(payload, sizeof(payload), &len);
	assert_int_equal(snap_reader_parse(&r, img, len, NULL, 0), 0);
	assert_int_equal(snap_reader_find(r, SNAP_SEC_DEVICE, 0, &c), 0);
	assert_int_equal(snap_get_str(&c, &s, 64), -EINVAL);
	assert_null(s);
	assert_true(c.bad);
	snap_reader_free(r);
	free(img);
}

static void test_state_file_str_longer_than_max_is_refused(void **state)
{
	struct snap_writer *w = snap_writer_new();
	struct snap_reader *r;
	struct snap_cursor c;
	const uint8_t *data;
	const char *s;
	size_t len;

	(void)state;
	assert_non_null(w);
	assert_int_equal(snap_section_begin(w, SNAP_SEC_DEVICE, 1), 0);
	assert_int_equal(snap_put_str(w, "rootfs"), 0);
	assert_int_equal(snap_section_end(w), 0);
	assert_int_equal(snap_writer_image(w, &data, &len), 0);
	assert_int_equal(snap_reader_parse(&r, data, len, NULL, 0), 0);

	assert_int_equal(snap_reader_find(r, SNAP_SEC_DEVICE, 0, &c), 0);
	assert_int_equal(snap_get_str(&c, &s, 5), -EINVAL);
	assert_null(s);
	assert_true(c.bad);
	assert_int_equal(snap_reader_find(r, SNAP_SEC_DEVICE, 0, &c), 0);
	assert_int_equal(snap_get_str(&c, &s, 6), 0);
	assert_string_equal(s, "rootfs");
	snap_reader_free(r);
	snap_writer_free(w);
}

static void test_state_file_str_length_past_the_section_is_refused(void **state)
{
	static const uint8_t payload[] = { 0xfe, 0xff, 0xff, 0xff, 'a', 0 };
	struct snap_reader *r;
	struct snap_cursor c;
	const char *s;
	uint8_t *img;
	size_t len;

	(void)state;
	img = one_section_image(payload, sizeof(payload), &len);
	assert_int_equal(snap_reader_parse(&r, img, len, NULL, 0), 0);
	assert_int_equal(snap_reader_find(r, SNAP_SEC_DEVICE, 0, &c), 0);
	assert_int_equal(snap_get_str(&c, &s, SIZE_MAX), -EINVAL);
	assert_true(c.bad);
	snap_reader_free(r);
	free(img);
}

static void test_state_file_cursor_past_the_end_stays_bad(void **state)
{
	static const uint8_t payload[] = { 1, 0, 0, 0, 2, 0 };
	struct snap_reader *r;
	struct snap_cursor c;
	const char *s = "x";
	uint8_t *img, b = 0x55;
	uint64_t v64 = 7;
	uint32_t v32;
	size_t len;

	(void)state;
	img = one_section_image(payload, sizeof(payload), &len);
	assert_int_equal(snap_reader_parse(&r, img, len, NULL, 0), 0);
	assert_int_equal(snap_reader_find(r, SNAP_SEC_DEVICE, 0, &c), 0);
	assert_int_equal(snap_get_u32(&c, &v32), 0);
	assert_int_equal(v32, 1);
	assert_int_equal(c.left, 2);
	/* Two bytes left: a u32 does not fit, and the failed read yields 0. */
	v32 = 99;
	assert_int_equal(snap_get_u32(&c, &v32), -EINVAL);
	assert_int_equal(v32, 0);
	assert_true(c.bad);
	/* Sticky: even reads that would fit now fail. */
	assert_int_equal(snap_get(&c, &b, 1), -EINVAL);
	assert_int_equal(b, 0);
	assert_int_equal(snap_get(&c, &b, 0), -EINVAL);
	assert_int_equal(snap_get_u64(&c, &v64), -EINVAL);
	assert_int_equal(v64, 0);
	assert_int_equal(snap_get_str(&c, &s, 64), -EINVAL);
	assert_null(s);
	assert_true(c.bad);
	snap_reader_free(r);
	free(img);
}

/* ---- files ---- */

static void test_state_file_write_creates_a_synced_private_file(void **state)
{
	const char *dir = *state;
	struct snap_writer *w = sample_writer();
	struct snap_reader *r;
	struct snap_cursor c;
	const uint8_t *data;
	char path[512], err[512] = "";
	uint8_t buf[4096];
	size_t len;
	struct stat st;

	snprintf(path, sizeof(path), "%s/vm.state.tmp.1", dir);
	assert_int_equal(snap_writer_write(w, path, err, sizeof(err)), 0);
	assert_int_equal(snap_writer_image(w, &data, &len), 0);
	assert_int_equal(read_file(path, buf, sizeof(buf)), len);
	assert_memory_equal(buf, data, len);
	assert_int_equal(dir_entries(dir), 1); /* exactly the name given: no suffix of its own */
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);

	assert_int_equal(snap_reader_open(&r, path, err, sizeof(err)), 0);
	assert_int_equal(snap_reader_count(r), 3);
	assert_int_equal(snap_reader_find(r, SNAP_SEC_VCPU, 0, &c), 0);
	snap_reader_free(r);
	snap_writer_free(w);
}

static void test_state_file_write_to_a_relative_path(void **state)
{
	const char *dir = *state;
	struct snap_writer *w = sample_writer();
	struct snap_reader *r;
	char cwd[512], err[512] = "";

	assert_non_null(getcwd(cwd, sizeof(cwd)));
	assert_int_equal(chdir(dir), 0);
	assert_int_equal(snap_writer_write(w, "rel.state", err, sizeof(err)), 0);
	assert_int_equal(snap_reader_open(&r, "rel.state", err, sizeof(err)), 0);
	snap_reader_free(r);
	assert_int_equal(dir_entries("."), 1);
	assert_int_equal(chdir(cwd), 0);
	snap_writer_free(w);
}

static void test_state_file_write_to_missing_directory_fails(void **state)
{
	const char *dir = *state;
	struct snap_writer *w = sample_writer();
	char path[512], want[1024], err[1024] = "";

	snprintf(path, sizeof(path), "%s/nope/vm.state", dir);
	assert_int_equal(snap_writer_write(w, path, err, sizeof(err)), -ENOENT);
	snprintf(want, sizeof(want), "state file %s: cannot create: No such file or directory",
		path);
	assert_string_equal(err, want);
	assert_int_equal(dir_entries(dir), 0);
	snap_writer_free(w);
}

/* Write must fail with EACCES and say so; 0 if it did. */
static int write_refused(struct snap_writer *w, const char *path)
{
	char err[1024] = "";

	if (snap_writer_write(w, path, err, sizeof(err)) != -EACCES)
		return 1;
	return strstr(err, path) && strstr(err, "Permission denied") ? 0 : 1;
}

static void test_state_file_write_to_read_only_directory_leaves_others_intact(void **state)
{
	const char *dir = *state;
	struct snap_writer *w = sample_writer();
	char path[512], tmp[600];
	uint8_t buf[64];
	int status;
	pid_t pid;

	snprintf(path, sizeof(path), "%s/vm.state", dir);
	snprintf(tmp, sizeof(tmp), "%s.tmp.1", path);
	write_file(path, "good snapshot", 13);
	assert_int_equal(chmod(dir, 0555), 0);
	if (geteuid() != 0) {
		assert_int_equal(write_refused(w, tmp), 0);
	} else {
		/* root ignores the mode bits: try as nobody, in a child. */
		pid = fork();
		assert_true(pid >= 0);
		if (pid == 0) {
			if (setgid(65534) != 0 || setuid(65534) != 0)
				_exit(2);
			_exit(write_refused(w, tmp));
		}
		assert_int_equal(waitpid(pid, &status, 0), pid);
		assert_true(WIFEXITED(status));
		if (WEXITSTATUS(status) == 2) {
			snap_writer_free(w);
			skip();
		}
		assert_int_equal(WEXITSTATUS(status), 0);
	}
	assert_int_equal(chmod(dir, 0700), 0);
	assert_int_equal(read_file(path, buf, sizeof(buf)), 13);
	assert_memory_equal(buf, "good snapshot", 13);
	assert_int_equal(dir_entries(dir), 1);
	snap_writer_free(w);
}

/* A write that fails half-way (file size limit) removes its file. */
static void test_state_file_write_failed_half_way_removes_its_file(void **state)
{
	const char *dir = *state;
	struct snap_writer *w = sample_writer();
	struct sigaction ign = { .sa_handler = SIG_IGN }, old_sa;
	struct rlimit old_rl, rl;
	char path[512], err[1024] = "";
	int ret;

	snprintf(path, sizeof(path), "%s/vm.state.tmp.1", dir);
	assert_int_equal(getrlimit(RLIMIT_FSIZE, &old_rl), 0);
	rl = old_rl;
	rl.rlim_cur = 16;
	assert_int_equal(sigaction(SIGXFSZ, &ign, &old_sa), 0);
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &rl), 0);
	ret = snap_writer_write(w, path, err, sizeof(err));
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &old_rl), 0);
	assert_int_equal(sigaction(SIGXFSZ, &old_sa, NULL), 0);

	assert_int_equal(ret, -EFBIG);
	assert_non_null(strstr(err, "cannot write"));
	assert_non_null(strstr(err, path));
	assert_non_null(strstr(err, "File too large"));
	assert_int_equal(dir_entries(dir), 0);
	snap_writer_free(w);
}

/* A file or symlink already at the name is refused, named, and left alone: the writer
 * never writes through it nor removes it. */
static void test_state_file_write_refuses_an_existing_name(void **state)
{
	const char *dir = *state;
	struct snap_writer *w = sample_writer();
	char path[512], target[512], err[1024] = "";
	uint8_t buf[64];

	snprintf(path, sizeof(path), "%s/vm.state.tmp.1", dir);
	snprintf(target, sizeof(target), "%s/target", dir);
	write_file(target, "precious", 8);
	assert_int_equal(symlink(target, path), 0);
	assert_int_equal(snap_writer_write(w, path, err, sizeof(err)), -EEXIST);
	assert_non_null(strstr(err, path));
	assert_non_null(strstr(err, "exists already"));
	assert_int_equal(read_file(target, buf, sizeof(buf)), 8);
	assert_memory_equal(buf, "precious", 8);
	assert_int_equal(dir_entries(dir), 2); /* the symlink and its target, nothing else */
	snap_writer_free(w);
}

/* snap_publish puts memory then state in place, leaving no temporary behind. */
static void test_state_file_publish_renames_memory_then_state(void **state)
{
	const char *dir = *state;
	char mem[512], mem_tmp[600], st[512], st_tmp[600], err[1024] = "";
	uint8_t buf[64];

	snprintf(mem, sizeof(mem), "%s/vm.mem", dir);
	snprintf(st, sizeof(st), "%s/vm.state", dir);
	snprintf(mem_tmp, sizeof(mem_tmp), "%s.tmp.1", mem);
	snprintf(st_tmp, sizeof(st_tmp), "%s.tmp.1", st);
	write_file(mem, "old mem", 7);
	write_file(st, "old state", 9);
	write_file(mem_tmp, "new mem", 7);
	write_file(st_tmp, "new state", 9);
	assert_int_equal(snap_publish(mem_tmp, mem, st_tmp, st, err, sizeof(err)), 0);
	assert_int_equal(read_file(mem, buf, sizeof(buf)), 7);
	assert_memory_equal(buf, "new mem", 7);
	assert_int_equal(read_file(st, buf, sizeof(buf)), 9);
	assert_memory_equal(buf, "new state", 9);
	assert_int_equal(dir_entries(dir), 2);
}

/* The state rename fails (its name is a non-empty directory): the memory file is the new
 * one already, the message says so, and the state temporary is the caller's. */
static void test_state_file_publish_failed_state_rename_says_what_is_in_place(void **state)
{
	const char *dir = *state;
	char mem[512], mem_tmp[600], st[512], st_tmp[600], inner[700], err[2048] = "";
	int ret;

	snprintf(mem, sizeof(mem), "%s/vm.mem", dir);
	snprintf(st, sizeof(st), "%s/vm.state", dir);
	snprintf(mem_tmp, sizeof(mem_tmp), "%s.tmp.1", mem);
	snprintf(st_tmp, sizeof(st_tmp), "%s.tmp.1", st);
	assert_int_equal(mkdir(st, 0700), 0);
	snprintf(inner, sizeof(inner), "%s/keep", st);
	write_file(inner, "x", 1);
	write_file(mem_tmp, "new mem", 7);
	write_file(st_tmp, "new state", 9);
	ret = snap_publish(mem_tmp, mem, st_tmp, st, err, sizeof(err));
	assert_true(ret == -EISDIR || ret == -ENOTEMPTY || ret == -EEXIST);
	assert_non_null(strstr(err, "cannot rename"));
	assert_non_null(strstr(err, "is already the new one"));
	assert_int_equal(access(mem, F_OK), 0);
	assert_int_equal(access(st_tmp, F_OK), 0);
	assert_int_equal(dir_entries(dir), 3); /* vm.mem, the state directory, its temporary */
}

static void test_state_file_write_refuses_open_section_and_bad_names(void **state)
{
	const char *dir = *state;
	struct snap_writer *w = snap_writer_new();
	char path[512], err[1024] = "";

	assert_non_null(w);
	snprintf(path, sizeof(path), "%s/", dir);
	assert_int_equal(snap_writer_write(w, path, err, sizeof(err)), -EISDIR);
	assert_non_null(strstr(err, "not a file name"));
	snprintf(path, sizeof(path), "%s/vm.state", dir);
	assert_int_equal(snap_section_begin(w, 1, 1), 0);
	assert_int_equal(snap_writer_write(w, path, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "a section is still open"));
	assert_int_equal(dir_entries(dir), 0);
	snap_writer_free(w);
}

static void test_state_file_open_names_the_path_in_errors(void **state)
{
	const char *dir = *state;
	struct snap_reader *r = (struct snap_reader *)1;
	char path[512], want[1024], err[1024] = "";
	uint8_t *img;
	size_t len;

	snprintf(path, sizeof(path), "%s/missing.state", dir);
	assert_int_equal(snap_reader_open(&r, path, err, sizeof(err)), -ENOENT);
	assert_null(r);
	snprintf(want, sizeof(want), "state file %s: cannot open: No such file or directory", path);
	assert_string_equal(err, want);

	snprintf(path, sizeof(path), "%s/empty.state", dir);
	write_file(path, "", 0);
	assert_int_equal(snap_reader_open(&r, path, err, sizeof(err)), -EINVAL);
	snprintf(want, sizeof(want), "state file %s: too short (0 bytes, at least 32 needed)",
		path);
	assert_string_equal(err, want);

	img = sample_image(&len, 0);
	img[len - 1] ^= 1;
	snprintf(path, sizeof(path), "%s/corrupt.state", dir);
	write_file(path, img, len);
	assert_int_equal(snap_reader_open(&r, path, err, sizeof(err)), -EINVAL);
	snprintf(want, sizeof(want), "state file %s: CRC mismatch (file is corrupt)", path);
	assert_string_equal(err, want);
	free(img);

	assert_int_equal(snap_reader_open(&r, dir, err, sizeof(err)), -EINVAL);
	snprintf(want, sizeof(want), "state file %s: not a regular file", dir);
	assert_string_equal(err, want);
}

/* A sparse file one byte over the cap is refused from its size, without reading it. */
static void test_state_file_open_refuses_files_over_the_cap(void **state)
{
	const char *dir = *state;
	struct snap_reader *r;
	char path[512], want[1024], err[1024] = "";
	int fd;

	snprintf(path, sizeof(path), "%s/huge.state", dir);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, (off_t)SNAP_MAX_FILE + 1), 0);
	close(fd);
	assert_int_equal(snap_reader_open(&r, path, err, sizeof(err)), -EFBIG);
	snprintf(want, sizeof(want), "state file %s: too large (67108865 bytes, at most 67108864)",
		path);
	assert_string_equal(err, want);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_state_file_crc_check_value),
		cmocka_unit_test(test_state_file_crc_table_matches_bitwise_definition),
		cmocka_unit_test(test_state_file_round_trip_of_several_sections),
		cmocka_unit_test(test_state_file_find_returns_the_nth_section_with_an_id),
		cmocka_unit_test(test_state_file_header_and_section_layout),
		cmocka_unit_test(test_state_file_image_can_be_taken_again_after_more_sections),
		cmocka_unit_test(test_state_file_writer_refuses_misuse),
		cmocka_unit_test(test_state_file_writer_refuses_an_image_the_reader_would_refuse),
		cmocka_unit_test(test_state_file_writer_stops_at_max_sections),
		cmocka_unit_test(test_state_file_refuses_empty_and_short_images),
		cmocka_unit_test(test_state_file_refuses_bad_magic),
		cmocka_unit_test(test_state_file_refuses_newer_major),
		cmocka_unit_test(test_state_file_refuses_newer_minor),
		cmocka_unit_test(test_state_file_accepts_older_and_equal_minors),
		cmocka_unit_test(test_state_file_refuses_any_flipped_bit),
		cmocka_unit_test(test_state_file_refuses_too_many_sections),
		cmocka_unit_test(test_state_file_refuses_section_length_past_end),
		cmocka_unit_test(test_state_file_refuses_more_sections_counted_than_present),
		cmocka_unit_test(test_state_file_refuses_trailing_garbage_before_the_crc),
		cmocka_unit_test(test_state_file_parse_tolerates_a_null_error_buffer),
		cmocka_unit_test(test_state_file_str_without_nul_is_refused),
		cmocka_unit_test(test_state_file_str_with_inner_nul_is_refused),
		cmocka_unit_test(test_state_file_str_longer_than_max_is_refused),
		cmocka_unit_test(test_state_file_str_length_past_the_section_is_refused),
		cmocka_unit_test(test_state_file_cursor_past_the_end_stays_bad),
		cmocka_unit_test_setup_teardown(test_state_file_write_creates_a_synced_private_file,
			tmpdir_setup, tmpdir_teardown),
		cmocka_unit_test_setup_teardown(test_state_file_write_to_a_relative_path,
			tmpdir_setup, tmpdir_teardown),
		cmocka_unit_test_setup_teardown(test_state_file_write_to_missing_directory_fails,
			tmpdir_setup, tmpdir_teardown),
		cmocka_unit_test_setup_teardown(
			test_state_file_write_to_read_only_directory_leaves_others_intact,
			tmpdir_setup, tmpdir_teardown),
		cmocka_unit_test_setup_teardown(test_state_file_write_failed_half_way_removes_its_file,
			tmpdir_setup, tmpdir_teardown),
		cmocka_unit_test_setup_teardown(test_state_file_write_refuses_an_existing_name,
			tmpdir_setup, tmpdir_teardown),
		cmocka_unit_test_setup_teardown(test_state_file_publish_renames_memory_then_state,
			tmpdir_setup, tmpdir_teardown),
		cmocka_unit_test_setup_teardown(
			test_state_file_publish_failed_state_rename_says_what_is_in_place,
			tmpdir_setup, tmpdir_teardown),
		cmocka_unit_test_setup_teardown(test_state_file_write_refuses_open_section_and_bad_names,
			tmpdir_setup, tmpdir_teardown),
		cmocka_unit_test_setup_teardown(test_state_file_open_names_the_path_in_errors,
			tmpdir_setup, tmpdir_teardown),
		cmocka_unit_test_setup_teardown(test_state_file_open_refuses_files_over_the_cap,
			tmpdir_setup, tmpdir_teardown),
	};
	return cmocka_run_group_tests_name("state_file", tests, NULL, NULL);
}
