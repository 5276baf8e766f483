/* The persist contract of a VM's devices: one const table of device kinds, each with
 * its save / restore pair, read by snapshot (save) and restore alike. Save writes one
 * DEVICE section per device, named, in the table's order (legacy devices, then virtio
 * in build order); restore takes the sections in file order and finds each one's kind
 * by its name, so the two directions cannot drift apart. */
#include "vm_internal.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "ember/devices.h"
#include "ember/net.h"
#include "ember/snapshot_file.h"
#include "ember/virtio.h"
#include "ember/virtio_devices.h"

#define NAME_MAX_LEN 64 /* the longest device section name restore reads */

struct device_kind {
	const char *name; /* the section's name; for virtio the prefix of "virtio-<kind>" */
	bool prefix;
	unsigned (*count)(const struct vm *vm);
	/* The i-th device's saved name after the prefix (NULL when not a prefix). */
	const char *(*suffix)(const struct vm *vm, unsigned i);
	int (*save)(struct vm *vm, unsigned i, struct snap_writer *w);
	int (*restore)(struct vm *vm, unsigned i, struct snap_cursor *c, char *err, size_t errlen);
};

static unsigned one(const struct vm *vm)
{
	(void)vm;
	return 1;
}

static int save_serial(struct vm *vm, unsigned i, struct snap_writer *w)
{
	(void)i;
	return serial_save(vm->serial, w);
}

static int save_i8042(struct vm *vm, unsigned i, struct snap_writer *w)
{
	(void)i;
	return i8042_save(vm->i8042, w);
}

static int restore_serial(struct vm *vm, unsigned i, struct snap_cursor *c, char *err,
	size_t errlen)
{
	(void)i;
	return serial_restore(vm->serial, c, err, errlen);
}

static int restore_i8042(struct vm *vm, unsigned i, struct snap_cursor *c, char *err, size_t errlen)
{
	(void)i;
	return i8042_restore(vm->i8042, c, err, errlen);
}

static unsigned nr_virtio(const struct vm *vm)
{
	return vm->nr_virtio;
}

static const char *virtio_suffix(const struct vm *vm, unsigned i)
{
	return virtio_kind(vm->virtio[i]);
}

static int save_virtio(struct vm *vm, unsigned i, struct snap_writer *w)
{
	return virtio_save(vm->virtio[i], w);
}

static int restore_virtio(struct vm *vm, unsigned i, struct snap_cursor *c, char *err,
	size_t errlen)
{
	return virtio_restore(vm->virtio[i], c, err, errlen);
}

static const struct device_kind kinds[] = {
	{ .name = "serial", .count = one, .save = save_serial, .restore = restore_serial },
	{ .name = "i8042", .count = one, .save = save_i8042, .restore = restore_i8042 },
	{ .name = "virtio-",
		.prefix = true,
		.count = nr_virtio,
		.suffix = virtio_suffix,
		.save = save_virtio,
		.restore = restore_virtio },
};
#define NR_KINDS (sizeof(kinds) / sizeof(kinds[0]))

/* The section name of the i-th device of `kind`: what save writes, what restore wants. */
static void name_of(const struct device_kind *kind, const struct vm *vm, unsigned i,
	char name[NAME_MAX_LEN])
{
	snprintf(name, NAME_MAX_LEN, "%s%s", kind->name, kind->prefix ? kind->suffix(vm, i) : "");
}

int vm_save_device_state(struct vm *vm, struct snap_writer *w)
{
	for (unsigned k = 0; k < NR_KINDS; k++) {
		for (unsigned i = 0; i < kinds[k].count(vm); i++) {
			char name[NAME_MAX_LEN];
			int ret;

			name_of(&kinds[k], vm, i, name);
			ret = snap_section_begin(w, SNAP_SEC_DEVICE, 1);
			if (!ret)
				ret = snap_put_str(w, name);
			if (!ret)
				ret = kinds[k].save(vm, i, w);
			if (!ret)
				ret = snap_section_end(w);
			if (ret)
				return ret;
		}
	}
	return 0;
}

/* The snapshot's device configuration has no MMDS; an interface's own state does. What
 * the interfaces brought back goes into the configuration, which /vm/config, Lua and
 * the next snapshot's configuration read. Interfaces follow the drives (build order). */
static int mmds_into_config(struct vm *vm, char *err, size_t errlen)
{
	for (unsigned i = 0; i < vm->cfg.nr_nets; i++) {
		unsigned at = vm->cfg.nr_drives + i;

		if (at < vm->nr_virtio &&
			virtio_net_mmds_config(vm->virtio[at], &vm->cfg.nets[i].mmds)) {
			snprintf(err, errlen, "state file: device %u is not net '%s'", at,
				vm->cfg.nets[i].id);
			return -EINVAL;
		}
	}
	return 0;
}

static const struct device_kind *kind_of(const char *name)
{
	for (unsigned k = 0; k < NR_KINDS; k++) {
		size_t n = strlen(kinds[k].name);

		if (kinds[k].prefix ? !strncmp(name, kinds[k].name, n)
				    : !strcmp(name, kinds[k].name))
			return &kinds[k];
	}
	return NULL;
}

int vm_restore_device_state(struct vm *vm, const struct snap_reader *r, char *err, size_t errlen)
{
	unsigned n = snap_reader_count_id(r, SNAP_SEC_DEVICE), seen[NR_KINDS] = { 0 };

	for (unsigned s = 0; s < n; s++) {
		const struct device_kind *kind;
		struct snap_cursor cur;
		const char *name = NULL;
		char want[NAME_MAX_LEN];
		unsigned k;
		int ret;

		if (snap_reader_find(r, SNAP_SEC_DEVICE, s, &cur) ||
			snap_get_str(&cur, &name, NAME_MAX_LEN) || !name) {
			snprintf(err, errlen, "state file: device section %u is malformed", s);
			return -EINVAL;
		}
		kind = kind_of(name);
		if (!kind) {
			snprintf(err, errlen, "state file: unknown device '%s'", name);
			return -EINVAL;
		}
		/* Devices of one kind come in build order: the k-th section is the k-th device. */
		k = seen[kind - kinds]++;
		if (k >= kind->count(vm)) {
			snprintf(err, errlen,
				"state file: device '%s' is not in the vm's "
				"configuration",
				name);
			return -EINVAL;
		}
		name_of(kind, vm, k, want);
		if (strcmp(want, name)) {
			snprintf(err, errlen,
				"state file: device %u is '%s', the vm has '%s' there", k, name,
				want);
			return -EINVAL;
		}
		ret = kind->restore(vm, k, &cur, err, errlen);
		if (ret)
			return ret;
	}
	return mmds_into_config(vm, err, errlen);
}
