/* Device bus: sorted ranges, binary search, per-device locking. */
#include "ember/bus.h"

#include <errno.h>
#include <string.h>

int bus_register(struct bus *bus, const struct bus_device *dev)
{
	unsigned pos = 0;

	if (dev->len == 0 || dev->base + dev->len < dev->base)
		return -EINVAL;
	if (bus->count == BUS_MAX_DEVICES)
		return -ENOSPC;
	while (pos < bus->count && bus->devices[pos].base < dev->base)
		pos++;
	if (pos > 0) {
		const struct bus_device *prev = &bus->devices[pos - 1];
		if (prev->base + prev->len > dev->base)
			return -EEXIST;
	}
	if (pos < bus->count && dev->base + dev->len > bus->devices[pos].base)
		return -EEXIST;
	memmove(&bus->devices[pos + 1], &bus->devices[pos],
		(bus->count - pos) * sizeof(bus->devices[0]));
	bus->devices[pos] = *dev;
	bus->count++;
	return 0;
}

const struct bus_device *bus_find(const struct bus *bus, uint64_t addr, uint32_t len)
{
	unsigned lo = 0, hi = bus->count;

	while (lo < hi) {
		unsigned mid = lo + (hi - lo) / 2;
		const struct bus_device *d = &bus->devices[mid];
		if (addr < d->base) {
			hi = mid;
		} else if (addr - d->base >= d->len) {
			lo = mid + 1;
		} else {
			return len <= d->len - (addr - d->base) ? d : NULL;
		}
	}
	return NULL;
}

bool bus_access(const struct bus *bus, uint64_t addr, uint8_t *data, uint32_t len, bool write)
{
	const struct bus_device *d = bus_find(bus, addr, len);

	if (!d) {
		if (!write)
			memset(data, 0xff, len);
		return false;
	}
	if (d->lock)
		pthread_mutex_lock(d->lock);
	if (write) {
		if (d->write)
			d->write(d->opaque, addr - d->base, data, len);
	} else if (d->read) {
		d->read(d->opaque, addr - d->base, data, len);
	} else {
		memset(data, 0xff, len);
	}
	if (d->lock)
		pthread_mutex_unlock(d->lock);
	return true;
}
