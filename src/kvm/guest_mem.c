/* Guest RAM: mapping the backing memory and checked access to it. */
#include "ember/guest_mem.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/memfd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ember/layout.h"

#define HUGE_2M (2ULL << 20)

unsigned guest_mem_layout(uint64_t size, struct guest_mem_region out[GUEST_MEM_MAX_REGIONS])
{
	uint64_t low = size < LAYOUT_MMIO_GAP_START ? size : LAYOUT_MMIO_GAP_START;

	memset(out, 0, sizeof(*out) * GUEST_MEM_MAX_REGIONS);
	out[0].gpa = 0;
	out[0].size = low;
	if (size == low)
		return 1;
	out[1].gpa = LAYOUT_MMIO_GAP_END;
	out[1].size = size - low;
	out[1].file_offset = low;
	return 2;
}

static int open_backing(enum guest_mem_backing backing, const char *path, uint64_t size, char *err,
	size_t errlen)
{
	int fd;

	switch (backing) {
	case GUEST_MEM_ANON:
	case GUEST_MEM_ANON_THP:
		return -1;
	case GUEST_MEM_MEMFD:
	case GUEST_MEM_HUGETLB:
		fd = memfd_create("ember-guest-ram",
			MFD_CLOEXEC |
				(backing == GUEST_MEM_HUGETLB ? MFD_HUGETLB | MFD_HUGE_2MB : 0));
		if (fd < 0) {
			snprintf(err, errlen, "memory: cannot create %s memfd: %s",
				backing == GUEST_MEM_HUGETLB ? "hugetlbfs" : "shared",
				strerror(errno));
			return -errno;
		}
		if (ftruncate(fd, (off_t)size) < 0) {
			int e = errno;
			snprintf(err, errlen, "memory: cannot size memfd to %llu bytes: %s",
				(unsigned long long)size, strerror(e));
			close(fd);
			return -e;
		}
		return fd;
	case GUEST_MEM_FILE: {
		struct stat st;
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0) {
			snprintf(err, errlen, "memory file %s: %s", path, strerror(errno));
			return -errno;
		}
		if (fstat(fd, &st) < 0 || (uint64_t)st.st_size < size) {
			snprintf(err, errlen, "memory file %s: %llu bytes, need %llu", path,
				(unsigned long long)st.st_size, (unsigned long long)size);
			close(fd);
			return -EINVAL;
		}
		return fd;
	}
	}
	return -EINVAL;
}

/* Map region `r` (gpa, size, file_offset set) with gm's backing, over `at` if given. */
static int map_region(struct guest_mem *gm, struct guest_mem_region *r, void *at, char *err,
	size_t errlen)
{
	enum guest_mem_backing backing = gm->backing;
	bool anon = backing == GUEST_MEM_ANON || backing == GUEST_MEM_ANON_THP;
	int flags = anon                    ? MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE
		: backing == GUEST_MEM_FILE ? MAP_PRIVATE | MAP_NORESERVE
					    : MAP_SHARED;
	void *p = mmap(at, r->size, PROT_READ | PROT_WRITE, flags | (at ? MAP_FIXED : 0), gm->fd,
		gm->fd < 0 ? 0 : (off_t)r->file_offset);

	if (p == MAP_FAILED) {
		int ret = -errno;
		snprintf(err, errlen, "memory: cannot map %llu MiB: %s",
			(unsigned long long)(r->size >> 20), strerror(errno));
		return ret;
	}
	r->host = p;
	/* Transparent huge pages do not help a lazily touched, snapshotted guest and blow up
	 * diff snapshots: off unless asked for (a long-running guest's TLB). */
	if (anon)
		madvise(p, r->size, backing == GUEST_MEM_ANON ? MADV_NOHUGEPAGE : MADV_HUGEPAGE);
	return 0;
}

int guest_mem_map(struct guest_mem *gm, uint64_t size, enum guest_mem_backing backing,
	const char *path, char *err, size_t errlen)
{
	return guest_mem_map_at(gm, size, backing, path, NULL, err, errlen);
}

