/* The userfaultfd handshake message: encoding (ember) and checked parsing (ember-uffd). */
#include "ember/uffd.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#define MIN_PAGE 4096
/* 2^53: above this a JSON number read as a double is no longer an exact integer. */
#define EXACT_LIMIT 9007199254740992.0

static const char *const FIELDS[] = {
	"base_host_virt_addr",
	"size",
	"offset",
	"page_size",
	"page_size_kib",
};

int uffd_handshake_encode(const struct uffd_region *r, unsigned n, char *buf, size_t len)
{
	size_t used = 0;
	int w;

	for (unsigned i = 0; i <= n; i++) {
		if (used >= len)
			return -ENOSPC;
		if (i == n)
			w = snprintf(buf + used, len - used, "%s]", n == 0 ? "[" : "");
		else
			w = snprintf(buf + used, len - used,
				"%s{\"base_host_virt_addr\":%" PRIu64 ",\"size\":%" PRIu64
				",\"offset\":%" PRIu64 ",\"page_size\":%" PRIu64
				",\"page_size_kib\":%" PRIu64 "}",
				i == 0 ? "[" : ",", r[i].base_host_virt_addr, r[i].size,
				r[i].offset, r[i].page_size, r[i].page_size_kib);
		if (w < 0 || (size_t)w >= len - used)
			return -ENOSPC;
		used += (size_t)w;
	}
	return used > INT_MAX ? -ENOSPC : (int)used;
}

/* Read field `name` of region `i` as an exact non-negative integer. */
static int get_u64(const cJSON *obj, unsigned i, const char *name, uint64_t *out, char *err,
	size_t errlen)
{
	const cJSON *f = cJSON_GetObjectItemCaseSensitive(obj, name);
	double d;

	if (!f) {
		snprintf(err, errlen, "region %u: missing field '%s'", i, name);
		return -EINVAL;
	}
	if (!cJSON_IsNumber(f)) {
		snprintf(err, errlen, "region %u: '%s' is not a number", i, name);
		return -EINVAL;
	}
	d = f->valuedouble;
	/* In range first, so the cast is defined; then it must round-trip exactly. */
	if (!(d >= 0 && d < EXACT_LIMIT) || (double)(uint64_t)d != d) {
		snprintf(err, errlen, "region %u: '%s' is not a non-negative integer below 2^53", i,
			name);
		return -EINVAL;
	}
	*out = (uint64_t)d;
	return 0;
}

/* serde refuses an object naming a field twice; so do we (cJSON would take the first). */
static int check_duplicates(const cJSON *obj, unsigned i, char *err, size_t errlen)
{
	unsigned seen[sizeof(FIELDS) / sizeof(FIELDS[0])] = { 0 };
	const cJSON *c;

	cJSON_ArrayForEach (c, obj)
		for (unsigned f = 0; f < sizeof(FIELDS) / sizeof(FIELDS[0]); f++)
			if (c->string && !strcmp(c->string, FIELDS[f]) && ++seen[f] > 1) {
				snprintf(err, errlen, "region %u: duplicate field '%s'", i,
					FIELDS[f]);
				return -EINVAL;
			}
	return 0;
}

static int check_region(const struct uffd_region *r, unsigned i, char *err, size_t errlen)
{
	uint64_t ps = r->page_size;

	if (ps < MIN_PAGE || (ps & (ps - 1))) {
		snprintf(err, errlen,
			"region %u: page_size %" PRIu64 " is not a power of two >= %d", i, ps,
			MIN_PAGE);
		return -EINVAL;
	}
	if (r->size == 0) {
		snprintf(err, errlen, "region %u: size is 0", i);
		return -EINVAL;
	}
	if (r->base_host_virt_addr % ps || r->size % ps) {
		snprintf(err, errlen,
			"region %u: base 0x%" PRIx64 " or size %" PRIu64
			" is not a multiple of page_size %" PRIu64,
			i, r->base_host_virt_addr, r->size, ps);
		return -EINVAL;
	}
	/* Both sums stay below 2^54: each term was checked below 2^53. */
	if (r->base_host_virt_addr + r->size > (uint64_t)EXACT_LIMIT ||
		r->offset + r->size > (uint64_t)EXACT_LIMIT) {
		snprintf(err, errlen, "region %u: end of range is out of bounds", i);
		return -EINVAL;
	}
	return 0;
}

static bool overlap(uint64_t a, uint64_t alen, uint64_t b, uint64_t blen)
{
	return a < b + blen && b < a + alen;
}

