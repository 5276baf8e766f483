/* AML and resource descriptor encoding for ember's DSDT (ACPI 6.3, sections 6.4 and 20). */
#include "aml.h"

#include <errno.h>
#include <stdbool.h>
#include <string.h>

#include "boot_params.h"

/* ACPI 6.3, 20.2: name and data object encodings. */
#define ZERO_OP 0x00
#define ONE_OP 0x01
#define NAME_OP 0x08
#define BYTE_PREFIX 0x0a
#define WORD_PREFIX 0x0b
#define DWORD_PREFIX 0x0c
#define STRING_PREFIX 0x0d
#define QWORD_PREFIX 0x0e
#define SCOPE_OP 0x10
#define BUFFER_OP 0x11
#define PACKAGE_OP 0x12
#define METHOD_OP 0x14
#define DUAL_NAME_PREFIX 0x2e
#define MULTI_NAME_PREFIX 0x2f
#define EXT_OP_PREFIX 0x5b
#define DEVICE_OP 0x82 /* after EXT_OP_PREFIX */
#define ROOT_CHAR '\\'
#define PARENT_PREFIX_CHAR '^'
#define NOTIFY_OP 0x86
#define IF_OP 0xa0
#define PKG_RESERVE 4 /* room left for a PkgLength until aml_close knows its size */

/* ACPI 6.3, 6.4: resource data types. */
#define RES_IRQ_NOFLAGS 0x22 /* small item 0x04, length 2 */
#define RES_IO 0x47          /* small item 0x08, length 7 */
#define RES_IO_DECODE16 0x01
#define RES_END 0x79         /* small item 0x0f, length 1 */
#define RES_MEM32_FIXED 0x86 /* large item 0x06 */
#define RES_MEM32_FIXED_LEN 9
#define RES_MEM_READ_WRITE 0x01
#define RES_EXT_IRQ 0x89  /* large item 0x09 */
#define RES_EXT_IRQ_LEN 6 /* flags, table length, one 32-bit interrupt number */
#define RES_EXT_IRQ_CONSUMER 0x01
#define RES_EXT_IRQ_EDGE 0x02 /* polarity bit 2 clear: active high; bit 3 clear: exclusive */

void aml_init(struct aml *a, uint8_t *buf, size_t cap)
{
	a->buf = buf;
	a->cap = cap;
	a->len = 0;
	a->err = 0;
}

void aml_bytes(struct aml *a, const void *p, size_t n)
{
	if (a->err)
		return;
	if (n > a->cap - a->len) {
		a->err = -ENOSPC;
		return;
	}
	memcpy(a->buf + a->len, p, n);
	a->len += n;
}

void aml_byte(struct aml *a, uint8_t b)
{
	aml_bytes(a, &b, 1);
}

static void put16(struct aml *a, uint16_t v)
{
	uint8_t b[2];

	put_le16(b, v);
	aml_bytes(a, b, sizeof(b));
}

static void put32(struct aml *a, uint32_t v)
{
	uint8_t b[4];

	put_le32(b, v);
	aml_bytes(a, b, sizeof(b));
}

static size_t pkg_open(struct aml *a)
{
	static const uint8_t room[PKG_RESERVE];
	size_t mark = a->len;

	aml_bytes(a, room, sizeof(room));
	return mark;
}

/* PkgLength (20.2.4) counts its own bytes: one byte holds up to 63, otherwise the lead
 * byte carries the count of following bytes in bits 7..6 and the low nibble in 3..0. */
