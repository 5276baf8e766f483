/* virtio-balloon persist pair: config space, polling interval, the held stats buffer
 * and the latest statistics. */
#include "balloon_internal.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "ember/snapshot_file.h"

#define STATE_VERSION 1

/* State, version 1 (Firecracker's balloon state: interval, held stats buffer, latest
 * stats, config space, and the offered features that say whether reporting is on):
 * u32 version, num_pages, actual, interval_s, stats_held, stats_head; u64 features,
 * stats_updates, stats_present, then BALLOON_STAT_TAGS u64 values. */
int balloon_save(void *dev, struct snap_writer *w)
{
	const struct balloon *b = dev;
	int ret;

	if ((ret = snap_put_u32(w, STATE_VERSION)) || (ret = snap_put_u32(w, b->num_pages)) ||
		(ret = snap_put_u32(w, b->actual)) || (ret = snap_put_u32(w, b->interval_s)) ||
		(ret = snap_put_u32(w, b->stats_held)) ||
		(ret = snap_put_u32(w, b->stats_elem.head)) ||
		(ret = snap_put_u64(w, balloon_features(dev))) ||
		(ret = snap_put_u64(w, b->stats_updates)) ||
		(ret = snap_put_u64(w, b->stats_present)))
		return ret;
	for (unsigned i = 0; i < BALLOON_STAT_TAGS; i++)
		if ((ret = snap_put_u64(w, b->stats_value[i])))
			return ret;
	return 0;
}

int balloon_restore(void *dev, struct snap_cursor *c, char *err, size_t errlen)
{
	struct balloon *b = dev;
	uint32_t version = 0, num_pages = 0, actual = 0, interval = 0, held = 0, head = 0;
	uint64_t feats = 0, updates = 0, present = 0, value[BALLOON_STAT_TAGS];
	int ret = 0;

	/* A failed read leaves the cursor bad, so later reads fail too: check once. */
	if (snap_get_u32(c, &version) || snap_get_u32(c, &num_pages) || snap_get_u32(c, &actual) ||
		snap_get_u32(c, &interval) || snap_get_u32(c, &held) || snap_get_u32(c, &head) ||
		snap_get_u64(c, &feats) || snap_get_u64(c, &updates) || snap_get_u64(c, &present))
		ret = -EINVAL;
	for (unsigned i = 0; !ret && i < BALLOON_STAT_TAGS; i++)
		if (snap_get_u64(c, &value[i]))
			ret = -EINVAL;
	if (ret || version != STATE_VERSION) {
		snprintf(err, errlen, "balloon: saved state is %s",
			ret ? "truncated" : "of an unknown version");
		return ret ? ret : -ENOTSUP;
	}
	if (num_pages > balloon_guest_pages(b) || held > 1 || head >= VIRTQ_MAX_SIZE ||
		feats != balloon_features(dev) || !interval != !b->interval_s ||
		present >> BALLOON_STAT_TAGS) {
		snprintf(err, errlen,
			"balloon: saved state does not match this device (target %u pages, "
			"features 0x%llx, interval %u s)",
			num_pages, (unsigned long long)feats, interval);
		return -EINVAL;
	}
	b->num_pages = num_pages;
	b->actual = actual;
	b->interval_s = interval;
	b->stats_held = held;
	memset(&b->stats_elem, 0, sizeof(b->stats_elem));
	b->stats_elem.head = (uint16_t)head;
	b->stats_updates = updates;
	b->stats_present = present;
	memcpy(b->stats_value, value, sizeof(value));
	return 0;
}
