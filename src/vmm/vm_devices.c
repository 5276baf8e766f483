/* A VM's virtio devices: built in the documented order (drives, net, vsock, entropy,
 * balloon), each on the next virtio-mmio window with its own interrupt; described to
 * the guest in ACPI or on the kernel command line (their state: vm_persist.c). */
#include "vm_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ember/acpi.h"
#include "ember/balloon.h"
#include "ember/block.h"
#include "ember/layout.h"
#include "ember/log.h"
#include "ember/net.h"
#include "ember/pmem.h"
#include "ember/rate_limiter.h"
#include "ember/virtio.h"
#include "ember/virtio_devices.h"

#define FIRST_VIRTIO_GSI 5 /* 0-4 are legacy lines; LAYOUT_VMGENID_GSI is the last pin */

static int add(struct vm *vm, struct virtio_dev *vd)
{
	if (!vd)
		return -EIO;
	vm->virtio[vm->nr_virtio++] = vd;
	return 0;
}

/* The `i`-th pmem device, right after the previous one's region, in its own slot; the
 * first above all of guest memory, virtio-mem's hotplug area included. */
static int add_pmem(struct vm *vm, const struct virtio_env *env, uint64_t base, uint32_t gsi,
	unsigned i, char *err, size_t errlen)
{
	uint64_t gpa = guest_mem_free_base(&vm->mem);
	struct pmem_info info;
	int ret;

	for (unsigned k = 0; k < vm->nr_virtio; k++)
		if (!virtio_pmem_info(vm->virtio[k], &info))
			gpa = info.gpa + info.size;
	ret = add(vm,
		virtio_pmem_new(env, base, gsi, &vm->cfg.pmem[i], gpa, LAYOUT_SLOT_PMEM + i, err,
			errlen));
	if (!ret && !virtio_pmem_info(vm->virtio[vm->nr_virtio - 1], &info))
		log_info("pmem '%s': %llu MiB at 0x%llx", vm->cfg.pmem[i].id,
			(unsigned long long)(info.size >> 20), (unsigned long long)info.gpa);
	return ret;
}

int vm_build_virtio(struct vm *vm, char *err, size_t errlen)
{
	const struct vm_config *c = &vm->cfg;
	struct virtio_env env = { .loop = vm->devs.loop,
		.control_loop = vm->loop,
		.mem = &vm->mem,
		.vm_fd = vm->vm_fd,
		.mmio = &vm->mmio,
		.mmds = c->mmds,
		.log_dirty = c->track_dirty_pages };
	unsigned total = c->nr_drives + c->nr_nets + c->vsock.enabled + c->entropy.enabled +
		c->balloon.enabled + c->nr_pmem + c->mem_hotplug.enabled;
	int ret = 0;

	if (total > VM_MAX_VIRTIO || total > ACPI_MAX_VIRTIO) {
		snprintf(err, errlen, "devices: %u virtio devices, at most %d", total,
			VM_MAX_VIRTIO);
		return -EINVAL;
	}
#define NEXT_BASE (LAYOUT_VIRTIO_MMIO_BASE + vm->nr_virtio * LAYOUT_VIRTIO_MMIO_SIZE)
#define NEXT_GSI (FIRST_VIRTIO_GSI + vm->nr_virtio)
	for (unsigned i = 0; !ret && i < c->nr_drives; i++)
		ret = add(vm,
			virtio_block_new(&env, NEXT_BASE, NEXT_GSI, &c->drives[i], err, errlen));
	for (unsigned i = 0; !ret && i < c->nr_nets; i++)
		ret = add(vm, virtio_net_new(&env, NEXT_BASE, NEXT_GSI, &c->nets[i], err, errlen));
	if (!ret && c->vsock.enabled)
		ret = add(vm, virtio_vsock_new(&env, NEXT_BASE, NEXT_GSI, &c->vsock, err, errlen));
	if (!ret && c->entropy.enabled)
		ret = add(vm,
			virtio_rng_new(&env, NEXT_BASE, NEXT_GSI, &c->entropy.limit, err, errlen));
	if (!ret && c->balloon.enabled)
		ret = add(vm,
			virtio_balloon_new(&env, NEXT_BASE, NEXT_GSI, &c->balloon, err, errlen));
	for (unsigned i = 0; !ret && i < c->nr_pmem; i++)
		ret = add_pmem(vm, &env, NEXT_BASE, NEXT_GSI, i, err, errlen);
	if (!ret && c->mem_hotplug.enabled)
		ret = add(vm,
			virtio_mem_new(&env, NEXT_BASE, NEXT_GSI, &c->mem_hotplug, err, errlen));
#undef NEXT_BASE
#undef NEXT_GSI
	return ret;
}