void aml_close(struct aml *a, size_t mark)
{
	size_t body, total, n;
	uint8_t *p;

	if (a->err)
		return;
	body = a->len - mark - PKG_RESERVE;
	for (n = 1; n <= PKG_RESERVE; n++) {
		total = body + n;
		if (n == 1 ? total <= 0x3f : total < (size_t)1 << (4 + 8 * (n - 1)))
			break;
	}
	if (n > PKG_RESERVE) {
		a->err = -ENOSPC;
		return;
	}
	p = a->buf + mark;
	memmove(p + n, p + PKG_RESERVE, body);
	memset(p + n + body, 0, PKG_RESERVE - n); /* no stale bytes behind the end */
	a->len -= PKG_RESERVE - n;
	if (n == 1) {
		p[0] = (uint8_t)total;
		return;
	}
	p[0] = (uint8_t)((n - 1) << 6 | (total & 0x0f));
	for (size_t i = 1; i < n; i++)
		p[i] = (uint8_t)(total >> (4 + 8 * (i - 1)));
}

static bool seg_char(char c, bool lead)
{
	return (c >= 'A' && c <= 'Z') || c == '_' || (!lead && c >= '0' && c <= '9');
}

void aml_namestring(struct aml *a, const char *path)
{
	const char *s = path;
	size_t nsegs, len;

	if (*s == ROOT_CHAR)
		aml_byte(a, (uint8_t)*s++);
	else
		while (*s == PARENT_PREFIX_CHAR)
			aml_byte(a, (uint8_t)*s++);
	len = strlen(s);
	if (len == 0) {
		aml_byte(a, ZERO_OP); /* NullName */
		return;
	}
	if (len % 5 != 4 || len / 5 + 1 > 255) {
		a->err = a->err ? a->err : -EINVAL;
		return;
	}
	nsegs = len / 5 + 1;
	for (size_t i = 0; i < nsegs; i++) {
		const char *seg = s + 5 * i;

		if (!seg_char(seg[0], true) || !seg_char(seg[1], false) ||
			!seg_char(seg[2], false) || !seg_char(seg[3], false) ||
			(i + 1 < nsegs && seg[4] != '.')) {
			a->err = a->err ? a->err : -EINVAL;
			return;
		}
	}
	if (nsegs == 2) {
		aml_byte(a, DUAL_NAME_PREFIX);
	} else if (nsegs > 2) {
		aml_byte(a, MULTI_NAME_PREFIX);
		aml_byte(a, (uint8_t)nsegs);
	}
	for (size_t i = 0; i < nsegs; i++)
		aml_bytes(a, s + 5 * i, 4);
}

size_t aml_scope(struct aml *a, const char *path)
{
	size_t mark;

	aml_byte(a, SCOPE_OP);
	mark = pkg_open(a);
	aml_namestring(a, path);
	return mark;
}

size_t aml_device(struct aml *a, const char *path)
{
	size_t mark;

	aml_byte(a, EXT_OP_PREFIX);
	aml_byte(a, DEVICE_OP);
	mark = pkg_open(a);
	aml_namestring(a, path);
	return mark;
}

size_t aml_method(struct aml *a, const char *path, unsigned nargs)
{
	size_t mark;

	aml_byte(a, METHOD_OP);
	mark = pkg_open(a);
	aml_namestring(a, path);
	if (nargs > 7)
		a->err = a->err ? a->err : -EINVAL;
	aml_byte(a, (uint8_t)(nargs & 7)); /* MethodFlags: ArgCount, NotSerialized, SyncLevel 0 */
	return mark;
}

size_t aml_if(struct aml *a)
{
	aml_byte(a, IF_OP);
	return pkg_open(a);
}

size_t aml_package(struct aml *a, uint8_t count)
{
	size_t mark;

	aml_byte(a, PACKAGE_OP);
	mark = pkg_open(a);
	aml_byte(a, count);
	return mark;
}

void aml_name(struct aml *a, const char *seg)
{
	aml_byte(a, NAME_OP);
	aml_namestring(a, seg);
}

