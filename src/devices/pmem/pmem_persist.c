/* virtio-pmem persist pair: the region the guest knows (start and size, checked against
 * the file mapped again) and what the FLUSH limiter has left. */
#include "pmem_internal.h"

#include <errno.h>
#include <stdio.h>

#include "ember/clock.h"
#include "ember/snapshot_file.h"

#define STATE_VERSION 1u

struct pmem_state {
	uint32_t version; /* STATE_VERSION */
	uint32_t pad;
	uint64_t gpa, size;
	struct rate_limiter_state rl;
};

int pmem_save(void *dev, struct snap_writer *w)
{
	const struct pmem *p = dev;
	struct pmem_state st = { .version = STATE_VERSION, .gpa = p->gpa, .size = p->size };

	rate_limiter_save(&p->rl, &st.rl);
	return snap_put(w, &st, sizeof(st));
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
	ev_timer_stop(p->loop, &p->throttle);
	rate_limiter_restore(&p->rl, &st.rl, mono_ns());
	return 0;
}
