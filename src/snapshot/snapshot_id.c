/* The snapshot id: state file section, memory file attribute, and the pairing verdict. */
#include "ember/snapshot_id.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/xattr.h>

#include "ember/snapshot_file.h"

#define SECTION_VERSION 1
#define DIFF_SUFFIX " diff"
#define INCOMPLETE "incomplete"

int snap_id_generate(struct snap_id *id)
{
	size_t got = 0;

	while (got < sizeof(id->b)) {
		ssize_t n = getrandom(id->b + got, sizeof(id->b) - got, 0);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		got += (size_t)n;
	}
	return 0;
}

void snap_id_format(const struct snap_id *id, char out[SNAP_ID_HEX_LEN + 1])
{
	static const char hex[] = "0123456789abcdef";

	for (unsigned i = 0; i < SNAP_ID_BYTES; i++) {
		out[2 * i] = hex[id->b[i] >> 4];
		out[2 * i + 1] = hex[id->b[i] & 15];
	}
	out[SNAP_ID_HEX_LEN] = '\0';
}

bool snap_id_equal(const struct snap_id *a, const struct snap_id *b)
{
	return memcmp(a->b, b->b, SNAP_ID_BYTES) == 0;
}

static int hex_digit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1; /* upper case is never written, so never accepted */
}

int mem_id_format(const struct mem_id *m, char *buf, size_t len)
{
	char hex[SNAP_ID_HEX_LEN + 1];
	int n;

	switch (m->kind) {
	case MEM_ID_FULL:
	case MEM_ID_DIFF:
		snap_id_format(&m->id, hex);
		n = snprintf(buf, len, "%s%s", hex, m->kind == MEM_ID_DIFF ? DIFF_SUFFIX : "");
		break;
	case MEM_ID_INCOMPLETE:
		n = snprintf(buf, len, "%s", INCOMPLETE);
		break;
	default:
		return -EINVAL;
	}
	return n < 0 || (size_t)n >= len ? -ENOSPC : n;
}

void mem_id_parse(const char *value, size_t len, struct mem_id *out)
{
	memset(out, 0, sizeof(*out));
	out->kind = MEM_ID_BAD;
	if (len == strlen(INCOMPLETE) && !memcmp(value, INCOMPLETE, len)) {
		out->kind = MEM_ID_INCOMPLETE;
		return;
	}
	if (len != SNAP_ID_HEX_LEN && len != SNAP_ID_HEX_LEN + strlen(DIFF_SUFFIX))
		return;
	if (len > SNAP_ID_HEX_LEN && memcmp(value + SNAP_ID_HEX_LEN, DIFF_SUFFIX,
					     strlen(DIFF_SUFFIX)))
		return;
	for (unsigned i = 0; i < SNAP_ID_BYTES; i++) {
		int hi = hex_digit(value[2 * i]), lo = hex_digit(value[2 * i + 1]);

		if (hi < 0 || lo < 0)
			return;
		out->id.b[i] = (uint8_t)(hi << 4 | lo);
	}
	out->kind = len > SNAP_ID_HEX_LEN ? MEM_ID_DIFF : MEM_ID_FULL;
}

/* ---- state file section ---- */

int snap_id_save(struct snap_writer *w, const struct snap_id *id)
{
	int ret = snap_section_begin(w, SNAP_SEC_SNAPSHOT_ID, SECTION_VERSION);

	if (!ret)
		ret = snap_put(w, id->b, SNAP_ID_BYTES);
	return ret ? ret : snap_section_end(w);
}

