/* Which pages of freshly booted guest RAM hold data, for a full snapshot that leaves the
 * others as holes.
 *
 * "Not resident" is not "never touched": a page the host swapped out is not resident and
 * holds data. mincore() cannot tell the two apart (it reports a swapped-out page as not
 * in core), so each backing is asked what it knows:
 *   anonymous private memory  /proc/self/pagemap: present (bit 63) or in swap (bit 62);
 *                             every page where no /proc is mounted (a jail)
 *   memfd (shmem)             SEEK_DATA / SEEK_HOLE on the memfd: swapped pages are data
 *   hugetlb                   mincore: huge pages are never swapped, and hugetlbfs's
 *                             llseek calls the whole file data
 * Control thread (or any thread; it only reads). */
#ifndef EMBER_PAGE_SCAN_H
#define EMBER_PAGE_SCAN_H

#include <stdbool.h>
#include <stdint.h>

struct guest_mem;

#define PAGEMAP_PRESENT (1ULL << 63)
#define PAGEMAP_SWAPPED (1ULL << 62)

/* Does the page a /proc/PID/pagemap entry describes hold data (present or in swap)? A
 * page neither present nor swapped was never touched (or was discarded): it reads as
 * zeros. Pure. */
bool page_scan_pagemap_has_data(uint64_t entry);

/* Set in `bitmap` (guest_mem_bitmap_bytes(region size), zeroed by the caller) the bit of
 * every page of region i of `gm` that holds data, by the backing's rule above. A backing
 * the rules do not cover (a mapped memory file) gets every bit. -errno on failure. */
__attribute__((warn_unused_result)) int page_scan_region(const struct guest_mem *gm, unsigned i,
	unsigned long *bitmap);

#endif