void vm_free_virtio(struct vm *vm)
{
	while (vm->nr_virtio)
		virtio_free(vm->virtio[--vm->nr_virtio]);
}

unsigned vm_virtio_acpi(const struct vm *vm, struct acpi_mmio_device *out)
{
	if (vm->cfg.device_discovery == DISCOVERY_CMDLINE)
		return 0; /* described on the command line instead: never twice */
	for (unsigned i = 0; i < vm->nr_virtio; i++)
		out[i] = (struct acpi_mmio_device){ .base = virtio_base(vm->virtio[i]),
			.size = LAYOUT_VIRTIO_MMIO_SIZE,
			.gsi = virtio_gsi(vm->virtio[i]) };
	return vm->nr_virtio;
}

int vm_device_cmdline(const struct vm *vm, char *buf, size_t len)
{
	const struct vm_config *c = &vm->cfg;
	size_t n = 0;
	int w;

	buf[0] = 0;
	for (unsigned i = 0; i < c->nr_drives; i++) {
		if (!c->drives[i].root)
			continue;
		/* Drives come first, so drive i is the guest's i-th virtio disk. */
		w = snprintf(buf + n, len - n, " root=/dev/vd%c %s", 'a' + i,
			c->drives[i].read_only ? "ro" : "rw");
		if (w < 0 || (size_t)w >= len - n)
			return -E2BIG;
		n += (size_t)w;
	}
	for (unsigned i = 0; i < c->nr_pmem; i++) {
		if (!c->pmem[i].root)
			continue;
		/* As Firecracker: pmem devices are the guest's pmem0, 1, ... in their order. */
		w = snprintf(buf + n, len - n, " root=/dev/pmem%u %s", i,
			c->pmem[i].read_only ? "ro" : "rw");
		if (w < 0 || (size_t)w >= len - n)
			return -E2BIG;
		n += (size_t)w;
	}
	for (unsigned i = 0; c->device_discovery == DISCOVERY_CMDLINE && i < vm->nr_virtio; i++) {
		w = snprintf(buf + n, len - n, " virtio_mmio.device=4K@0x%llx:%u",
			(unsigned long long)virtio_base(vm->virtio[i]), virtio_gsi(vm->virtio[i]));
		if (w < 0 || (size_t)w >= len - n)
			return -E2BIG;
		n += (size_t)w;
	}
	return 0;
}

static struct virtio_dev *find_kind(const struct vm *vm, const char *kind)
{
	for (unsigned i = 0; i < vm->nr_virtio; i++)
		if (!strcmp(virtio_kind(vm->virtio[i]), kind))
			return vm->virtio[i];
	return NULL;
}

/* Devices exist, and may be changed, while the VM runs or is paused. */
static bool live(const struct vm *vm, const char *what, char *err, size_t errlen)
{
	if (vm->state == VM_RUNNING || vm->state == VM_PAUSED)
		return true;
	snprintf(err, errlen, "%s: the vm is %s", what, vm_state_name(vm->state));
	return false;
}

static struct virtio_dev *live_balloon(const struct vm *vm, char *err, size_t errlen)
{
	struct virtio_dev *vd;

	if (!live(vm, "balloon", err, errlen))
		return NULL;
	vd = find_kind(vm, "balloon");
	if (!vd)
		snprintf(err, errlen, "balloon: the vm has no balloon device");
	return vd;
}

static int balloon_set(struct vm *vm, uint32_t amount_mib, char *err, size_t errlen)
{
	struct virtio_dev *vd = live_balloon(vm, err, errlen);
	int ret;

	if (!vd)
		return -ENODEV;
	if (amount_mib > vm->cfg.mem_mib) {
		snprintf(err, errlen, "balloon: amount_mib %u is more than the vm's %llu MiB",
			amount_mib, (unsigned long long)vm->cfg.mem_mib);
		return -EINVAL;
	}
	ret = virtio_balloon_set_target(vd, amount_mib);
	if (ret)
		snprintf(err, errlen, "balloon: cannot set the target: %s", strerror(-ret));
	return ret;
}

static int balloon_stats(struct vm *vm, struct balloon_stats *out, char *err, size_t errlen)
{
	struct virtio_dev *vd = live_balloon(vm, err, errlen);
	int ret;

	if (!vd)
		return -ENODEV;
	ret = virtio_balloon_stats(vd, out);
	if (ret)
		snprintf(err, errlen,
			"balloon: statistics are off (stats_polling_interval_s is 0)");
	return ret;
}

