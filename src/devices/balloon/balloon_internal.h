/* Internals of the virtio-balloon model shared by its files (device, queues, persist).
 * Not a module interface: other modules use include/ember/balloon.h and virtio_devices.h. */
#ifndef EMBER_BALLOON_INTERNAL_H
#define EMBER_BALLOON_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include <ev.h>

#include "ember/balloon.h"
#include "ember/guest_mem.h"
#include "ember/log_ratelimit.h"
#include "ember/virtio.h"

struct snap_cursor;
struct snap_writer;

/* inflate, deflate, stats, hinting, reporting at most. A balloon without hinting has 4
 * (its saved transport state says 4, as before hinting existed). */
#define NUM_QUEUES 5

enum role { ROLE_NONE, ROLE_INFLATE, ROLE_DEFLATE, ROLE_STATS, ROLE_HINTING, ROLE_REPORTING };

struct balloon {
	struct virtio_dev *vd;
	const struct guest_mem *mem;
	struct ev_loop *loop;
	ev_timer stats_timer;
	bool deflate_on_oom, hinting, reporting;
	uint32_t interval_s; /* stats polling; 0 = statistics not offered */
	bool active;
	enum role roles[NUM_QUEUES]; /* transport queue index -> role, from acked features */
	/* Config space; written under the transport lock (config ops, or virtio_lock). */
	uint32_t num_pages, actual;
	/* Free page hinting: hint.host_cmd is the config space's free_page_hint_cmd_id;
	 * last_cmd the last run id handed out (the next run takes the one after). */
	struct balloon_hinting hint;
	uint32_t last_cmd;
	bool hint_tell; /* restored from a run: tell the driver DONE once it is live again */
	/* The stats buffer the driver gave us; handing it back asks for fresh stats. */
	bool stats_held;
	struct virtq_elem stats_elem;
	uint64_t stats_present, stats_value[BALLOON_STAT_TAGS], stats_updates;
	struct virtq_elem elem; /* scratch for queue processing */
	uint64_t inflated, deflated, refused, malformed, discarded_bytes, discard_failed,
		reported_bytes, bad_stats;
	struct log_ratelimit log_rl; /* guest-caused warnings */
};

static inline uint64_t balloon_guest_pages(const struct balloon *b)
{
	return b->mem->total >> BALLOON_PFN_SHIFT;
}

/* The features this device offers: the ops' `features`, and what restore checks the
 * saved ones against (inline, so balloon_persist.c needs nothing of balloon.c). */
static inline uint64_t balloon_features(void *dev)
{
	const struct balloon *b = dev;

	return (b->interval_s ? 1ULL << VIRTIO_BALLOON_F_STATS_VQ : 0) |
		(b->deflate_on_oom ? 1ULL << VIRTIO_BALLOON_F_DEFLATE_ON_OOM : 0) |
		(b->hinting ? 1ULL << VIRTIO_BALLOON_F_FREE_PAGE_HINT : 0) |
		(b->reporting ? 1ULL << VIRTIO_BALLOON_F_REPORTING : 0);
}

/* balloon_queues.c: the queue_notify op (transport lock held), and the stats polling
 * timer's callback (control loop). */
void balloon_queue_notify(void *dev, unsigned qi);
/* Set the hinting command id (config space) and tell the driver; transport lock held. */
void balloon_hint_set_cmd(struct balloon *b, uint32_t cmd);
void balloon_stats_tick(struct ev_loop *loop, ev_timer *w, int revents);

/* balloon_persist.c: the model's save/restore ops (transport lock held, paused VM). */
int balloon_save(void *dev, struct snap_writer *w);
int balloon_restore(void *dev, struct snap_cursor *c, char *err, size_t errlen);

#endif
