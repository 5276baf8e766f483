/* The snapshot id: a random 128-bit name that binds a state file to its memory file, and
 * a diff to the snapshot it was taken after (its parent).
 *
 * Every snapshot gets a fresh id. The state file records it in a section of its own
 * (SNAP_SEC_SNAPSHOT_ID, version 1: the 16 id bytes; version 2, written only when there
 * is a parent so that other snapshots stay readable by an older ember: the id, then the
 * 16 bytes of the parent's); the memory file carries it in the extended attribute
 * user.ember.snapshot, so its contents keep Firecracker's raw layout and the binding
 * survives a rename. The attribute is text:
 *   "<32 hex digits>"       all of that snapshot's memory (a full snapshot, or a base
 *                           that a diff of that snapshot was merged onto)
 *   "<id> diff <parent id>" only the pages that snapshot dirtied since snapshot <parent
 *                           id> (the VM's last snapshot, or the one it was restored
 *                           from): it merges only onto <parent id>'s full memory (an
 *                           ember from before parents cannot read this form, and
 *                           refuses to merge such a diff rather than guess)
 *   "<id> diff"             a diff without a parent: the pages dirtied since the VM
 *                           booted (or written by an ember before parents were recorded)
 *   "incomplete"            written by an older ember while it merged in place: a merge
 *                           that did not finish. Merges now write a new file and rename
 *                           it, so this is only read, and refused.
 * A memory file without the attribute (Firecracker's, an older ember's, or one on a file
 * system without user xattrs) and a state file without the section (an older ember's)
 * are accepted unchecked. Pure logic plus xattr calls on an fd; no KVM, no logging, so
 * ember-uffd links it too. */
#ifndef EMBER_SNAPSHOT_ID_H
#define EMBER_SNAPSHOT_ID_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct snap_reader;
struct snap_writer;

#define SNAP_ID_BYTES 16
#define SNAP_ID_HEX_LEN (2 * SNAP_ID_BYTES)
#define SNAP_ID_XATTR "user.ember.snapshot"
#define SNAP_ID_VALUE_MAX 96 /* longer attribute values are refused as unreadable */

struct snap_id {
	uint8_t b[SNAP_ID_BYTES];
};

/* What a memory file says about itself. */
enum mem_id_kind {
	MEM_ID_NONE,       /* no attribute: not checked */
	MEM_ID_FULL,       /* all of snapshot `id`'s memory */
	MEM_ID_DIFF,       /* the pages snapshot `id` dirtied */
	MEM_ID_INCOMPLETE, /* an older ember's interrupted merge (never written now) */
	MEM_ID_BAD,        /* an attribute value this ember cannot read */
};

struct mem_id {
	enum mem_id_kind kind;
	struct snap_id id; /* for FULL and DIFF */
	bool has_parent;   /* DIFF only: the snapshot the diff was taken after */
	struct snap_id parent;
};

/* A fresh random id (getrandom). -errno if the kernel has no randomness to give. */
__attribute__((warn_unused_result)) int snap_id_generate(struct snap_id *id);
/* 32 lowercase hex digits and a NUL. */
void snap_id_format(const struct snap_id *id, char out[SNAP_ID_HEX_LEN + 1]);
bool snap_id_equal(const struct snap_id *a, const struct snap_id *b);

/* The attribute value for `m` into buf (not NUL-terminated, as stored); its length, or
 * -ENOSPC, or -EINVAL for NONE and BAD (which are never written). */
__attribute__((warn_unused_result)) int mem_id_format(const struct mem_id *m, char *buf,
	size_t len);
/* Classify an attribute value of `len` bytes (no NUL needed). Never fails: a value that
 * is not one of the forms above is MEM_ID_BAD. */
void mem_id_parse(const char *value, size_t len, struct mem_id *out);

/* The state file section: one SNAP_SEC_SNAPSHOT_ID with the 16 bytes, and the parent's
 * (a diff's; NULL: none) in version 2. */
__attribute__((warn_unused_result)) int snap_id_save(struct snap_writer *w,
	const struct snap_id *id, const struct snap_id *parent);
/* 0 with *found set (false: a state file from before ids, nothing to check); -EINVAL and a
 * message for a malformed section or a section version this ember does not know.
 * `parent` may be NULL; else *has_parent says whether one was recorded (version 2). */
__attribute__((warn_unused_result)) int snap_id_load(const struct snap_reader *r,
	struct snap_id *id, bool *found, struct snap_id *parent, bool *has_parent, char *err,
	size_t errlen);

/* The memory file's attribute, read from / written to an open fd. Reading: 0 with
 * out->kind NONE when there is none; -ENOTSUP (out NONE) when the file system has no
 * user xattrs; other -errno. Writing: NONE removes the attribute (absent already is
 * fine); -ENOTSUP when the file system refuses user xattrs; other -errno. */
__attribute__((warn_unused_result)) int mem_id_read(int fd, struct mem_id *out);
__attribute__((warn_unused_result)) int mem_id_write(int fd, const struct mem_id *m);

/* May memory file `m` (read from mem_path) be restored with the state file at state_path,
 * whose id is *state_id (NULL: a state file without one)? 0 if so, else -EINVAL and a
 * message naming both files, e.g. "snapshot mismatch: state file A is snapshot 1f..., but
 * memory file B belongs to snapshot 9c... (a crash between writing the two, or files
 * from different snapshots)". A diff of this very snapshot is refused too: it must be
 * merged onto its base first. */
__attribute__((warn_unused_result)) int snap_id_check_pair(const char *state_path,
	const struct snap_id *state_id, const char *mem_path, const struct mem_id *m, char *err,
	size_t errlen);

/* May diff `d` (read from diff_path) be merged onto base `b` (read from base_path)? 0 if
 * so, with *result the id the merged file gets: a diff of snapshot S makes it "all of S's
 * memory" (FULL S); a diff without an id leaves it without one. Refused (-EINVAL, a
 * message naming both files and their ids):
 *   - a diff that is not one (FULL: its holes would keep stale pages; INCOMPLETE, BAD);
 *   - a base that is a diff, incomplete or unreadable;
 *   - a diff whose parent is not the base's snapshot (a wrong base, or diffs out of order);
 *   - a diff without a parent onto a base with an id (it holds the pages dirtied since
 *     boot, not since that base).
 * A base without an id (Firecracker's file, a copy that lost its attributes) is merged
 * unchecked, as before ids. Pure. */
__attribute__((warn_unused_result)) int snap_id_check_merge(const char *base_path,
	const struct mem_id *b, const char *diff_path, const struct mem_id *d,
	struct mem_id *result, char *err, size_t errlen);

#endif