static int balloon_set_stats_interval(struct vm *vm, uint32_t seconds, char *err, size_t errlen)
{
	struct virtio_dev *vd = live_balloon(vm, err, errlen);
	int ret;

	if (!vd)
		return -ENODEV;
	ret = virtio_balloon_set_stats_interval(vd, seconds);
	if (ret == -ENOTSUP)
		snprintf(err, errlen, "balloon: statistics cannot be turned on or off after boot");
	else if (ret)
		snprintf(err, errlen, "balloon: cannot set the polling interval: %s",
			strerror(-ret));
	return ret;
}

static int balloon_config(struct vm *vm, struct balloon_config *out, char *err, size_t errlen)
{
	struct virtio_dev *vd = live_balloon(vm, err, errlen);
	int ret;

	if (!vd)
		return -ENODEV;
	ret = virtio_balloon_config(vd, out);
	if (ret)
		snprintf(err, errlen, "balloon: cannot read the configuration: %s", strerror(-ret));
	return ret;
}

static int balloon_hinting(struct vm *vm, enum balloon_hint_op op, bool ack,
	struct balloon_hinting *out, char *err, size_t errlen)
{
	struct virtio_dev *vd = live_balloon(vm, err, errlen);
	int ret;

	if (!vd)
		return -ENODEV;
	ret = virtio_balloon_hinting(vd, op, ack, out);
	if (ret == -ENOTSUP)
		snprintf(err, errlen, "balloon: free page hinting was not enabled at boot");
	else if (ret == -EAGAIN)
		snprintf(err, errlen, "balloon: the guest's driver has not started the device");
	else if (ret)
		snprintf(err, errlen, "balloon: hinting: %s", strerror(-ret));
	return ret;
}

/* ---- run-time changes of drives and network interfaces ---- */

/* The configuration's record of a limit after `u` (a removed bucket is all zeros). */
static void limit_config_update(struct rate_limit *c, const struct rate_limit_update *u)
{
	static const struct token_bucket_config removed;

	if (u->bandwidth_set)
		c->bandwidth = u->limit.bandwidth.size ? u->limit.bandwidth : removed;
	if (u->ops_set)
		c->ops = u->limit.ops.size ? u->limit.ops : removed;
}

/* The live virtio device built for the configuration's `index`-th device (drives come
 * first, then network interfaces: vm_build_virtio's order); index < 0 means the id named
 * none. `what` names it in messages ("drive 'data'"), `noun` is its kind. */
static int live_device(const struct vm *vm, int index, const char *what, const char *noun,
	struct virtio_dev **out, char *err, size_t errlen)
{
	if (index < 0) {
		snprintf(err, errlen, "%s: no such %s", what, noun);
		return -ENOENT;
	}
	if (!live(vm, what, err, errlen))
		return -EBUSY;
	if ((unsigned)index >= vm->nr_virtio) {
		snprintf(err, errlen, "%s: the device was not built", what);
		return -ENODEV;
	}
	*out = vm->virtio[index];
	return 0;
}

static int drive_index(const struct vm_config *c, const char *id)
{
	for (unsigned i = 0; i < c->nr_drives; i++)
		if (!strcmp(c->drives[i].id, id))
			return (int)i;
	return -1;
}

static int net_index(const struct vm_config *c, const char *id)
{
	for (unsigned i = 0; i < c->nr_nets; i++)
		if (!strcmp(c->nets[i].id, id))
			return (int)i;
	return -1;
}

static int drive_update(struct vm *vm, const char *drive_id, const char *path,
	const struct rate_limit_update *limit, char *err, size_t errlen)
{
	struct rate_limiter scratch = { 0 };
	int at = drive_index(&vm->cfg, drive_id);
	struct drive_config *d;
	struct virtio_dev *vd = NULL;
	char what[96], why[160];
	char *copy = NULL;
	int ret;

	snprintf(what, sizeof(what), "drive '%s'", drive_id);
	ret = live_device(vm, at, what, "drive", &vd, err, errlen);
	if (ret)
		return ret;
	d = &vm->cfg.drives[at];
	/* The buckets are checked before the file is swapped, so that a bad limit changes
	 * nothing (the scratch limiter only does the checking). */
	if (limit && rate_limiter_update(&scratch, limit, 0, why, sizeof(why))) {
		snprintf(err, errlen, "%s: rate_limiter: %s", what, why);
		return -EINVAL;
	}
	if (path) {
		copy = strdup(path);
		if (!copy) {
			snprintf(err, errlen, "%s: out of memory", what);
			return -ENOMEM;
		}
		ret = virtio_block_set_path(vd, path, err, errlen);
		if (ret) {
			free(copy);
			return ret;
		}
		free(d->path);
		d->path = copy;
		log_info("%s: the backing file is now %s", what, path);
	}
	if (limit) {
		ret = virtio_block_set_limit(vd, limit, err, errlen);
		if (ret)
			return ret;
		limit_config_update(&d->limit, limit);
		log_info("%s: rate limiter updated", what);
	}
	return 0;
}

