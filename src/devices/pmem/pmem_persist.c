/* virtio-pmem persist pair: the region the guest knows (start and size, checked against
 * the file mapped again), what the FLUSH limiter has left, and the answers owed to FLUSH
 * requests taken but not answered (the restored device gives them). */
#include "pmem_internal.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "ember/clock.h"
#include "ember/snapshot_file.h"

#define STATE_VERSION 1u

/* State, version 1: u32 version, u32 pad, u64 gpa, u64 size, the limiter's buckets
 * (struct rate_limiter_state), u32 count, then per owed answer: u32 head, u32 status,
 * u64 status gpa. */
struct pmem_state {
	uint32_t version; /* STATE_VERSION */
	uint32_t pad;
	uint64_t gpa, size;
	struct rate_limiter_state rl;
};

static int put_owed(struct snap_writer *w, const struct pmem_chain *c, unsigned n, uint32_t status)
{
	int ret = 0;

	for (unsigned i = 0; !ret && i < n; i++) {
		ret = snap_put_u32(w, c[i].head);
		if (!ret)
			ret = snap_put_u32(w, status);
		if (!ret)
			ret = snap_put_u64(w, c[i].status_gpa);
	}
	return ret;
}

int pmem_save(void *dev, struct snap_writer *w)
{
	struct pmem *p = dev;
	struct pmem_state st = { .version = STATE_VERSION, .gpa = p->gpa, .size = p->size };
	uint32_t status;
	int ret, r;

	/* Every FLUSH taken is answered from one msync made here, after the worker's: the
	 * state owes them to the restored guest, and this VM's loop gives them as usual
	 * (the transport has recorded the queue's indices already). */
	r = pmem_msync(p->host, p->file_size);
	status = r ? VIRTIO_PMEM_RESP_TYPE_EIO : VIRTIO_PMEM_RESP_TYPE_OK;
	rate_limiter_save(&p->rl, &st.rl);
	ret = snap_put(w, &st, sizeof(st));
	if (!ret)
		ret = snap_put_u32(w, p->nr_covered + p->nr_waiting + p->nr_replay);
	if (!ret)
		ret = put_owed(w, p->covered, p->nr_covered, status);
	if (!ret)
		ret = put_owed(w, p->waiting, p->nr_waiting, status);
	for (unsigned i = 0; !ret && i < p->nr_replay; i++)
		ret = put_owed(w, &p->replay[i], 1, p->replay[i].status);
	if (ret)
		return ret;
	if (p->nr_covered + p->nr_waiting) {
		memcpy(p->covered + p->nr_covered, p->waiting,
			p->nr_waiting * sizeof(p->waiting[0]));
		p->nr_covered += p->nr_waiting;
		p->nr_waiting = 0;
		p->flushing = true;
		pmem_flusher_finish(p->flusher, r);
	}
	return 0;
}

static int get_owed(struct pmem *p, struct snap_cursor *c)
{
	uint32_t count = 0;

	if (snap_get_u32(c, &count) || count > PMEM_QUEUE_SIZE)
		return -EINVAL;
	for (uint32_t i = 0; i < count; i++) {
		uint32_t head = 0, status = 0;
		uint64_t gpa = 0;

		if (snap_get_u32(c, &head) || snap_get_u32(c, &status) || snap_get_u64(c, &gpa) ||
			head >= PMEM_QUEUE_SIZE || status > VIRTIO_PMEM_RESP_TYPE_EIO)
			return -EINVAL;
		p->replay[i] = (struct pmem_chain){ .head = (uint16_t)head,
			.status = status,
			.status_gpa = gpa };
	}
	p->nr_replay = count;
	return 0;
}

int pmem_restore(void *dev, struct snap_cursor *c, char *err, size_t errlen)
{
	struct pmem *p = dev;
	struct pmem_state st;

	if (snap_get(c, &st, sizeof(st))) {
		snprintf(err, errlen, "pmem '%s': saved state is truncated", p->id);
		return -EINVAL;
	}
	if (st.version != STATE_VERSION) {
		snprintf(err, errlen, "pmem '%s': saved state version %u, this ember reads %u",
			p->id, st.version, STATE_VERSION);
		return -ENOTSUP;
	}
	/* The guest's driver keeps the region it read at probe: the file must give the
	 * same one (Firecracker's words for a size that differs). */
	if (st.size != p->size) {
		snprintf(err, errlen,
			"pmem '%s': Restored pmem size %llu does not match backing file "
			"mapping size %llu",
			p->id, (unsigned long long)st.size, (unsigned long long)p->size);
		return -EINVAL;
	}
	if (st.gpa != p->gpa) {
		snprintf(err, errlen,
			"pmem '%s': saved region at 0x%llx, this vm placed it at 0x%llx", p->id,
			(unsigned long long)st.gpa, (unsigned long long)p->gpa);
		return -EINVAL;
	}
	if (get_owed(p, c)) {
		p->nr_replay = 0;
		snprintf(err, errlen, "pmem '%s': saved requests are malformed", p->id);
		return -EINVAL;
	}
	ev_timer_stop(p->loop, &p->throttle);
	rate_limiter_restore(&p->rl, &st.rl, mono_ns());
	return 0;
}