int guest_mem_map_at(struct guest_mem *gm, uint64_t size, enum guest_mem_backing backing,
	const char *path, void *const at[GUEST_MEM_MAX_REGIONS], char *err, size_t errlen)
{
	uint64_t page = backing == GUEST_MEM_HUGETLB ? HUGE_2M : 4096;
	int fd, ret;

	memset(gm, 0, sizeof(*gm));
	gm->fd = -1;
	if (size == 0 || size % page) {
		snprintf(err, errlen, "memory: size %llu is not a positive multiple of %llu",
			(unsigned long long)size, (unsigned long long)page);
		return -EINVAL;
	}
	fd = open_backing(backing, path, size, err, errlen);
	if (fd < -1)
		return fd;
	gm->fd = fd;
	gm->backing = backing;
	gm->page_size = page;
	gm->total = size;
	gm->nr_regions = guest_mem_layout(size, gm->regions);
	for (unsigned i = 0; i < gm->nr_regions; i++) {
		ret = map_region(gm, &gm->regions[i], at ? at[i] : NULL, err, errlen);
		if (ret) {
			guest_mem_unmap(gm);
			return ret;
		}
	}
	return 0;
}

int guest_mem_add_device(struct guest_mem *gm, uint64_t gpa, uint64_t size, char *err,
	size_t errlen)
{
	struct guest_mem_region *r = &gm->regions[gm->nr_regions];
	struct stat st;
	int ret;

	if (gm->nr_regions >= GUEST_MEM_MAX_REGIONS || size == 0 || size % gm->page_size ||
		gpa % gm->page_size) {
		snprintf(err, errlen, "memory: cannot add %llu bytes of device memory at 0x%llx",
			(unsigned long long)size, (unsigned long long)gpa);
		return -EINVAL;
	}
	if ((gm->backing == GUEST_MEM_MEMFD || gm->backing == GUEST_MEM_HUGETLB) &&
		ftruncate(gm->fd, (off_t)(gm->total + size)) < 0) {
		ret = -errno;
		snprintf(err, errlen, "memory: cannot grow the memfd to %llu bytes: %s",
			(unsigned long long)(gm->total + size), strerror(errno));
		return ret;
	}
	if (gm->backing == GUEST_MEM_FILE &&
		(fstat(gm->fd, &st) < 0 || (uint64_t)st.st_size < gm->total + size)) {
		snprintf(err, errlen, "memory file: %llu bytes, need %llu with the device memory",
			(unsigned long long)st.st_size, (unsigned long long)(gm->total + size));
		return -EINVAL;
	}
	*r = (struct guest_mem_region){ .gpa = gpa, .size = size, .file_offset = gm->total };
	ret = map_region(gm, r, NULL, err, errlen);
	if (ret)
		return ret;
	gm->nr_regions++;
	gm->nr_device++;
	gm->total += size;
	return 0;
}

#define BITS_PER_LONG (8 * sizeof(unsigned long))

size_t guest_mem_bitmap_bytes(uint64_t size)
{
	return (size_t)((size / 4096 + BITS_PER_LONG - 1) / BITS_PER_LONG) * sizeof(unsigned long);
}

int guest_mem_track_dirty(struct guest_mem *gm)
{
	for (unsigned i = 0; i < gm->nr_regions; i++) {
		if (gm->dirty[i])
			continue;
		gm->dirty[i] = calloc(1, guest_mem_bitmap_bytes(gm->regions[i].size));
		if (!gm->dirty[i])
			return -ENOMEM;
	}
	return 0;
}

void guest_mem_mark_dirty(const struct guest_mem *gm, uint64_t gpa, uint64_t len)
{
	for (unsigned i = 0; len && i < gm->nr_regions; i++) {
		const struct guest_mem_region *r = &gm->regions[i];
		uint64_t first, last;

		if (!gm->dirty[i] || gpa < r->gpa || gpa - r->gpa >= r->size)
			continue;
		first = (gpa - r->gpa) / 4096;
		last = (gpa - r->gpa +
			       (len < r->size - (gpa - r->gpa) ? len : r->size - (gpa - r->gpa)) -
			       1) /
			4096;
		for (uint64_t p = first; p <= last; p++)
			atomic_fetch_or_explicit(&gm->dirty[i][p / BITS_PER_LONG],
				1UL << (p % BITS_PER_LONG), memory_order_relaxed);
	}
}

