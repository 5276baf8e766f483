/* Snapshot restore: check a state file against this host, rebuild the machine it
 * describes on the memory file (or a page-fault handler), then apply the saved state in
 * Firecracker's order. */
#include "ember/snapshot.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ember/arch.h"
#include "ember/clock.h"
#include "ember/console.h"
#include "ember/devices.h"
#include "ember/log.h"
#include "ember/snapshot_file.h"
#include "ember/uffd.h"
#include "vm_internal.h"

static int restore_devices(struct vm *vm, const struct snap_reader *r, char *err,
	size_t errlen)
{
	unsigned n = snap_reader_count_id(r, SNAP_SEC_DEVICE), virtio = 0;

	for (unsigned i = 0; i < n; i++) {
		struct snap_cursor cur;
		const char *name = NULL;
		int ret;

		if (snap_reader_find(r, SNAP_SEC_DEVICE, i, &cur) ||
			snap_get_str(&cur, &name, 64) || !name) {
			snprintf(err, errlen, "state file: device section %u is malformed", i);
			return -EINVAL;
		}
		if (!strcmp(name, "serial")) {
			ret = serial_restore(vm->serial, &cur);
		} else if (!strcmp(name, "i8042")) {
			ret = i8042_restore(vm->i8042, &cur);
		} else if (!strncmp(name, "virtio-", 7)) {
			/* Virtio sections follow the legacy ones, in build order. */
			ret = vm_restore_virtio(vm, virtio++, name, &cur, err, errlen);
			if (ret)
				return ret;
			continue;
		} else {
			snprintf(err, errlen, "state file: unknown device '%s'", name);
			return -EINVAL;
		}
		if (ret) {
			snprintf(err, errlen, "state file: %s state is malformed", name);
			return ret;
		}
	}
	return 0;
}

/* The handler went away (its watch thread): end the VM, its memory is lost. */
static void uffd_lost(void *opaque)
{
	struct vm *vm = opaque;

	atomic_store(&vm->uffd_lost, true);
	vm_request_exit(vm, VM_EXIT_ERROR, "the page-fault handler went away");
}

static int build_memory(struct vm *vm, const struct restore_params *p, char *err,
	size_t errlen)
{
	int ret;

	/* snapshot_check_restore refused what the File backend cannot map. */
	if (p->backend == MEM_BACKEND_FILE)
		return vm_build_memory(vm, GUEST_MEM_FILE, p->backend_path, err, errlen);
	ret = guest_mem_map(&vm->mem, vm->cfg.mem_mib << 20,
		vm->cfg.mem_backing == GUEST_MEM_HUGETLB ? GUEST_MEM_HUGETLB : GUEST_MEM_ANON, NULL,
		err, errlen);
	if (!ret)
		ret = uffd_backend_attach(&vm->mem, p->backend_path, &vm->uffd, &vm->uffd_sock, err,
			errlen);
	if (!ret) {
		vm->mem.handler_served = true;
		vm->uffd_watch = uffd_watch_start(vm->uffd_sock, vm->uffd, &vm->mem, uffd_lost, vm,
			err, errlen);
		if (!vm->uffd_watch)
			ret = -ENOMEM;
	}
	return ret ? ret : vm_register_memory(vm, err, errlen);
}

