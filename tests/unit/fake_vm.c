/* A fake VM for unit tests: vm.h (lifecycle, balloon) and snapshot.h without KVM. */
#include "fake_vm.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ember/balloon.h"
#include "ember/config.h"
#include "ember/net.h"
#include "ember/vcpu.h"

struct vm {
	struct vm_config cfg;
	struct balloon_config balloon;  /* the live balloon: target and interval as set */
	uint32_t hotplug_requested_mib; /* the live hotplug area's requested size */
	enum vm_state state;
	enum vm_exit_reason reason;
	const struct vm_observer *obs;
	void *opaque;
};

struct fake_vm_control fake_vm;

void fake_vm_reset(void)
{
	memset(&fake_vm, 0, sizeof(fake_vm));
}

struct vm *vm_new(const struct vm_config *cfg, struct ev_loop *loop, char *err, size_t errlen)
{
	struct vm *vm = calloc(1, sizeof(*vm));

	(void)loop;
	if (!vm || vm_config_copy(&vm->cfg, cfg)) {
		free(vm);
		snprintf(err, errlen, "vm: out of memory");
		return NULL;
	}
	vm->state = VM_CONFIGURED;
	vm->balloon = cfg->balloon;
	fake_vm.vms_alive++;
	fake_vm.last = vm;
	return vm;
}

void vm_free(struct vm *vm)
{
	if (!vm)
		return;
	vm_config_deinit(&vm->cfg);
	free(vm);
	fake_vm.vms_alive--;
	if (fake_vm.last == vm)
		fake_vm.last = NULL;
}

void vm_set_observer(struct vm *vm, const struct vm_observer *obs, void *opaque)
{
	vm->obs = obs;
	vm->opaque = opaque;
}

int vm_start(struct vm *vm, char *err, size_t errlen)
{
	if (fake_vm.start_ret) {
		snprintf(err, errlen, "kernel: not a kernel (fake)");
		return fake_vm.start_ret;
	}
	if (vm->state != VM_CONFIGURED) {
		snprintf(err, errlen, "cannot start: the vm is %s", vm_state_name(vm->state));
		return -EBUSY;
	}
	vm->state = VM_RUNNING;
	return 0;
}

int vm_pause(struct vm *vm, char *err, size_t errlen)
{
	if (vm->state != VM_RUNNING) {
		snprintf(err, errlen, "cannot pause: the vm is %s", vm_state_name(vm->state));
		return -EBUSY;
	}
	vm->state = VM_PAUSED;
	return 0;
}

int vm_resume(struct vm *vm, char *err, size_t errlen)
{
	if (vm->state != VM_PAUSED) {
		snprintf(err, errlen, "cannot resume: the vm is %s", vm_state_name(vm->state));
		return -EBUSY;
	}
	vm->state = VM_RUNNING;
	return 0;
}

void fake_vm_exit(struct vm *vm, enum vm_exit_reason reason)
{
	vm->state = VM_EXITED;
	vm->reason = reason;
	if (vm->obs && vm->obs->exited)
		vm->obs->exited(vm, vm->opaque);
}

void vm_stop(struct vm *vm, enum vm_exit_reason reason, int signo)
{
	(void)signo;
	if (vm->state == VM_RUNNING || vm->state == VM_PAUSED)
		fake_vm_exit(vm, reason);
}

enum vm_state vm_state(const struct vm *vm)
{
	return vm->state;
}

const char *vm_state_name(enum vm_state state)
{
	static const char *const names[] = { "configured", "running", "paused", "exited" };

	return state <= VM_EXITED ? names[state] : "?";
}

int vm_exit_status(const struct vm *vm)
{
	return vm->reason == VM_EXIT_RESET ? EMBER_EXIT_RESET : EMBER_EXIT_OK;
}

const struct vm_config *vm_config(const struct vm *vm)
{
	return &vm->cfg;
}

