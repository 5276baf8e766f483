/* ember-uffd's working set file: parse, load, record, save (see working_set.h). */
#include "working_set.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define HEADER "ember-uffd working set 1"
#define PAGE 4096u

void working_set_free(struct working_set *ws)
{
	free(ws->pages);
	*ws = (struct working_set){ 0 };
}

int working_set_add(struct working_set *ws, uint64_t offset)
{
	if (ws->n == WORKING_SET_MAX)
		return 0;
	if (ws->n == ws->cap) {
		size_t cap = ws->cap ? ws->cap * 2 : 1024;
		uint64_t *p = realloc(ws->pages, cap * sizeof(*p));

		if (!p)
			return -ENOMEM;
		ws->pages = p;
		ws->cap = cap;
	}
	ws->pages[ws->n++] = offset;
	return 0;
}

/* One line's offset: 1 to 16 lowercase hex digits. */
static int parse_offset(const char *s, size_t len, uint64_t *out)
{
	uint64_t v = 0;

	if (!len || len > 16)
		return -1;
	for (size_t i = 0; i < len; i++) {
		char c = s[i];
		unsigned d = c >= '0' && c <= '9' ? (unsigned)(c - '0')
			: c >= 'a' && c <= 'f'    ? (unsigned)(c - 'a' + 10)
						  : 16;
		if (d == 16)
			return -1;
		v = v << 4 | d;
	}
	*out = v;
	return 0;
}

int working_set_parse(const char *text, size_t len, uint64_t mem_size, struct working_set *ws,
	char *err, size_t errlen)
{
	size_t pos = 0, line = 0;

	*ws = (struct working_set){ 0 };
	while (pos < len) {
		const char *s = text + pos, *nl = memchr(s, '\n', len - pos);
		size_t n = nl ? (size_t)(nl - s) : len - pos;
		uint64_t off;

		line++;
		pos += n + (nl != NULL);
		if (line == 1) {
			if (n != strlen(HEADER) || memcmp(s, HEADER, n)) {
				snprintf(err, errlen, "line 1: not \"%s\"", HEADER);
				goto bad;
			}
			continue;
		}
		if (parse_offset(s, n, &off)) {
			snprintf(err, errlen, "line %zu: '%.*s' is not a hex offset", line,
				(int)(n > 20 ? 20 : n), s);
			goto bad;
		}
		if (off % PAGE) {
			snprintf(err, errlen, "line %zu: 0x%" PRIx64 " is not page aligned", line,
				off);
			goto bad;
		}
		if (off >= mem_size) {
			snprintf(err, errlen,
				"line %zu: 0x%" PRIx64 " is past the memory file "
				"(%" PRIu64 " MiB)",
				line, off, mem_size >> 20);
			goto bad;
		}
		if (ws->n == WORKING_SET_MAX) {
			snprintf(err, errlen, "more than %u pages", WORKING_SET_MAX);
			goto bad;
		}
		if (working_set_add(ws, off)) {
			snprintf(err, errlen, "out of memory");
			working_set_free(ws);
			return -ENOMEM;
		}
	}
	if (!line) {
		snprintf(err, errlen, "empty, not \"%s\"", HEADER);
		goto bad;
	}
	return 0;
bad:
	working_set_free(ws);
	return -EINVAL;
}

int working_set_load(const char *path, uint64_t mem_size, struct working_set *ws, char *err,
	size_t errlen)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC), ret;
	char *buf = NULL, why[160];
	struct stat st;
	ssize_t n;

	*ws = (struct working_set){ 0 };
	if (fd < 0) {
		ret = -errno;
		snprintf(err, errlen, "working set %s: %s", path, strerror(errno));
		return ret;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) ||
		(uint64_t)st.st_size > WORKING_SET_FILE_MAX) {
		snprintf(err, errlen, "working set %s: not a regular file of at most %llu bytes",
			path, (unsigned long long)WORKING_SET_FILE_MAX);
		ret = -EINVAL;
		goto out;
	}
	buf = malloc((size_t)st.st_size + 1);
	if (!buf) {
		snprintf(err, errlen, "working set %s: out of memory", path);
		ret = -ENOMEM;
		goto out;
	}
	n = pread(fd, buf, (size_t)st.st_size, 0);
	if (n != st.st_size) {
		snprintf(err, errlen, "working set %s: short read", path);
		ret = -EIO;
		goto out;
	}
	ret = working_set_parse(buf, (size_t)n, mem_size, ws, why, sizeof(why));
	if (ret)
		snprintf(err, errlen, "working set %s: %s", path, why);
out:
	free(buf);
	close(fd);
	return ret;
}

int working_set_save(const char *path, const struct working_set *ws, char *err, size_t errlen)
{
	char tmp[4096];
	FILE *f;
	int ret = 0;

	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp.%d", path, (int)getpid()) >= sizeof(tmp)) {
		snprintf(err, errlen, "working set %s: path too long", path);
		return -ENAMETOOLONG;
	}
	f = fopen(tmp, "we");
	if (!f) {
		ret = -errno;
		snprintf(err, errlen, "working set %s: %s", tmp, strerror(errno));
		return ret;
	}
	fprintf(f, "%s\n", HEADER);
	for (size_t i = 0; i < ws->n; i++)
		fprintf(f, "%" PRIx64 "\n", ws->pages[i]);
	if (fflush(f) || ferror(f) || fsync(fileno(f)))
		ret = -(errno ? errno : EIO);
	if (fclose(f) && !ret)
		ret = -errno;
	if (!ret && rename(tmp, path) < 0)
		ret = -errno;
	if (ret) {
		snprintf(err, errlen, "working set %s: %s", path, strerror(-ret));
		unlink(tmp);
	}
	return ret;
}
