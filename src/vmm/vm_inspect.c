/* Inspection of a VM: memory use, exit counters, MSRs and registers of paused vCPUs,
 * devices, and the operator's console attachment. */
#include "vm_internal.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "ember/arch.h"
#include "ember/console.h"
#include "ember/devices.h"
#include "ember/virtio.h"

static uint64_t resident_kib(const struct guest_mem_region *r)
{
	size_t pages = r->size / 4096, n = 0;
	unsigned char vec[4096];

	/* In chunks: one byte per page, so a 4 GiB region needs 1 MiB of vector. */
	for (size_t off = 0; off < pages; off += sizeof(vec)) {
		size_t chunk = pages - off < sizeof(vec) ? pages - off : sizeof(vec);
		if (mincore(r->host + off * 4096, chunk * 4096, vec) < 0)
			return 0;
		for (size_t i = 0; i < chunk; i++)
			n += vec[i] & 1;
	}
	return n * 4;
}

/* "Anonymous:" of the mapping that starts at `start`, from /proc/self/smaps. */
static uint64_t anonymous_kib(FILE *smaps, const void *start)
{
	char line[256];
	unsigned long lo, hi;
	unsigned long long kib;
	bool in = false;

	rewind(smaps);
	while (fgets(line, sizeof(line), smaps)) {
		size_t tok = strcspn(line, " ");
		/* A mapping header starts with "lo-hi "; field lines start with "Name:". */
		if (line[tok] == ' ' && memchr(line, '-', tok) && !memchr(line, ':', tok) &&
			sscanf(line, "%lx-%lx ", &lo, &hi) == 2) {
			in = lo == (unsigned long)(uintptr_t)start;
		} else if (in && sscanf(line, "Anonymous: %llu kB", &kib) == 1) {
			return kib;
		}
	}
	return 0;
}

int vm_memory_stats(const struct vm *vm, struct vm_memory_stats *out)
{
	const struct guest_mem *gm = vm_memory(vm);
	unsigned long long size = 0, rss = 0;
	FILE *f;

	if (!gm)
		return -EBUSY;
	memset(out, 0, sizeof(*out));
	out->guest_kib = gm->total >> 10;
	for (unsigned i = 0; i < gm->nr_regions; i++)
		out->guest_resident_kib += resident_kib(&gm->regions[i]);
	f = fopen("/proc/self/smaps", "re");
	if (f) {
		for (unsigned i = 0; i < gm->nr_regions; i++)
			out->guest_private_kib += anonymous_kib(f, gm->regions[i].host);
		fclose(f);
	}
	f = fopen("/proc/self/statm", "re");
	if (f) {
		if (fscanf(f, "%llu %llu", &size, &rss) == 2)
			out->process_rss_kib = rss * (uint64_t)(sysconf(_SC_PAGESIZE) >> 10);
		fclose(f);
	}
	return 0;
}

unsigned vm_vcpu_count(const struct vm *vm)
{
	return vm->cfg.vcpus;
}

int vm_vcpu_exits(const struct vm *vm, unsigned index, uint64_t *counts, unsigned n)
{
	if (index >= vm->nr_vcpus)
		return -EINVAL;
	for (unsigned k = 0; k < n && k < VCPU_EXIT_KINDS; k++)
		counts[k] = atomic_load(&vm->vcpus[index].exits[k]);
	return 0;
}

static int paused_vcpu(struct vm *vm, unsigned index, char *err, size_t errlen)
{
	if (vm->state != VM_PAUSED) {
		snprintf(err, errlen, "vcpu state needs a paused vm (it is %s)",
			vm_state_name(vm->state));
		return -EBUSY;
	}
	if (index >= vm->nr_vcpus) {
		snprintf(err, errlen, "vcpu %u: no such vcpu (the vm has %u)", index, vm->nr_vcpus);
		return -EINVAL;
	}
	return vm->vcpus[index].fd;
}

int vm_vcpu_msrs_get(struct vm *vm, unsigned index, uint32_t *indices, uint64_t *values,
	unsigned *count, char *err, size_t errlen)
{
	const uint32_t *list;
	unsigned n;
	int fd = paused_vcpu(vm, index, err, errlen), ret;

	if (fd < 0)
		return fd;
	ret = arch_msr_list(vm->kvm_fd, &list, &n);
	if (ret) {
		snprintf(err, errlen, "KVM_GET_MSR_INDEX_LIST: %s", strerror(-ret));
		return ret;
	}
	if (n > *count) {
		snprintf(err, errlen, "vcpu %u: %u MSRs do not fit in %u", index, n, *count);
		return -E2BIG;
	}
	memcpy(indices, list, n * sizeof(*list));
	ret = arch_msrs_get(fd, indices, values, n);
	if (ret) {
		snprintf(err, errlen, "vcpu %u: KVM_GET_MSRS: %s", index, strerror(-ret));
		return ret;
	}
	*count = n;
	return 0;
}

