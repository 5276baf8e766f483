/* Raw-image block backend: preadv/pwritev/fsync on a file (O_RDONLY when read-only). */
#include "ember/block.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct block_file {
	struct block_backend be; /* first: the device model holds &be */
	int fd;
	uint64_t size;
};

static struct block_file *to_file(struct block_backend *b)
{
	return (struct block_file *)b;
}

/* Carry a transfer through short reads/writes and EINTR. `iov` is copied because a
 * partial transfer has to advance into it. */
static int transfer(int fd, uint64_t offset, const struct iovec *iov, unsigned iovcnt, bool write)
{
	struct iovec v[VIRTQ_MAX_SEGMENTS];
	unsigned first = 0;

	if (iovcnt > VIRTQ_MAX_SEGMENTS)
		return -EINVAL;
	memcpy(v, iov, iovcnt * sizeof(*iov));
	while (first < iovcnt) {
		int cnt = (int)(iovcnt - first) < IOV_MAX ? (int)(iovcnt - first) : IOV_MAX;
		ssize_t n;

		if (offset > (uint64_t)INT64_MAX)
			return -EINVAL;
		n = write ? pwritev(fd, v + first, cnt, (off_t)offset)
			  : preadv(fd, v + first, cnt, (off_t)offset);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0) {
			/* end of file on a read; a write that makes no progress */
			bool empty = v[first].iov_len == 0;
			if (!empty)
				return -EIO;
		}
		offset += (uint64_t)n;
		while (first < iovcnt && (size_t)n >= v[first].iov_len) {
			n -= (ssize_t)v[first].iov_len;
			first++;
		}
		if (first < iovcnt) {
			v[first].iov_base = (uint8_t *)v[first].iov_base + n;
			v[first].iov_len -= (size_t)n;
		}
	}
	return 0;
}

static int file_read(struct block_backend *b, uint64_t offset, const struct iovec *iov,
	unsigned iovcnt)
{
	return transfer(to_file(b)->fd, offset, iov, iovcnt, false);
}

static int file_write(struct block_backend *b, uint64_t offset, const struct iovec *iov,
	unsigned iovcnt)
{
	return transfer(to_file(b)->fd, offset, iov, iovcnt, true);
}

static int file_flush(struct block_backend *b)
{
	/* fsync, as Firecracker's flush (sync_all): the file's size and times too. */
	while (fsync(to_file(b)->fd) < 0) {
		if (errno != EINTR)
			return -errno;
	}
	return 0;
}

static int file_fd(const struct block_backend *b)
{
	return ((const struct block_file *)b)->fd;
}

static uint64_t file_size(const struct block_backend *b)
{
	return ((const struct block_file *)b)->size;
}

static void file_close(struct block_backend *b)
{
	struct block_file *f = to_file(b);

	if (!f)
		return;
	if (f->fd >= 0)
		close(f->fd);
	free(f);
}

static const struct block_backend_ops file_ops = {
	.read = file_read,
	.write = file_write,
	.flush = file_flush,
	.fd = file_fd,
	.size = file_size,
	.close = file_close,
};

int block_file_open(const char *drive_id, const char *path, bool read_only,
	struct block_backend **out, char *err, size_t errlen)
{
	struct block_file *f;
	struct stat st;
	int flags, ret;

	f = calloc(1, sizeof(*f));
	if (!f) {
		snprintf(err, errlen, "drive '%s': out of memory", drive_id);
		return -ENOMEM;
	}
	f->be.ops = &file_ops;
	/* O_NONBLOCK: open() of a FIFO with no writer would wait for one, holding up the
	 * control thread. The kind is checked on the descriptor itself (fstat below), not by a
	 * stat() of the path first, which another process could swap between the two. */
	f->fd = open(path, (read_only ? O_RDONLY : O_RDWR) | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
	if (f->fd < 0) {
		ret = -errno;
		snprintf(err, errlen, "drive '%s': cannot open %s: %s", drive_id, path,
			strerror(errno));
		goto err_free;
	}
	if (fstat(f->fd, &st) < 0) {
		ret = -errno;
		snprintf(err, errlen, "drive '%s': cannot stat %s: %s", drive_id, path,
			strerror(errno));
		goto err_close;
	}
	if (S_ISBLK(st.st_mode)) {
		off_t end = lseek(f->fd, 0, SEEK_END);
		if (end < 0) {
			ret = -errno;
			snprintf(err, errlen, "drive '%s': cannot size %s: %s", drive_id, path,
				strerror(errno));
			goto err_close;
		}
		f->size = (uint64_t)end;
	} else if (S_ISREG(st.st_mode)) {
		f->size = (uint64_t)st.st_size;
	} else {
		ret = -EINVAL;
		snprintf(err, errlen,
			"drive '%s': the block device backing file %s is not a "
			"regular file or a block device",
			drive_id, path);
		goto err_close;
	}
	/* Ordinary blocking I/O from here on, as for any file opened without the flag. */
	flags = fcntl(f->fd, F_GETFL);
	if (flags < 0 || fcntl(f->fd, F_SETFL, flags & ~O_NONBLOCK) < 0) {
		ret = -errno;
		snprintf(err, errlen, "drive '%s': cannot set flags on %s: %s", drive_id, path,
			strerror(errno));
		goto err_close;
	}
	*out = &f->be;
	return 0;

err_close:
	close(f->fd);
err_free:
	free(f);
	return ret;
}