int snap_id_load(const struct snap_reader *r, struct snap_id *id, bool *found, char *err,
	size_t errlen)
{
	struct snap_cursor cur;

	*found = false;
	memset(id, 0, sizeof(*id));
	if (snap_reader_count_id(r, SNAP_SEC_SNAPSHOT_ID) == 0)
		return 0; /* written before snapshots had ids */
	if (snap_reader_count_id(r, SNAP_SEC_SNAPSHOT_ID) > 1) {
		snprintf(err, errlen, "state file: more than one snapshot id section");
		return -EINVAL;
	}
	if (snap_reader_find(r, SNAP_SEC_SNAPSHOT_ID, 0, &cur))
		return -EINVAL; /* counted above: cannot happen */
	/* A newer ember may add a binding of another kind; refusing it beats ignoring it. */
	if (cur.version != SECTION_VERSION) {
		snprintf(err, errlen, "state file: snapshot id section version %u, this ember "
			"reads %u", cur.version, SECTION_VERSION);
		return -EINVAL;
	}
	if (snap_get(&cur, id->b, SNAP_ID_BYTES) || cur.left != 0) {
		snprintf(err, errlen, "state file: snapshot id section is malformed");
		return -EINVAL;
	}
	*found = true;
	return 0;
}

/* ---- memory file attribute ---- */

int mem_id_read(int fd, struct mem_id *out)
{
	char value[SNAP_ID_VALUE_MAX];
	ssize_t n = fgetxattr(fd, SNAP_ID_XATTR, value, sizeof(value));

	memset(out, 0, sizeof(*out));
	out->kind = MEM_ID_NONE;
	if (n < 0 && errno == ENODATA)
		return 0;
	if (n < 0 && errno == ERANGE) {
		out->kind = MEM_ID_BAD; /* longer than any value ember writes */
		return 0;
	}
	if (n < 0)
		return errno == ENOTSUP ? -ENOTSUP : -errno;
	mem_id_parse(value, (size_t)n, out);
	return 0;
}

int mem_id_write(int fd, const struct mem_id *m)
{
	char value[SNAP_ID_VALUE_MAX];
	int n;

	if (m->kind == MEM_ID_NONE) {
		if (fremovexattr(fd, SNAP_ID_XATTR) < 0 && errno != ENODATA)
			return -errno;
		return 0;
	}
	n = mem_id_format(m, value, sizeof(value));
	if (n < 0)
		return n;
	return fsetxattr(fd, SNAP_ID_XATTR, value, (size_t)n, 0) < 0 ? -errno : 0;
}

/* ---- the verdict ---- */

int snap_id_check_pair(const char *state_path, const struct snap_id *state_id,
	const char *mem_path, const struct mem_id *m, char *err, size_t errlen)
{
	char want[SNAP_ID_HEX_LEN + 1], have[SNAP_ID_HEX_LEN + 1];

	switch (m->kind) {
	case MEM_ID_NONE:
		return 0; /* Firecracker's file, an older ember's, or no xattrs there */
	case MEM_ID_INCOMPLETE:
		snprintf(err, errlen, "memory file %s is incomplete: a merge into it was "
			"interrupted", mem_path);
		return -EINVAL;
	case MEM_ID_BAD:
		snprintf(err, errlen, "memory file %s: its %s attribute is not a snapshot id",
			mem_path, SNAP_ID_XATTR);
		return -EINVAL;
	case MEM_ID_FULL:
	case MEM_ID_DIFF:
		break;
	}
	if (!state_id)
		return 0; /* a state file from before ids: nothing to compare with */
	snap_id_format(state_id, want);
	snap_id_format(&m->id, have);
	if (!snap_id_equal(state_id, &m->id)) {
		snprintf(err, errlen, "snapshot mismatch: state file %s is snapshot %s, but memory "
			"file %s belongs to snapshot %s (a crash between writing the two, or files "
			"from different snapshots)", state_path, want, mem_path, have);
		return -EINVAL;
	}
	if (m->kind == MEM_ID_DIFF) {
		snprintf(err, errlen, "memory file %s holds only the pages snapshot %s dirtied: "
			"merge it onto its base (ember snapshot merge BASE %s) and restore state file "
			"%s with the base", mem_path, want, mem_path, state_path);
		return -EINVAL;
	}
	return 0;
}
