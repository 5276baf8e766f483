/* The snapshot memory file: guest RAM regions laid end to end, region i at the offset that
 * is the sum of the sizes before it (Firecracker's layout). Full or diff (sparse). */
#ifndef EMBER_MEMORY_FILE_H
#define EMBER_MEMORY_FILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct guest_mem;
struct mem_id;
struct snap_id;

#define MEM_FILE_PAGE 4096ULL

struct mem_file_stats {
	uint64_t bytes_written; /* data bytes, holes excluded */
	uint64_t pages_written;
	uint64_t fsync_us; /* time in fsync: the rest is the page cache's rate */
};

/* Write `gm` to a new file at `path` (created, sized to gm->total, fsynced). The name
 * must be free: an existing file or symlink there is -EEXIST and left alone (O_EXCL |
 * O_NOFOLLOW); on any other error the file this call created is removed.
 * dirty == NULL: a full snapshot; when `holes_are_zero` (memory that came from zero
 *   pages: a fresh boot) the pages that hold no data are left as holes (page_scan.h: a
 *   page in swap holds data), else every page is written.
 * dirty != NULL: a diff snapshot: only pages whose bit is set in dirty[region] (bitmaps
 *   laid out as guest_mem_bitmap_bytes says).
 * id != NULL: the file is tagged with it (snapshot_id.h) before the fsync; a file system
 *   without xattrs is warned about once and not an error.
 * Errors name the path. */
__attribute__((warn_unused_result)) int mem_file_write(const struct guest_mem *gm, const char *path,
	unsigned long *const *dirty, bool holes_are_zero, const struct mem_id *id,
	struct mem_file_stats *stats, char *err, size_t errlen);

/* Apply a diff memory file onto its base (same size), if snap_id_check_merge allows it
 * (the base holds the full memory of the snapshot the diff was taken after, or one of
 * them has no id; else the message names both files and both ids).
 * The merged file is new: the base's data extents (holes stay holes), the diff's data
 * extents over them, the id (a diff of snapshot S makes it "all of S's memory": it then
 * restores with S's state file, no longer with the base's own), fsync, renamed over the
 * base, directory fsynced. So a crash or kill at any point leaves either the old base,
 * untouched, or the merged one (and perhaps a BASE.tmp.PID beside it), and a clone that
 * maps the old base (MAP_PRIVATE) never sees its pages change: the old inode lives on
 * until it is unmapped. The base's mode is kept, not its owner or other attributes. */
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
