/* The state file sections every snapshot has besides the KVM and device state: the VM's
 * shape (VM_INFO) and its memory layout, written on create and checked on restore. */
#include "vm_internal.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "ember/snapshot_file.h"

#define VM_INFO_VERSION 1

/* ---- what a VM_INFO section holds ---- */

int snapshot_save_vm_info(const struct vm *vm, struct snap_writer *w)
{
	const struct vm_config *c = &vm->cfg;
	int ret = snap_section_begin(w, SNAP_SEC_VM_INFO, VM_INFO_VERSION);

	if (!ret)
		ret = snap_put_u32(w, c->vcpus);
	if (!ret)
		ret = snap_put_u64(w, c->mem_mib);
	if (!ret)
		ret = snap_put_u32(w,
			c->mem_backing == GUEST_MEM_FILE ? GUEST_MEM_ANON : c->mem_backing);
	if (!ret)
		ret = snap_put_str(w, c->kernel);
	if (!ret)
		ret = snap_put_str(w, c->initrd);
	if (!ret)
		ret = snap_put_str(w, c->cmdline);
	return ret ? ret : snap_section_end(w);
}

int snapshot_load_vm_info(const struct snap_reader *r, struct vm_config *c, char *err,
	size_t errlen)
{
	struct snap_cursor cur;
	uint32_t vcpus = 0, backing = 0;
	uint64_t mem = 0;
	const char *kernel = NULL, *initrd = NULL, *cmdline = NULL;

	if (snap_reader_find(r, SNAP_SEC_VM_INFO, 0, &cur)) {
		snprintf(err, errlen, "state file: no vm info section");
		return -EINVAL;
	}
	if (snap_get_u32(&cur, &vcpus) || snap_get_u64(&cur, &mem) ||
		snap_get_u32(&cur, &backing) || snap_get_str(&cur, &kernel, SNAP_PATH_MAX) ||
		snap_get_str(&cur, &initrd, SNAP_PATH_MAX) || snap_get_str(&cur, &cmdline, 4096)) {
		snprintf(err, errlen, "state file: vm info section is malformed");
		return -EINVAL;
	}
	if (vcpus < 1 || vcpus > VM_MAX_VCPUS) {
		snprintf(err, errlen, "state file: %u vCPUs is out of range 1..%d", vcpus,
			VM_MAX_VCPUS);
		return -EINVAL;
	}
	if (mem < VM_MIN_MEM_MIB || mem > vm_config_host_mem_mib()) {
		snprintf(err, errlen, "state file: %llu MiB of memory does not fit this host",
			(unsigned long long)mem);
		return -EINVAL;
	}
	if (backing >= GUEST_MEM_FILE) {
		snprintf(err, errlen, "state file: unknown memory backing %u", backing);
		return -EINVAL;
	}
	c->vcpus = vcpus;
	c->mem_mib = mem;
	c->mem_backing = (enum guest_mem_backing)backing;
	/* Strings point into the reader; vm_new copies them. */
	c->kernel = (char *)kernel;
	c->initrd = (char *)initrd;
	c->cmdline = (char *)cmdline;
	return 0;
}

/* ---- memory layout: checked against what this ember would build for that size ---- */

int snapshot_save_memory_layout(const struct vm *vm, struct snap_writer *w)
{
	int ret = snap_section_begin(w, SNAP_SEC_MEMORY, 1);

	if (!ret)
		ret = snap_put_u32(w, vm->mem.nr_regions);
	for (unsigned i = 0; !ret && i < vm->mem.nr_regions; i++) {
		const struct guest_mem_region *g = &vm->mem.regions[i];
		ret = snap_put_u64(w, g->gpa);
		if (!ret)
			ret = snap_put_u64(w, g->size);
		if (!ret)
			ret = snap_put_u64(w, g->file_offset);
		if (!ret)
			ret = snap_put_u32(w, 1); /* plugged */
	}
	return ret ? ret : snap_section_end(w);
}

int snapshot_check_memory_layout(const struct snap_reader *r, uint64_t mem_mib, char *err,
	size_t errlen)
{
	struct guest_mem_region want[GUEST_MEM_MAX_REGIONS];
	unsigned n = guest_mem_layout(mem_mib << 20, want);
	struct snap_cursor cur;
	uint32_t count = 0;

	if (snap_reader_find(r, SNAP_SEC_MEMORY, 0, &cur) || snap_get_u32(&cur, &count)) {
		snprintf(err, errlen, "state file: no memory section");
		return -EINVAL;
	}
	if (count == 0) {
		snprintf(err, errlen, "state file: no memory regions");
		return -EINVAL;
	}
	/* One more region is the hotplug area (virtio-mem): device memory after RAM, at
	 * the device base, after RAM in the file; its size is the device configuration's. */
	if (count != n && count != n + 1) {
		snprintf(err, errlen, "state file: %u memory regions, a %llu MiB machine has %u",
			count, (unsigned long long)mem_mib, n);
		return -EINVAL;
	}
	if (count == n + 1) {
		struct guest_mem ram = { .nr_regions = n };

		memcpy(ram.regions, want, sizeof(ram.regions));
		want[n] = (struct guest_mem_region){ .gpa = guest_mem_device_base(&ram),
			.file_offset = mem_mib << 20 };
	}
	for (unsigned i = 0; i < count; i++) {
		uint64_t gpa = 0, size = 0, off = 0;
		uint32_t plugged = 0;
		if (snap_get_u64(&cur, &gpa) || snap_get_u64(&cur, &size) ||
			snap_get_u64(&cur, &off) || snap_get_u32(&cur, &plugged)) {
			snprintf(err, errlen, "state file: memory section is malformed");
			return -EINVAL;
		}
		if (i == 0 && gpa != 0) {
			snprintf(err, errlen, "state file: no DRAM region at address 0");
			return -EINVAL;
		}
		/* The area's size: whole slots, within ember's cap. */
		if (i == n && size && size % ((uint64_t)MEM_HOTPLUG_DEFAULT_SLOT_MIB << 20) == 0 &&
			size <= (uint64_t)MEM_HOTPLUG_MAX_TOTAL_MIB << 20)
			want[n].size = size;
		if (!plugged) {
			snprintf(err, errlen, "state file: memory region %u is not plugged", i);
			return -EINVAL;
		}
		if (gpa != want[i].gpa || size != want[i].size || off != want[i].file_offset) {
			snprintf(err, errlen,
				"state file: memory region %u (0x%llx, %llu bytes) is not one slot of "
				"a %llu MiB machine",
				i, (unsigned long long)gpa, (unsigned long long)size,
				(unsigned long long)mem_mib);
			return -EINVAL;
		}
	}
	return 0;
}
