/* libFuzzer harness for the state file reader: parse arbitrary bytes, then read every section.
 *
 * Build and run (from the repository root), or `make fuzz`:
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -std=c11 -D_GNU_SOURCE -Iinclude \
 *     tests/fuzz/fuzz_state_file.c src/snapshot/state_file.c src/snapshot/state_file_read.c \
 *     src/snapshot/snapshot_id.c src/util/crc64.c -o fuzz_state_file
 *   ./fuzz_state_file -max_total_time=60 tests/fuzz/corpus/state_file
 * Regenerate the seeds (a plain program, no libFuzzer):
 *   cc -DSTATE_FILE_SEED_MAIN -std=c11 -D_GNU_SOURCE -Iinclude tests/fuzz/fuzz_state_file.c \
 *     src/snapshot/state_file.c src/snapshot/state_file_read.c src/snapshot/snapshot_id.c \
 *     src/util/crc64.c -o seeds && \
 *     ./seeds tests/fuzz/corpus/state_file
 *
 * Each input is parsed twice: as it is (so the size, magic, version and CRC checks are
 * exercised), and with its trailer replaced by the right CRC (so mutations get past the
 * CRC and reach the section walk and the cursors). An accepted image must then behave:
 * every section is found where the file says, every cursor read stays inside it, a
 * failed read stays failed, and an image in canonical form is rebuilt byte for byte by
 * the writer. The snapshot id (snapshot_id.c) is read from every accepted image: found
 * exactly when there is one id section, of version 1 and 16 bytes; and the raw input is
 * also classified as a memory file's id attribute (mem_id_parse), which must print back
 * as itself when it is one of the forms ember writes. Any violation traps. */
#include "ember/snapshot_file.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ember/byteorder.h"
#include "ember/crc64.h"
#include "ember/snapshot_id.h"

#include "fuzz.h"

/* Read with one access pattern until the cursor goes bad, checking each step. */
static void drain(struct snap_cursor c, unsigned pattern)
{
	const uint8_t *start = c.p, *end = c.p + c.left;

	for (unsigned step = 0; !c.bad; step++) {
		size_t before = c.left;
		const char *s = NULL;
		uint8_t raw[3];
		uint64_t v64;
		uint32_t v32;
		unsigned op = pattern < 4 ? pattern : step % 4;
		int ret;

		switch (op) {
		case 0:
			ret = snap_get_u32(&c, &v32);
			CHECK(ret != 0 || before - c.left == 4);
			break;
		case 1:
			ret = snap_get_u64(&c, &v64);
			CHECK(ret != 0 || before - c.left == 8);
			break;
		case 2:
			ret = snap_get_str(&c, &s, pattern == 2 ? 16 : SIZE_MAX);
			if (ret == 0 && s) {
				size_t n = strlen(s);

				CHECK((const uint8_t *)s >= start && (const uint8_t *)s + n < end);
				CHECK(before - c.left == 4 + n + 1);
				CHECK(pattern != 2 || n <= 16);
			}
			CHECK(ret != 0 || s || before - c.left == 4);
			break;
		default:
			ret = snap_get(&c, raw, sizeof(raw));
			CHECK(ret != 0 || before - c.left == 3);
			break;
		}
		CHECK((ret != 0) == c.bad);
		CHECK(c.left <= before && c.p + c.left == end);
	}
	/* Sticky: nothing succeeds once bad, and failed reads give zeroes / NULL. */
	{
		uint32_t v32 = 1;
		const char *s = "x";

		CHECK(snap_get_u32(&c, &v32) != 0 && v32 == 0);
		CHECK(snap_get_str(&c, &s, SIZE_MAX) != 0 && s == NULL);
		CHECK(c.bad);
	}
}

