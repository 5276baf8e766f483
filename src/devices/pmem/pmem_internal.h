/* virtio-pmem's pieces shared by the model (pmem.c), its persist pair (pmem_persist.c)
 * and its flush worker (pmem_flush.c). */
#ifndef EMBER_PMEM_INTERNAL_H
#define EMBER_PMEM_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <ev.h>

#include "ember/pmem.h"
#include "ember/rate_limiter.h"

struct snap_cursor;
struct snap_writer;

#define PMEM_QUEUE_SIZE 256

/* A FLUSH taken from the queue and not answered yet: where its 4-byte status goes. */
struct pmem_chain {
	uint16_t head;
	uint32_t status; /* replayed answers only: what to write */
	uint64_t status_gpa;
};

/* ---- the flush worker ---- */

struct pmem_flusher;
/* Called on the device loop (no lock held) when a flush finished: 0 or -errno. */
typedef void pmem_flush_done_fn(void *ctx, int result);

/* msync(MS_SYNC) of `len` bytes at `host`: 0 or -errno. Any thread. */
int pmem_msync(void *host, size_t len);
/* A thread (filtered as block I/O, every signal blocked) that msyncs host..host+len on
 * request; `done` runs on `loop`. NULL with err if the thread cannot start. */
struct pmem_flusher *pmem_flusher_new(struct ev_loop *loop, void *host, size_t len,
	pmem_flush_done_fn *done, void *ctx, char *err, size_t errlen);
/* Ask for one msync (at most one runs; a request while one runs makes one more). */
void pmem_flusher_request(struct pmem_flusher *f);
/* Wait until no msync is asked or running, then have `done` run on the loop with
 * `result` (the caller flushed itself): a snapshot's answers for this VM. */
void pmem_flusher_finish(struct pmem_flusher *f, int result);
/* Stop and join the thread (after the loop stopped, or with the device lock held). */
void pmem_flusher_free(struct pmem_flusher *f);

/* ---- the model ---- */

struct pmem {
	struct virtio_dev *vd;
	struct ev_loop *loop;
	char *id;
	int vm_fd;     /* for the slot's removal; -1 in tests */
	unsigned slot; /* KVM memory slot of the region */
	bool read_only;
	uint64_t gpa;       /* region start in guest-physical memory (config space) */
	uint64_t size;      /* region size: the file's, rounded up to PMEM_ALIGN */
	uint64_t file_size; /* bytes of the file mapped at the region's start */
	void *host;         /* the mapping, `size` bytes */
	struct rate_limiter rl;
	ev_timer throttle; /* armed while the limiter holds FLUSH requests back */
	struct pmem_flusher *flusher;
	/* FLUSH chains: `covered` wait for the msync running now (flushing), `waiting` came
	 * after it began and need the next one; `replay` are answers a restored state owes,
	 * given at activation. */
	bool flushing;
	struct pmem_chain covered[PMEM_QUEUE_SIZE], waiting[PMEM_QUEUE_SIZE];
	struct pmem_chain replay[PMEM_QUEUE_SIZE];
	unsigned nr_covered, nr_waiting, nr_replay;
	uint64_t flushes, flush_errors, throttled, bad;
};

/* Persist pair (virtio_dev_ops save / restore): the region, the limiter's buckets and
 * the answers owed to FLUSH requests taken but not answered. */
int pmem_save(void *dev, struct snap_writer *w);
int pmem_restore(void *dev, struct snap_cursor *c, char *err, size_t errlen);

#endif