void aml_integer(struct aml *a, uint64_t v)
{
	uint8_t b[8];

	if (v <= 1) {
		aml_byte(a, v ? ONE_OP : ZERO_OP);
	} else if (v <= UINT8_MAX) {
		aml_byte(a, BYTE_PREFIX);
		aml_byte(a, (uint8_t)v);
	} else if (v <= UINT16_MAX) {
		aml_byte(a, WORD_PREFIX);
		put16(a, (uint16_t)v);
	} else if (v <= UINT32_MAX) {
		aml_byte(a, DWORD_PREFIX);
		put32(a, (uint32_t)v);
	} else {
		aml_byte(a, QWORD_PREFIX);
		put_le64(b, v);
		aml_bytes(a, b, sizeof(b));
	}
}

void aml_string(struct aml *a, const char *s)
{
	aml_byte(a, STRING_PREFIX);
	aml_bytes(a, s, strlen(s) + 1);
}

static int hex_digit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* A compressed EISA id: three letters of 5 bits each ('A' = 1), then the product number's
 * four hex digits, stored as the byte sequence the spec lists (not a host integer). */
void aml_eisaid(struct aml *a, const char *id)
{
	uint8_t b[4];
	int d[4];

	if (strlen(id) != 7 || !seg_char(id[0], true) || !seg_char(id[1], true) ||
		!seg_char(id[2], true) || id[0] == '_' || id[1] == '_' || id[2] == '_') {
		a->err = a->err ? a->err : -EINVAL;
		return;
	}
	for (int i = 0; i < 4; i++) {
		d[i] = hex_digit(id[3 + i]);
		if (d[i] < 0) {
			a->err = a->err ? a->err : -EINVAL;
			return;
		}
	}
	b[0] = (uint8_t)((id[0] - 0x40) << 2 | (id[1] - 0x40) >> 3);
	b[1] = (uint8_t)(((id[1] - 0x40) & 7) << 5 | (id[2] - 0x40));
	b[2] = (uint8_t)(d[0] << 4 | d[1]);
	b[3] = (uint8_t)(d[2] << 4 | d[3]);
	aml_byte(a, DWORD_PREFIX);
	aml_bytes(a, b, sizeof(b));
}

void aml_buffer(struct aml *a, const uint8_t *bytes, size_t n)
{
	size_t mark;

	aml_byte(a, BUFFER_OP);
	mark = pkg_open(a);
	aml_integer(a, n);
	aml_bytes(a, bytes, n);
	aml_close(a, mark);
}

void aml_notify(struct aml *a, const char *path, uint8_t value)
{
	aml_byte(a, NOTIFY_OP);
	aml_namestring(a, path);
	aml_integer(a, value);
}

void aml_res_io(struct aml *r, uint16_t port, uint8_t len)
{
	aml_byte(r, RES_IO);
	aml_byte(r, RES_IO_DECODE16);
	put16(r, port); /* minimum base */
	put16(r, port); /* maximum base: the same, the range is fixed */
	aml_byte(r, 1); /* alignment */
	aml_byte(r, len);
}

void aml_res_irq(struct aml *r, unsigned isa_irq)
{
	if (isa_irq > 15) {
		r->err = r->err ? r->err : -EINVAL;
		return;
	}
	aml_byte(r, RES_IRQ_NOFLAGS);
	put16(r, (uint16_t)(1u << isa_irq));
}

void aml_res_mem32(struct aml *r, uint32_t base, uint32_t size)
{
	aml_byte(r, RES_MEM32_FIXED);
	put16(r, RES_MEM32_FIXED_LEN);
	aml_byte(r, RES_MEM_READ_WRITE);
	put32(r, base);
	put32(r, size);
}

void aml_res_ext_irq(struct aml *r, uint32_t gsi)
{
	aml_byte(r, RES_EXT_IRQ);
	put16(r, RES_EXT_IRQ_LEN);
	aml_byte(r, RES_EXT_IRQ_CONSUMER | RES_EXT_IRQ_EDGE);
	aml_byte(r, 1); /* interrupt table length */
	put32(r, gsi);
}

void aml_res_end(struct aml *r)
{
	aml_byte(r, RES_END);
	aml_byte(r, 0);
}