/* `img` was accepted: walk its section headers ourselves and compare with the reader. */
static void check_accepted(const struct snap_reader *r, const uint8_t *img, size_t len)
{
	unsigned count = get_le32(img + 16), major, minor;
	struct snap_writer *w;
	size_t pos = SNAP_HEADER_SIZE;
	bool canonical;

	snap_reader_version(r, &major, &minor);
	CHECK(major == SNAP_MAJOR && minor <= SNAP_MINOR);
	CHECK(snap_reader_count(r) == count && count <= SNAP_MAX_SECTIONS);
	canonical = minor == SNAP_MINOR && get_le32(img + 12) == 0 && get_le32(img + 20) == 0;
	w = canonical ? snap_writer_new() : NULL;

	for (unsigned i = 0; i < count; i++) {
		uint32_t id = get_le32(img + pos);
		uint32_t version = get_le32(img + pos + 4);
		uint64_t slen = get_le64(img + pos + 8);
		struct snap_cursor c;
		unsigned n = 0;

		for (size_t q = SNAP_HEADER_SIZE, j = 0; j < i; j++) {
			n += get_le32(img + q) == id;
			q += SNAP_SECTION_HEADER_SIZE + get_le64(img + q + 8);
		}
		CHECK(pos + SNAP_SECTION_HEADER_SIZE + slen <= len - 8);
		CHECK(snap_reader_find(r, id, n, &c) == 0);
		CHECK(!c.bad && c.id == id && c.version == version && c.left == slen);
		CHECK(memcmp(c.p, img + pos + SNAP_SECTION_HEADER_SIZE, c.left) == 0);
		CHECK(snap_reader_count_id(r, id) > n);
		for (unsigned pattern = 0; pattern < 5; pattern++)
			drain(c, pattern);
		if (w) {
			CHECK(snap_section_begin(w, id, version) == 0);
			CHECK(snap_put(w, c.p, c.left) == 0);
			CHECK(snap_section_end(w) == 0);
		}
		pos += SNAP_SECTION_HEADER_SIZE + slen;
	}
	CHECK(pos == len - 8);
	if (w) {
		const uint8_t *again;
		size_t again_len;

		CHECK(snap_writer_image(w, &again, &again_len) == 0);
		CHECK(again_len == len && memcmp(again, img, len) == 0);
		snap_writer_free(w);
	}
}

/* The id section of an accepted image, as restore reads it. */
static void check_snap_id(const struct snap_reader *r)
{
	unsigned count = snap_reader_count_id(r, SNAP_SEC_SNAPSHOT_ID);
	struct snap_cursor c = { 0 };
	struct snap_id id, parent;
	bool found = true, has_parent = true, good;
	char err[256];
	int ret;

	/* Version 1: the id; version 2: the id and a diff's parent. */
	good = count == 1 && snap_reader_find(r, SNAP_SEC_SNAPSHOT_ID, 0, &c) == 0 &&
		((c.version == 1 && c.left == SNAP_ID_BYTES) ||
			(c.version == 2 && c.left == 2 * SNAP_ID_BYTES));
	err[0] = '\0';
	ret = snap_id_load(r, &id, &found, &parent, &has_parent, err, sizeof(err));
	if (count == 0)
		CHECK(ret == 0 && !found && !has_parent);
	else if (good)
		CHECK(ret == 0 && found && memcmp(id.b, c.p, SNAP_ID_BYTES) == 0 &&
			has_parent == (c.version == 2) &&
			(!has_parent || memcmp(parent.b, c.p + SNAP_ID_BYTES, SNAP_ID_BYTES) == 0));
	else
		CHECK(ret == -EINVAL && !found && strncmp(err, "state file: ", 12) == 0);
}

/* A memory file's id attribute: one of the forms written, or BAD. */
static void check_mem_id(const uint8_t *data, size_t size)
{
	char again[SNAP_ID_VALUE_MAX];
	struct mem_id m;
	int n;

	mem_id_parse((const char *)data, size, &m);
	n = mem_id_format(&m, again, sizeof(again));
	if (m.kind == MEM_ID_BAD) {
		CHECK(n == -EINVAL);
		return;
	}
	CHECK(m.kind == MEM_ID_FULL || m.kind == MEM_ID_DIFF || m.kind == MEM_ID_INCOMPLETE);
	CHECK(n > 0 && (size_t)n == size && memcmp(again, data, size) == 0);
}

