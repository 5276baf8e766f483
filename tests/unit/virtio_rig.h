/* Test rig for virtio devices: guest memory, a bus, a libev loop, and the driver's side of
 * the virtio-mmio register protocol (virtio 1.x 3.1.1, 4.2.3), written from the spec. */
#ifndef TEST_VIRTIO_RIG_H
#define TEST_VIRTIO_RIG_H

#include <stdbool.h>
#include <stdint.h>

#include <ev.h>

#include "ember/bus.h"
#include "ember/guest_mem.h"
#include "ember/snapshot_file.h"
#include "ember/virtio.h"

#define RIG_BASE 0xd0001000ull
#define RIG_BASE2 0xd0002000ull
#define RIG_RAM_SIZE 0x100000ull
/* Queue 0 rings and buffers as the rig's driver places them. */
#define RIG_DESC 0x1000ull
#define RIG_AVAIL 0x2000ull
#define RIG_USED 0x3000ull
#define RIG_BUF 0x10000ull /* descriptor d's buffer at RIG_BUF + 0x1000 * d */

/* Registers (4.2.2) and status bits (2.1), as a driver knows them. */
enum {
	MAGIC = 0x00,
	VERSION = 0x04,
	DEVICE_ID = 0x08,
	VENDOR_ID = 0x0c,
	DEV_FEATURES = 0x10,
	DEV_FEATURES_SEL = 0x14,
	DRV_FEATURES = 0x20,
	DRV_FEATURES_SEL = 0x24,
	QUEUE_SEL = 0x30,
	QUEUE_NUM_MAX = 0x34,
	QUEUE_NUM = 0x38,
	QUEUE_READY = 0x44,
	QUEUE_NOTIFY = 0x50,
	ISR = 0x60,
	ISR_ACK = 0x64,
	STATUS = 0x70,
	DESC_LO = 0x80,
	DESC_HI = 0x84,
	AVAIL_LO = 0x90,
	AVAIL_HI = 0x94,
	USED_LO = 0xa0,
	USED_HI = 0xa4,
	SHM_LEN_LO = 0xb0,
	GENERATION = 0xfc,
	CONFIG = 0x100,
};
enum { ACK = 1, DRIVER = 2, DRIVER_OK = 4, FEATURES_OK = 8, NEEDS_RESET = 64 };
enum { D_NEXT = 1, D_WRITE = 2, D_INDIRECT = 4 };

struct rig {
	struct bus mmio;
	struct guest_mem mem;
	struct ev_loop *loop;
	struct virtio_env env;
	struct virtio_dev *vd;
	uint16_t qsize; /* queue 0 size the driver chose */
};

struct rig *rig_new(void);
void rig_free(struct rig *r); /* frees r->vd too */

uint32_t rd_at(struct rig *r, uint64_t base, uint64_t off);
void wr_at(struct rig *r, uint64_t base, uint64_t off, uint32_t v);
uint32_t rd(struct rig *r, uint64_t off); /* at RIG_BASE */
void wr(struct rig *r, uint64_t off, uint32_t v);
/* Run the loop without blocking until nothing is pending. */
void run_loop(struct rig *r);
uint8_t *ram(struct rig *r, uint64_t gpa);

/* Reset, ACKNOWLEDGE, DRIVER, features (lo, hi), FEATURES_OK; the status read back. */
uint32_t negotiate_at(struct rig *r, uint64_t base, uint32_t lo, uint32_t hi);
void queue_at(struct rig *r, uint64_t base, unsigned q, unsigned num, uint64_t desc, uint64_t avail,
	uint64_t used);
/* Negotiate (lo, VERSION_1), queue 0 of `qsize` at RIG_DESC/AVAIL/USED, DRIVER_OK, loop. */
void bring_up_at(struct rig *r, uint64_t base, uint32_t lo, uint16_t qsize);
/* Write descriptor d of queue 0 (buffer at RIG_BUF + 0x1000 * d), and make `head`
 * available (post_desc only writes; offer only offers). */
void put_desc(struct rig *r, uint16_t d, uint64_t addr, uint32_t len, uint16_t flags,
	uint16_t next);
void offer(struct rig *r, uint16_t head);
void post(struct rig *r, uint16_t d, uint32_t len, uint16_t flags);
uint16_t used_idx(struct rig *r);
/* Used ring element i: id and len. */
void used_elem(struct rig *r, uint16_t i, uint32_t *id, uint32_t *len);

/* A device's state saved as a DEVICE section and read back: restore from `cursor`. */
struct rig_saved {
	struct snap_writer *w;
	struct snap_reader *r;
	struct snap_cursor cursor;
};
struct rig_saved *rig_save(struct virtio_dev *vd);
void rig_saved_free(struct rig_saved *s);

#endif
