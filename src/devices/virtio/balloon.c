/* virtio-balloon device model (virtio 1.x, 5.5): inflate, deflate, stats, free page reporting. */
#include "ember/balloon.h"

#include <endian.h>
#include <errno.h>
#include <ev.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ember/config.h"
#include "ember/guest_mem.h"
#include "ember/log.h"
#include "ember/snapshot_file.h"
#include "ember/virtio.h"
#include "ember/virtio_devices.h"

#define NUM_QUEUES 4         /* inflate, deflate, stats, reporting at most (no hinting) */
#define QUEUE_SIZE 256
#define CONFIG_SIZE 8        /* le32 num_pages, le32 actual */
#define CHUNK_PFNS 1024      /* PFNs read from a chain at a time */
#define POPS_PER_KICK 4096   /* bounds one notify; a driver never has more outstanding */
#define STATE_VERSION 1
#define LOG_BURST 8          /* guest-caused warnings logged per minute */
#define MAX_BALLOONS 8

enum role { ROLE_NONE, ROLE_INFLATE, ROLE_DEFLATE, ROLE_STATS, ROLE_REPORTING };

struct balloon {
	struct virtio_dev *vd;
	const struct guest_mem *mem;
	struct ev_loop *loop;
	ev_timer stats_timer;
	bool deflate_on_oom, reporting;
	uint32_t interval_s;      /* stats polling; 0 = statistics not offered */
	bool active;
	enum role roles[NUM_QUEUES]; /* transport queue index -> role, from acked features */
	/* Config space; written under the transport lock (config ops, or virtio_lock). */
	uint32_t num_pages, actual;
	/* The stats buffer the driver gave us; handing it back asks for fresh stats. */
	bool stats_held;
	struct virtq_elem stats_elem;
	uint64_t stats_present, stats_value[BALLOON_STAT_TAGS], stats_updates;
	struct virtq_elem elem;   /* scratch for queue processing */
	uint64_t inflated, deflated, refused, malformed, discarded_bytes, discard_failed,
		reported_bytes, bad_stats;
	unsigned logged;
	uint64_t log_window_us;
};

/* virtio.h offers no way from a virtio_dev back to its model, so the public functions
 * find their balloon here (one per VM). Control thread only. */
static struct balloon *balloons[MAX_BALLOONS];

/* ---- helpers ---- */

/* Guest-caused problems: a burst per minute, then silence (the counters keep counting). */
__attribute__((format(printf, 2, 3))) static void guest_warn(struct balloon *b,
	const char *fmt, ...)
{
	char msg[256];
	uint64_t now = log_now_us();
	va_list ap;

	if (now - b->log_window_us > 60000000ULL) {
		b->log_window_us = now;
		b->logged = 0;
	}
	if (b->logged++ >= LOG_BURST)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	log_warn("balloon: %s%s", msg, b->logged == LOG_BURST ? " (more suppressed for a minute)"
								: "");
}

static struct balloon *balloon_of(struct virtio_dev *vd)
{
	for (unsigned i = 0; vd && i < MAX_BALLOONS; i++)
		if (balloons[i] && balloons[i]->vd == vd)
			return balloons[i];
	return NULL;
}

static uint64_t guest_pages(const struct balloon *b)
{
	return b->mem->total >> BALLOON_PFN_SHIFT;
}

/* ---- queues ---- */

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