static int net_update(struct vm *vm, const char *iface_id, const struct rate_limit_update *rx,
	const struct rate_limit_update *tx, char *err, size_t errlen)
{
	static const struct rate_limit_update keep;
	int at = net_index(&vm->cfg, iface_id);
	struct net_config *n;
	struct virtio_dev *vd = NULL;
	char what[96];
	int ret;

	snprintf(what, sizeof(what), "net '%s'", iface_id);
	ret = live_device(vm, at < 0 ? -1 : (int)vm->cfg.nr_drives + at, what, "network interface",
		&vd, err, errlen);
	if (ret)
		return ret;
	n = &vm->cfg.nets[at];
	ret = virtio_net_set_limits(vd, rx ? rx : &keep, tx ? tx : &keep, err, errlen);
	if (ret)
		return ret;
	if (rx)
		limit_config_update(&n->rx_limit, rx);
	if (tx)
		limit_config_update(&n->tx_limit, tx);
	log_info("%s: rate limiters updated", what);
	return 0;
}

/* The live pmem device `id` is the i-th pmem one built (after all the others). */
static int pmem_update(struct vm *vm, const char *pmem_id, const struct rate_limit_update *limit,
	char *err, size_t errlen)
{
	const struct vm_config *c = &vm->cfg;
	struct virtio_dev *vd = NULL;
	char what[96];
	int at = -1, ret;

	for (unsigned i = 0; i < c->nr_pmem; i++)
		if (!strcmp(c->pmem[i].id, pmem_id))
			at = (int)(vm->nr_virtio - c->nr_pmem + i);
	snprintf(what, sizeof(what), "pmem '%s'", pmem_id);
	ret = live_device(vm, at, what, "pmem device", &vd, err, errlen);
	if (ret)
		return ret;
	ret = virtio_pmem_set_limit(vd, limit, err, errlen);
	if (ret)
		return ret;
	limit_config_update(&vm->cfg.pmem[at - (int)(vm->nr_virtio - c->nr_pmem)].limit, limit);
	log_info("%s: rate limiter updated", what);
	return 0;
}

/* ---- the control thread's entry points: each holds the device thread off ---- */

int vm_balloon_set(struct vm *vm, uint32_t amount_mib, char *err, size_t errlen)
{
	dev_thread_lock(&vm->devs);
	int ret = balloon_set(vm, amount_mib, err, errlen);
	dev_thread_unlock(&vm->devs);
	return ret;
}

int vm_balloon_stats(struct vm *vm, struct balloon_stats *out, char *err, size_t errlen)
{
	dev_thread_lock(&vm->devs);
	int ret = balloon_stats(vm, out, err, errlen);
	dev_thread_unlock(&vm->devs);
	return ret;
}

int vm_balloon_set_stats_interval(struct vm *vm, uint32_t seconds, char *err, size_t errlen)
{
	dev_thread_lock(&vm->devs);
	int ret = balloon_set_stats_interval(vm, seconds, err, errlen);
	dev_thread_unlock(&vm->devs);
	return ret;
}

int vm_balloon_config(struct vm *vm, struct balloon_config *out, char *err, size_t errlen)
{
	dev_thread_lock(&vm->devs);
	int ret = balloon_config(vm, out, err, errlen);
	dev_thread_unlock(&vm->devs);
	return ret;
}

int vm_balloon_hinting(struct vm *vm, enum balloon_hint_op op, bool acknowledge_on_stop,
	struct balloon_hinting *out, char *err, size_t errlen)
{
	dev_thread_lock(&vm->devs);
	int ret = balloon_hinting(vm, op, acknowledge_on_stop, out, err, errlen);
	dev_thread_unlock(&vm->devs);
	return ret;
}

int vm_drive_update(struct vm *vm, const char *drive_id, const char *path,
	const struct rate_limit_update *limit, char *err, size_t errlen)
{
	dev_thread_lock(&vm->devs);
	int ret = drive_update(vm, drive_id, path, limit, err, errlen);
	dev_thread_unlock(&vm->devs);
	return ret;
}

int vm_net_update(struct vm *vm, const char *iface_id, const struct rate_limit_update *rx,
	const struct rate_limit_update *tx, char *err, size_t errlen)
{
	dev_thread_lock(&vm->devs);
	int ret = net_update(vm, iface_id, rx, tx, err, errlen);
	dev_thread_unlock(&vm->devs);
	return ret;
}

int vm_pmem_update(struct vm *vm, const char *pmem_id, const struct rate_limit_update *limit,
	char *err, size_t errlen)
{
	dev_thread_lock(&vm->devs);
	int ret = pmem_update(vm, pmem_id, limit, err, errlen);
	dev_thread_unlock(&vm->devs);
	return ret;
}