int vm_vcpu_msrs_set(struct vm *vm, unsigned index, const uint32_t *indices, const uint64_t *values,
	unsigned count, char *err, size_t errlen)
{
	int fd = paused_vcpu(vm, index, err, errlen), ret;

	if (fd < 0)
		return fd;
	ret = arch_msrs_set(fd, indices, values, count);
	if (ret)
		snprintf(err, errlen, "vcpu %u: KVM_SET_MSRS: %s", index,
			ret == -EIO ? "KVM refused an MSR" : strerror(-ret));
	return ret;
}

int vm_vcpu_regs(struct vm *vm, unsigned index, struct vm_reg *regs, unsigned *count, char *err,
	size_t errlen)
{
	int fd = paused_vcpu(vm, index, err, errlen), ret;

	if (fd < 0)
		return fd;
	ret = arch_vcpu_regs(fd, regs, *count, count);
	if (ret)
		snprintf(err, errlen, "vcpu %u: %s", index,
			ret == -E2BIG ? "more registers than room for them" : strerror(-ret));
	return ret;
}

/* What each device is, by the name it registers on its bus. */
static const struct {
	const char *name, *kind;
} kinds[] = {
	{ "serial", "uart-16550a" },
	{ "i8042", "i8042 (reset, ctrl-alt-del)" },
	{ "acpi-sleep", "acpi sleep control" },
	{ "boot-timer", "boot timer" },
};

static void add_stat(struct vm_device_info *d, const char *name, uint64_t value)
{
	if (d->nr_stats < VM_DEVICE_STATS_MAX) {
		d->stats[d->nr_stats].name = name;
		d->stats[d->nr_stats++].value = value;
	}
}

static void put_stat(void *ctx, const char *key, uint64_t value)
{
	add_stat(ctx, key, value);
}

static void describe(struct vm *vm, const struct bus *bus, const struct bus_device *bd,
	struct vm_device_info *d)
{
	memset(d, 0, sizeof(*d));
	d->name = bd->name;
	d->bus = bus->name;
	d->base = bd->base;
	d->len = bd->len;
	d->kind = bus == &vm->mmio ? "mmio device" : "pio device";
	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
		if (!strcmp(kinds[i].name, bd->name))
			d->kind = kinds[i].kind;
	if (!strcmp(bd->name, "serial") && bd->opaque == vm->serial) {
		add_stat(d, "tx_bytes", vm_console_end(vm));
		add_stat(d, "rx_room", serial_rx_room(vm->serial));
		add_stat(d, "rx_queued", vm->input_len);
	} else if (!strcmp(bd->name, "boot-timer")) {
		add_stat(d, "boot_us", atomic_load(&vm->boot_us));
	}
	for (unsigned i = 0; bus == &vm->mmio && i < vm->nr_virtio; i++) {
		if (virtio_base(vm->virtio[i]) != bd->base)
			continue;
		d->kind = virtio_kind(vm->virtio[i]);
		virtio_stats(vm->virtio[i], put_stat, d);
	}
}

int vm_devices(struct vm *vm, struct vm_device_info *out, unsigned cap)
{
	const struct bus *buses[] = { &vm->pio, &vm->mmio };
	unsigned n = 0;

	if (vm->state != VM_RUNNING && vm->state != VM_PAUSED)
		return -EBUSY;
	dev_thread_lock(&vm->devs);
	for (size_t b = 0; b < 2; b++) {
		for (unsigned i = 0; i < buses[b]->count; i++, n++)
			if (n < cap)
				describe(vm, buses[b], &buses[b]->devices[i], &out[n]);
	}
	dev_thread_unlock(&vm->devs);
	return (int)n;
}

int vm_console_attach(struct vm *vm, uint8_t escape, vm_console_detach_fn detached, void *opaque)
{
	if (vm->state == VM_EXITED || !vm->console)
		return -EBUSY;
	return console_attach(vm->console, escape, detached, opaque);
}

void vm_console_detach(struct vm *vm)
{
	if (vm->console)
		console_detach(vm->console);
}
