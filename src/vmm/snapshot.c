/* Snapshot and restore of a whole VM: which state goes where, in which order. */
#include "ember/snapshot.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <linux/kvm.h>

#include "ember/arch.h"
#include "ember/console.h"
#include "ember/devices.h"
#include "ember/log.h"
#include "ember/memory_file.h"
#include "ember/snapshot_file.h"
#include "ember/snapshot_id.h"
#include "ember/uffd.h"
#include "vm_internal.h"

#define VM_INFO_VERSION 1

/* ---- what a VM_INFO section holds ---- */

static int save_vm_info(const struct vm *vm, struct snap_writer *w)
{
	const struct vm_config *c = &vm->cfg;
	int ret = snap_section_begin(w, SNAP_SEC_VM_INFO, VM_INFO_VERSION);

	if (!ret)
		ret = snap_put_u32(w, c->vcpus);
	if (!ret)
		ret = snap_put_u64(w, c->mem_mib);
	if (!ret)
		ret = snap_put_u32(w, c->mem_backing == GUEST_MEM_FILE ? GUEST_MEM_ANON
									: c->mem_backing);
	if (!ret)
		ret = snap_put_str(w, c->kernel);
	if (!ret)
		ret = snap_put_str(w, c->initrd);
	if (!ret)
		ret = snap_put_str(w, c->cmdline);
	return ret ? ret : snap_section_end(w);
}

static int load_vm_info(const struct snap_reader *r, struct vm_config *c, char *err,
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

static int save_memory_layout(const struct vm *vm, struct snap_writer *w)
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

static int check_memory_layout(const struct snap_reader *r, uint64_t mem_mib, char *err,
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
	if (count != n) {
		snprintf(err, errlen, "state file: %u memory regions, a %llu MiB machine has %u",
			count, (unsigned long long)mem_mib, n);
		return -EINVAL;
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
		if (!plugged) {
			snprintf(err, errlen, "state file: memory region %u is not plugged", i);
			return -EINVAL;
		}
		if (gpa != want[i].gpa || size != want[i].size || off != want[i].file_offset) {
			snprintf(err, errlen,
				"state file: memory region %u (0x%llx, %llu bytes) is not one slot of "
				"a %llu MiB machine", i, (unsigned long long)gpa,
				(unsigned long long)size, (unsigned long long)mem_mib);
			return -EINVAL;
		}
	}
	return 0;
}

/* ---- devices: registers and queues, before the KVM state (as Firecracker) ---- */

static int save_device(struct snap_writer *w, const char *name, int (*save)(void *, struct snap_writer *),
	void *dev)
{
	int ret = snap_section_begin(w, SNAP_SEC_DEVICE, 1);

	if (!ret)
		ret = snap_put_str(w, name);
	if (!ret)
		ret = save(dev, w);
	return ret ? ret : snap_section_end(w);
}

static int save_serial(void *dev, struct snap_writer *w)
{
	return serial_save(dev, w);
}

static int save_i8042(void *dev, struct snap_writer *w)
{
	return i8042_save(dev, w);
}

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

/* ---- dirty pages ---- */

/* Fetch (and so reset) KVM's dirty log of every slot, OR-ed with what a failed diff left
 * pending. Caller frees the bitmaps. */
static int dirty_bitmaps(struct vm *vm, unsigned long **maps, char *err, size_t errlen)
{
	memset(maps, 0, sizeof(*maps) * GUEST_MEM_MAX_REGIONS);
	for (unsigned i = 0; i < vm->mem.nr_regions; i++) {
		size_t bytes = guest_mem_bitmap_bytes(vm->mem.regions[i].size);
		struct kvm_dirty_log log = { .slot = i };

		maps[i] = calloc(1, bytes);
		if (!maps[i]) {
			snprintf(err, errlen, "dirty log: out of memory");
			return -ENOMEM;
		}
		log.dirty_bitmap = maps[i];
		if (ioctl(vm->vm_fd, KVM_GET_DIRTY_LOG, &log) < 0) {
			snprintf(err, errlen, "KVM_GET_DIRTY_LOG slot %u: %s", i, strerror(errno));
			return -errno;
		}
		/* Pages ember's devices wrote: KVM's log does not see them. */
		guest_mem_take_dirty(&vm->mem, i, maps[i]);
		if (vm->pending_dirty[i])
			for (size_t k = 0; k < bytes / sizeof(long); k++)
				maps[i][k] |= vm->pending_dirty[i][k];
	}
	return 0;
}

static void free_bitmaps(unsigned long **maps)
{
	for (unsigned i = 0; i < GUEST_MEM_MAX_REGIONS; i++)
		free(maps[i]);
}

/* A diff that was not written keeps its pages for the next one. */
static void keep_pending(struct vm *vm, unsigned long **maps)
{
	for (unsigned i = 0; i < vm->mem.nr_regions; i++) {
		free(vm->pending_dirty[i]);
		vm->pending_dirty[i] = maps[i];
		maps[i] = NULL;
	}
}

static void clear_pending(struct vm *vm)
{
	for (unsigned i = 0; i < GUEST_MEM_MAX_REGIONS; i++) {
		free(vm->pending_dirty[i]);
		vm->pending_dirty[i] = NULL;
	}
}

/* ---- create ---- */

static int build_state(struct vm *vm, struct snap_writer *w, const struct snap_id *id,
	char *err, size_t errlen)
{
	int ret = save_vm_info(vm, w);

	if (!ret)
		ret = snap_id_save(w, id);
	if (!ret)
		ret = save_memory_layout(vm, w);
	if (!ret)
		ret = save_device(w, "serial", save_serial, vm->serial);
	if (!ret)
		ret = save_device(w, "i8042", save_i8042, vm->i8042);
	if (!ret)
		ret = snapshot_save_devices(&vm->cfg, w);
	if (!ret)
		ret = vm_save_virtio(vm, w);
	if (ret) {
		snprintf(err, errlen, "snapshot: out of memory");
		return ret;
	}
	for (unsigned i = 0; i < vm->nr_vcpus; i++) {
		ret = snap_section_begin(w, SNAP_SEC_VCPU, 1);
		if (!ret)
			ret = arch_vcpu_save(vm->kvm_fd, &vm->vcpus[i], w, err, errlen);
		if (!ret)
			ret = snap_section_end(w);
		if (ret)
			return ret;
	}
	ret = snap_section_begin(w, SNAP_SEC_VM_STATE, 1);
	if (!ret)
		ret = arch_vm_save(vm->vm_fd, w, err, errlen);
	return ret ? ret : snap_section_end(w);
}

/* fsync the directory that holds `path`, so a rename there survives a crash. */
static int sync_parent_dir(const char *path)
{
	const char *slash = strrchr(path, '/');
	char dir[SNAP_PATH_MAX + 1];
	int fd, ret = 0;

	if (!slash)
		snprintf(dir, sizeof(dir), ".");
	else
		snprintf(dir, sizeof(dir), "%.*s", slash == path ? 1 : (int)(slash - path), path);
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fsync(fd) < 0)
		ret = -errno;
	close(fd);
	return ret;
}