int vm_send_ctrl_alt_del(struct vm *vm)
{
	if (vm->state != VM_RUNNING)
		return -EBUSY;
	fake_vm.ctrl_alt_del++;
	return 0;
}

int vm_devices(struct vm *vm, struct vm_device_info *out, unsigned cap)
{
	(void)vm;
	(void)out;
	(void)cap;
	return 0; /* the fake machine has no devices to count */
}

void vm_times(const struct vm *vm, struct vm_times *out)
{
	out->start_us = 1000;
	out->first_run_us = vm->state == VM_CONFIGURED ? 0 : 1500;
	out->boot_us = vm->state == VM_CONFIGURED ? 0 : 4000;
}

unsigned vm_vcpu_count(const struct vm *vm)
{
	return vm->cfg.vcpus;
}

/* No console: nothing is ever dropped. */
uint64_t vm_console_dropped(struct vm *vm)
{
	(void)vm;
	return 0;
}

int vm_vcpu_exits(const struct vm *vm, unsigned index, uint64_t *counts, unsigned n)
{
	if (vm->state != VM_RUNNING && vm->state != VM_PAUSED)
		return -EINVAL;
	for (unsigned k = 0; k < n; k++)
		counts[k] = 10 * (index + 1) + k;
	return 0;
}

int vm_snapshot(struct vm *vm, const struct snapshot_params *p, char *err, size_t errlen)
{
	if (vm->state != VM_PAUSED) {
		snprintf(err, errlen, "snapshot: the vm must be paused (it is %s)",
			vm_state_name(vm->state));
		return -EBUSY;
	}
	if (fake_vm.snapshot_ret) {
		snprintf(err, errlen, "%s: No space left on device", p->mem_path);
		return fake_vm.snapshot_ret;
	}
	fake_vm.last_snapshot = *p;
	snprintf(fake_vm.last_snapshot_path, sizeof(fake_vm.last_snapshot_path), "%s",
		p->state_path);
	return 0;
}

struct vm *vm_restore(const struct restore_params *p, struct ev_loop *loop, char *err,
	size_t errlen)
{
	struct vm_config cfg;
	struct vm *vm;

	fake_vm.last_restore = *p;
	snprintf(fake_vm.last_restore_path, sizeof(fake_vm.last_restore_path), "%s",
		p->backend_path ? p->backend_path : "");
	snprintf(fake_vm.last_restore_vsock, sizeof(fake_vm.last_restore_vsock), "%s",
		p->vsock_uds_path ? p->vsock_uds_path : "");
	if (fake_vm.restore_fails) {
		snprintf(err, errlen, "state file %s: bad magic (not an ember snapshot)",
			p->state_path);
		return NULL;
	}
	vm_config_init(&cfg);
	cfg.vcpus = 2;
	cfg.mem_mib = 256;
	cfg.track_dirty_pages = p->track_dirty_pages;
	vm = vm_new(&cfg, loop, err, errlen);
	if (vm)
		vm->state = p->resume ? VM_RUNNING : VM_PAUSED;
	return vm;
}

/* ---- the balloon: a guest that follows the target at once ---- */

/* The hotplug area as the device answers (vm_mem_hotplug.c): its sizes, the driver up
 * unless fake_vm.hotplug_driver_down. */
int vm_mem_hotplug_set(struct vm *vm, uint32_t requested_mib, char *err, size_t errlen)
{
	const struct mem_hotplug_config *h = &vm->cfg.mem_hotplug;

	if ((vm->state != VM_RUNNING && vm->state != VM_PAUSED) || !h->enabled) {
		snprintf(err, errlen, "memory hotplug: the vm has no hotplug area");
		return -ENODEV;
	}
	if (requested_mib % h->block_mib || requested_mib > h->total_mib) {
		snprintf(err, errlen,
			"Size %llu is invalid: it must be a multiple of block size "
			"and less than the total size",
			(unsigned long long)requested_mib << 20);
		return -EINVAL;
	}
	if (fake_vm.hotplug_driver_down) {
		snprintf(err, errlen, "Device is not active");
		return -EAGAIN;
	}
	vm->hotplug_requested_mib = requested_mib;
	return 0;
}