static int check_overlaps(const struct uffd_region *r, unsigned n, char *err, size_t errlen)
{
	for (unsigned i = 0; i < n; i++)
		for (unsigned j = 0; j < i; j++) {
			if (overlap(r[i].base_host_virt_addr, r[i].size, r[j].base_host_virt_addr,
				    r[j].size)) {
				snprintf(err, errlen, "regions %u and %u overlap in memory", j, i);
				return -EINVAL;
			}
			if (overlap(r[i].offset, r[i].size, r[j].offset, r[j].size)) {
				snprintf(err, errlen,
					"regions %u and %u overlap in the memory file", j, i);
				return -EINVAL;
			}
		}
	return 0;
}

int uffd_handshake_parse(const char *json, size_t len, struct uffd_region *out, unsigned max,
	unsigned *n, char *err, size_t errlen)
{
	const char *end = NULL;
	char *copy;
	cJSON *root;
	const cJSON *item;
	unsigned count = 0;
	int ret = -EINVAL;

	*n = 0;
	if (len == 0) {
		snprintf(err, errlen, "empty handshake");
		return -EINVAL;
	}
	if (len > UFFD_HANDSHAKE_MAX) {
		snprintf(err, errlen, "handshake is larger than %d bytes", UFFD_HANDSHAKE_MAX);
		return -EINVAL;
	}
	/* Parse a NUL-terminated copy: cJSON releases before 1.7.18 read one byte past the
	 * given length on some truncated objects (cJSON issue #800). */
	copy = malloc(len + 1);
	if (!copy) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	memcpy(copy, json, len);
	copy[len] = '\0';
	root = cJSON_ParseWithLengthOpts(copy, len, &end, 0);
	if (!root) {
		size_t at = end && end >= copy ? (size_t)(end - copy) : 0;
		snprintf(err, errlen, "handshake is not valid JSON (near byte %zu)", at);
		free(copy);
		return -EINVAL;
	}
	/* Only whitespace (or the NUL some senders add) may follow the array. */
	for (const char *p = end; p < copy + len; p++)
		if (!(*p && strchr(" \t\r\n", *p)) && !(*p == '\0' && p + 1 == copy + len)) {
			snprintf(err, errlen,
				"handshake has trailing bytes after the JSON (byte %zu)",
				(size_t)(p - copy));
			goto out;
		}
	if (!cJSON_IsArray(root)) {
		snprintf(err, errlen, "handshake is not a JSON array");
		goto out;
	}
	cJSON_ArrayForEach (item, root) {
		struct uffd_region r;
		uint64_t *fields[] = { &r.base_host_virt_addr, &r.size, &r.offset, &r.page_size,
			&r.page_size_kib };

		if (count == max) {
			snprintf(err, errlen, "handshake has more than %u regions", max);
			goto out;
		}
		if (!cJSON_IsObject(item)) {
			snprintf(err, errlen, "region %u is not a JSON object", count);
			goto out;
		}
		if (check_duplicates(item, count, err, errlen) < 0)
			goto out;
		for (unsigned f = 0; f < sizeof(FIELDS) / sizeof(FIELDS[0]); f++)
			if (get_u64(item, count, FIELDS[f], fields[f], err, errlen) < 0)
				goto out;
		if (check_region(&r, count, err, errlen) < 0)
			goto out;
		out[count++] = r;
	}
	if (count == 0) {
		snprintf(err, errlen, "handshake has no regions");
		goto out;
	}
	if (check_overlaps(out, count, err, errlen) < 0)
		goto out;
	*n = count;
	ret = 0;
out:
	cJSON_Delete(root);
	free(copy);
	return ret;
}

int uffd_handshake_check_file(const struct uffd_region *r, unsigned n, uint64_t file_size,
	char *err, size_t errlen)
{
	uint64_t total = 0;

	for (unsigned i = 0; i < n; i++) {
		if (r[i].offset > file_size || r[i].size > file_size - r[i].offset) {
			snprintf(err, errlen,
				"region %u (offset %" PRIu64 ", size %" PRIu64
				") ends beyond the memory file (%" PRIu64 " bytes)",
				i, r[i].offset, r[i].size, file_size);
			return -EINVAL;
		}
		if (__builtin_add_overflow(total, r[i].size, &total))
			total = UINT64_MAX;
	}
	if (total != file_size) {
		snprintf(err, errlen,
			"regions add up to %" PRIu64 " bytes but the memory file has %" PRIu64,
			total, file_size);
		return -EINVAL;
	}
	return 0;
}