static void queue_notify(void *dev, unsigned qi)
{
	struct balloon *b = dev;
	enum role role = qi < NUM_QUEUES ? b->roles[qi] : ROLE_NONE;
	struct virtq *q = virtio_queue(b->vd, qi);
	bool pushed = false;
	char err[160];

	if (!q || role == ROLE_NONE)
		return;
	for (unsigned n = 0; n < POPS_PER_KICK; n++) {
		int ret = virtq_pop(q, &b->elem, err, sizeof(err));

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

static void stats_tick(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct balloon *b = w->data;

	(void)loop;
	(void)revents;
	virtio_lock(b->vd);
	stats_request(b);
	virtio_unlock(b->vd);
}

/* ---- virtio_dev_ops ---- */

static uint64_t features(void *dev)
{
	const struct balloon *b = dev;

	return (b->interval_s ? 1ULL << VIRTIO_BALLOON_F_STATS_VQ : 0) |
		(b->deflate_on_oom ? 1ULL << VIRTIO_BALLOON_F_DEFLATE_ON_OOM : 0) |
		(b->reporting ? 1ULL << VIRTIO_BALLOON_F_REPORTING : 0);
}

/* Polling runs while the driver is up and statistics are on. */
static void stats_timer_arm(struct balloon *b)
{
	if (!b->loop)
		return;
	ev_timer_stop(b->loop, &b->stats_timer);
	if (!b->active || !b->interval_s)
		return;
	ev_timer_set(&b->stats_timer, b->interval_s, b->interval_s);
	ev_timer_start(b->loop, &b->stats_timer);
}

/* Queues that are absent take no index: with REPORTING but not STATS_VQ, the
 * reporting queue is number 2 (as Linux and Firecracker number them). */
static int activate(void *dev, uint64_t acked)
{
	struct balloon *b = dev;
	unsigned n = 0;

	memset(b->roles, 0, sizeof(b->roles));
	b->roles[n++] = ROLE_INFLATE;
	b->roles[n++] = ROLE_DEFLATE;
	if (acked & (1ULL << VIRTIO_BALLOON_F_STATS_VQ))
		b->roles[n++] = ROLE_STATS;
	if (acked & (1ULL << VIRTIO_BALLOON_F_REPORTING))
		b->roles[n++] = ROLE_REPORTING;
	b->active = true;
	stats_timer_arm(b);
	return 0;
}

static void reset(void *dev)
{
	struct balloon *b = dev;

	b->active = false;
	b->stats_held = false;
	b->actual = 0;
	memset(b->roles, 0, sizeof(b->roles));
	stats_timer_arm(b);
}

static void config_read(void *dev, uint32_t offset, uint8_t *data, uint32_t len)
{
	const struct balloon *b = dev;
	uint32_t cfg[2] = { htole32(b->num_pages), htole32(b->actual) };

	if (offset < CONFIG_SIZE && len <= CONFIG_SIZE - offset)
		memcpy(data, (const uint8_t *)cfg + offset, len);
}

/* Only `actual` is the driver's to write; writes to num_pages are ignored. */
static void config_write(void *dev, uint32_t offset, const uint8_t *data, uint32_t len)
{
	struct balloon *b = dev;
	uint32_t actual = htole32(b->actual);

	if (offset >= CONFIG_SIZE || len > CONFIG_SIZE - offset)
		return;
	for (uint32_t i = 0; i < len; i++)
		if (offset + i >= 4)
			((uint8_t *)&actual)[offset + i - 4] = data[i];
	b->actual = le32toh(actual);
}

/* State, version 1 (Firecracker's balloon state: interval, held stats buffer, latest
 * stats, config space, and the offered features that say whether reporting is on):
 * u32 version, num_pages, actual, interval_s, stats_held, stats_head; u64 features,
 * stats_updates, stats_present, then BALLOON_STAT_TAGS u64 values. */
static int save(void *dev, struct snap_writer *w)
{
	const struct balloon *b = dev;
	int ret;

	if ((ret = snap_put_u32(w, STATE_VERSION)) || (ret = snap_put_u32(w, b->num_pages)) ||
		(ret = snap_put_u32(w, b->actual)) || (ret = snap_put_u32(w, b->interval_s)) ||
		(ret = snap_put_u32(w, b->stats_held)) ||
		(ret = snap_put_u32(w, b->stats_elem.head)) ||
		(ret = snap_put_u64(w, features(dev))) ||
		(ret = snap_put_u64(w, b->stats_updates)) ||
		(ret = snap_put_u64(w, b->stats_present)))
		return ret;
	for (unsigned i = 0; i < BALLOON_STAT_TAGS; i++)
		if ((ret = snap_put_u64(w, b->stats_value[i])))
			return ret;
	return 0;
}

static int restore(void *dev, struct snap_cursor *c)
{
	struct balloon *b = dev;
	uint32_t version = 0, num_pages = 0, actual = 0, interval = 0, held = 0, head = 0;
	uint64_t feats = 0, updates = 0, present = 0, value[BALLOON_STAT_TAGS];
	int ret = 0;

	/* A failed read leaves the cursor bad, so later reads fail too: check once. */
	if (snap_get_u32(c, &version) || snap_get_u32(c, &num_pages) ||
		snap_get_u32(c, &actual) || snap_get_u32(c, &interval) ||
		snap_get_u32(c, &held) || snap_get_u32(c, &head) || snap_get_u64(c, &feats) ||
		snap_get_u64(c, &updates) || snap_get_u64(c, &present))
		ret = -EINVAL;
	for (unsigned i = 0; !ret && i < BALLOON_STAT_TAGS; i++)
		if (snap_get_u64(c, &value[i]))
			ret = -EINVAL;
	if (ret || version != STATE_VERSION) {
		log_err("balloon state: %s", ret ? "truncated" : "unknown version");
		return ret ? ret : -ENOTSUP;
	}
	if (num_pages > guest_pages(b) || held > 1 || head >= VIRTQ_MAX_SIZE ||
		feats != features(dev) || !interval != !b->interval_s ||
		present >> BALLOON_STAT_TAGS) {
		log_err("balloon state: does not match this device (target %u pages, "
			"features 0x%llx, interval %u s)", num_pages, (unsigned long long)feats,
			interval);
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

static void destroy(void *dev)
{
	struct balloon *b = dev;

	for (unsigned i = 0; i < MAX_BALLOONS; i++)
		if (balloons[i] == b)
			balloons[i] = NULL;
	if (b->loop)
		ev_timer_stop(b->loop, &b->stats_timer);
	free(b);
}

static void attach(void *dev, struct virtio_dev *vd)
{
	((struct balloon *)dev)->vd = vd;
}

static void stats(void *dev, void (*put)(void *ctx, const char *key, uint64_t value), void *ctx)
{
	const struct balloon *b = dev;

	put(ctx, "target_pages", b->num_pages);
	put(ctx, "actual_pages", b->actual);
	put(ctx, "inflated_pages", b->inflated);
	put(ctx, "deflated_pages", b->deflated);
	put(ctx, "discarded_bytes", b->discarded_bytes);
	put(ctx, "reported_bytes", b->reported_bytes);
	put(ctx, "refused_pfns", b->refused);
	put(ctx, "malformed_buffers", b->malformed);
	put(ctx, "discard_failed", b->discard_failed);
	put(ctx, "stats_updates", b->stats_updates);
	put(ctx, "bad_stats", b->bad_stats);
}

static const struct virtio_dev_ops balloon_ops = {
	.kind = "balloon",
	.device_id = VIRTIO_ID_BALLOON,
	.num_queues = NUM_QUEUES,
	.queue_max_size = QUEUE_SIZE,
	.config_size = CONFIG_SIZE,
	.features = features,
	.activate = activate,
	.reset = reset,
	.queue_notify = queue_notify,
	.config_read = config_read,
	.config_write = config_write,
	.save = save,
	.restore = restore,
	.destroy = destroy,
	.attach = attach,
	.stats = stats,
};

/* ---- public ---- */

struct virtio_dev *virtio_balloon_new(const struct virtio_env *env, uint64_t base, uint32_t gsi,
	const struct balloon_config *cfg, char *err, size_t errlen)
{
	struct balloon *b;
	struct virtio_dev *vd;
	unsigned slot;

	for (slot = 0; slot < MAX_BALLOONS && balloons[slot]; slot++)
		;
	if (slot == MAX_BALLOONS) {
		snprintf(err, errlen, "balloon: at most %d balloon devices", MAX_BALLOONS);
		return NULL;
	}
	if ((uint64_t)cfg->amount_mib * BALLOON_PAGES_PER_MIB > env->mem->total >> BALLOON_PFN_SHIFT) {
		snprintf(err, errlen, "balloon: amount_mib %u is more than guest memory (%llu MiB)",
			cfg->amount_mib, (unsigned long long)(env->mem->total >> 20));
		return NULL;
	}
	b = calloc(1, sizeof(*b));
	if (!b) {
		snprintf(err, errlen, "balloon: out of memory");
		return NULL;
	}
	b->mem = env->mem;
	b->loop = env->loop;
	b->deflate_on_oom = cfg->deflate_on_oom;
	b->reporting = cfg->free_page_reporting;
	b->interval_s = cfg->stats_polling_interval_s;
	b->num_pages = cfg->amount_mib * BALLOON_PAGES_PER_MIB;
	ev_timer_init(&b->stats_timer, stats_tick, 1., 1.);
	b->stats_timer.data = b;
	vd = virtio_mmio_new(env, base, gsi, &balloon_ops, b, err, errlen);
	if (!vd)
		return NULL; /* the transport destroyed b */
	balloons[slot] = b;
	return vd;
}

int virtio_balloon_set_target(struct virtio_dev *vd, uint32_t amount_mib)
{
	struct balloon *b = balloon_of(vd);

	if (!b)
		return -ENODEV;
	if ((uint64_t)amount_mib * BALLOON_PAGES_PER_MIB > guest_pages(b))
		return -EINVAL;
	virtio_lock(vd);
	b->num_pages = amount_mib * BALLOON_PAGES_PER_MIB;
	/* A new config generation; the interrupt only once the driver is up (DRIVER_OK),
	 * before that it reads num_pages when it starts. */
	virtio_config_changed(vd);
	virtio_unlock(vd);
	return 0;
}

int virtio_balloon_stats(struct virtio_dev *vd, struct balloon_stats *out)
{
	struct balloon *b = balloon_of(vd);

	if (!b)
		return -ENODEV;
	if (!b->interval_s)
		return -ENOTSUP;
	memset(out, 0, sizeof(*out));
	virtio_lock(vd);
	out->target_pages = b->num_pages;
	out->actual_pages = b->actual;
	out->target_mib = b->num_pages / BALLOON_PAGES_PER_MIB;
	out->actual_mib = b->actual / BALLOON_PAGES_PER_MIB;
	out->polling_interval_s = b->interval_s;
	out->updates = (uint32_t)b->stats_updates;
	out->present = b->stats_present;
	memcpy(out->value, b->stats_value, sizeof(out->value));
	virtio_unlock(vd);
	return 0;
}

int virtio_balloon_set_stats_interval(struct virtio_dev *vd, uint32_t seconds)
{
	struct balloon *b = balloon_of(vd);

	if (!b)
		return -ENODEV;
	if (seconds == b->interval_s)
		return 0;
	if (!seconds || !b->interval_s)
		return -ENOTSUP;
	virtio_lock(vd);
	b->interval_s = seconds;
	stats_timer_arm(b);
	virtio_unlock(vd);
	return 0;
}

int virtio_balloon_config(struct virtio_dev *vd, struct balloon_config *out)
{
	struct balloon *b = balloon_of(vd);

	if (!b)
		return -ENODEV;
	memset(out, 0, sizeof(*out));
	virtio_lock(vd);
	out->enabled = true;
	out->amount_mib = b->num_pages / BALLOON_PAGES_PER_MIB;
	out->deflate_on_oom = b->deflate_on_oom;
	out->stats_polling_interval_s = b->interval_s;
	out->free_page_reporting = b->reporting;
	virtio_unlock(vd);
	return 0;
}
