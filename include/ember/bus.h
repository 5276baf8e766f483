/* Device bus: maps port or MMIO ranges to device register handlers. */
#ifndef EMBER_BUS_H
#define EMBER_BUS_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#define BUS_MAX_DEVICES 64

/* Register handlers run on a vCPU thread with the device's lock held. They must not
 * block or allocate. `offset` is relative to the device's base; len is 1..8. */
typedef void (*bus_read_fn)(void *opaque, uint64_t offset, uint8_t *data, uint32_t len);
typedef void (*bus_write_fn)(void *opaque, uint64_t offset, const uint8_t *data, uint32_t len);

struct bus_device {
	const char *name;
	uint64_t base;
	uint64_t len;
	bus_read_fn read;   /* NULL: reads return all ones */
	bus_write_fn write; /* NULL: writes are ignored */
	void *opaque;
	pthread_mutex_t *lock; /* the device's lock, or NULL if the handlers are lock-free */
};

struct bus {
	const char *name;                           /* "pio" or "mmio", for messages */
	struct bus_device devices[BUS_MAX_DEVICES]; /* sorted by base */
	unsigned count;
};

/* Add a device. Control thread, before any vCPU runs. -EEXIST if the range overlaps
 * another device, -ENOSPC if the bus is full, -EINVAL for an empty or wrapping range. */
__attribute__((warn_unused_result)) int bus_register(struct bus *bus, const struct bus_device *dev);

/* Find the device holding [addr, addr+len); NULL if none. Lock-free: the table does not
 * change once vCPUs run. */
const struct bus_device *bus_find(const struct bus *bus, uint64_t addr, uint32_t len);

/* Dispatch one access. Returns false if no device claims the address (reads then see
 * all ones). Any thread. */
bool bus_access(const struct bus *bus, uint64_t addr, uint8_t *data, uint32_t len, bool write);

#endif
