/* The snapshot state file container, reading: a whole file checked (size, magic,
 * version, CRC, every section header) before any section is handed out, then cursors
 * that bound every read. The writer is state_file.c. */
#include "ember/snapshot_file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ember/crc64.h"
#include "state_file_internal.h"

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

static int check_size(uint64_t len, const char *path, char *err, size_t errlen)
{
	if (len < SNAP_HEADER_SIZE + TRAILER_SIZE)
		return snap_file_fail(err, errlen, path, -EINVAL,
			"too short (%llu bytes, at least %u needed)", (unsigned long long)len,
			SNAP_HEADER_SIZE + TRAILER_SIZE);
	if (len > SNAP_MAX_FILE)
		return snap_file_fail(err, errlen, path, -EFBIG,
			"too large (%llu bytes, at most %u)", (unsigned long long)len,
			SNAP_MAX_FILE);
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
	if (get_le64(image + OFF_MAGIC) != SNAP_MAGIC) {
		ret = snap_file_fail(err, errlen, path, -EINVAL,
			"bad magic (not an ember snapshot)");
		goto err_free_image;
	}
	if (get_le16(image + OFF_MAJOR) != SNAP_MAJOR || get_le16(image + OFF_MINOR) > SNAP_MINOR) {
		ret = snap_file_fail(err, errlen, path, -ENOTSUP,
			"format version %u.%u, this ember reads %u.%u and older minors",
			(unsigned)get_le16(image + OFF_MAJOR),
			(unsigned)get_le16(image + OFF_MINOR), SNAP_MAJOR, SNAP_MINOR);
		goto err_free_image;
	}
	end = len - TRAILER_SIZE;
	if (crc64_jones(0, image, end) != get_le64(image + end)) {
		ret = snap_file_fail(err, errlen, path, -EINVAL, "CRC mismatch (file is corrupt)");
		goto err_free_image;
	}
	count = get_le32(image + OFF_COUNT);
	if (count > SNAP_MAX_SECTIONS) {
		ret = snap_file_fail(err, errlen, path, -EINVAL, "%u sections, at most %u allowed",
			count, SNAP_MAX_SECTIONS);
		goto err_free_image;
	}

	r = calloc(1, sizeof(*r));
	if (!r) {
		ret = snap_file_fail(err, errlen, path, -ENOMEM, "out of memory");
		goto err_free_image;
	}
	r->sections = calloc(count ? count : 1, sizeof(*r->sections));
	if (!r->sections) {
		ret = snap_file_fail(err, errlen, path, -ENOMEM, "out of memory");
		goto err_free_reader;
	}
	pos = SNAP_HEADER_SIZE;
	for (uint32_t i = 0; i < count; i++) {
		struct section *s = &r->sections[i];
		uint64_t slen;

		if (end - pos < SNAP_SECTION_HEADER_SIZE) {
			ret = snap_file_fail(err, errlen, path, -EINVAL,
				"section %u runs past the end", i);
			goto err_free_sections;
		}
		s->id = get_le32(image + pos);
		s->version = get_le32(image + pos + 4);
		slen = get_le64(image + pos + 8);
		pos += SNAP_SECTION_HEADER_SIZE;
		if (slen > end - pos) {
			ret = snap_file_fail(err, errlen, path, -EINVAL,
				"section %u (id %u) runs past the end", i, s->id);
			goto err_free_sections;
		}
		s->off = pos;
		s->len = (size_t)slen;
		pos += s->len;
	}
	if (pos != end) {
		ret = snap_file_fail(err, errlen, path, -EINVAL,
			"%zu unexpected bytes after the last section", end - pos);
		goto err_free_sections;
	}
	r->image = image;
	r->len = len;
	r->major = get_le16(image + OFF_MAJOR);
	r->minor = get_le16(image + OFF_MINOR);
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
		return snap_file_fail(err, errlen, NULL, -ENOMEM, "out of memory");
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
		return snap_file_fail(err, errlen, path, -e, "cannot open: %s", strerror(e));
	}
	if (fstat(fd, &st) < 0) {
		e = errno;
		ret = snap_file_fail(err, errlen, path, -e, "cannot stat: %s", strerror(e));
		goto err_close;
	}
	if (!S_ISREG(st.st_mode)) {
		ret = snap_file_fail(err, errlen, path, -EINVAL, "not a regular file");
		goto err_close;
	}
	ret = check_size((uint64_t)st.st_size, path, err, errlen); /* before reading anything */
	if (ret)
		goto err_close;
	buf = malloc((size_t)st.st_size);
	if (!buf) {
		ret = snap_file_fail(err, errlen, path, -ENOMEM, "out of memory");
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
			ret = snap_file_fail(err, errlen, path, -e, "cannot read: %s", strerror(e));
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
		*c = (struct snap_cursor){ .p = r->image + s->off,
			.left = s->len,
			.id = s->id,
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

	*v = get_le32(b);
	return ret;
}

int snap_get_u64(struct snap_cursor *c, uint64_t *v)
{
	uint8_t b[8];
	int ret = snap_get(c, b, sizeof(b));

	*v = get_le64(b);
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
