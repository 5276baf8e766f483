/* Snapshot memory file: full (holes for untouched zero pages) and diff (dirty pages only). */
#include "ember/memory_file.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ember/guest_mem.h"
#include "ember/log.h"
#include "ember/snapshot_id.h"

#define BITS_PER_LONG (sizeof(unsigned long) * CHAR_BIT)
#define MINCORE_CHUNK 4096 /* pages per mincore call */

/* A file system without user xattrs cannot carry the snapshot id: snapshots there work,
 * unchecked. Said once per process, not at every snapshot. */
static void warn_no_xattrs(const char *path)
{
	static atomic_bool warned;

	if (!atomic_exchange(&warned, true))
		log_warn("memory file %s: the file system refuses extended attributes, so memory "
			"files there carry no snapshot id and restores cannot check that state and "
			"memory belong together", path);
}

/* Set the id on an open memory file; a file system without xattrs is not an error. */
static int tag(int fd, const char *path, const struct mem_id *id, bool *tagged)
{
	int ret = mem_id_write(fd, id);

	*tagged = ret == 0;
	if (ret == -ENOTSUP) {
		warn_no_xattrs(path);
		return 0;
	}
	return ret;
}

static bool bit(const unsigned long *map, uint64_t page)
{
	return map[page / BITS_PER_LONG] >> (page % BITS_PER_LONG) & 1;
}

static int pwrite_all(int fd, const uint8_t *buf, size_t len, off_t off)
{
	while (len) {
		ssize_t n = pwrite(fd, buf, len, off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : -EIO;
		buf += n;
		len -= (size_t)n;
		off += n;
	}
	return 0;
}

/* Which pages to write: the dirty bitmap, or residency (mincore) for a full snapshot of
 * zero-backed memory, or all of them. Runs of wanted pages become one pwrite each. */
static int write_region(int fd, const struct guest_mem_region *r, const unsigned long *dirty,
	bool holes_are_zero, struct mem_file_stats *st)
{
	uint64_t pages = r->size / MEM_FILE_PAGE, run_start = 0, run_len = 0;
	unsigned char vec[MINCORE_CHUNK];
	int ret;

	for (uint64_t p = 0; p < pages; p++) {
		bool want;

		if (dirty) {
			want = bit(dirty, p);
		} else if (holes_are_zero) {
			if (p % MINCORE_CHUNK == 0) {
				uint64_t n = pages - p < MINCORE_CHUNK ? pages - p : MINCORE_CHUNK;
				if (mincore(r->host + p * MEM_FILE_PAGE, n * MEM_FILE_PAGE, vec) < 0)
					return -errno;
			}
			want = vec[p % MINCORE_CHUNK] & 1;
		} else {
			want = true;
		}
		if (want) {
			if (!run_len)
				run_start = p;
			run_len++;
		}
		if (run_len && (!want || p + 1 == pages)) {
			ret = pwrite_all(fd, r->host + run_start * MEM_FILE_PAGE,
				run_len * MEM_FILE_PAGE,
				(off_t)(r->file_offset + run_start * MEM_FILE_PAGE));
			if (ret)
				return ret;
			st->pages_written += run_len;
			st->bytes_written += run_len * MEM_FILE_PAGE;
			run_len = 0;
		}
	}
	return 0;
}

int mem_file_write(const struct guest_mem *gm, const char *path, unsigned long *const *dirty,
	bool holes_are_zero, const struct snap_id *id, struct mem_file_stats *stats, char *err,
	size_t errlen)
{
	struct mem_file_stats st = { 0 };
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600), ret = 0;
	bool tagged;

	if (fd < 0) {
		snprintf(err, errlen, "memory file %s: %s", path, strerror(errno));
		return -errno;
	}
	if (ftruncate(fd, (off_t)gm->total) < 0) {
		ret = -errno;
		goto fail;
	}
	for (unsigned i = 0; !ret && i < gm->nr_regions; i++)
		ret = write_region(fd, &gm->regions[i], dirty ? dirty[i] : NULL, holes_are_zero,
			&st);
	/* The id goes on before the fsync, which makes it as durable as the data. */
	if (!ret && id)
		ret = tag(fd, path, &(struct mem_id){ .kind = dirty ? MEM_ID_DIFF : MEM_ID_FULL,
			.id = *id }, &tagged);
	if (!ret && fsync(fd) < 0)
		ret = -errno;
	if (ret)
		goto fail;
	close(fd);
	if (stats)
		*stats = st;
	return 0;
fail:
	snprintf(err, errlen, "memory file %s: %s", path, strerror(-ret));
	close(fd);
	return ret;
}