int vm_mem_hotplug_status(struct vm *vm, struct mem_hotplug_status *out, char *err, size_t errlen)
{
	const struct mem_hotplug_config *h = &vm->cfg.mem_hotplug;

	if ((vm->state != VM_RUNNING && vm->state != VM_PAUSED) || !h->enabled) {
		snprintf(err, errlen, "memory hotplug: the vm has no hotplug area");
		return -ENODEV;
	}
	*out = (struct mem_hotplug_status){ .total_mib = h->total_mib,
		.block_mib = h->block_mib,
		.slot_mib = h->slot_mib,
		.requested_mib = vm->hotplug_requested_mib };
	return 0;
}

static int balloon_of(struct vm *vm, char *err, size_t errlen)
{
	if (vm->state != VM_RUNNING && vm->state != VM_PAUSED) {
		snprintf(err, errlen, "balloon: the vm is %s", vm_state_name(vm->state));
		return -ENODEV;
	}
	if (!vm->balloon.enabled) {
		snprintf(err, errlen, "balloon: the vm has no balloon device");
		return -ENODEV;
	}
	return 0;
}

int vm_balloon_set(struct vm *vm, uint32_t amount_mib, char *err, size_t errlen)
{
	int ret = balloon_of(vm, err, errlen);

	if (!ret && amount_mib > vm->cfg.mem_mib) {
		snprintf(err, errlen, "balloon: amount_mib %u is more than the vm's %llu MiB",
			amount_mib, (unsigned long long)vm->cfg.mem_mib);
		ret = -EINVAL;
	}
	if (!ret)
		vm->balloon.amount_mib = amount_mib;
	return ret;
}

int vm_balloon_stats(struct vm *vm, struct balloon_stats *out, char *err, size_t errlen)
{
	int ret = balloon_of(vm, err, errlen);

	if (ret)
		return ret;
	if (!vm->balloon.stats_polling_interval_s) {
		snprintf(err, errlen,
			"balloon: statistics are off (stats_polling_interval_s is 0)");
		return -ENOTSUP;
	}
	memset(out, 0, sizeof(*out));
	out->target_mib = out->actual_mib = vm->balloon.amount_mib;
	out->target_pages = out->actual_pages = vm->balloon.amount_mib * BALLOON_PAGES_PER_MIB;
	out->polling_interval_s = vm->balloon.stats_polling_interval_s;
	out->updates = 1;
	out->present = 1u << BALLOON_STAT_SWAP_IN | 1u << BALLOON_STAT_MEMFREE |
		1u << BALLOON_STAT_DIRECT_RECLAIM;
	out->value[BALLOON_STAT_SWAP_IN] = 11;
	out->value[BALLOON_STAT_MEMFREE] = 1 << 20;
	out->value[BALLOON_STAT_DIRECT_RECLAIM] = 7;
	return 0;
}

int vm_balloon_set_stats_interval(struct vm *vm, uint32_t seconds, char *err, size_t errlen)
{
	int ret = balloon_of(vm, err, errlen);

	if (ret || seconds == vm->balloon.stats_polling_interval_s)
		return ret;
	if (!seconds || !vm->balloon.stats_polling_interval_s) {
		snprintf(err, errlen, "balloon: statistics cannot be turned on or off after boot");
		return -ENOTSUP;
	}
	vm->balloon.stats_polling_interval_s = seconds;
	return 0;
}

int vm_balloon_config(struct vm *vm, struct balloon_config *out, char *err, size_t errlen)
{
	int ret = balloon_of(vm, err, errlen);

	if (!ret)
		*out = vm->balloon;
	return ret;
}

