/* virtio-balloon queues: inflate and deflate PFN arrays, free page hints and reports, and
 * the statistics buffer the driver lends and the device hands back on each poll. */
#include "balloon_internal.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "ember/byteorder.h"
#include "ember/log.h"

#define CHUNK_PFNS 1024 /* PFNs read from a chain at a time */

/* Guest-caused problems: rate-limited (the counters keep counting). */
__attribute__((format(printf, 2, 3))) static void guest_warn(struct balloon *b, const char *fmt,
	...)
{
	char msg[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	log_ratelimited_at(&b->log_rl, LOG_WARN, __FILE__, __LINE__, "balloon: %s", msg);
}

static void discard_range(void *ctx, uint64_t gpa, uint64_t len)
{
	struct balloon *b = ctx;
	struct balloon_discard d;
	char err[160];

	if (balloon_memory_discard(b->mem, gpa, len, &d, err, sizeof(err)) < 0) {
		b->discard_failed++;
		guest_warn(b, "%s", err);
		return;
	}
	b->discarded_bytes += d.bytes;
}

/* One inflate or deflate chain: its readable part is an array of PFNs. */
static void pfn_chain(struct balloon *b, struct virtq *q, bool inflate)
{
	uint32_t pfns[CHUNK_PFNS];
	struct balloon_pfn_result res = { 0 };
	uint64_t off = 0;

	while (off < b->elem.read_len) {
		uint64_t want = b->elem.read_len - off;
		long got;

		if (want > sizeof(pfns))
			want = sizeof(pfns);
		got = virtq_read(q, &b->elem, off, pfns, want);
		if (got <= 0)
			break;
		balloon_parse_pfns(b->mem, (const uint8_t *)pfns, (size_t)got,
			inflate ? discard_range : NULL, b, &res);
		off += (uint64_t)got;
	}
	if (inflate)
		b->inflated += res.pages;
	else
		b->deflated += res.pages;
	b->refused += res.refused;
	if (res.trailing)
		b->malformed++;
	if (res.refused || res.trailing)
		guest_warn(b, "%s buffer: refused %llu PFNs outside guest memory, %llu stray bytes",
			inflate ? "inflate" : "deflate", (unsigned long long)res.refused,
			(unsigned long long)res.trailing);
}

/* Free page reporting (5.5.6.7): every segment of a chain is a free range to release. */
static void report_chain(struct balloon *b)
{
	for (unsigned i = 0; i < b->elem.nsegs; i++) {
		const struct virtq_seg *s = &b->elem.segs[i];
		uint64_t before = b->discarded_bytes;

		discard_range(b, s->gpa, s->len);
		b->reported_bytes += b->discarded_bytes - before;
	}
}

void balloon_hint_set_cmd(struct balloon *b, uint32_t cmd)
{
	b->hint.host_cmd = cmd;
	virtio_config_changed(b->vd);
}

/* Free page hinting (5.5.6.6): a readable part is a command id (4 bytes), each writable
 * segment a free block the driver holds for the run; discarded only while that run is
 * the current one (balloon_hint_chain). */
static void hint_chain(struct balloon *b, struct virtq *q)
{
	uint8_t raw[4] = { 0 };
	bool has_cmd = false, ack, act;

	if (b->elem.read_len == sizeof(raw) &&
		virtq_read(q, &b->elem, 0, raw, sizeof(raw)) == (long)sizeof(raw))
		has_cmd = true;
	else if (b->elem.read_len) {
		b->malformed++;
		guest_warn(b, "hinting command of %llu bytes ignored (4 expected)",
			(unsigned long long)b->elem.read_len);
	}
	act = balloon_hint_chain(&b->hint, has_cmd, get_le32(raw), &ack);
	for (unsigned i = b->elem.nread; i < b->elem.nsegs; i++) {
		const struct virtq_seg *s = &b->elem.segs[i];
		uint64_t before = b->discarded_bytes;

		if (!act) {
			b->hint.ignored_hints++;
			continue;
		}
		discard_range(b, s->gpa, s->len);
		b->hint.hinted_bytes += b->discarded_bytes - before;
	}
	if (ack)
		balloon_hint_set_cmd(b, BALLOON_HINT_CMD_DONE);
}

/* Returns whether a buffer went back to the driver (one it had sent before). */
static bool stats_chain(struct balloon *b, struct virtq *q)
{
	uint8_t buf[BALLOON_STATS_MAX_BYTES];
	uint64_t present, value[BALLOON_STAT_TAGS];
	long got = -EINVAL;

	if (b->elem.read_len <= sizeof(buf))
		got = virtq_read(q, &b->elem, 0, buf, (size_t)b->elem.read_len);
	if (got < 0 || (uint64_t)got != b->elem.read_len ||
		balloon_parse_stats(buf, (size_t)got, &present, value) < 0) {
		b->bad_stats++;
		guest_warn(b, "malformed stats buffer (%llu bytes) ignored",
			(unsigned long long)b->elem.read_len);
	} else {
		b->stats_present = present;
		memcpy(b->stats_value, value, sizeof(value));
		b->stats_updates++;
	}
	/* Keep the buffer: the next poll hands it back. A driver that sent a second one
	 * gets the first back now. */
	bool returned = b->stats_held && virtq_push(q, &b->stats_elem, 0) == 0;

	b->stats_elem = b->elem;
	b->stats_held = true;
	return returned;
}

void balloon_queue_notify(void *dev, unsigned qi)
{
	struct balloon *b = dev;
	enum role role = qi < NUM_QUEUES ? b->roles[qi] : ROLE_NONE;
	struct virtq *q = virtio_queue(b->vd, qi);
	bool pushed = false;
	char err[160];

	if (!q || role == ROLE_NONE)
		return;
	for (unsigned budget = VIRTIO_KICK_BUDGET;; budget--) {
		int ret;

		if (!budget) {
			virtio_queue_yield(b->vd, qi);
			break;
		}
		ret = virtq_pop(q, &b->elem, err, sizeof(err));

		if (ret == -ENOENT)
			break;
		if (ret < 0) {
			virtio_needs_reset(b->vd, err);
			break;
		}
		if (role == ROLE_STATS) {
			pushed |= stats_chain(b, q);
			continue;
		}
		if (role == ROLE_REPORTING)
			report_chain(b);
		else if (role == ROLE_HINTING)
			hint_chain(b, q);
		else
			pfn_chain(b, q, role == ROLE_INFLATE);
		if (virtq_push(q, &b->elem, 0) < 0) {
			virtio_needs_reset(b->vd, "balloon: cannot return a buffer");
			break;
		}
		pushed = true;
	}
	if (pushed)
		virtio_notify(b->vd, qi);
}

/* Hand the held stats buffer back: the driver refills it with fresh values. */
static void stats_request(struct balloon *b)
{
	unsigned qi;

	if (!b->active || !b->stats_held)
		return;
	for (qi = 0; qi < NUM_QUEUES && b->roles[qi] != ROLE_STATS; qi++)
		;
	if (qi == NUM_QUEUES)
		return;
	b->stats_held = false;
	if (virtq_push(virtio_queue(b->vd, qi), &b->stats_elem, 0) < 0) {
		guest_warn(b, "stats buffer %u no longer fits its queue", b->stats_elem.head);
		return;
	}
	virtio_notify(b->vd, qi);
}

void balloon_stats_tick(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct balloon *b = w->data;

	(void)loop;
	(void)revents;
	virtio_lock(b->vd);
	stats_request(b);
	virtio_unlock(b->vd);
}
