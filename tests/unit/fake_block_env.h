/* Fakes for the virtio-blk unit tests: a virtio transport that hands the model's ops to
 * the test, a libev that records watchers, and a split-ring driver in fake guest RAM. */
#ifndef EMBER_FAKE_BLOCK_ENV_H
#define EMBER_FAKE_BLOCK_ENV_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <ev.h>

#include "ember/guest_mem.h"
#include "ember/virtio.h"

/* The fake transport: the test reaches the model through ops/dev. */
struct virtio_dev {
	const struct virtio_dev_ops *ops;
	void *dev;
	struct virtq q;
	unsigned notifies, needs_reset, locks, config_changes, yields;
	char why[256];
};

/* ---- fake libev: one loop, watchers recorded, run by the test ---- */
/* Run the callbacks of async watchers that were sent to and of io watchers whose fd is
 * readable (an io_uring's eventfd); returns how many ran. */
int fake_ev_run_async(void);
/* The active timer, or NULL; fire it (it is stopped first, as a one-shot). */
ev_timer *fake_ev_timer(void);
void fake_ev_fire_timer(void);
void fake_ev_reset(void);

/* ---- a driver for queue 0 in fake guest RAM ---- */
#define FAKE_RAM_SIZE (4u << 20)
#define FAKE_DESC 0x0
#define FAKE_AVAIL 0x1000
#define FAKE_USED 0x2000
#define FAKE_DATA 0x10000

struct fake_seg {
	uint64_t gpa;
	uint32_t len;
	bool write;
};

struct fake_driver {
	struct guest_mem mem;
	struct virtio_env env;
	struct virtio_dev *vd;
	uint16_t avail_idx, next_desc;
	uint64_t data_top;
};

void fake_driver_init(struct fake_driver *d);
void fake_driver_deinit(struct fake_driver *d);
/* Make the device's queue 0 live on the fake rings (after the constructor). */
void fake_driver_attach(struct fake_driver *d, struct virtio_dev *vd);
/* Host pointer of a guest address. */
uint8_t *fake_ptr(struct fake_driver *d, uint64_t gpa);
/* Bump-allocate guest RAM (16-byte aligned, zeroed). */
uint64_t fake_alloc(struct fake_driver *d, uint32_t len);
/* Put a chain in the avail ring (not kicked); returns its head. */
uint16_t fake_add_chain(struct fake_driver *d, const struct fake_seg *segs, unsigned n);
/* Kick queue 0 (the model's queue_notify). */
void fake_kick(struct fake_driver *d);
/* Run completions until the used index reaches `want`; false after 5 s. */
bool fake_wait_used(struct fake_driver *d, uint16_t want);
uint16_t fake_used_idx(struct fake_driver *d);
/* Used element `i`: head id and written length. */
void fake_used_elem(struct fake_driver *d, uint16_t i, uint32_t *id, uint32_t *len);

#endif