static void parse_and_walk(const uint8_t *img, size_t len)
{
	struct snap_reader *r;
	char err[256];

	if (snap_reader_parse(&r, img, len, err, sizeof(err)) != 0) {
		CHECK(r == NULL && strncmp(err, "state file: ", 12) == 0);
		return;
	}
	check_accepted(r, img, len);
	check_snap_id(r);
	snap_reader_free(r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t *fixed;

	check_mem_id(data, size);
	parse_and_walk(data, size);
	if (size < SNAP_HEADER_SIZE + 8 || size > SNAP_MAX_FILE)
		return 0;
	fixed = malloc(size);
	if (!fixed)
		return 0;
	memcpy(fixed, data, size);
	{
		uint64_t crc = crc64_jones(0, fixed, size - 8);

		for (unsigned i = 0; i < 8; i++)
			fixed[size - 8 + i] = (uint8_t)(crc >> (8 * i));
	}
	parse_and_walk(fixed, size);
	free(fixed);
	return 0;
}

#ifdef STATE_FILE_SEED_MAIN
/* A few small valid images, one per file, as a starting corpus. */
static int seed(const char *dir, const char *name, struct snap_writer *w)
{
	const uint8_t *data;
	char path[4096];
	size_t len;
	FILE *f;
	int ret = -1;

	if (!w || snap_writer_image(w, &data, &len) != 0)
		goto out_free_writer;
	LLVMFuzzerTestOneInput(data, len);
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "wb");
	if (!f) {
		perror(path);
		goto out_free_writer;
	}
	if (fwrite(data, 1, len, f) == len)
		ret = 0;
	if (fclose(f) != 0 || ret != 0) {
		perror(path);
		ret = -1;
	}
out_free_writer:
	snap_writer_free(w);
	return ret;
}

#define OK(x) \
	do { \
		if ((x) != 0) \
			return 1; \
	} while (0)

int main(int argc, char **argv)
{
	struct snap_writer *w;

	if (argc != 2) {
		fprintf(stderr, "usage: %s CORPUS_DIR\n", argv[0]);
		return 2;
	}
	/* No sections at all. */
	OK(seed(argv[1], "empty", snap_writer_new()));

	/* The shape of a real state file, in miniature. */
	w = snap_writer_new();
	OK(!w);
	OK(snap_section_begin(w, SNAP_SEC_VM_INFO, 1));
	OK(snap_put_u32(w, 128));
	OK(snap_put_u32(w, 2));
	OK(snap_put_str(w, "/var/lib/ember/vmlinux"));
	OK(snap_put_str(w, NULL));
	OK(snap_put_str(w, ""));
	OK(snap_section_end(w));
	OK(snap_section_begin(w, SNAP_SEC_MEMORY, 1));
	OK(snap_put_u32(w, 1));
	OK(snap_put_u64(w, 0));
	OK(snap_put_u64(w, 128ULL << 20));
	OK(snap_put_u64(w, 0));
	OK(snap_section_end(w));
	for (uint32_t cpu = 0; cpu < 2; cpu++) {
		OK(snap_section_begin(w, SNAP_SEC_VCPU, 1));
		OK(snap_put_u32(w, cpu));
		OK(snap_put_u64(w, 0xfffffff0ULL + cpu));
		OK(snap_section_end(w));
	}
	OK(snap_section_begin(w, SNAP_SEC_DEVICE, 1));
	OK(snap_put_str(w, "serial"));
	OK(snap_put(w, "\x03\x00\x60\x00", 4));
	OK(snap_section_end(w));
	OK(snap_section_begin(w, SNAP_SEC_DEVICE, 1));
	OK(snap_section_end(w));
	OK(seed(argv[1], "machine", w));

	/* Strings only: NULL, empty, short, and a raw all-ones word like a NULL marker. */
	w = snap_writer_new();
	OK(!w);
	OK(snap_section_begin(w, SNAP_SEC_DEVICE, 2));
	OK(snap_put_str(w, "rootfs"));
	OK(snap_put_str(w, NULL));
	OK(snap_put_str(w, "tap0"));
	OK(snap_put_u32(w, 0xffffffffu));
	OK(snap_put_str(w, ""));
	OK(snap_section_end(w));
	OK(seed(argv[1], "strings", w));

	/* Unknown ids and versions. */
	w = snap_writer_new();
	OK(!w);
	for (uint32_t id = 6; id < 10; id++) {
		OK(snap_section_begin(w, id, id * 3));
		OK(snap_put_u64(w, id));
		OK(snap_section_end(w));
	}
	OK(seed(argv[1], "unknown_ids", w));

	/* A snapshot id, as every snapshot since ids has one. */
	w = snap_writer_new();
	OK(!w);
	OK(snap_id_save(w,
		&(struct snap_id){
			.b = { 0x5e, 0xed, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14 } },
		NULL));
	OK(seed(argv[1], "snapshot_id", w));

	/* A diff's: its id and its parent's. */
	w = snap_writer_new();
	OK(!w);
	OK(snap_id_save(w, &(struct snap_id){ .b = { 0xd1, 0xff } },
		&(struct snap_id){ .b = { 0xba, 0x5e } }));
	OK(seed(argv[1], "snapshot_id_parent", w));
	return 0;
}
#endif
