/* virtio-balloon device model (virtio 1.x, 5.5): features, config space, lifecycle and the
 * VMM's controls (target, statistics, polling). Queues: balloon_queues.c; state:
 * balloon_persist.c. */
#include "balloon_internal.h"

#include <errno.h>
#include <ev.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ember/balloon.h"
#include "ember/byteorder.h"
#include "ember/guest_mem.h"
#include "ember/virtio.h"
#include "ember/virtio_devices.h"

#define QUEUE_SIZE 256
/* le32 num_pages, actual, free_page_hint_cmd_id, poison_val (PAGE_POISON is not offered:
 * reads as 0). The last two exist only on a balloon with hinting. */
#define CONFIG_SIZE 16
#define CONFIG_SIZE_PLAIN 8
#define MAX_BALLOONS 8

/* virtio.h offers no way from a virtio_dev back to its model, so the public functions
 * find their balloon here (one per VM). Control thread only. */
static struct balloon *balloons[MAX_BALLOONS];

static struct balloon *balloon_of(struct virtio_dev *vd)
{
	for (unsigned i = 0; vd && i < MAX_BALLOONS; i++)
		if (balloons[i] && balloons[i]->vd == vd)
			return balloons[i];
	return NULL;
}

/* ---- virtio_dev_ops ---- */

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
	if (acked & (1ULL << VIRTIO_BALLOON_F_FREE_PAGE_HINT))
		b->roles[n++] = ROLE_HINTING;
	if (acked & (1ULL << VIRTIO_BALLOON_F_REPORTING))
		b->roles[n++] = ROLE_REPORTING;
	b->active = true;
	stats_timer_arm(b);
	if (b->hint_tell) {
		b->hint_tell = false;
		virtio_config_changed(b->vd);
	}
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
	uint8_t cfg[CONFIG_SIZE];

	put_le32(cfg, b->num_pages);
	put_le32(cfg + 4, b->actual);
	put_le32(cfg + 8, b->hint.host_cmd);
	put_le32(cfg + 12, 0);
	if (offset < CONFIG_SIZE && len <= CONFIG_SIZE - offset)
		memcpy(data, cfg + offset, len);
}

/* Only `actual` is the driver's to write; writes elsewhere (num_pages, the read-only
 * command id, poison_val without PAGE_POISON) are ignored. */
static void config_write(void *dev, uint32_t offset, const uint8_t *data, uint32_t len)
{
	struct balloon *b = dev;
	uint8_t actual[4];

	if (offset >= CONFIG_SIZE || len > CONFIG_SIZE - offset)
		return;
	put_le32(actual, b->actual);
	for (uint32_t i = 0; i < len; i++)
		if (offset + i >= 4 && offset + i < 8)
			actual[offset + i - 4] = data[i];
	b->actual = get_le32(actual);
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
	put(ctx, "hinted_bytes", b->hint.hinted_bytes);
	put(ctx, "ignored_hints", b->hint.ignored_hints);
	put(ctx, "refused_pfns", b->refused);
	put(ctx, "malformed_buffers", b->malformed);
	put(ctx, "discard_failed", b->discard_failed);
	put(ctx, "stats_updates", b->stats_updates);
	put(ctx, "bad_stats", b->bad_stats);
}

/* Two shapes: with hinting one more queue and the command id in the config space;
 * without, the shape a balloon had before hinting (its snapshots still restore). */
#define BALLOON_OPS(queues, config) \
	{ \
		.kind = "balloon", .device_id = VIRTIO_ID_BALLOON, .num_queues = (queues), \
		.queue_max_size = QUEUE_SIZE, .config_size = (config), \
		.features = balloon_features, .activate = activate, .reset = reset, \
		.queue_notify = balloon_queue_notify, .config_read = config_read, \
		.config_write = config_write, .save = balloon_save, .restore = balloon_restore, \
		.destroy = destroy, .attach = attach, .stats = stats, \
	}

static const struct virtio_dev_ops balloon_hint_ops = BALLOON_OPS(NUM_QUEUES, CONFIG_SIZE);
static const struct virtio_dev_ops balloon_ops = BALLOON_OPS(NUM_QUEUES - 1, CONFIG_SIZE_PLAIN);

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
	if ((uint64_t)cfg->amount_mib * BALLOON_PAGES_PER_MIB > env->mem->total >>
		BALLOON_PFN_SHIFT) {
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
	b->hinting = cfg->free_page_hinting;
	b->reporting = cfg->free_page_reporting;
	/* No run until the host starts one; acknowledging is Firecracker's default. */
	b->hint.host_cmd = BALLOON_HINT_CMD_STOP;
	b->hint.acknowledge_on_stop = true;
	b->last_cmd = BALLOON_HINT_CMD_DONE;
	b->interval_s = cfg->stats_polling_interval_s;
	b->num_pages = cfg->amount_mib * BALLOON_PAGES_PER_MIB;
	ev_timer_init(&b->stats_timer, balloon_stats_tick, 1., 1.);
	b->stats_timer.data = b;
	vd = virtio_mmio_new(env, base, gsi, b->hinting ? &balloon_hint_ops : &balloon_ops, b, err,
		errlen);
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
	if ((uint64_t)amount_mib * BALLOON_PAGES_PER_MIB > balloon_guest_pages(b))
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
	out->free_page_hinting = b->hinting;
	out->free_page_reporting = b->reporting;
	virtio_unlock(vd);
	return 0;
}

int virtio_balloon_hinting(struct virtio_dev *vd, enum balloon_hint_op op, bool acknowledge_on_stop,
	struct balloon_hinting *out)
{
	struct balloon *b = balloon_of(vd);
	int ret = 0;

	if (!b)
		return -ENODEV;
	if (!b->hinting)
		return -ENOTSUP;
	virtio_lock(vd);
	if (op != BALLOON_HINT_STATUS && !b->active) {
		ret = -EAGAIN;
	} else if (op == BALLOON_HINT_START) {
		/* A fresh id each run (5.5.6.6: not reused before the driver's STOP); 0 and 1
		 * are reserved, so the count wraps to 2. */
		b->last_cmd = b->last_cmd + 1 > BALLOON_HINT_CMD_DONE ? b->last_cmd + 1 : 2;
		b->hint.acknowledge_on_stop = acknowledge_on_stop;
		balloon_hint_set_cmd(b, b->last_cmd);
	} else if (op == BALLOON_HINT_STOP) {
		balloon_hint_set_cmd(b, BALLOON_HINT_CMD_DONE);
	}
	if (out)
		*out = b->hint;
	virtio_unlock(vd);
	return ret;
}
