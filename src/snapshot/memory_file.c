/* Snapshot memory file: full (holes for untouched zero pages) and diff (dirty pages only),
 * the merge of a diff onto its base, and the id checks around both. */
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

#include "ember/clock.h"
#include "ember/guest_mem.h"
#include "ember/log.h"
#include "ember/page_scan.h"
#include "ember/snapshot_id.h"
#include "ember/snapshot_publish.h"

#define BITS_PER_LONG (sizeof(unsigned long) * CHAR_BIT)

/* A file system without user xattrs cannot carry the snapshot id: snapshots there work,
 * unchecked. Said once per process, not at every snapshot. */
static void warn_no_xattrs(const char *path)
{
	static atomic_bool warned;

	if (!atomic_exchange(&warned, true))
		log_warn("memory file %s: the file system refuses extended attributes, so memory "
			 "files there carry no snapshot id and restores cannot check that state and "
			 "memory belong together",
			path);
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

/* The first page at or after `p` (below `end`) whose bit equals `set`, a word at a
 * time: a diff's bitmap is mostly zero words, a full one's mostly all-ones. */
static uint64_t next_bit(const unsigned long *map, uint64_t p, uint64_t end, bool set)
{
	while (p < end) {
		unsigned long w = map[p / BITS_PER_LONG];

		w = (set ? w : ~w) & (~0UL << (p % BITS_PER_LONG));
		if (w) {
			p = p - p % BITS_PER_LONG + (uint64_t)__builtin_ctzl(w);
			return p < end ? p : end;
		}
		p += BITS_PER_LONG - p % BITS_PER_LONG;
	}
	return end;
}

/* A diff's writes go out in pieces of this size, each handed to the disk as soon as it is
 * in the page cache: the fsync at the end then waits for the last piece instead of all of
 * them (10 MiB: copy 3.8 ms, then fsync 8.8 ms, one after the other, before). 1 MiB, not
 * 4: the last piece is smaller (1% of 1 GiB, 3x20 diffs interleaved: median 5.5, 7.9, 6.7
 * ms with fsync against 7.2, 9.5, 8.4; 256 KiB was no better than 1 MiB). Full
 * snapshots write without: their figure is the page cache rate with the fsync reported
 * apart, which write-behind folds into the writes (1 GiB, one bench run each on the busy
 * machine: 835 ms + 6 ms fsync with it, 2595 ms + 652 ms without). */
#define WRITE_BEHIND (1u << 20)

static int pwrite_all(int fd, const uint8_t *buf, size_t len, off_t off, bool behind)
{
	while (len) {
		ssize_t n = pwrite(fd, buf, behind && len > WRITE_BEHIND ? WRITE_BEHIND : len, off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : -EIO;
		/* Start writeback only (no wait, no metadata): durability is still the fsync's.
		 * A filesystem that cannot do this loses only the overlap. */
		if (behind)
			(void)sync_file_range(fd, off, n, SYNC_FILE_RANGE_WRITE);
		buf += n;
		len -= (size_t)n;
		off += n;
	}
	return 0;
}

/* Write the pages whose bit is set in `want` (all of them when NULL); runs of wanted
 * pages become one pwrite each, written behind for a diff. */
static int write_region(int fd, const struct guest_mem_region *r, const unsigned long *want,
	bool behind, struct mem_file_stats *st)
{
	uint64_t pages = r->size / MEM_FILE_PAGE, start = 0, stop;
	int ret;

	while ((start = want ? next_bit(want, start, pages, true) : start) < pages) {
		stop = want ? next_bit(want, start, pages, false) : pages;
		ret = pwrite_all(fd, r->host + start * MEM_FILE_PAGE,
			(stop - start) * MEM_FILE_PAGE,
			(off_t)(r->file_offset + start * MEM_FILE_PAGE), behind);
		if (ret)
			return ret;
		st->pages_written += stop - start;
		st->bytes_written += (stop - start) * MEM_FILE_PAGE;
		start = stop;
	}
	return 0;
}

/* Region i of a full snapshot: memory that came from zero pages leaves the pages that
 * hold no data as holes (page_scan.h says how a swapped-out page is told from an
 * untouched one); other memory is written whole. */
static int write_full_region(int fd, const struct guest_mem *gm, unsigned i, bool holes_are_zero,
	struct mem_file_stats *st)
{
	unsigned long *data;
	int ret;

	if (!holes_are_zero)
		return write_region(fd, &gm->regions[i], NULL, false, st);
	data = calloc(1, guest_mem_bitmap_bytes(gm->regions[i].size));
	if (!data)
		return -ENOMEM;
	ret = page_scan_region(gm, i, data);
	if (!ret)
		ret = write_region(fd, &gm->regions[i], data, false, st);
	free(data);
	return ret;
}

int mem_file_write(const struct guest_mem *gm, const char *path, unsigned long *const *dirty,
	bool holes_are_zero, const struct mem_id *id, struct mem_file_stats *stats, char *err,
	size_t errlen)
{
	struct mem_file_stats st = { 0 };
	/* O_EXCL | O_NOFOLLOW: never write through a file or symlink someone left there. */
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600), ret = 0;
	bool tagged;

	if (fd < 0 && errno == EEXIST) {
		snprintf(err, errlen,
			"memory file %s: the name exists already (left by an "
			"interrupted snapshot?); it is not overwritten: remove it",
			path);
		return -EEXIST;
	}
	if (fd < 0) {
		snprintf(err, errlen, "memory file %s: %s", path, strerror(errno));
		return -errno;
	}
	if (ftruncate(fd, (off_t)gm->total) < 0) {
		ret = -errno;
		goto fail;
	}
	for (unsigned i = 0; !ret && i < gm->nr_regions; i++)
		ret = dirty ? write_region(fd, &gm->regions[i], dirty[i], true, &st)
			    : write_full_region(fd, gm, i, holes_are_zero, &st);
	/* The id goes on before the fsync, which makes it as durable as the data. */
	if (!ret && id)
		ret = tag(fd, path, id, &tagged);
	uint64_t t0 = mono_ns();
	if (!ret && fsync(fd) < 0)
		ret = -errno;
	st.fsync_us = (mono_ns() - t0) / 1000;
	if (ret)
		goto fail;
	close(fd);
	if (stats)
		*stats = st;
	return 0;
fail:
	snprintf(err, errlen, "memory file %s: %s", path, strerror(-ret));
	close(fd);
	unlink(path);
	return ret;
}

int mem_file_check_id(const char *mem_path, const char *state_path, const struct snap_id *state_id,
	char *err, size_t errlen)
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

/* ---- merge ---- */

/* Copy [off, off+len) of `in` to the same offset of `out`: copy_file_range (which a file
 * system may do by sharing blocks), or read and write where it cannot be used. */
static int copy_range(int in, int out, off_t off, off_t len)
{
	static uint8_t buf[1 << 20];
	bool plain = false;

	while (len > 0) {
		loff_t from = off, to = off;
		ssize_t n = -1;

		if (!plain) {
			n = copy_file_range(in, &from, out, &to, (size_t)len, 0);
			if (n < 0 &&
				(errno == EXDEV || errno == EINVAL || errno == ENOSYS ||
					errno == EOPNOTSUPP)) {
				plain = true;
				continue;
			}
		} else {
			n = pread(in, buf, (size_t)len < sizeof(buf) ? (size_t)len : sizeof(buf),
				off);
			if (n > 0) {
				int ret = pwrite_all(out, buf, (size_t)n, off, false);
				if (ret)
					return ret;
			}
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : -EIO; /* the file shrank under us */
		off += n;
		len -= n;
	}
	return 0;
}

/* Copy every data extent of `in` (SEEK_DATA / SEEK_HOLE) to the same offsets of `out`;
 * holes are skipped, so they stay holes in a new file and keep what `out` had else. */
static int copy_extents(int in, int out)
{
	off_t data = 0, hole;
	int ret;

	for (;;) {
		data = lseek(in, data, SEEK_DATA);
		if (data < 0)
			return errno == ENXIO ? 0 : -errno; /* ENXIO: no data after here */
		hole = lseek(in, data, SEEK_HOLE);
		if (hole < 0)
			return -errno;
		ret = copy_range(in, out, data, hole - data);
		if (ret)
			return ret;
		data = hole;
	}
}

/* The id of an open memory file for a merge; no xattrs there reads as none. */
static int read_id(int fd, const char *what, const char *path, struct mem_id *m, char *err,
	size_t errlen)
{
	int ret = mem_id_read(fd, m);

	if (ret && ret != -ENOTSUP) {
		snprintf(err, errlen, "%s %s: cannot read its snapshot id: %s", what, path,
			strerror(-ret));
		return ret;
	}
	return 0;
}

/* Build the merged file at `tmp`: the base's data extents, the diff's over them, the id,
 * fsync. Nothing here touches the base. */
static int merge_into(int base_fd, int diff_fd, const struct stat *st, const char *tmp,
	const struct mem_id *result, char *err, size_t errlen)
{
	int out = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
		    st->st_mode & 07777),
	    ret = 0;
	bool tagged;

	if (out < 0 && errno == EEXIST) {
		snprintf(err, errlen,
			"merge: cannot create %s: the name exists already (left by "
			"an interrupted merge?); it is not overwritten: remove it",
			tmp);
		return -EEXIST;
	}
	if (out < 0) {
		snprintf(err, errlen, "merge: cannot create %s: %s", tmp, strerror(errno));
		return -errno;
	}
	if (ftruncate(out, st->st_size) < 0)
		ret = -errno;
	if (!ret)
		ret = copy_extents(base_fd, out);
	if (!ret)
		ret = copy_extents(diff_fd, out);
	if (!ret && result->kind != MEM_ID_NONE)
		ret = tag(out, tmp, result, &tagged);
	if (!ret && fsync(out) < 0)
		ret = -errno;
	if (ret) {
		snprintf(err, errlen, "merge: writing %s: %s", tmp, strerror(-ret));
		unlink(tmp);
	}
	close(out);
	return ret;
}

int mem_file_merge(const char *base, const char *diff, char *err, size_t errlen)
{
	int in = open(diff, O_RDONLY | O_CLOEXEC), old = -1, ret;
	struct mem_id b, d, result;
	struct stat si, so;
	char *tmp = NULL;

	if (in < 0) {
		snprintf(err, errlen, "diff %s: %s", diff, strerror(errno));
		return -errno;
	}
	old = open(base, O_RDONLY | O_CLOEXEC);
	if (old < 0) {
		ret = -errno;
		snprintf(err, errlen, "base %s: %s", base, strerror(errno));
		goto out;
	}
	if (fstat(in, &si) < 0 || fstat(old, &so) < 0 || si.st_size != so.st_size) {
		ret = -EINVAL;
		snprintf(err, errlen, "diff %s and base %s differ in size: not a diff of that base",
			diff, base);
		goto out;
	}
	ret = read_id(in, "diff", diff, &d, err, errlen);
	if (!ret)
		ret = read_id(old, "base", base, &b, err, errlen);
	if (!ret)
		ret = snap_id_check_merge(base, &b, diff, &d, &result, err, errlen);
	if (ret)
		goto out;
	if (asprintf(&tmp, "%s.tmp.%ld", base, (long)getpid()) < 0) {
		tmp = NULL;
		ret = -ENOMEM;
		snprintf(err, errlen, "merge: out of memory");
		goto out;
	}
	/* A new file, renamed over the base once it is whole and durable: a crash before
	 * the rename leaves the old base as it was (it restores with its own state file),
	 * and a clone that maps the old base keeps its inode, which nothing writes. */
	ret = merge_into(old, in, &so, tmp, &result, err, errlen);
	if (ret)
		goto out; /* merge_into removed its file, and left alone one it did not create */
	ret = snap_publish(tmp, base, NULL, NULL, err, errlen);
	if (ret)
		unlink(tmp); /* ours: not renamed, or gone already if only the sync failed */
out:
	free(tmp);
	if (old >= 0)
		close(old);
	close(in);
	return ret;
}
