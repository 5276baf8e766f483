/* virtio-pmem's pieces shared by the model (pmem.c) and its persist pair (pmem_persist.c). */
#ifndef EMBER_PMEM_INTERNAL_H
#define EMBER_PMEM_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include <ev.h>

#include "ember/pmem.h"
#include "ember/rate_limiter.h"

struct snap_cursor;
struct snap_writer;

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
	uint64_t flushes, flush_errors, throttled, bad;
};

/* Persist pair (virtio_dev_ops save / restore): the region and the limiter's buckets. */
int pmem_save(void *dev, struct snap_writer *w);
int pmem_restore(void *dev, struct snap_cursor *c, char *err, size_t errlen);

#endif
