/* The snapshot memory file: guest RAM regions laid end to end, region i at the offset that
 * is the sum of the sizes before it (Firecracker's layout). Full or diff (sparse). */
#ifndef EMBER_MEMORY_FILE_H
#define EMBER_MEMORY_FILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct guest_mem;

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
 * Errors name the path. */
__attribute__((warn_unused_result)) int mem_file_write(const struct guest_mem *gm,
	const char *path, unsigned long *const *dirty, bool holes_are_zero,
	struct mem_file_stats *stats, char *err, size_t errlen);

/* Apply a diff memory file onto its base (same size): every data extent of `diff`
 * (SEEK_DATA/SEEK_HOLE) is copied over `base`, which is fsynced. */
__attribute__((warn_unused_result)) int mem_file_merge(const char *base, const char *diff,
	char *err, size_t errlen);

#endif
