/* The snapshot state file container: section writer, atomic commit, checked reader. */
#include "ember/snapshot_file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define TRAILER_SIZE 8
#define STR_NULL 0xffffffffu
#define INITIAL_CAP 4096

/* Header field offsets. */
#define OFF_MAGIC 0
#define OFF_MAJOR 8
#define OFF_MINOR 10
#define OFF_COUNT 16

struct snap_writer {
	uint8_t *buf;
	size_t len;     /* header and sections so far; the trailer is not counted */
	size_t cap;     /* always >= len + TRAILER_SIZE, so finishing never allocates */
	size_t open_at; /* offset of the open section's header */
	bool open;
	uint32_t count; /* closed sections */
};

struct section {
	uint32_t id, version;
	size_t off, len; /* payload within the image */
};

struct snap_reader {
	uint8_t *image;
	size_t len;
	unsigned major, minor;
	unsigned count;
	struct section *sections;
};

static void put_le(uint8_t *p, uint64_t v, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get_le(const uint8_t *p, unsigned n)
{
	uint64_t v = 0;

	for (unsigned i = 0; i < n; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

/* "state file[ PATH]: <message>" into err; returns ret. */
__attribute__((format(printf, 5, 6))) static int fail(char *err, size_t errlen, const char *path,
	int ret, const char *fmt, ...)
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
	put_le(w->buf + OFF_MAGIC, SNAP_MAGIC, 8);
	put_le(w->buf + OFF_MAJOR, SNAP_MAJOR, 2);
	put_le(w->buf + OFF_MINOR, SNAP_MINOR, 2);
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
	put_le(w->buf + w->len, id, 4);
	put_le(w->buf + w->len + 4, version, 4);
	put_le(w->buf + w->len + 8, 0, 8); /* length, filled in by snap_section_end */
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

	put_le(b, v, 4);
	return snap_put(w, b, sizeof(b));
}

int snap_put_u64(struct snap_writer *w, uint64_t v)
{
	uint8_t b[8];

	put_le(b, v, 8);
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
	put_le(w->buf + w->len, n, 4);
	memcpy(w->buf + w->len + 4, s, n + 1);
	w->len += 4 + n + 1;
	return 0;
}

int snap_section_end(struct snap_writer *w)
{
	if (!w->open)
		return -EINVAL;
	put_le(w->buf + w->open_at + 8, w->len - w->open_at - SNAP_SECTION_HEADER_SIZE, 8);
	w->open = false;
	w->count++;
	return 0;
}

int snap_writer_image(struct snap_writer *w, const uint8_t **data, size_t *len)
{
	if (w->open)
		return -EINVAL;
	put_le(w->buf + OFF_COUNT, w->count, 4);
	/* The trailer sits just past len (reserve() keeps room for it); the next put
	 * overwrites it, hence "valid until the next writer call". */
	put_le(w->buf + w->len, crc64_jones(0, w->buf, w->len), TRAILER_SIZE);
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

int snap_writer_commit(struct snap_writer *w, const char *path, char *err, size_t errlen)
{
	const char *slash, *base;
	const uint8_t *data;
	char *dir, *tmp;
	size_t len;
	int dfd, fd, e, ret;

	ret = snap_writer_image(w, &data, &len);
	if (ret)
		return fail(err, errlen, path, ret, "a section is still open");
	slash = strrchr(path, '/');
	base = slash ? slash + 1 : path;
	if (*base == '\0')
		return fail(err, errlen, path, -EISDIR, "not a file name");
	if (!slash)
		dir = strdup(".");
	else if (slash == path)
		dir = strdup("/");
	else
		dir = strndup(path, (size_t)(slash - path));
	if (!dir)
		return fail(err, errlen, path, -ENOMEM, "out of memory");
	if (asprintf(&tmp, "%s.tmp.%ld", path, (long)getpid()) < 0) {
		ret = fail(err, errlen, path, -ENOMEM, "out of memory");
		goto err_free_dir;
	}

	/* Everything happens relative to one directory fd: the temporary and the final
	 * name are in the same directory, and the fd is there to fsync after the rename. */
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0) {
		e = errno;
		ret = fail(err, errlen, path, -e, "cannot open directory %s: %s", dir,
			strerror(e));
		goto err_free_tmp;
	}
	fd = openat(dfd, tmp + (base - path), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
		0600);
	if (fd < 0) {
		e = errno;
		ret = fail(err, errlen, path, -e, "cannot create %s: %s", tmp, strerror(e));
		goto err_close_dir;
	}
	ret = write_all(fd, data, len);
	if (ret) {
		fail(err, errlen, path, ret, "cannot write %s: %s", tmp, strerror(-ret));
		close(fd);
		goto err_unlink_tmp;
	}
	if (fsync(fd) < 0) {
		e = errno;
		ret = fail(err, errlen, path, -e, "cannot sync %s: %s", tmp, strerror(e));
		close(fd);
		goto err_unlink_tmp;
	}
	if (close(fd) < 0) {
		e = errno;
		ret = fail(err, errlen, path, -e, "cannot close %s: %s", tmp, strerror(e));
		goto err_unlink_tmp;
	}
	if (renameat(dfd, tmp + (base - path), dfd, base) < 0) {
		e = errno;
		ret = fail(err, errlen, path, -e, "cannot rename %s: %s", tmp, strerror(e));
		goto err_unlink_tmp;
	}
	/* Past the rename the new file is in place; a failed directory sync is still
	 * reported, because the rename may not survive a crash. */
	if (fsync(dfd) < 0) {
		e = errno;
		ret = fail(err, errlen, path, -e, "written, but cannot sync directory %s: %s",
			dir, strerror(e));
		goto err_close_dir;
	}
	close(dfd);
	free(tmp);
	free(dir);
	return 0;

err_unlink_tmp:
	unlinkat(dfd, tmp + (base - path), 0);
err_close_dir:
	close(dfd);
err_free_tmp:
	free(tmp);
err_free_dir:
	free(dir);
	return ret;
}

/* ---- reader ---- */

static int check_size(uint64_t len, const char *path, char *err, size_t errlen)
{
	if (len < SNAP_HEADER_SIZE + TRAILER_SIZE)
		return fail(err, errlen, path, -EINVAL,
			"too short (%llu bytes, at least %u needed)", (unsigned long long)len,
			SNAP_HEADER_SIZE + TRAILER_SIZE);
	if (len > SNAP_MAX_FILE)
		return fail(err, errlen, path, -EFBIG, "too large (%llu bytes, at most %u)",
			(unsigned long long)len, SNAP_MAX_FILE);
	return 0;
}

/* Check an image and index its sections. Takes ownership of `image` (freed on failure). */
static int parse_owned(struct snap_reader **out, uint8_t *image, size_t len, const char *path,
	char *err, size_t errlen)
{
	struct snap_reader *r;
	size_t pos, end;
	uint32_t count;
	int ret;

	*out = NULL;
	ret = check_size(len, path, err, errlen);
	if (ret)
		goto err_free_image;
	if (get_le(image + OFF_MAGIC, 8) != SNAP_MAGIC) {
		ret = fail(err, errlen, path, -EINVAL, "bad magic (not an ember snapshot)");
		goto err_free_image;
	}
	if (get_le(image + OFF_MAJOR, 2) != SNAP_MAJOR || get_le(image + OFF_MINOR, 2) > SNAP_MINOR) {
		ret = fail(err, errlen, path, -ENOTSUP,
			"format version %u.%u, this ember reads %u.%u and older minors",
			(unsigned)get_le(image + OFF_MAJOR, 2), (unsigned)get_le(image + OFF_MINOR, 2),
			SNAP_MAJOR, SNAP_MINOR);
		goto err_free_image;
	}
	end = len - TRAILER_SIZE;
	if (crc64_jones(0, image, end) != get_le(image + end, TRAILER_SIZE)) {
		ret = fail(err, errlen, path, -EINVAL, "CRC mismatch (file is corrupt)");
		goto err_free_image;
	}
	count = (uint32_t)get_le(image + OFF_COUNT, 4);
	if (count > SNAP_MAX_SECTIONS) {
		ret = fail(err, errlen, path, -EINVAL, "%u sections, at most %u allowed", count,
			SNAP_MAX_SECTIONS);
		goto err_free_image;
	}

	r = calloc(1, sizeof(*r));
	if (!r) {
		ret = fail(err, errlen, path, -ENOMEM, "out of memory");
		goto err_free_image;
	}
	r->sections = calloc(count ? count : 1, sizeof(*r->sections));
	if (!r->sections) {
		ret = fail(err, errlen, path, -ENOMEM, "out of memory");
		goto err_free_reader;
	}
	pos = SNAP_HEADER_SIZE;
	for (uint32_t i = 0; i < count; i++) {
		struct section *s = &r->sections[i];
		uint64_t slen;

		if (end - pos < SNAP_SECTION_HEADER_SIZE) {
			ret = fail(err, errlen, path, -EINVAL,
				"section %u runs past the end", i);
			goto err_free_sections;
		}
		s->id = (uint32_t)get_le(image + pos, 4);
		s->version = (uint32_t)get_le(image + pos + 4, 4);
		slen = get_le(image + pos + 8, 8);
		pos += SNAP_SECTION_HEADER_SIZE;
		if (slen > end - pos) {
			ret = fail(err, errlen, path, -EINVAL, "section %u (id %u) runs past the end",
				i, s->id);
			goto err_free_sections;
		}
		s->off = pos;
		s->len = (size_t)slen;
		pos += s->len;
	}
	if (pos != end) {
		ret = fail(err, errlen, path, -EINVAL, "%zu unexpected bytes after the last section",
			end - pos);
		goto err_free_sections;
	}
	r->image = image;
	r->len = len;
	r->major = (unsigned)get_le(image + OFF_MAJOR, 2);
	r->minor = (unsigned)get_le(image + OFF_MINOR, 2);
	r->count = count;
	*out = r;
	return 0;

err_free_sections:
	free(r->sections);
err_free_reader:
	free(r);
err_free_image:
	free(image);
	return ret;
}

int snap_reader_parse(struct snap_reader **out, const void *data, size_t len, char *err,
	size_t errlen)
{
	uint8_t *copy;
	int ret;

	*out = NULL;
	ret = check_size(len, NULL, err, errlen); /* before copying anything */
	if (ret)
		return ret;
	copy = malloc(len);
	if (!copy)
		return fail(err, errlen, NULL, -ENOMEM, "out of memory");
	memcpy(copy, data, len);
	return parse_owned(out, copy, len, NULL, err, errlen);
}

int snap_reader_open(struct snap_reader **out, const char *path, char *err, size_t errlen)
{
	struct stat st;
	uint8_t *buf;
	size_t got = 0;
	int fd, e, ret;

	*out = NULL;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		e = errno;
		return fail(err, errlen, path, -e, "cannot open: %s", strerror(e));
	}
	if (fstat(fd, &st) < 0) {
		e = errno;
		ret = fail(err, errlen, path, -e, "cannot stat: %s", strerror(e));
		goto err_close;
	}
	if (!S_ISREG(st.st_mode)) {
		ret = fail(err, errlen, path, -EINVAL, "not a regular file");
		goto err_close;
	}
	ret = check_size((uint64_t)st.st_size, path, err, errlen); /* before reading anything */
	if (ret)
		goto err_close;
	buf = malloc((size_t)st.st_size);
	if (!buf) {
		ret = fail(err, errlen, path, -ENOMEM, "out of memory");
		goto err_close;
	}
	/* A file that shrinks meanwhile is parsed as read (and then fails its checks); one
	 * that grows is read only up to the size checked above. */
	while (got < (size_t)st.st_size) {
		ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			e = errno;
			ret = fail(err, errlen, path, -e, "cannot read: %s", strerror(e));
			goto err_free_buf;
		}
		if (n == 0)
			break;
		got += (size_t)n;
	}
	close(fd);
	return parse_owned(out, buf, got, path, err, errlen);

err_free_buf:
	free(buf);
err_close:
	close(fd);
	return ret;
}

