/* Balloon: giving guest RAM back to the host, the right way for each memory backing. */
#include "ember/balloon.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>

#include "ember/guest_mem.h"

static const struct guest_mem_region *find_region(const struct guest_mem *gm, uint64_t gpa,
	uint64_t len)
{
	for (unsigned i = 0; i < gm->nr_regions; i++) {
		const struct guest_mem_region *r = &gm->regions[i];

		if (r->host && gpa >= r->gpa && gpa - r->gpa <= r->size &&
			len <= r->size - (gpa - r->gpa))
			return r;
	}
	return NULL;
}

/* Private anonymous memory (the default, and uffd restores): the pages are freed and
 * the next touch maps a zero page. With a userfaultfd registered over the range the
 * kernel first hands the handler a UFFD_EVENT_REMOVE, so it stops serving file data. */
static int discard_anon(void *host, uint64_t len, char *err, size_t errlen)
{
	if (madvise(host, len, MADV_DONTNEED) == 0)
		return 0;
	snprintf(err, errlen, "madvise(DONTNEED) of %llu bytes: %s", (unsigned long long)len,
		strerror(errno));
	return -errno;
}

/* Shared memfd (4 KiB or hugetlb pages): MADV_DONTNEED would only drop our page table
 * entries and leave the pages in the file, so punch them out of the file itself. */
static int discard_shared(const struct guest_mem *gm, const struct guest_mem_region *r, void *host,
	uint64_t gpa, uint64_t len, char *err, size_t errlen)
{
	off_t off = (off_t)(r->file_offset + (gpa - r->gpa));

	if (gm->fd >= 0 &&
		fallocate(gm->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, off, (off_t)len) == 0)
		return 0;
	if (madvise(host, len, MADV_REMOVE) == 0)
		return 0;
	snprintf(err, errlen, "cannot punch %llu bytes at offset %lld of the memfd: %s",
		(unsigned long long)len, (long long)off, strerror(errno));
	return -errno;
}

/* MAP_PRIVATE of a snapshot's memory file: MADV_DONTNEED would drop our private copies
 * and let the file's bytes show through again (and keep the page cache busy). A fresh
 * anonymous mapping over the range frees the copies and reads as zeros, as a ballooned
 * page must. KVM follows the change through its MMU notifier; the slot keeps its
 * host address. */
static int discard_file(void *host, uint64_t len, char *err, size_t errlen)
{
	void *p = mmap(host, len, PROT_READ | PROT_WRITE,
		MAP_FIXED | MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);

	if (p == host) {
		madvise(p, len, MADV_NOHUGEPAGE);
		return 0;
	}
	snprintf(err, errlen, "cannot map anonymous memory over %llu bytes: %s",
		(unsigned long long)len, p == MAP_FAILED ? strerror(errno) : "moved");
	return p == MAP_FAILED ? -errno : -EFAULT;
}

int balloon_memory_discard(const struct guest_mem *gm, uint64_t gpa, uint64_t len,
	struct balloon_discard *out, char *err, size_t errlen)
{
	uint64_t page = gm->page_size ? gm->page_size : BALLOON_PAGE_SIZE;
	const struct guest_mem_region *r = find_region(gm, gpa, len);
	uint64_t start, end;
	uint8_t *host;
	int ret;

	if (out)
		memset(out, 0, sizeof(*out));
	if (!r) {
		snprintf(err, errlen, "range 0x%llx+0x%llx is not inside guest memory",
			(unsigned long long)gpa, (unsigned long long)len);
		return -EFAULT;
	}
	/* Whole backing pages only, trimmed inwards (regions start page-aligned). */
	start = r->gpa + ((gpa - r->gpa + page - 1) / page) * page;
	end = r->gpa + ((gpa + len - r->gpa) / page) * page;
	if (end <= start) {
		if (out)
			out->skipped = len;
		return 0;
	}
	host = r->host + (start - r->gpa);
	switch (gm->backing) {
	case GUEST_MEM_ANON:
	case GUEST_MEM_ANON_THP:
		ret = discard_anon(host, end - start, err, errlen);
		break;
	case GUEST_MEM_MEMFD:
	case GUEST_MEM_HUGETLB:
		ret = discard_shared(gm, r, host, start, end - start, err, errlen);
		break;
	case GUEST_MEM_FILE:
		ret = discard_file(host, end - start, err, errlen);
		break;
	default:
		snprintf(err, errlen, "unknown memory backing %d", (int)gm->backing);
		return -EINVAL;
	}
	if (ret)
		return ret;
	/* The pages now read as zeros: a diff snapshot must carry that, not the old bytes
	 * a base snapshot holds (KVM's dirty log does not see this change). */
	guest_mem_mark_dirty(gm, start, end - start);
	if (out) {
		out->bytes = end - start;
		out->skipped = len - (end - start);
	}
	return 0;
}