static int restore_machine(struct vm *vm, const struct snap_reader *r,
	const struct restore_params *p, char *err, size_t errlen)
{
	struct snap_cursor cur;
	bool warm = p->backend == MEM_BACKEND_FILE &&
		    vm_shell_fits(vm->cfg.mem_mib << 20, vm->cfg.track_dirty_pages);
	int ret;

	if (warm) {
		ret = vm_shell_take(vm, p->backend_path, err, errlen);
	} else {
		ret = vm_build_kvm(vm, err, errlen);
		if (!ret)
			ret = build_memory(vm, p, err, errlen);
		if (!ret)
			ret = arch_vm_setup(vm->vm_fd, err, errlen);
	}
	if (!ret)
		ret = vm_build_devices(vm, err, errlen);
	if (!ret)
		ret = vm_build_vcpus(vm, err, errlen);
	for (unsigned i = 0; !ret && i < vm->nr_vcpus; i++) {
		if (snap_reader_find(r, SNAP_SEC_VCPU, i, &cur)) {
			snprintf(err, errlen, "state file: no state for vcpu %u", i);
			return -EINVAL;
		}
		ret = arch_vcpu_restore(vm->kvm_fd, &vm->vcpus[i], &cur, err, errlen);
	}
	if (ret)
		return ret;
	if (snap_reader_find(r, SNAP_SEC_VM_STATE, 0, &cur)) {
		snprintf(err, errlen, "state file: no vm state section");
		return -EINVAL;
	}
	ret = arch_vm_restore(vm->vm_fd, &cur, p->clock_realtime, err, errlen);
	/* Device state after the interrupt controllers: an interrupt a device raises while
	 * it is restored (vsock's transport reset) must not be overwritten by them. And a
	 * restored VM is a clone: it gets a new generation id, for the same reason last. */
	if (!ret)
		ret = restore_devices(vm, r, err, errlen);
	if (!ret)
		ret = arch_vmgenid_update(&vm->mem, vm->vm_fd, err, errlen);
	return ret ? ret : vm_start_threads(vm, err, errlen);
}

struct vm *vm_restore(const struct restore_params *p, struct ev_loop *loop, char *err,
	size_t errlen)
{
	struct snap_reader *r = NULL;
	struct vm_config cfg;
	struct vm *vm = NULL;
	char host_vendor[13];
	struct snap_id id = { 0 };
	bool has_id = false;
	uint64_t t0 = mono_ns() / 1000;
	int ret;

	err[0] = 0;
	if (!p->state_path || !p->backend_path) {
		snprintf(err, errlen, "restore: needs a state file and a memory backend path");
		return NULL;
	}
	ret = snap_reader_open(&r, p->state_path, err, errlen);
	if (ret)
		return NULL;
	vm_config_init(&cfg);
	arch_host_vendor(host_vendor);
	ret = snapshot_check_restore(r, p, host_vendor, &cfg, &id, &has_id, err, errlen);
	if (!ret)
		ret = snapshot_load_cpu_model(r, &cfg, err, errlen);
	if (ret)
		goto out;
	cfg.track_dirty_pages = p->track_dirty_pages;
	cfg.console = p->console_stdio ? CONSOLE_STDIO : CONSOLE_NONE;
	cfg.mmds = p->mmds;
	vm = vm_new(&cfg, loop, err, errlen);
	if (!vm)
		goto out;
	vm->start_us = log_uptime_us();
	ret = restore_machine(vm, r, p, err, errlen);
	if (!ret && atomic_load(&vm->uffd_lost)) {
		snprintf(err, errlen, "restore: the page-fault handler went away during restore");
		ret = -EIO;
	}
	if (ret) {
		vm_free(vm);
		vm = NULL;
		goto out;
	}
	vm->state = VM_PAUSED;
	/* Guest memory is this snapshot's now: a diff taken later holds what changed since. */
	vm->has_last_snapshot = has_id;
	vm->last_snapshot = id;
	console_input_enable(vm->console, true);
	vm->last_restore_us = mono_ns() / 1000 - t0;
	log_info("restore: %u vCPUs, %llu MiB from %s in %llu us", cfg.vcpus,
		(unsigned long long)cfg.mem_mib, p->backend == MEM_BACKEND_UFFD ? "uffd" : "file",
		(unsigned long long)vm->last_restore_us);
	if (p->resume && vm_resume(vm, err, errlen)) {
		vm_free(vm);
		vm = NULL;
	}
out:
	free(cfg.cpu_template); /* vm_new copied it */
	snap_reader_free(r);
	return vm;
}