void snap_reader_free(struct snap_reader *r)
{
	if (!r)
		return;
	free(r->sections);
	free(r->image);
	free(r);
}

void snap_reader_version(const struct snap_reader *r, unsigned *major, unsigned *minor)
{
	if (major)
		*major = r->major;
	if (minor)
		*minor = r->minor;
}

unsigned snap_reader_count(const struct snap_reader *r)
{
	return r->count;
}

int snap_reader_find(const struct snap_reader *r, uint32_t id, unsigned n, struct snap_cursor *c)
{
	for (unsigned i = 0; i < r->count; i++) {
		const struct section *s = &r->sections[i];

		if (s->id != id || n-- > 0)
			continue;
		*c = (struct snap_cursor){ .p = r->image + s->off, .left = s->len, .id = s->id,
			.version = s->version };
		return 0;
	}
	*c = (struct snap_cursor){ .p = NULL, .left = 0, .id = id, .bad = true };
	return -ENOENT;
}

unsigned snap_reader_count_id(const struct snap_reader *r, uint32_t id)
{
	unsigned n = 0;

	for (unsigned i = 0; i < r->count; i++)
		n += r->sections[i].id == id;
	return n;
}

/* ---- cursors ---- */

int snap_get(struct snap_cursor *c, void *out, size_t len)
{
	if (c->bad || len > c->left) {
		/* Zero the output so a caller that checks `bad` only at the end never
		 * computes with uninitialised values meanwhile. */
		c->bad = true;
		if (len)
			memset(out, 0, len);
		return -EINVAL;
	}
	if (len) {
		memcpy(out, c->p, len);
		c->p += len;
		c->left -= len;
	}
	return 0;
}

int snap_get_u32(struct snap_cursor *c, uint32_t *v)
{
	uint8_t b[4];
	int ret = snap_get(c, b, sizeof(b));

	*v = (uint32_t)get_le(b, 4);
	return ret;
}

int snap_get_u64(struct snap_cursor *c, uint64_t *v)
{
	uint8_t b[8];
	int ret = snap_get(c, b, sizeof(b));

	*v = get_le(b, 8);
	return ret;
}

int snap_get_str(struct snap_cursor *c, const char **s, size_t max)
{
	uint32_t n;

	*s = NULL;
	if (snap_get_u32(c, &n))
		return -EINVAL;
	if (n == STR_NULL)
		return 0;
	/* n + 1 bytes needed: the string and its NUL, with no NUL before it. */
	if (n > max || n >= c->left || c->p[n] != '\0' || memchr(c->p, '\0', n)) {
		c->bad = true;
		return -EINVAL;
	}
	*s = (const char *)c->p;
	c->p += (size_t)n + 1;
	c->left -= (size_t)n + 1;
	return 0;
}
