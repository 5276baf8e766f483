/* virtio-blk persist pair: drained engine, capacity, limiter, answers still owed. */
#include "block_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ember/clock.h"
#include "ember/log.h"
#include "ember/snapshot_file.h"

/* State, version 2 (little-endian, after the transport's):
 *   u32 version, u64 capacity (sectors),
 *   u64 bandwidth budget (i64), u64 bandwidth burst, u64 ops budget (i64), u64 ops burst,
 *   u32 count, then per request done but not answered:
 *   u32 head, u32 written, u64 status byte gpa, u32 status.
 * Version 1 also held the drive's configuration (u32 read_only before the capacity, str
 * path after it), which the state file's DEVICE_CONFIG section holds: it is still read. */
#define STATE_VERSION 2

/* Guest address of a chain's status byte: the last byte of its writable part. */
static uint64_t status_gpa(const struct virtq_elem *e)
{
	uint64_t off = e->write_len - 1;

	for (unsigned i = e->nread; i < e->nsegs; i++) {
		if (off < e->segs[i].len)
			return e->segs[i].gpa + off;
		off -= e->segs[i].len;
	}
	return 0; /* not reached for a chain the parser accepted */
}

static int put_done(struct snap_writer *w, const struct blk_io *io)
{
	uint32_t status = io->result ? VIRTIO_BLK_S_IOERR : VIRTIO_BLK_S_OK;
	uint32_t written = io->result ? 1 : io->req.written;
	int ret = snap_put_u32(w, io->elem.head);

	if (!ret)
		ret = snap_put_u32(w, written);
	if (!ret)
		ret = snap_put_u64(w, status_gpa(&io->elem));
	return ret ? ret : snap_put_u32(w, status);
}

int blk_save(void *dev, struct snap_writer *w)
{
	struct block *b = dev;
	struct rate_limiter_state rs;
	uint32_t count = 0;
	int ret;

	/* Nothing is in flight once this returns: the engine has written every IN request's
	 * data into guest memory before that memory is saved. The answers (status byte,
	 * used ring) are not given here, since the transport has already recorded the queue
	 * indices: they go into the state, for the restored device to give, and the loop
	 * gives them in this VM as usual. */
	blk_engine_drain(b->engine);
	blk_collect(b);
	for (const struct blk_io *io = b->finished; io; io = io->next)
		count++;
	rate_limiter_save(&b->rl, &rs);
	ret = snap_put_u32(w, STATE_VERSION);
	if (!ret)
		ret = snap_put_u64(w, b->capacity);
	if (!ret)
		ret = snap_put_u64(w, (uint64_t)rs.bandwidth_budget);
	if (!ret)
		ret = snap_put_u64(w, rs.bandwidth_burst);
	if (!ret)
		ret = snap_put_u64(w, (uint64_t)rs.ops_budget);
	if (!ret)
		ret = snap_put_u64(w, rs.ops_burst);
	if (!ret)
		ret = snap_put_u32(w, count);
	for (const struct blk_io *io = b->finished; !ret && io; io = io->next)
		ret = put_done(w, io);
	return ret;
}

static int get_replay(struct block *b, struct snap_cursor *c, uint32_t count)
{
	struct blk_saved_done *r;

	if (count > BLK_QUEUE_SIZE)
		return -EINVAL;
	free(b->replay);
	b->replay = NULL;
	b->nr_replay = 0;
	if (!count)
		return 0;
	r = calloc(count, sizeof(*r));
	if (!r)
		return -ENOMEM;
	for (uint32_t i = 0; i < count; i++) {
		uint32_t head = 0, written = 0, status = 0;

		if (snap_get_u32(c, &head) || snap_get_u32(c, &written) ||
			snap_get_u64(c, &r[i].status_gpa) || snap_get_u32(c, &status) ||
			head >= BLK_QUEUE_SIZE || written == 0 || status > VIRTIO_BLK_S_UNSUPP) {
			free(r);
			return -EINVAL;
		}
		r[i].head = (uint16_t)head;
		r[i].written = written;
		r[i].status = (uint8_t)status;
	}
	b->replay = r;
	b->nr_replay = count;
	return 0;
}

/* The configuration a version 1 state carried: checked against the device (built from
 * DEVICE_CONFIG, with any drive override), never used. */
static int get_v1_config(struct block *b, struct snap_cursor *c, uint64_t *capacity, char *err,
	size_t errlen)
{
	const char *path = NULL;
	uint32_t ro = 0;

	if (snap_get_u32(c, &ro) || ro > 1 || snap_get_u64(c, capacity) ||
		snap_get_str(c, &path, SNAP_PATH_MAX) || !path) {
		snprintf(err, errlen, "block '%s': saved state is malformed (version 1)", b->id);
		return -EINVAL;
	}
	if ((bool)ro != b->read_only) {
		snprintf(err, errlen, "block '%s': saved as %s, defined as %s", b->id,
			ro ? "read-only" : "read-write", b->read_only ? "read-only" : "read-write");
		return -EINVAL;
	}
	if (strcmp(path, b->path))
		log_info("block '%s': saved at %s, restored from %s", b->id, path, b->path);
	return 0;
}

int blk_restore(void *dev, struct snap_cursor *c, char *err, size_t errlen)
{
	struct block *b = dev;
	struct rate_limiter_state rs;
	uint32_t version = 0, count = 0;
	uint64_t capacity = 0, bb = 0, ob = 0, size;
	int ret = 0;

	if (snap_get_u32(c, &version) || version < 1 || version > STATE_VERSION)
		goto malformed;
	if (version == 1)
		ret = get_v1_config(b, c, &capacity, err, errlen);
	else if (snap_get_u64(c, &capacity))
		goto malformed;
	if (ret)
		return ret;
	if (snap_get_u64(c, &bb) || snap_get_u64(c, &rs.bandwidth_burst) || snap_get_u64(c, &ob) ||
		snap_get_u64(c, &rs.ops_burst) || snap_get_u32(c, &count))
		goto malformed;
	ret = get_replay(b, c, count);
	if (ret) {
		snprintf(err, errlen, "block '%s': saved requests are malformed", b->id);
		return ret;
	}
	size = b->be->ops->size(b->be);
	if (size >> BLK_SECTOR_SHIFT != capacity)
		log_warn("block '%s': %s has %llu sectors now, %llu when saved", b->id, b->path,
			(unsigned long long)(size >> BLK_SECTOR_SHIFT),
			(unsigned long long)capacity);
	blk_set_capacity(b, size);
	rs.bandwidth_budget = (int64_t)bb;
	rs.ops_budget = (int64_t)ob;
	rate_limiter_restore(&b->rl, &rs, mono_ns());
	return 0;

malformed:
	snprintf(err, errlen, "block '%s': saved state is malformed (version %u)", b->id, version);
	return -EINVAL;
}
