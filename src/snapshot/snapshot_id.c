/* The snapshot id: state file section, memory file attribute, and the pairing verdict. */
#include "ember/snapshot_id.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/xattr.h>

#include "ember/snapshot_file.h"

/* Version 1: the id. Version 2: the id and a diff's parent. */
#define SECTION_VERSION 1
#define SECTION_VERSION_PARENT 2
#define DIFF_SUFFIX " diff"
#define INCOMPLETE "incomplete"
#define DIFF_LEN (SNAP_ID_HEX_LEN + sizeof(DIFF_SUFFIX) - 1)
#define DIFF_PARENT_LEN (DIFF_LEN + 1 + SNAP_ID_HEX_LEN)

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
	char hex[SNAP_ID_HEX_LEN + 1], parent[SNAP_ID_HEX_LEN + 2] = "";
	int n;

	switch (m->kind) {
	case MEM_ID_FULL:
	case MEM_ID_DIFF:
		snap_id_format(&m->id, hex);
		if (m->kind == MEM_ID_DIFF && m->has_parent) {
			parent[0] = ' ';
			snap_id_format(&m->parent, parent + 1);
		}
		n = snprintf(buf, len, "%s%s%s", hex, m->kind == MEM_ID_DIFF ? DIFF_SUFFIX : "",
			parent);
		break;
	case MEM_ID_INCOMPLETE:
		n = snprintf(buf, len, "%s", INCOMPLETE);
		break;
	default:
		return -EINVAL;
	}
	return n < 0 || (size_t)n >= len ? -ENOSPC : n;
}

/* 32 hex digits at `value` into *id; false if any is not one. */
static bool parse_hex_id(const char *value, struct snap_id *id)
{
	for (unsigned i = 0; i < SNAP_ID_BYTES; i++) {
		int hi = hex_digit(value[2 * i]), lo = hex_digit(value[2 * i + 1]);

		if (hi < 0 || lo < 0)
			return false;
		id->b[i] = (uint8_t)(hi << 4 | lo);
	}
	return true;
}

void mem_id_parse(const char *value, size_t len, struct mem_id *out)
{
	memset(out, 0, sizeof(*out));
	out->kind = MEM_ID_BAD;
	if (len == strlen(INCOMPLETE) && !memcmp(value, INCOMPLETE, len)) {
		out->kind = MEM_ID_INCOMPLETE;
		return;
	}
	if (len != SNAP_ID_HEX_LEN && len != DIFF_LEN && len != DIFF_PARENT_LEN)
		return;
	if (len > SNAP_ID_HEX_LEN &&
		memcmp(value + SNAP_ID_HEX_LEN, DIFF_SUFFIX, strlen(DIFF_SUFFIX)))
		return;
	if (len == DIFF_PARENT_LEN &&
		(value[DIFF_LEN] != ' ' || !parse_hex_id(value + DIFF_LEN + 1, &out->parent)))
		return;
	if (!parse_hex_id(value, &out->id))
		return;
	out->has_parent = len == DIFF_PARENT_LEN;
	out->kind = len > SNAP_ID_HEX_LEN ? MEM_ID_DIFF : MEM_ID_FULL;
}

/* ---- state file section ---- */

int snap_id_save(struct snap_writer *w, const struct snap_id *id, const struct snap_id *parent)
{
	int ret = snap_section_begin(w, SNAP_SEC_SNAPSHOT_ID,
		parent ? SECTION_VERSION_PARENT : SECTION_VERSION);

	if (!ret)
		ret = snap_put(w, id->b, SNAP_ID_BYTES);
	if (!ret && parent)
		ret = snap_put(w, parent->b, SNAP_ID_BYTES);
	return ret ? ret : snap_section_end(w);
}

int snap_id_load(const struct snap_reader *r, struct snap_id *id, bool *found,
	struct snap_id *parent, bool *has_parent, char *err, size_t errlen)
{
	struct snap_id ignored;
	struct snap_cursor cur;

