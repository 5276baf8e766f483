/* The snapshot state file container: magic, format version, typed sections, CRC64.
 *
 * Layout (all integers little-endian):
 *   header  : magic u64 (SNAP_MAGIC), major u16, minor u16, flags u32,
 *             section count u32, reserved u32                              (24 bytes)
 *   section : id u32, version u32, length u64, then `length` payload bytes
 *   trailer : crc64 u64 over every byte before it (CRC-64/Jones, as Firecracker)
 * The header sits outside any payload encoding, so every future ember can read the
 * version of any state file. A reader accepts major == SNAP_MAJOR and minor <= SNAP_MINOR.
 * Pure logic plus file I/O; no KVM. */
#ifndef EMBER_SNAPSHOT_FILE_H
#define EMBER_SNAPSHOT_FILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SNAP_MAGIC 0x4e535245424d45ULL /* "EMBERSN" */
#define SNAP_MAJOR 1
#define SNAP_MINOR 0
#define SNAP_HEADER_SIZE 24
#define SNAP_SECTION_HEADER_SIZE 16
#define SNAP_MAX_FILE (64u << 20) /* a state file larger than this is refused */
#define SNAP_MAX_SECTIONS 4096
#define SNAP_PATH_MAX 4096 /* the longest path a state file stores or names */

/* Section ids. */
enum snap_section_id {
	SNAP_SEC_VM_INFO = 1,       /* memory size, vCPU count, boot source, backing */
	SNAP_SEC_MEMORY = 2,        /* guest memory regions: gpa, size, file offset */
	SNAP_SEC_VM_STATE = 3,      /* PIC master/slave, IOAPIC, PIT, kvmclock */
	SNAP_SEC_VCPU = 4,          /* one per vCPU */
	SNAP_SEC_DEVICE = 5,        /* one per device */
	SNAP_SEC_DEVICE_CONFIG = 6, /* drives, nets, vsock, entropy, balloon as configured */
	SNAP_SEC_SNAPSHOT_ID = 7,   /* the id binding it to its memory file (snapshot_id.h) */
	SNAP_SEC_CPU_MODEL = 8,     /* smt, static and custom CPU template (snapshot_cpu.c) */
};

/* ---- writing: sections accumulate in memory, then one write to a new file ---- */
struct snap_writer;

struct snap_writer *snap_writer_new(void);
void snap_writer_free(struct snap_writer *w);
/* Open a section; sections do not nest (-EINVAL), at most SNAP_MAX_SECTIONS (-E2BIG). */
__attribute__((warn_unused_result)) int snap_section_begin(struct snap_writer *w, uint32_t id,
	uint32_t version);
/* Append payload bytes to the open section. -ENOMEM, -EINVAL if none is open, or -EFBIG
 * if the image would outgrow SNAP_MAX_FILE (a writer never makes a file a reader refuses).
 * A failed put appends nothing. */
__attribute__((warn_unused_result)) int snap_put(struct snap_writer *w, const void *data,
	size_t len);
__attribute__((warn_unused_result)) int snap_put_u32(struct snap_writer *w, uint32_t v);
__attribute__((warn_unused_result)) int snap_put_u64(struct snap_writer *w, uint64_t v);
/* A string: u32 length (without the NUL), the bytes, then a NUL byte. NULL is written
 * as length 0xffffffff and nothing else. */
__attribute__((warn_unused_result)) int snap_put_str(struct snap_writer *w, const char *s);
__attribute__((warn_unused_result)) int snap_section_end(struct snap_writer *w);
/* The finished file image (header, sections, CRC) in memory, for tests and fuzzing.
 * Valid until the next writer call. -EINVAL while a section is open. */
__attribute__((warn_unused_result)) int snap_writer_image(struct snap_writer *w,
	const uint8_t **data, size_t *len);
/* Write the image to a new file at `path` (mode 0600) and fsync it. A name that exists
 * already (file or symlink) is refused and left alone; on any other failure the file is
 * removed. Putting it over a snapshot's final name is snap_publish's (snapshot_publish.h),
 * the only place that renames. */
__attribute__((warn_unused_result)) int snap_writer_write(struct snap_writer *w, const char *path,
	char *err, size_t errlen);

/* ---- reading: everything is checked before any section is handed out ---- */
struct snap_reader;

/* Parse an in-memory image (copied). Checks, in order: size (>= header + CRC, <=
 * SNAP_MAX_FILE), magic, version, CRC, section count, then every section header against
 * the length, and that the last section ends exactly at the CRC.
 * Messages name the problem: "state file: bad magic (not an ember snapshot)",
 * "state file: format version 2.0, this ember reads 1.0 and older minors",
 * "state file: CRC mismatch (file is corrupt)", "state file: section 3 (id 4) runs past
 * the end" (sections counted from 0 in file order). -EINVAL for a malformed image,
 * -ENOTSUP for another version, -EFBIG above SNAP_MAX_FILE, -ENOMEM. */
__attribute__((warn_unused_result)) int snap_reader_parse(struct snap_reader **out,
	const void *data, size_t len, char *err, size_t errlen);
/* Read and parse a file (err names the path; a file larger than SNAP_MAX_FILE is refused
 * before it is read). Also the -errno of open/read. */
__attribute__((warn_unused_result)) int snap_reader_open(struct snap_reader **out, const char *path,
	char *err, size_t errlen);
void snap_reader_free(struct snap_reader *r);
void snap_reader_version(const struct snap_reader *r, unsigned *major, unsigned *minor);
unsigned snap_reader_count(const struct snap_reader *r);

/* A bounds-checked view of one section's payload. Once a read fails (-EINVAL), `bad` stays
 * set and every later read fails too, so callers may check once at the end; a failed
 * read zeroes its output. */
struct snap_cursor {
	const uint8_t *p;
	size_t left;
	uint32_t id, version;
	bool bad;
};
/* The n-th section (in file order) with this id: 0, or -ENOENT and a bad, empty cursor. */
__attribute__((warn_unused_result)) int snap_reader_find(const struct snap_reader *r, uint32_t id,
	unsigned n, struct snap_cursor *c);
/* How many sections carry this id. */
unsigned snap_reader_count_id(const struct snap_reader *r, uint32_t id);

__attribute__((warn_unused_result)) int snap_get(struct snap_cursor *c, void *out, size_t len);
__attribute__((warn_unused_result)) int snap_get_u32(struct snap_cursor *c, uint32_t *v);
__attribute__((warn_unused_result)) int snap_get_u64(struct snap_cursor *c, uint64_t *v);
/* A string written by snap_put_str; *s points into the reader's image (the stored NUL
 * terminates it), NULL for a NULL string. Fails if longer than max, if a NUL sits inside
 * it, or if the terminating NUL is missing. */
__attribute__((warn_unused_result)) int snap_get_str(struct snap_cursor *c, const char **s,
	size_t max);

#endif
