/* Split virtqueues (virtio 1.x, 2.7): defensive descriptor walking, used ring, event idx. */
#include "ember/virtio.h"

#include <endian.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "ember/byteorder.h"
#include "ember/guest_mem.h"

/* Ring layout (2.7.5, 2.7.6, 2.7.8), all little-endian. */
#define DESC_SIZE 16u
#define DESC_F_NEXT 1u
#define DESC_F_WRITE 2u
#define DESC_F_INDIRECT 4u
#define AVAIL_F_NO_INTERRUPT 1u
#define DESC_ALIGN 16u
#define AVAIL_ALIGN 2u
#define USED_ALIGN 4u
#define USED_ELEM_SIZE 8u
/* An indirect table with more entries than this is refused (it bounds the walk). */
#define INDIRECT_MAX_ENTRIES VIRTQ_MAX_SIZE

struct desc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags;
	uint16_t next;
};

/* Host views of the three rings, found (and bounds-checked) once per call. */
struct rings {
	const uint8_t *desc;
	const uint16_t *avail; /* flags, idx, ring[size], used_event */
	uint16_t *used;        /* flags, idx, then 8-byte elements, avail_event */
};

static uint64_t avail_bytes(unsigned size)
{
	return 6 + 2ull * size;
}

static uint64_t used_bytes(unsigned size)
{
	return 6 + (uint64_t)USED_ELEM_SIZE * size;
}

/* Fill err (if any) and return -EINVAL: every refusal of guest input goes through here. */
__attribute__((format(printf, 3, 4))) static int fail(char *err, size_t errlen, const char *fmt,
	...)
{
	va_list ap;

	if (err && errlen) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return -EINVAL;
}

/* A ring the device writes (the used ring) is taken with guest_mem_ptr_mut, so diff
 * snapshots hold what this device wrote into it. */
static int ring_check(const struct virtq *q, const char *what, uint64_t gpa, uint64_t len,
	uint64_t align, bool device_writes, const void **host, char *err, size_t errlen)
{
	if (gpa & (align - 1))
		return fail(err, errlen, "virtq: %s ring at 0x%llx is not %llu-byte aligned", what,
			(unsigned long long)gpa, (unsigned long long)align);
	if (!q->mem)
		*host = NULL;
	else
		*host = device_writes ? guest_mem_ptr_mut(q->mem, gpa, len)
				      : guest_mem_ptr(q->mem, gpa, len);
	if (!*host)
		return fail(err, errlen,
			"virtq: %s ring at 0x%llx (%llu bytes) is outside guest memory", what,
			(unsigned long long)gpa, (unsigned long long)len);
	return 0;
}

static int rings_get(const struct virtq *q, struct rings *r, char *err, size_t errlen)
{
	const void *d, *a, *u;
	int ret;

	if (q->max_size == 0 || q->max_size > VIRTQ_MAX_SIZE || (q->max_size & (q->max_size - 1)))
		return fail(err, errlen, "virtq: maximum size %u is not a power of two up to %u",
			q->max_size, VIRTQ_MAX_SIZE);
	if (q->size == 0 || q->size > q->max_size || (q->size & (q->size - 1)))
		return fail(err, errlen, "virtq: size %u is not a power of two from 1 to %u",
			q->size, q->max_size);
	ret = ring_check(q, "descriptor", q->desc_gpa, (uint64_t)DESC_SIZE * q->size, DESC_ALIGN,
		false, &d, err, errlen);
	if (!ret)
		ret = ring_check(q, "avail", q->avail_gpa, avail_bytes(q->size), AVAIL_ALIGN, false,
			&a, err, errlen);
	if (!ret)
		ret = ring_check(q, "used", q->used_gpa, used_bytes(q->size), USED_ALIGN, true, &u,
			err, errlen);
	if (ret)
		return ret;
	r->desc = d;
	r->avail = a;
	r->used = (uint16_t *)u; /* from guest_mem_ptr_mut */
	return 0;
}

int virtq_validate(const struct virtq *q, char *err, size_t errlen)
{
	struct rings r;

	return rings_get(q, &r, err, errlen);
}

/* The driver writes these fields from another CPU: single, untorn accesses. */
static uint16_t load16(const uint16_t *p)
{
	return le16toh(__atomic_load_n(p, __ATOMIC_RELAXED));
}

static void store16(uint16_t *p, uint16_t v)
{
	__atomic_store_n(p, htole16(v), __ATOMIC_RELAXED);
}

/* Copy a descriptor out of guest memory once, so the driver cannot change it under us. */
static void desc_read(const uint8_t *table, unsigned i, struct desc *d)
{
	uint8_t raw[DESC_SIZE];

	memcpy(raw, table + (size_t)i * DESC_SIZE, DESC_SIZE);
	d->addr = get_le64(raw);
	d->len = get_le32(raw + 8);
	d->flags = get_le16(raw + 12);
	d->next = get_le16(raw + 14);
}