void guest_mem_take_dirty(struct guest_mem *gm, unsigned i, unsigned long *bitmap)
{
	size_t n;

	if (i >= gm->nr_regions || !gm->dirty[i])
		return;
	n = guest_mem_bitmap_bytes(gm->regions[i].size) / sizeof(unsigned long);
	for (size_t k = 0; k < n; k++)
		bitmap[k] |= atomic_exchange_explicit(&gm->dirty[i][k], 0, memory_order_relaxed);
}

void guest_mem_revoke(struct guest_mem *gm)
{
	atomic_store_explicit(&gm->revoked, true, memory_order_seq_cst);
}

bool guest_mem_revoked(const struct guest_mem *gm)
{
	return atomic_load_explicit(&gm->revoked, memory_order_seq_cst);
}

void guest_mem_unmap(struct guest_mem *gm)
{
	for (unsigned i = 0; i < gm->nr_regions; i++) {
		if (gm->regions[i].host)
			munmap(gm->regions[i].host, gm->regions[i].size);
		gm->regions[i].host = NULL;
		free((void *)gm->dirty[i]);
		gm->dirty[i] = NULL;
	}
	gm->nr_regions = 0;
	gm->nr_device = 0;
	if (gm->fd >= 0)
		close(gm->fd);
	gm->fd = -1;
}

static uint8_t *host_ptr(const struct guest_mem *gm, uint64_t gpa, uint64_t len)
{
	if (atomic_load_explicit(&gm->revoked, memory_order_acquire))
		return NULL;
	for (unsigned i = 0; i < gm->nr_regions; i++) {
		const struct guest_mem_region *r = &gm->regions[i];
		if (gpa >= r->gpa && gpa - r->gpa <= r->size && len <= r->size - (gpa - r->gpa))
			return r->host ? r->host + (gpa - r->gpa) : NULL;
	}
	return NULL;
}

const void *guest_mem_ptr(const struct guest_mem *gm, uint64_t gpa, uint64_t len)
{
	return host_ptr(gm, gpa, len);
}

void *guest_mem_ptr_mut(const struct guest_mem *gm, uint64_t gpa, uint64_t len)
{
	uint8_t *p = host_ptr(gm, gpa, len);

	if (p)
		guest_mem_mark_dirty(gm, gpa, len);
	return p;
}

int guest_mem_write(const struct guest_mem *gm, uint64_t gpa, const void *src, size_t len)
{
	void *p = guest_mem_ptr_mut(gm, gpa, len);

	if (!p)
		return -EFAULT;
	memcpy(p, src, len);
	return 0;
}

int guest_mem_read(const struct guest_mem *gm, uint64_t gpa, void *dst, size_t len)
{
	const void *p = guest_mem_ptr(gm, gpa, len);

	if (!p)
		return -EFAULT;
	memcpy(dst, p, len);
	return 0;
}

uint64_t guest_mem_low_end(const struct guest_mem *gm)
{
	return gm->nr_regions ? gm->regions[0].gpa + gm->regions[0].size : 0;
}

/* The first LAYOUT_DEVICE_MEM_ALIGN boundary at or above the MMIO gap's end and the end of
 * the first `nr` regions. */
static uint64_t aligned_top(const struct guest_mem *gm, unsigned nr)
{
	uint64_t end = LAYOUT_MMIO_GAP_END;
	for (unsigned i = 0; i < nr; i++) {
		uint64_t top = gm->regions[i].gpa + gm->regions[i].size;
		if (top > end)
			end = top;
	}
	return (end + LAYOUT_DEVICE_MEM_ALIGN - 1) & ~(LAYOUT_DEVICE_MEM_ALIGN - 1);
}

uint64_t guest_mem_device_base(const struct guest_mem *gm)
{
	return aligned_top(gm, guest_mem_nr_ram(gm));
}

uint64_t guest_mem_free_base(const struct guest_mem *gm)
{
	return aligned_top(gm, gm->nr_regions);
}

const struct guest_mem_region *guest_mem_device_region(const struct guest_mem *gm)
{
	return gm->nr_device ? &gm->regions[guest_mem_nr_ram(gm)] : NULL;
}