int mem_file_check_id(const char *mem_path, const char *state_path,
	const struct snap_id *state_id, char *err, size_t errlen)
{
	struct mem_id m;
	int fd = open(mem_path, O_RDONLY | O_CLOEXEC), ret;

	if (fd < 0)
		return 0; /* the memory builder opens it next and names the reason */
	ret = mem_id_read(fd, &m);
	close(fd);
	if (ret == -ENOTSUP) {
		warn_no_xattrs(mem_path);
		return 0;
	}
	if (ret) {
		snprintf(err, errlen, "memory file %s: cannot read its snapshot id: %s", mem_path,
			strerror(-ret));
		return ret;
	}
	return snap_id_check_pair(state_path, state_id, mem_path, &m, err, errlen);
}

/* The diff's id decides the merged base's: a diff of snapshot S carries S; once merged,
 * the base holds all of S's memory. A diff without an id leaves the base without one. */
static int merge_check_diff(int in, const char *base, const char *diff, struct mem_id *result,
	char *err, size_t errlen)
{
	struct mem_id d;
	int ret = mem_id_read(in, &d);

	*result = (struct mem_id){ .kind = MEM_ID_NONE };
	if (ret && ret != -ENOTSUP) {
		snprintf(err, errlen, "diff %s: cannot read its snapshot id: %s", diff,
			strerror(-ret));
		return ret;
	}
	switch (d.kind) {
	case MEM_ID_NONE:
		return 0;
	case MEM_ID_DIFF:
		*result = (struct mem_id){ .kind = MEM_ID_FULL, .id = d.id };
		return 0;
	case MEM_ID_FULL:
		snprintf(err, errlen, "%s is a full snapshot's memory file, not a diff: merging its "
			"holes would keep stale pages of %s", diff, base);
		return -EINVAL;
	default:
		snprintf(err, errlen, "diff %s: its %s attribute says it is not a usable diff",
			diff, SNAP_ID_XATTR);
		return -EINVAL;
	}
}

int mem_file_merge(const char *base, const char *diff, char *err, size_t errlen)
{
	int in = open(diff, O_RDONLY | O_CLOEXEC), out = -1, ret = 0;
	struct stat si, so;
	struct mem_id result;
	off_t data = 0, hole;
	bool tagged = false;
	static uint8_t buf[1 << 20];

	if (in < 0) {
		snprintf(err, errlen, "diff %s: %s", diff, strerror(errno));
		return -errno;
	}
	out = open(base, O_WRONLY | O_CLOEXEC);
	if (out < 0) {
		ret = -errno;
		snprintf(err, errlen, "base %s: %s", base, strerror(errno));
		goto out;
	}
	if (fstat(in, &si) < 0 || fstat(out, &so) < 0 || si.st_size != so.st_size) {
		ret = -EINVAL;
		snprintf(err, errlen, "diff %s and base %s differ in size: not a diff of that base",
			diff, base);
		goto out;
	}
	ret = merge_check_diff(in, base, diff, &result, err, errlen);
	if (ret)
		goto out;
	/* While pages are copied the base is neither snapshot: mark it so (durably, before
	 * the first page changes), and an interrupted merge is refused at restore. */
	ret = tag(out, base, &(struct mem_id){ .kind = MEM_ID_INCOMPLETE }, &tagged);
	if (!ret && tagged && fsync(out) < 0)
		ret = -errno;
	if (ret) {
		snprintf(err, errlen, "base %s: cannot mark it as being merged: %s", base,
			strerror(-ret));
		goto out;
	}
	while ((data = lseek(in, data, SEEK_DATA)) >= 0) {
		hole = lseek(in, data, SEEK_HOLE);
		if (hole < 0)
			break;
		while (data < hole) {
			size_t n = (size_t)(hole - data) < sizeof(buf) ? (size_t)(hole - data)
								       : sizeof(buf);
			ssize_t got = pread(in, buf, n, data);
			if (got <= 0 || pwrite_all(out, buf, (size_t)got, data)) {
				ret = -EIO;
				snprintf(err, errlen, "merging %s into %s: %s", diff, base,
					strerror(errno));
				goto out;
			}
			data += got;
		}
	}
	if (errno != ENXIO) {
		ret = -errno;
		snprintf(err, errlen, "diff %s: %s", diff, strerror(errno));
	} else if (fsync(out) < 0) {
		ret = -errno;
		snprintf(err, errlen, "base %s: %s", base, strerror(errno));
	} else if (tagged) {
		/* Data first, then the id that vouches for it. */
		ret = mem_id_write(out, &result);
		if (!ret && fsync(out) < 0)
			ret = -errno;
		if (ret)
			snprintf(err, errlen, "base %s: merged, but cannot set its snapshot id: %s",
				base, strerror(-ret));
	}
out:
	if (out >= 0)
		close(out);
	close(in);
	return ret;
}