/* Where the walk is: the queue's own table or one indirect table. */
struct walk {
	const uint8_t *table;
	unsigned entries;
	uint64_t seen[(VIRTQ_MAX_SIZE > INDIRECT_MAX_ENTRIES ? VIRTQ_MAX_SIZE
							     : INDIRECT_MAX_ENTRIES) /
		64];
	bool indirect;
	unsigned owner; /* the main-table descriptor holding the indirect table */
};

static const char *where(const struct walk *w, unsigned i, char *buf, size_t len)
{
	if (w->indirect)
		snprintf(buf, len, "indirect descriptor %u (table in descriptor %u)", i, w->owner);
	else
		snprintf(buf, len, "descriptor %u", i);
	return buf;
}

static int add_segment(struct virtq *q, struct virtq_elem *e, const struct walk *w, unsigned i,
	const struct desc *d, char *err, size_t errlen)
{
	char name[64];
	bool write = d->flags & DESC_F_WRITE;

	if (d->len == 0)
		return 0; /* nothing to transfer: not a segment, its address is never used */
	if (!guest_mem_ptr(q->mem, d->addr, d->len))
		return fail(err, errlen, "virtq: %s points outside guest memory (0x%llx, %u bytes)",
			where(w, i, name, sizeof(name)), (unsigned long long)d->addr, d->len);
	if (!write && e->nsegs > e->nread)
		return fail(err, errlen, "virtq: %s is device-readable after a device-writable one",
			where(w, i, name, sizeof(name)));
	if (e->nsegs == VIRTQ_MAX_SEGMENTS)
		return fail(err, errlen, "virtq: chain from head %u has more than %u segments",
			e->head, VIRTQ_MAX_SEGMENTS);
	e->segs[e->nsegs++] = (struct virtq_seg){ .gpa = d->addr, .len = d->len, .write = write };
	if (write) {
		e->write_len += d->len;
	} else {
		e->nread++;
		e->read_len += d->len;
	}
	return 0;
}

/* Switch the walk to the indirect table that descriptor `i` of the main table names. */
static int enter_indirect(struct virtq *q, struct walk *w, unsigned i, const struct desc *d,
	char *err, size_t errlen)
{
	const uint8_t *table;

	if (w->indirect)
		return fail(err, errlen,
			"virtq: indirect descriptor %u (table in descriptor %u) "
			"nests another indirect table",
			i, w->owner);
	if (!q->indirect)
		return fail(err, errlen,
			"virtq: descriptor %u is indirect but "
			"VIRTIO_F_RING_INDIRECT_DESC was not negotiated",
			i);
	if (d->flags & DESC_F_NEXT)
		return fail(err, errlen, "virtq: descriptor %u is indirect and has NEXT set", i);
	if (d->len == 0 || d->len % DESC_SIZE || d->len / DESC_SIZE > INDIRECT_MAX_ENTRIES)
		return fail(err, errlen,
			"virtq: descriptor %u: indirect table of %u bytes (must be "
			"a non-zero multiple of %u, at most %u entries)",
			i, d->len, DESC_SIZE, INDIRECT_MAX_ENTRIES);
	table = guest_mem_ptr(q->mem, d->addr, d->len);
	if (!table)
		return fail(err, errlen,
			"virtq: descriptor %u: indirect table at 0x%llx (%u bytes) "
			"is outside guest memory",
			i, (unsigned long long)d->addr, d->len);
	/* A fresh walk: its own table, nothing seen in it yet. */
	*w = (struct walk){ .table = table,
		.entries = d->len / DESC_SIZE,
		.indirect = true,
		.owner = i };
	return 0;
}

static int walk_chain(struct virtq *q, const struct rings *r, uint16_t head, struct virtq_elem *e,
	char *err, size_t errlen)
{
	struct walk w = { .table = r->desc, .entries = q->size };
	unsigned i = head;
	char name[64];

	e->head = head;
	e->nsegs = e->nread = 0;
	e->read_len = e->write_len = 0;
	for (;;) {
		struct desc d;
		int ret;

		/* Each descriptor at most once per table: this refuses every loop, and a chain
		 * longer than its table (2.7.5.3.1) can only be one. It bounds the walk too. */
		if (w.seen[i / 64] & (1ull << (i % 64))) {
			if (w.indirect)
				return fail(err, errlen,
					"virtq: indirect table in descriptor %u loops "
					"back to its entry %u",
					w.owner, i);
			return fail(err, errlen,
				"virtq: chain from head %u loops back to descriptor "
				"%u",
				head, i);
		}
		w.seen[i / 64] |= 1ull << (i % 64);
		desc_read(w.table, i, &d);
		if (d.flags & DESC_F_INDIRECT) {
			ret = enter_indirect(q, &w, i, &d, err, errlen);
			if (ret)
				return ret;
			i = 0; /* an indirect table's chain starts at its first entry */
			continue;
		}
		ret = add_segment(q, e, &w, i, &d, err, errlen);
		if (ret)
			return ret;
		if (!(d.flags & DESC_F_NEXT))
			return 0;
		if (d.next >= w.entries)
			return fail(err, errlen, "virtq: %s: next %u is outside its table of %u",
				where(&w, i, name, sizeof(name)), d.next, w.entries);
		i = d.next;
	}
}

