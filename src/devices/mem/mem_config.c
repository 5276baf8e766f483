/* virtio-mem: the hotplug area's configuration checks (Firecracker's rules and texts). */
#include "ember/virtio_mem.h"

#include <errno.h>
#include <stdio.h>

int mem_hotplug_config_check(const struct mem_hotplug_config *c, char *err, size_t errlen)
{
	if (c->block_mib < MEM_HOTPLUG_DEFAULT_BLOCK_MIB) {
		snprintf(err, errlen, "Block size must not be lower than %u MiB",
			MEM_HOTPLUG_DEFAULT_BLOCK_MIB);
		return -EINVAL;
	}
	if (c->block_mib & (c->block_mib - 1)) {
		snprintf(err, errlen, "Block size must be a power of 2");
		return -EINVAL;
	}
	if (c->slot_mib < MEM_HOTPLUG_DEFAULT_SLOT_MIB) {
		snprintf(err, errlen, "Slot size must not be lower than %u MiB",
			MEM_HOTPLUG_DEFAULT_SLOT_MIB);
		return -EINVAL;
	}
	if (c->slot_mib % c->block_mib) {
		snprintf(err, errlen, "Slot size must be a multiple of block size (%u MiB)",
			c->block_mib);
		return -EINVAL;
	}
	if (c->total_mib < c->slot_mib) {
		snprintf(err, errlen, "Total size must not be lower than slot size (%u MiB)",
			c->slot_mib);
		return -EINVAL;
	}
	if (c->total_mib % c->slot_mib) {
		snprintf(err, errlen, "Total size must be a multiple of slot size (%u MiB)",
			c->slot_mib);
		return -EINVAL;
	}
	/* ember's own limit: Firecracker fails at start when the area does not fit. */
	if (c->total_mib > MEM_HOTPLUG_MAX_TOTAL_MIB) {
		snprintf(err, errlen, "Total size must not be more than %u MiB",
			MEM_HOTPLUG_MAX_TOTAL_MIB);
		return -EINVAL;
	}
	return 0;
}