	*found = false;
	memset(id, 0, sizeof(*id));
	if (!parent)
		parent = &ignored;
	memset(parent, 0, sizeof(*parent));
	if (has_parent)
		*has_parent = false;
	if (snap_reader_count_id(r, SNAP_SEC_SNAPSHOT_ID) == 0)
		return 0; /* written before snapshots had ids */
	if (snap_reader_count_id(r, SNAP_SEC_SNAPSHOT_ID) > 1) {
		snprintf(err, errlen, "state file: more than one snapshot id section");
		return -EINVAL;
	}
	if (snap_reader_find(r, SNAP_SEC_SNAPSHOT_ID, 0, &cur))
		return -EINVAL; /* counted above: cannot happen */
	/* A newer ember may add a binding of another kind; refusing it beats ignoring it. */
	if (cur.version != SECTION_VERSION && cur.version != SECTION_VERSION_PARENT) {
		snprintf(err, errlen,
			"state file: snapshot id section version %u, this ember "
			"reads %u and %u",
			cur.version, SECTION_VERSION, SECTION_VERSION_PARENT);
		return -EINVAL;
	}
	if (snap_get(&cur, id->b, SNAP_ID_BYTES) ||
		(cur.version == SECTION_VERSION_PARENT &&
			snap_get(&cur, parent->b, SNAP_ID_BYTES)) ||
		cur.left != 0) {
		memset(id, 0, sizeof(*id));
		memset(parent, 0, sizeof(*parent));
		snprintf(err, errlen, "state file: snapshot id section is malformed");
		return -EINVAL;
	}
	if (has_parent)
		*has_parent = cur.version == SECTION_VERSION_PARENT;
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

int snap_id_check_pair(const char *state_path, const struct snap_id *state_id, const char *mem_path,
	const struct mem_id *m, char *err, size_t errlen)
{
	char want[SNAP_ID_HEX_LEN + 1], have[SNAP_ID_HEX_LEN + 1];

	switch (m->kind) {
	case MEM_ID_NONE:
		return 0; /* Firecracker's file, an older ember's, or no xattrs there */
	case MEM_ID_INCOMPLETE:
		snprintf(err, errlen,
			"memory file %s is incomplete: a merge into it was "
			"interrupted",
			mem_path);
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
		snprintf(err, errlen,
			"snapshot mismatch: state file %s is snapshot %s, but memory "
			"file %s belongs to snapshot %s (a crash between writing the two, or files "
			"from different snapshots)",
			state_path, want, mem_path, have);
		return -EINVAL;
	}
	if (m->kind == MEM_ID_DIFF) {
		snprintf(err, errlen,
			"memory file %s holds only the pages snapshot %s dirtied: "
			"merge it onto its base (ember snapshot merge BASE %s) and restore state file "
			"%s with the base",
			mem_path, want, mem_path, state_path);
		return -EINVAL;
	}
	return 0;
}

/* The diff on its own: is it one, and what does the merged file become? */
static int check_merge_diff(const char *base_path, const char *diff_path, const struct mem_id *d,
	struct mem_id *result, char *err, size_t errlen)
{
	*result = (struct mem_id){ .kind = MEM_ID_NONE };
	switch (d->kind) {
	case MEM_ID_NONE:
		return 0;
	case MEM_ID_DIFF:
		*result = (struct mem_id){ .kind = MEM_ID_FULL, .id = d->id };
		return 0;
	case MEM_ID_FULL:
		snprintf(err, errlen,
			"%s is a full snapshot's memory file, not a diff: merging its "
			"holes would keep stale pages of %s",
			diff_path, base_path);
		return -EINVAL;
	default:
		snprintf(err, errlen, "diff %s: its %s attribute says it is not a usable diff",
			diff_path, SNAP_ID_XATTR);
		return -EINVAL;
	}
}

int snap_id_check_merge(const char *base_path, const struct mem_id *b, const char *diff_path,
	const struct mem_id *d, struct mem_id *result, char *err, size_t errlen)
{
	char base_hex[SNAP_ID_HEX_LEN + 1], diff_hex[SNAP_ID_HEX_LEN + 1];
	char parent_hex[SNAP_ID_HEX_LEN + 1];
	int ret = check_merge_diff(base_path, diff_path, d, result, err, errlen);

	if (ret)
		return ret;
	snap_id_format(&b->id, base_hex);
	snap_id_format(&d->id, diff_hex);
	snap_id_format(&d->parent, parent_hex);
	switch (b->kind) {
	case MEM_ID_NONE:
		return 0; /* Firecracker's file, or one that lost its attributes: unchecked */
	case MEM_ID_INCOMPLETE:
		snprintf(err, errlen, "base %s is incomplete: a merge into it was interrupted",
			base_path);
		return -EINVAL;
	case MEM_ID_BAD:
		snprintf(err, errlen, "base %s: its %s attribute is not a snapshot id", base_path,
			SNAP_ID_XATTR);
		return -EINVAL;
	case MEM_ID_DIFF:
		snprintf(err, errlen,
			"base %s is itself a diff (snapshot %s): merge %s onto the "
			"full memory of the snapshot it was taken after",
			base_path, base_hex, diff_path);
		return -EINVAL;
	case MEM_ID_FULL:
		break;
	}
	if (d->kind == MEM_ID_NONE)
		return 0; /* a diff from before ids: nothing to compare with, as before */
	if (!d->has_parent) {
		snprintf(err, errlen,
			"diff %s (snapshot %s) records no parent (a diff of a "
			"freshly booted VM, or one written before diffs recorded their parent): it "
			"holds the pages dirtied since boot, not since snapshot %s (%s)",
			diff_path, diff_hex, base_hex, base_path);
		return -EINVAL;
	}
	if (!snap_id_equal(&d->parent, &b->id)) {
		snprintf(err, errlen,
			"wrong base: diff %s (snapshot %s) was taken after snapshot "
			"%s, but %s holds snapshot %s (merge diffs in the order they were taken, onto "
			"the memory of the snapshot before the first)",
			diff_path, diff_hex, parent_hex, base_path, base_hex);
		return -EINVAL;
	}
	return 0;
}