/* Both files are complete and durable under temporary names; put them in place. Memory
 * first, state last: the state file is the commit record. A state file that is there is
 * never newer than the memory file beside it, even where xattrs (so ids) are missing,
 * and whoever takes the newest state file gets its memory. A crash between the two
 * renames leaves the old state file with the new memory file, which their ids tell
 * apart: restore refuses the pair, naming both. The memory file's directory is synced
 * before the state file is renamed, so no crash can keep the second rename and lose the
 * first. */
static int publish(const char *mem_tmp, const char *mem_path, const char *state_tmp,
	const char *state_path, char *err, size_t errlen)
{
	int ret;

	if (rename(mem_tmp, mem_path) < 0) {
		ret = -errno;
		snprintf(err, errlen, "memory file %s: %s", mem_path, strerror(-ret));
		return ret;
	}
	ret = sync_parent_dir(mem_path);
	if (!ret && rename(state_tmp, state_path) < 0)
		ret = -errno;
	if (ret) {
		snprintf(err, errlen, "state file %s: %s (memory file %s is already the new one; "
			"restore refuses it with the old state file)", state_path, strerror(-ret),
			mem_path);
		return ret;
	}
	ret = sync_parent_dir(state_path);
	if (ret)
		snprintf(err, errlen, "state file %s: written, but cannot sync its directory: %s",
			state_path, strerror(-ret));
	return ret;
}

