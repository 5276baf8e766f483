/* virtio-blk request parsing (virtio 1.x 5.2.6): header, data slices and bounds. */
#include "ember/block.h"

#include <errno.h>
#include <string.h>

#include "ember/byteorder.h"
#include "ember/guest_mem.h"

/* Host iovecs for bytes [off, off + len) of the segments [first, first + count) of `e`,
 * which are all readable or all writable (`into_guest`: the disk is read into them, so
 * they are taken with guest_mem_ptr_mut and count as dirty for diff snapshots). The
 * device may not assume any framing (2.6.4): the header and the data may share a
 * descriptor, and data may span several. */
static int slice(const struct virtq *q, const struct virtq_elem *e, unsigned first, unsigned count,
	uint64_t off, uint64_t len, bool into_guest, struct blk_req *r)
{
	for (unsigned i = first; i < first + count && len; i++) {
		const struct virtq_seg *s = &e->segs[i];
		uint64_t take;
		void *p;

		if (off >= s->len) {
			off -= s->len;
			continue;
		}
		take = s->len - off;
		if (take > len)
			take = len;
		/* An iovec has no const: for a write to the disk, the worker only reads it. */
		p = into_guest ? guest_mem_ptr_mut(q->mem, s->gpa + off, take)
			       : (void *)guest_mem_ptr(q->mem, s->gpa + off, take);
		if (!p || r->iovcnt == VIRTQ_MAX_SEGMENTS)
			return -EFAULT;
		r->iov[r->iovcnt].iov_base = p;
		r->iov[r->iovcnt].iov_len = (size_t)take;
		r->iovcnt++;
		r->len += take;
		len -= take;
		off = 0;
	}
	return len ? -EFAULT : 0;
}

static int answer(struct blk_req *r, int status, const char *why)
{
	r->status = status;
	r->why = why;
	r->iovcnt = 0;
	r->len = 0;
	r->written = 1;
	return 0;
}

/* Common checks of an IN or OUT request's data: whole sectors, inside the disk. */
static int check_data(struct blk_req *r, uint64_t len, uint64_t capacity)
{
	if (len % BLK_SECTOR_SIZE)
		return answer(r, VIRTIO_BLK_S_IOERR, "data length is not a multiple of 512");
	if (len >= UINT32_MAX)
		return answer(r, VIRTIO_BLK_S_IOERR, "request of 4 GiB or more");
	if (r->sector > capacity || (len >> BLK_SECTOR_SHIFT) > capacity - r->sector)
		return answer(r, VIRTIO_BLK_S_IOERR, "request runs past the end of the disk");
	return 1;
}

static int get_id(const struct virtq *q, const struct virtq_elem *e, uint64_t room,
	const char id[BLK_ID_BYTES], struct blk_req *r)
{
	uint32_t n = room < BLK_ID_BYTES ? (uint32_t)room : BLK_ID_BYTES;

	if (!n)
		return answer(r, VIRTIO_BLK_S_IOERR, "GET_ID without room for the id");
	if (virtq_write(q, e, 0, id, n) != (long)n)
		return answer(r, VIRTIO_BLK_S_IOERR, "GET_ID buffer not writable");
	r->status = VIRTIO_BLK_S_OK;
	r->written = n + 1;
	return 0;
}

int blk_req_parse(const struct virtq *q, const struct virtq_elem *e, uint64_t capacity,
	bool read_only, const char id[BLK_ID_BYTES], struct blk_req *r)
{
	uint8_t h[BLK_REQ_HEADER];
	uint64_t room;
	int ret;

	r->type = 0;
	r->sector = 0;
	r->len = 0;
	r->iovcnt = 0;
	r->status = -1;
	r->written = 1;
	r->why = NULL;
	if (e->write_len == 0 || e->nread > e->nsegs) {
		r->why = "no device-writable status byte";
		return -EINVAL;
	}
	room = e->write_len - 1; /* the status byte is the last writable byte */
	if (e->read_len < BLK_REQ_HEADER)
		return answer(r, VIRTIO_BLK_S_IOERR, "request header shorter than 16 bytes");
	if (virtq_read(q, e, 0, h, sizeof(h)) != (long)sizeof(h))
		return answer(r, VIRTIO_BLK_S_IOERR, "request header not readable");
	r->type = get_le32(h);
	r->sector = get_le64(h + 8);

	switch (r->type) {
	case VIRTIO_BLK_T_IN:
		ret = check_data(r, room, capacity);
		if (ret <= 0)
			return ret;
		if (slice(q, e, e->nread, e->nsegs - e->nread, 0, room, true, r))
			return answer(r, VIRTIO_BLK_S_IOERR, "data outside guest memory");
		r->written = (uint32_t)(room + 1);
		if (!room)
			r->status = VIRTIO_BLK_S_OK;
		return 0;
	case VIRTIO_BLK_T_OUT:
		if (read_only)
			return answer(r, VIRTIO_BLK_S_IOERR, "write to a read-only drive");
		ret = check_data(r, e->read_len - BLK_REQ_HEADER, capacity);
		if (ret <= 0)
			return ret;
		if (slice(q, e, 0, e->nread, BLK_REQ_HEADER, e->read_len - BLK_REQ_HEADER, false,
			    r))
			return answer(r, VIRTIO_BLK_S_IOERR, "data outside guest memory");
		if (!r->len)
			r->status = VIRTIO_BLK_S_OK;
		return 0;
	case VIRTIO_BLK_T_FLUSH:
		return 0;
	case VIRTIO_BLK_T_GET_ID:
		return get_id(q, e, room, id, r);
	default:
		return answer(r, VIRTIO_BLK_S_UNSUPP, "unsupported request type");
	}
}
