/* Which pages of freshly booted guest RAM hold data: pagemap, SEEK_DATA or mincore. */
#include "ember/page_scan.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sys/mman.h>
#include <unistd.h>

#include "ember/guest_mem.h"

#define PAGE 4096ULL /* the bitmap's page, whatever the backing's */
#define CHUNK 4096   /* pages per pagemap read or mincore call */
#define BITS_PER_LONG (sizeof(unsigned long) * CHAR_BIT)

bool page_scan_pagemap_has_data(uint64_t entry)
{
	return (entry & (PAGEMAP_PRESENT | PAGEMAP_SWAPPED)) != 0;
}

static void set_bit(unsigned long *map, uint64_t page)
{
	map[page / BITS_PER_LONG] |= 1UL << (page % BITS_PER_LONG);
}

/* Anonymous private memory: one 64-bit pagemap entry per page of our own mapping. */
static int scan_pagemap(const struct guest_mem_region *r, unsigned long *bitmap)
{
	uint64_t entries[CHUNK];
	uint64_t pages = r->size / PAGE;
	int fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC), ret = 0;

	/* No /proc, as in ember-jailer's jail: every page is written (a bigger file, never
	 * a page lost). */
	if (fd < 0 && errno == ENOENT) {
		for (uint64_t p = 0; p < pages; p++)
			set_bit(bitmap, p);
		return 0;
	}
	if (fd < 0)
		return -errno;
	for (uint64_t p = 0; p < pages; p += CHUNK) {
		uint64_t n = pages - p < CHUNK ? pages - p : CHUNK;
		off_t at = (off_t)(((uintptr_t)r->host / PAGE + p) * sizeof(uint64_t));
		ssize_t got;

		do
			got = pread(fd, entries, n * sizeof(uint64_t), at);
		while (got < 0 && errno == EINTR);
		if (got != (ssize_t)(n * sizeof(uint64_t))) {
			ret = got < 0 ? -errno : -EIO;
			break;
		}
		for (uint64_t k = 0; k < n; k++)
			if (page_scan_pagemap_has_data(entries[k]))
				set_bit(bitmap, p + k);
	}
	close(fd);
	return ret;
}

/* A memfd: its data extents, which include pages in swap. */
static int scan_seek_data(int fd, const struct guest_mem_region *r, unsigned long *bitmap)
{
	off_t start = (off_t)r->file_offset, end = start + (off_t)r->size, data = start, hole;

	while (data < end) {
		data = lseek(fd, data, SEEK_DATA);
		if (data < 0 && errno == ENXIO)
			break; /* no data after here */
		if (data < 0)
			return -errno;
		if (data >= end)
			break;
		hole = lseek(fd, data, SEEK_HOLE);
		if (hole < 0)
			return -errno;
		if (hole > end)
			hole = end;
		for (uint64_t p = (uint64_t)(data - start) / PAGE;
			p < ((uint64_t)(hole - start) + PAGE - 1) / PAGE; p++)
			set_bit(bitmap, p);
		data = hole;
	}
	return 0;
}

/* Huge pages are never swapped, so residency is the whole truth there. */
static int scan_mincore(const struct guest_mem_region *r, unsigned long *bitmap)
{
	unsigned char vec[CHUNK];
	uint64_t pages = r->size / PAGE;

	for (uint64_t p = 0; p < pages; p += CHUNK) {
		uint64_t n = pages - p < CHUNK ? pages - p : CHUNK;

		if (mincore(r->host + p * PAGE, n * PAGE, vec) < 0)
			return -errno;
		for (uint64_t k = 0; k < n; k++)
			if (vec[k] & 1)
				set_bit(bitmap, p + k);
	}
	return 0;
}

int page_scan_region(const struct guest_mem *gm, unsigned i, unsigned long *bitmap)
{
	const struct guest_mem_region *r = &gm->regions[i];

	switch (gm->backing) {
	case GUEST_MEM_ANON:
	case GUEST_MEM_ANON_THP:
		return scan_pagemap(r, bitmap);
	case GUEST_MEM_MEMFD:
		return scan_seek_data(gm->fd, r, bitmap);
	case GUEST_MEM_HUGETLB:
		return scan_mincore(r, bitmap);
	default:
		for (uint64_t p = 0; p < r->size / PAGE; p++)
			set_bit(bitmap, p);
		return 0;
	}
}
