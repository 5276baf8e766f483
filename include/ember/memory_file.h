/* The snapshot memory file: guest RAM regions laid end to end, region i at the offset that
 * is the sum of the sizes before it (Firecracker's layout). Full or diff (sparse). */
#ifndef EMBER_MEMORY_FILE_H
#define EMBER_MEMORY_FILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct guest_mem;
struct snap_id;

#define MEM_FILE_PAGE 4096ULL

struct mem_file_stats {
	uint64_t bytes_written; /* data bytes, holes excluded */
	uint64_t pages_written;
};

/* Write `gm` to a new file at `path` (created or truncated, sized to gm->total, fsynced).
 * dirty == NULL: a full snapshot; pages that are not resident are left as holes when
 *   `holes_are_zero` (memory that came from anonymous zero pages), written otherwise.
 * dirty != NULL: a diff snapshot: only pages whose bit is set in dirty[region] (bitmaps
 *   laid out as guest_mem_bitmap_bytes says).
 * id != NULL: the file is tagged as that snapshot's (full or diff, snapshot_id.h) before
 *   the fsync; a file system without xattrs is warned about once and not an error.
 * Errors name the path. */
__attribute__((warn_unused_result)) int mem_file_write(const struct guest_mem *gm,
	const char *path, unsigned long *const *dirty, bool holes_are_zero,
	const struct snap_id *id, struct mem_file_stats *stats, char *err, size_t errlen);

/* Apply a diff memory file onto its base (same size): every data extent of `diff`
 * (SEEK_DATA/SEEK_HOLE) is copied over `base`, which is fsynced.
 * Snapshot ids: a diff of snapshot S makes the merged base "all of S's memory", so it
 * restores with S's state file (and no longer with the base's own). A diff without an id
 * leaves the base without one. While pages are copied the base is marked incomplete, so
 * an interrupted merge is refused at restore instead of restoring a mix. A file tagged
 * as a full snapshot's is refused as a diff (its holes would keep stale base pages). */
__attribute__((warn_unused_result)) int mem_file_merge(const char *base, const char *diff,
	char *err, size_t errlen);

/* Before a restore from `mem_path`: does it belong with the state file at state_path,
 * whose snapshot id is *state_id (NULL: none)? 0 if so or if it cannot tell (no id on
 * either side, no xattrs there: said once in the log, or a file that cannot be opened,
 * which the memory builder then reports). Else -EINVAL and snap_id_check_pair's message
 * naming both files. Control thread. */
__attribute__((warn_unused_result)) int mem_file_check_id(const char *mem_path,
	const char *state_path, const struct snap_id *state_id, char *err, size_t errlen);

#endif