int vm_snapshot(struct vm *vm, const struct snapshot_params *p, char *err, size_t errlen)
{
	unsigned long *maps[GUEST_MEM_MAX_REGIONS] = { 0 };
	struct mem_file_stats st = { 0 };
	struct snap_writer *w = NULL;
	char mem_tmp[SNAP_PATH_MAX + 32], state_tmp[SNAP_PATH_MAX + 32];
	struct snap_id id;
	uint64_t t0 = log_now_us();
	int ret;

	err[0] = 0;
	if (vm->state != VM_PAUSED) {
		snprintf(err, errlen, "snapshot: the vm must be paused (it is %s)",
			vm_state_name(vm->state));
		return -EBUSY;
	}
	if (!p->state_path || !p->mem_path || strlen(p->mem_path) > SNAP_PATH_MAX ||
		strlen(p->state_path) > SNAP_PATH_MAX) {
		snprintf(err, errlen, "snapshot: needs a state path and a memory path");
		return -EINVAL;
	}
	if (p->type == SNAPSHOT_DIFF && !vm->cfg.track_dirty_pages) {
		snprintf(err, errlen, "snapshot: a diff snapshot needs track_dirty_pages");
		return -EINVAL;
	}
	ret = snap_id_generate(&id);
	if (ret) {
		snprintf(err, errlen, "snapshot: no random snapshot id: %s", strerror(-ret));
		return ret;
	}
	w = snap_writer_new();
	if (!w) {
		snprintf(err, errlen, "snapshot: out of memory");
		return -ENOMEM;
	}
	ret = build_state(vm, w, &id, err, errlen);
	/* A full snapshot also resets the dirty log, so the next diff is relative to it. */
	if (!ret && vm->cfg.track_dirty_pages)
		ret = dirty_bitmaps(vm, maps, err, errlen);
	if (ret)
		goto out;
	/* Everything is written and synced before anything is replaced: a failure up to
	 * publish() leaves the previous pair as it was. */
	snprintf(mem_tmp, sizeof(mem_tmp), "%s.tmp.%d", p->mem_path, (int)getpid());
	snprintf(state_tmp, sizeof(state_tmp), "%s.tmp.%d", p->state_path, (int)getpid());
	ret = mem_file_write(&vm->mem, mem_tmp, p->type == SNAPSHOT_DIFF ? maps : NULL,
		vm->mem_zero_backed, &id, &st, err, errlen);
	if (!ret)
		ret = snap_writer_commit(w, state_tmp, err, errlen);
	if (!ret)
		ret = publish(mem_tmp, p->mem_path, state_tmp, p->state_path, err, errlen);
	if (ret) {
		unlink(mem_tmp);
		unlink(state_tmp);
	}
out:
	if (ret && p->type == SNAPSHOT_DIFF && maps[0])
		keep_pending(vm, maps);
	else if (!ret)
		clear_pending(vm);
	free_bitmaps(maps);
	snap_writer_free(w);
	if (!ret) {
		vm->last_snapshot_us = log_now_us() - t0;
		log_info("snapshot (%s): %llu MiB of memory written in %llu us",
			p->type == SNAPSHOT_DIFF ? "diff" : "full",
			(unsigned long long)(st.bytes_written >> 20),
			(unsigned long long)vm->last_snapshot_us);
	}
	return ret;
}

/* ---- restore ---- */

/* The handler went away (its watch thread): end the VM, its memory is lost. */
static void uffd_lost(void *opaque)
{
	struct vm *vm = opaque;

	atomic_store(&vm->uffd_lost, true);
	vm_request_exit(vm, VM_EXIT_ERROR, "the page-fault handler went away");
}

/* The state file's id against the memory file's (File backend). With Uffd the memory
 * file is the handler's and ember never sees its name: ember-uffd --state checks there. */
static int check_pair(const struct snap_reader *r, const struct restore_params *p, char *err,
	size_t errlen)
{
	struct snap_id id;
	bool found;
	int ret = snap_id_load(r, &id, &found, err, errlen);

	if (ret)
		return ret;
	if (p->backend == MEM_BACKEND_UFFD) {
		log_debug("restore: the memory file is the uffd handler's to check");
		return 0;
	}
	return mem_file_check_id(p->backend_path, p->state_path, found ? &id : NULL, err,
		errlen);
}