int virtq_pop(struct virtq *q, struct virtq_elem *e, char *err, size_t errlen)
{
	struct rings r;
	uint16_t avail_idx, pending, head;
	int ret;

	if (!q->ready)
		return -ENOENT;
	ret = rings_get(q, &r, err, errlen);
	if (ret)
		return ret;
	/* Acquire: the ring entry and the descriptors it names were written before idx. */
	avail_idx = le16toh(__atomic_load_n(&r.avail[1], __ATOMIC_ACQUIRE));
	if (avail_idx == q->next_avail && q->event_idx) {
		/* Ask for a kick at the next chain, then look again: the driver may have added
		 * one before it could see avail_event (2.7.10). */
		store16(&r.used[2 + 4 * q->size], q->next_avail);
		__atomic_thread_fence(__ATOMIC_SEQ_CST);
		avail_idx = le16toh(__atomic_load_n(&r.avail[1], __ATOMIC_ACQUIRE));
	}
	pending = (uint16_t)(avail_idx - q->next_avail);
	if (pending == 0)
		return -ENOENT;
	if (pending > q->size)
		return fail(err, errlen,
			"virtq: avail index moved from %u to %u, more than the "
			"queue size %u",
			q->next_avail, avail_idx, q->size);
	head = load16(&r.avail[2 + (q->next_avail & (q->size - 1))]);
	if (head >= q->size)
		return fail(err, errlen,
			"virtq: avail ring entry %u names descriptor %u, outside "
			"the queue of %u",
			q->next_avail & (q->size - 1), head, q->size);
	ret = walk_chain(q, &r, head, e, err, errlen);
	if (ret)
		return ret;
	q->next_avail++;
	return 0;
}

void virtq_undo_pop(struct virtq *q)
{
	q->next_avail--;
}

int virtq_push(struct virtq *q, const struct virtq_elem *e, uint32_t written)
{
	struct rings r;
	uint8_t *slot;
	uint64_t slot_off;

	if (!q->ready || rings_get(q, &r, NULL, 0) || e->head >= q->size || written > e->write_len)
		return -EINVAL;
	slot_off = 4 + (uint64_t)USED_ELEM_SIZE * (q->next_used & (q->size - 1));
	slot = (uint8_t *)r.used + slot_off;
	put_le32(slot, e->head);
	put_le32(slot + 4, written);
	q->next_used++;
	/* Release: the element and the buffer contents are visible before the new idx. */
	__atomic_store_n(&r.used[1], htole16(q->next_used), __ATOMIC_RELEASE);
	return 0;
}

bool virtq_needs_notify(struct virtq *q)
{
	struct rings r;
	uint16_t old = q->signalled_used, now = q->next_used;

	if (!q->ready || rings_get(q, &r, NULL, 0) || old == now)
		return false;
	/* Our used idx store must be visible before we read what the driver asked for,
	 * or both sides could decide that no interrupt is needed (2.7.10). */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	q->signalled_used = now;
	if (q->event_idx) {
		uint16_t event = load16(&r.avail[2 + q->size]);

		/* Interrupt if used_event lies in [old, now): vring_need_event of 2.7.10. */
		return (uint16_t)(now - event - 1) < (uint16_t)(now - old);
	}
	return !(load16(&r.avail[0]) & AVAIL_F_NO_INTERRUPT);
}

/* Copy between `buf` and the segments [first, last) of a chain, starting `offset` bytes in. */
static long copy_segments(const struct virtq *q, const struct virtq_elem *e, unsigned first,
	unsigned last, uint64_t offset, uint8_t *buf, size_t len, bool to_guest)
{
	size_t done = 0;

	if (last > VIRTQ_MAX_SEGMENTS || first > last || !q->mem)
		return -EFAULT;
	for (unsigned i = first; i < last && done < len; i++) {
		const struct virtq_seg *s = &e->segs[i];
		uint64_t n;
		uint8_t *p;

		if (offset >= s->len) {
			offset -= s->len;
			continue;
		}
		n = s->len - offset;
		if (n > len - done)
			n = len - done;
		if (s->gpa + offset < s->gpa)
			return -EFAULT;
		if (to_guest) {
			p = guest_mem_ptr_mut(q->mem, s->gpa + offset, n);
			if (!p)
				return -EFAULT;
			memcpy(p, buf + done, n);
		} else {
			const uint8_t *from = guest_mem_ptr(q->mem, s->gpa + offset, n);

			if (!from)
				return -EFAULT;
			memcpy(buf + done, from, n);
		}
		done += n;
		offset = 0;
	}
	return (long)done;
}

long virtq_read(const struct virtq *q, const struct virtq_elem *e, uint64_t offset, void *dst,
	size_t len)
{
	if (e->nread > e->nsegs)
		return -EFAULT;
	return copy_segments(q, e, 0, e->nread, offset, dst, len, false);
}

long virtq_write(const struct virtq *q, const struct virtq_elem *e, uint64_t offset,
	const void *src, size_t len)
{
	if (e->nread > e->nsegs)
		return -EFAULT;
	return copy_segments(q, e, e->nread, e->nsegs, offset, (uint8_t *)(uintptr_t)src, len,
		true);
}