/* The device's rules without a device: ids 2, 3, ...; stop sets DONE. */
int vm_balloon_hinting(struct vm *vm, enum balloon_hint_op op, bool acknowledge_on_stop,
	struct balloon_hinting *out, char *err, size_t errlen)
{
	int ret = balloon_of(vm, err, errlen);

	if (ret)
		return ret;
	if (!vm->balloon.free_page_hinting) {
		snprintf(err, errlen, "balloon: free page hinting was not enabled at boot");
		return -ENOTSUP;
	}
	if (op != BALLOON_HINT_STATUS && fake_vm.hint_driver_down) {
		snprintf(err, errlen, "balloon: the guest's driver has not started the device");
		return -EAGAIN;
	}
	if (op == BALLOON_HINT_START) {
		fake_vm.hint.host_cmd = fake_vm.hint.host_cmd < 2 ? 2 : fake_vm.hint.host_cmd + 1;
		fake_vm.hint.acknowledge_on_stop = acknowledge_on_stop;
	} else if (op == BALLOON_HINT_STOP) {
		fake_vm.hint.host_cmd = BALLOON_HINT_CMD_DONE;
	}
	if (out)
		*out = fake_vm.hint;
	return 0;
}

/* ---- run-time device updates: recorded, the drive's path kept ---- */

int vm_drive_update(struct vm *vm, const char *drive_id, const char *path,
	const struct rate_limit_update *limit, char *err, size_t errlen)
{
	struct drive_config *d = NULL;

	for (unsigned i = 0; !d && i < vm->cfg.nr_drives; i++)
		if (!strcmp(vm->cfg.drives[i].id, drive_id))
			d = &vm->cfg.drives[i];
	if (!d) {
		snprintf(err, errlen, "drive '%s': no such drive", drive_id);
		return -ENOENT;
	}
	if (path) {
		char *copy = strdup(path);
		if (!copy)
			return -ENOMEM;
		free(d->path);
		d->path = copy;
		snprintf(fake_vm.last_drive_path, sizeof(fake_vm.last_drive_path), "%s", path);
	}
	fake_vm.last_drive_had_limit = limit != NULL;
	if (limit)
		fake_vm.last_drive_limit = *limit;
	fake_vm.drive_updates++;
	return 0;
}

int vm_pmem_update(struct vm *vm, const char *pmem_id, const struct rate_limit_update *limit,
	char *err, size_t errlen)
{
	(void)limit;
	for (unsigned i = 0; i < vm->cfg.nr_pmem; i++)
		if (!strcmp(vm->cfg.pmem[i].id, pmem_id))
			return 0;
	snprintf(err, errlen, "pmem '%s': no such pmem device", pmem_id);
	return -ENOENT;
}

int vm_net_update(struct vm *vm, const char *iface_id, const struct rate_limit_update *rx,
	const struct rate_limit_update *tx, char *err, size_t errlen)
{
	bool found = false;

	for (unsigned i = 0; i < vm->cfg.nr_nets; i++)
		found = found || !strcmp(vm->cfg.nets[i].id, iface_id);
	if (!found) {
		snprintf(err, errlen, "net '%s': no such network interface", iface_id);
		return -ENOENT;
	}
	fake_vm.last_rx = *rx;
	fake_vm.last_tx = *tx;
	fake_vm.net_updates++;
	return 0;
}

/* The tap backend, faked: no tap is made in the host's namespace by unit tests or fuzzers.
 * A name starting "busy" is one another process holds (EBUSY, Firecracker's words). */
int tap_open(const char *name, char *err, size_t errlen)
{
	if (strncmp(name, "busy", 4) == 0) {
		snprintf(err, errlen,
			"Error while creating ifreq structure: Resource busy (os error 16). Invalid "
			"TUN/TAP Backend provided by %s. Check our documentation on setting up the "
			"network devices.",
			name);
		return -EBUSY;
	}
	return open("/dev/null", O_RDWR | O_CLOEXEC);
}