static int build_memory(struct vm *vm, const struct restore_params *p, char *err,
	size_t errlen)
{
	int ret;

	if (p->backend == MEM_BACKEND_FILE) {
		if (vm->cfg.mem_backing == GUEST_MEM_HUGETLB) {
			snprintf(err, errlen, "Cannot restore hugetlbfs backed snapshot by mapping "
				"the memory file. Please use uffd.");
			return -EINVAL;
		}
		return vm_build_memory(vm, GUEST_MEM_FILE, p->backend_path, err, errlen);
	}
	ret = guest_mem_map(&vm->mem, vm->cfg.mem_mib << 20,
		vm->cfg.mem_backing == GUEST_MEM_HUGETLB ? GUEST_MEM_HUGETLB : GUEST_MEM_ANON, NULL,
		err, errlen);
	if (!ret)
		ret = uffd_backend_attach(&vm->mem, p->backend_path, &vm->uffd, &vm->uffd_sock, err,
			errlen);
	if (!ret) {
		vm->uffd_watch = uffd_watch_start(vm->uffd_sock, vm->uffd, &vm->mem, uffd_lost, vm,
			err, errlen);
		if (!vm->uffd_watch)
			ret = -ENOMEM;
	}
	return ret ? ret : vm_register_memory(vm, err, errlen);
}

/* Network (iface id -> tap) and vsock socket overrides, applied to the configuration
 * before any device is built. */
static int apply_overrides(const struct restore_params *p, struct vm_config *c, char *err,
	size_t errlen)
{
	for (unsigned i = 0; i < p->nr_net_overrides; i++) {
		const struct net_override *o = &p->net_overrides[i];
		unsigned k = 0;
		while (k < c->nr_nets && strcmp(c->nets[k].id, o->iface_id))
			k++;
		if (k == c->nr_nets) {
			snprintf(err, errlen, "Unknown Network Device: no interface '%s' in the "
				"snapshot", o->iface_id);
			return -EINVAL;
		}
		if (!o->host_dev_name || !o->host_dev_name[0] || strlen(o->host_dev_name) >= 16) {
			snprintf(err, errlen, "net override '%s': tap needs a name of 1 to 15 "
				"characters", o->iface_id);
			return -EINVAL;
		}
		c->nets[k].tap = (char *)o->host_dev_name;
	}
	for (unsigned i = 0; i < p->nr_drive_overrides; i++) {
		const struct drive_override *o = &p->drive_overrides[i];
		unsigned k = 0;
		while (k < c->nr_drives && strcmp(c->drives[k].id, o->drive_id))
			k++;
		if (k == c->nr_drives) {
			snprintf(err, errlen, "Unknown Block Device: no drive '%s' in the snapshot",
				o->drive_id);
			return -EINVAL;
		}
		if (!o->path_on_host || !o->path_on_host[0]) {
			snprintf(err, errlen, "drive override '%s': path_on_host is empty", o->drive_id);
			return -EINVAL;
		}
		c->drives[k].path = (char *)o->path_on_host;
	}
	if (p->vsock_uds_path) {
		if (!c->vsock.enabled) {
			snprintf(err, errlen, "vsock override: the snapshot has no vsock device");
			return -EINVAL;
		}
		c->vsock.uds_path = (char *)p->vsock_uds_path;
	}
	return 0;
}

static int restore_machine(struct vm *vm, const struct snap_reader *r,
	const struct restore_params *p, char *err, size_t errlen)
{
	struct snap_cursor cur;
	int ret = vm_build_kvm(vm, err, errlen);

	if (!ret)
		ret = build_memory(vm, p, err, errlen);
	if (!ret)
		ret = arch_vm_setup(vm->vm_fd, err, errlen);
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
	uint64_t t0 = log_now_us();
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
	ret = load_vm_info(r, &cfg, err, errlen);
	if (!ret)
		ret = check_pair(r, p, err, errlen);
	if (!ret)
		ret = check_memory_layout(r, cfg.mem_mib, err, errlen);
	if (!ret && snap_reader_count_id(r, SNAP_SEC_VCPU) != cfg.vcpus) {
		snprintf(err, errlen, "state file: %u vcpu sections for %u vCPUs",
			snap_reader_count_id(r, SNAP_SEC_VCPU), cfg.vcpus);
		ret = -EINVAL;
	}
	if (!ret)
		ret = snapshot_load_devices(r, &cfg, err, errlen);
	if (!ret)
		ret = apply_overrides(p, &cfg, err, errlen);
	if (!ret)
		ret = vm_config_check(&cfg, err, errlen);
	if (ret)
		goto out;
	cfg.track_dirty_pages = p->track_dirty_pages;
	cfg.console = p->console_stdio ? CONSOLE_STDIO : CONSOLE_NONE;
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
	console_input_enable(vm->console, true);
	vm->last_restore_us = log_now_us() - t0;
	log_info("restore: %u vCPUs, %llu MiB from %s in %llu us", cfg.vcpus,
		(unsigned long long)cfg.mem_mib, p->backend == MEM_BACKEND_UFFD ? "uffd" : "file",
		(unsigned long long)vm->last_restore_us);
	if (p->resume && vm_resume(vm, err, errlen)) {
		vm_free(vm);
		vm = NULL;
	}
out:
	snap_reader_free(r);
	return vm;
}

