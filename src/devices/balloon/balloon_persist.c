/* virtio-balloon persist pair: config space, polling interval, the held stats buffer,
 * the latest statistics and the hinting state. */
#include "balloon_internal.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "ember/snapshot_file.h"

#define STATE_VERSION 2

/* State (Firecracker's balloon state: interval, held stats buffer, latest stats, config
 * space, hinting state, and the offered features that say whether hinting and reporting
 * are on). Version 1: u32 version, num_pages, actual, interval_s, stats_held, stats_head;
 * u64 features, stats_updates, stats_present, then BALLOON_STAT_TAGS u64 values.
 * Version 2 appends the hinting state: u32 host_cmd, last_cmd, has_guest_cmd, guest_cmd,
 * acknowledge_on_stop; u64 hinted_bytes, ignored_hints. Version 1 is still read (its
 * balloons had no hinting). */
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
	if ((ret = snap_put_u32(w, b->hint.host_cmd)) || (ret = snap_put_u32(w, b->last_cmd)) ||
		(ret = snap_put_u32(w, b->hint.has_guest_cmd)) ||
		(ret = snap_put_u32(w, b->hint.guest_cmd)) ||
		(ret = snap_put_u32(w, b->hint.acknowledge_on_stop)) ||
		(ret = snap_put_u64(w, b->hint.hinted_bytes)))
		return ret;
	return snap_put_u64(w, b->hint.ignored_hints);
}

/* The hinting state of a version 2 state, checked; a version 1 state has none (its
 * balloon had no hinting). 0, or -EINVAL with *why. */
static int restore_hint(struct balloon *b, struct snap_cursor *c, uint32_t version,
	const char **why)
{
	uint32_t v[5] = { BALLOON_HINT_CMD_STOP, BALLOON_HINT_CMD_DONE, 0, 0, 1 };
	uint64_t hinted = 0, ignored = 0;

	if (version >= 2 &&
		(snap_get_u32(c, &v[0]) || snap_get_u32(c, &v[1]) || snap_get_u32(c, &v[2]) ||
			snap_get_u32(c, &v[3]) || snap_get_u32(c, &v[4]) ||
			snap_get_u64(c, &hinted) || snap_get_u64(c, &ignored))) {
		*why = "state is truncated";
		return -EINVAL;
	}
	if (v[2] > 1 || v[4] > 1) {
		*why = "hinting state is not valid (flags above 1)";
		return -EINVAL;
	}
	/* As Firecracker: a restored guest may take back what it hinted, so the command id
	 * is DONE whatever the run was; the driver is told at activation if a run was on. */
	b->hint_tell = v[0] != BALLOON_HINT_CMD_STOP && v[0] != BALLOON_HINT_CMD_DONE;
	b->hint = (struct balloon_hinting){ .host_cmd = v[0] == BALLOON_HINT_CMD_STOP
			? BALLOON_HINT_CMD_STOP
			: BALLOON_HINT_CMD_DONE,
		.has_guest_cmd = v[2],
		.guest_cmd = v[3],
		.acknowledge_on_stop = v[4],
		.hinted_bytes = hinted,
		.ignored_hints = ignored };
	b->last_cmd = v[1];
	return 0;
}

int balloon_restore(void *dev, struct snap_cursor *c, char *err, size_t errlen)
{
	struct balloon *b = dev;
	uint32_t version = 0, num_pages = 0, actual = 0, interval = 0, held = 0, head = 0;
	uint64_t feats = 0, updates = 0, present = 0, value[BALLOON_STAT_TAGS];
	const char *why = "";
	int ret = 0;

	/* A failed read leaves the cursor bad, so later reads fail too: check once. */
	if (snap_get_u32(c, &version) || snap_get_u32(c, &num_pages) || snap_get_u32(c, &actual) ||
		snap_get_u32(c, &interval) || snap_get_u32(c, &held) || snap_get_u32(c, &head) ||
		snap_get_u64(c, &feats) || snap_get_u64(c, &updates) || snap_get_u64(c, &present))
		ret = -EINVAL;
	for (unsigned i = 0; !ret && i < BALLOON_STAT_TAGS; i++)
		if (snap_get_u64(c, &value[i]))
			ret = -EINVAL;
	if (ret || version < 1 || version > STATE_VERSION) {
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
	ret = restore_hint(b, c, version, &why);
	if (ret) {
		snprintf(err, errlen, "balloon: saved %s", why);
		return ret;
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
