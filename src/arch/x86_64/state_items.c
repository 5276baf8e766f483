/* x86_64 snapshot state items: tag, length, bytes; their names for messages. */
#include "state_internal.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "ember/snapshot_file.h"

static const char *const item_names[] = {
	[I_MP_STATE] = "mp_state",
	[I_REGS] = "regs",
	[I_SREGS] = "sregs",
	[I_XSAVE] = "xsave",
	[I_XCRS] = "xcrs",
	[I_DEBUGREGS] = "debugregs",
	[I_LAPIC] = "lapic",
	[I_TSC_KHZ] = "tsc_khz",
	[I_CPUID] = "cpuid",
	[I_MSRS] = "msrs",
	[I_EVENTS] = "events",
};

const char *state_item_name(unsigned tag)
{
	static const char *const vm_names[] = { "pic master", "pic slave", "ioapic", "pit",
		"clock" };

	if (tag >= I_PIC_MASTER && tag <= I_CLOCK)
		return vm_names[tag - I_PIC_MASTER];
	return tag < sizeof(item_names) / sizeof(item_names[0]) && item_names[tag] ? item_names[tag]
										   : "?";
}

int state_put_item(struct snap_writer *w, unsigned tag, const void *data, size_t len)
{
	int ret = snap_put_u32(w, tag);

	if (!ret)
		ret = snap_put_u32(w, (uint32_t)len);
	if (!ret)
		ret = snap_put(w, data, len);
	return ret;
}

/* The next item must carry `tag`; returns its bytes and length. */
int state_get_item(struct snap_cursor *c, unsigned tag, const void **data, uint32_t *len, char *err,
	size_t errlen)
{
	uint32_t t = 0, l = 0;

	if (snap_get_u32(c, &t) || snap_get_u32(c, &l) || t != tag || l > c->left) {
		snprintf(err, errlen, "state file: %s missing or malformed", state_item_name(tag));
		return -EINVAL;
	}
	*data = c->p;
	*len = l;
	c->p += l;
	c->left -= l;
	return 0;
}

/* A fixed-size item straight into a KVM struct. */
int state_get_fixed(struct snap_cursor *c, unsigned tag, void *out, size_t size, char *err,
	size_t errlen)
{
	const void *p;
	uint32_t len;
	int ret = state_get_item(c, tag, &p, &len, err, errlen);

	if (ret)
		return ret;
	if (len != size) {
		snprintf(err, errlen, "state file: %s is %u bytes, expected %zu",
			state_item_name(tag), len, size);
		return -EINVAL;
	}
	memcpy(out, p, size);
	return 0;
}