static void describe_devices(const struct snap_reader *r, struct vm_config *cfg, FILE *out)
{
	char err[128];

	if (snapshot_load_devices(r, cfg, err, sizeof(err))) {
		fprintf(out, "devices:       %s\n", err);
		return;
	}
	for (unsigned i = 0; i < cfg->nr_drives; i++)
		fprintf(out, "drive:         %s %s%s\n", cfg->drives[i].id, cfg->drives[i].path,
			cfg->drives[i].read_only ? " (read-only)" : "");
	for (unsigned i = 0; i < cfg->nr_nets; i++)
		fprintf(out, "net:           %s tap %s\n", cfg->nets[i].id, cfg->nets[i].tap);
	if (cfg->vsock.enabled)
		fprintf(out, "vsock:         cid %u %s\n", cfg->vsock.guest_cid, cfg->vsock.uds_path);
	if (cfg->entropy.enabled)
		fprintf(out, "entropy:       yes\n");
	if (cfg->balloon.enabled)
		fprintf(out, "balloon:       %u MiB\n", cfg->balloon.amount_mib);
}

static void describe_id(const struct snap_reader *r, FILE *out)
{
	char err[128], hex[SNAP_ID_HEX_LEN + 1];
	struct snap_id id;
	bool found;

	if (snap_id_load(r, &id, &found, err, sizeof(err)))
		fprintf(out, "snapshot id:   %s\n", err);
	else if (!found)
		fprintf(out, "snapshot id:   none (written before snapshot ids)\n");
	else {
		snap_id_format(&id, hex);
		fprintf(out, "snapshot id:   %s\n", hex);
	}
}

int vm_snapshot_describe(const char *state_path, FILE *out, char *err, size_t errlen)
{
	static const char *const section_names[] = { "?", "vm info", "memory", "vm state",
		"vcpu", "device" };
	struct snap_reader *r = NULL;
	struct vm_config cfg;
	unsigned major, minor;
	int ret = snap_reader_open(&r, state_path, err, errlen);

	if (ret)
		return ret;
	vm_config_init(&cfg);
	ret = load_vm_info(r, &cfg, err, errlen);
	if (!ret)
		ret = check_memory_layout(r, cfg.mem_mib, err, errlen);
	if (!ret) {
		snap_reader_version(r, &major, &minor);
		fprintf(out, "state file:    %s\n", state_path);
		fprintf(out, "format:        ember snapshot v%u.%u\n", major, minor);
		describe_id(r, out);
		fprintf(out, "vcpus:         %u\n", cfg.vcpus);
		fprintf(out, "memory:        %llu MiB (%s)\n", (unsigned long long)cfg.mem_mib,
			vm_config_backing_name(cfg.mem_backing));
		fprintf(out, "kernel:        %s\n", cfg.kernel ? cfg.kernel : "-");
		fprintf(out, "initrd:        %s\n", cfg.initrd ? cfg.initrd : "-");
		fprintf(out, "cmdline:       %s\n", cfg.cmdline ? cfg.cmdline : "");
		describe_devices(r, &cfg, out);
		fprintf(out, "sections:      %u\n", snap_reader_count(r));
		for (unsigned id = SNAP_SEC_VM_INFO; id <= SNAP_SEC_DEVICE; id++)
			fprintf(out, "  %-12s %u\n", section_names[id], snap_reader_count_id(r, id));
		for (unsigned i = 0; i < snap_reader_count_id(r, SNAP_SEC_DEVICE); i++) {
			struct snap_cursor cur;
			const char *name = NULL;
			if (!snap_reader_find(r, SNAP_SEC_DEVICE, i, &cur) &&
				!snap_get_str(&cur, &name, 64) && name)
				fprintf(out, "device:        %s\n", name);
		}
	}
	snap_reader_free(r);
	return ret;
}
