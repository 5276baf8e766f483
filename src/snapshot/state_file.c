/* The snapshot state file container, writing: sections built in memory, then written
 * and synced to a new file; snap_publish puts it in place. The reader is
 * state_file_read.c. */
#include "ember/snapshot_file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ember/crc64.h"
#include "state_file_internal.h"

#define INITIAL_CAP 4096

struct snap_writer {
	uint8_t *buf;
	size_t len;     /* header and sections so far; the trailer is not counted */
	size_t cap;     /* always >= len + TRAILER_SIZE, so finishing never allocates */
	size_t open_at; /* offset of the open section's header */
	bool open;
	uint32_t count; /* closed sections */
};

/* The message format of every failure, for both halves (state_file_internal.h). */
int snap_file_fail(char *err, size_t errlen, const char *path, int ret, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (!err || errlen == 0)
		return ret;
	n = snprintf(err, errlen, "state file%s%s: ", path ? " " : "", path ? path : "");
	if (n < 0 || (size_t)n >= errlen)
		return ret;
	va_start(ap, fmt);
	vsnprintf(err + n, errlen - (size_t)n, fmt, ap);
	va_end(ap);
	return ret;
}

/* ---- writer ---- */

struct snap_writer *snap_writer_new(void)
{
	struct snap_writer *w = calloc(1, sizeof(*w));

	if (!w)
		return NULL;
	w->buf = malloc(INITIAL_CAP);
	if (!w->buf) {
		free(w);
		return NULL;
	}
	w->cap = INITIAL_CAP;
	memset(w->buf, 0, SNAP_HEADER_SIZE);
	put_le64(w->buf + OFF_MAGIC, SNAP_MAGIC);
	put_le16(w->buf + OFF_MAJOR, SNAP_MAJOR);
	put_le16(w->buf + OFF_MINOR, SNAP_MINOR);
	w->len = SNAP_HEADER_SIZE;
	return w;
}

void snap_writer_free(struct snap_writer *w)
{
	if (!w)
		return;
	free(w->buf);
	free(w);
}

/* Room for `more` bytes plus the trailer. The image never outgrows SNAP_MAX_FILE, so a
 * writer cannot produce a file its own reader would refuse. */
static int reserve(struct snap_writer *w, size_t more)
{
	size_t need, cap;
	uint8_t *p;

	if (more > SNAP_MAX_FILE - TRAILER_SIZE - w->len)
		return -EFBIG;
	need = w->len + more + TRAILER_SIZE;
	if (need <= w->cap)
		return 0;
	for (cap = w->cap; cap < need; cap *= 2)
		;
	p = realloc(w->buf, cap);
	if (!p)
		return -ENOMEM;
	w->buf = p;
	w->cap = cap;
	return 0;
}

int snap_section_begin(struct snap_writer *w, uint32_t id, uint32_t version)
{
	int ret;

	if (w->open)
		return -EINVAL;
	if (w->count >= SNAP_MAX_SECTIONS)
		return -E2BIG;
	ret = reserve(w, SNAP_SECTION_HEADER_SIZE);
	if (ret)
		return ret;
	put_le32(w->buf + w->len, id);
	put_le32(w->buf + w->len + 4, version);
	put_le64(w->buf + w->len + 8, 0); /* length, filled in by snap_section_end */
	w->open_at = w->len;
	w->len += SNAP_SECTION_HEADER_SIZE;
	w->open = true;
	return 0;
}

int snap_put(struct snap_writer *w, const void *data, size_t len)
{
	int ret;

	if (!w->open)
		return -EINVAL;
	if (len == 0)
		return 0;
	ret = reserve(w, len);
	if (ret)
		return ret;
	memcpy(w->buf + w->len, data, len);
	w->len += len;
	return 0;
}

int snap_put_u32(struct snap_writer *w, uint32_t v)
{
	uint8_t b[4];

	put_le32(b, v);
	return snap_put(w, b, sizeof(b));
}

int snap_put_u64(struct snap_writer *w, uint64_t v)
{
	uint8_t b[8];

	put_le64(b, v);
	return snap_put(w, b, sizeof(b));
}

int snap_put_str(struct snap_writer *w, const char *s)
{
	size_t n;
	int ret;

	if (!s)
		return snap_put_u32(w, STR_NULL);
	if (!w->open)
		return -EINVAL;
	n = strlen(s);
	if (n > SNAP_MAX_FILE)
		return -EFBIG;
	/* Reserve the whole string first so a failure leaves no half-written string. */
	ret = reserve(w, 4 + n + 1);
	if (ret)
		return ret;
	put_le32(w->buf + w->len, n);
	memcpy(w->buf + w->len + 4, s, n + 1);
	w->len += 4 + n + 1;
	return 0;
}

int snap_section_end(struct snap_writer *w)
{
	if (!w->open)
		return -EINVAL;
	put_le64(w->buf + w->open_at + 8, w->len - w->open_at - SNAP_SECTION_HEADER_SIZE);
	w->open = false;
	w->count++;
	return 0;
}

int snap_writer_image(struct snap_writer *w, const uint8_t **data, size_t *len)
{
	if (w->open)
		return -EINVAL;
	put_le32(w->buf + OFF_COUNT, w->count);
	/* The trailer sits just past len (reserve() keeps room for it); the next put
	 * overwrites it, hence "valid until the next writer call". */
	put_le64(w->buf + w->len, crc64_jones(0, w->buf, w->len));
	*data = w->buf;
	*len = w->len + TRAILER_SIZE;
	return 0;
}

static int write_all(int fd, const uint8_t *p, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -EIO;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int snap_writer_write(struct snap_writer *w, const char *path, char *err, size_t errlen)
{
	const char *slash = strrchr(path, '/');
	const uint8_t *data;
	size_t len;
	int fd, e, ret;

	ret = snap_writer_image(w, &data, &len);
	if (ret)
		return snap_file_fail(err, errlen, path, ret, "a section is still open");
	if (*(slash ? slash + 1 : path) == '\0')
		return snap_file_fail(err, errlen, path, -EISDIR, "not a file name");
	/* O_EXCL | O_NOFOLLOW: never write through a file or symlink someone left there. */
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0) {
		e = errno;
		return snap_file_fail(err, errlen, path, -e, "cannot create: %s",
			e == EEXIST ? "the name exists already (left by an interrupted snapshot?); "
				      "it is not overwritten: remove it"
				    : strerror(e));
	}
	ret = write_all(fd, data, len);
	if (ret) {
		snap_file_fail(err, errlen, path, ret, "cannot write: %s", strerror(-ret));
		close(fd);
		goto err_unlink;
	}
	if (fsync(fd) < 0) {
		e = errno;
		ret = snap_file_fail(err, errlen, path, -e, "cannot sync: %s", strerror(e));
		close(fd);
		goto err_unlink;
	}
	if (close(fd) < 0) {
		e = errno;
		ret = snap_file_fail(err, errlen, path, -e, "cannot close: %s", strerror(e));
		goto err_unlink;
	}
	return 0;

err_unlink:
	unlink(path); /* ours: O_EXCL created it */
	return ret;
}
