/* Snapshot create: which state goes into the state file in which order, the memory file
 * beside it, and how the pair replaces an older one without a moment of inconsistency. */
#include "ember/snapshot.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ember/arch.h"
#include "ember/clock.h"
#include "ember/log.h"
#include "ember/memory_file.h"
#include "ember/snapshot_file.h"
#include "ember/snapshot_id.h"
#include "ember/snapshot_publish.h"
#include "ember/vm_fd.h"
#include "vm_internal.h"

/* ---- dirty pages ---- */

/* Fetch (and so reset) KVM's dirty log of every slot, OR-ed with what a failed diff left
 * pending. Caller frees the bitmaps. */
static int dirty_bitmaps(struct vm *vm, unsigned long **maps, char *err, size_t errlen)
{
	memset(maps, 0, sizeof(*maps) * GUEST_MEM_MAX_REGIONS);
	for (unsigned i = 0; i < vm->mem.nr_regions; i++) {
		size_t bytes = guest_mem_bitmap_bytes(vm->mem.regions[i].size);
		int ret;

		maps[i] = calloc(1, bytes);
		if (!maps[i]) {
			snprintf(err, errlen, "dirty log: out of memory");
			return -ENOMEM;
		}
		/* Device memory (the hotplug area): its device holds its KVM slots, one per
		 * slot of plugged blocks, and reads their logs; a slot it gave back held only
		 * unplugged blocks, whose discards ember marked itself (below). */
		if (i >= guest_mem_nr_ram(&vm->mem))
			ret = vm_mem_hotplug_dirty_log(vm, maps[i], err, errlen);
		else
			ret = kvm_vm_dirty_log(vm->vm_fd, i, maps[i], err, errlen);
		if (ret)
			return ret;
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

/* A snapshot that was not written keeps its pages for the next diff. A region whose log
 * was not read keeps what was pending before. */
static void keep_pending(struct vm *vm, unsigned long **maps)
{
	for (unsigned i = 0; i < vm->mem.nr_regions; i++) {
		if (!maps[i])
			continue;
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

static int build_state(struct vm *vm, struct snap_writer *w, const struct mem_id *id, char *err,
	size_t errlen)
{
	int ret = snapshot_save_vm_info(vm, w);

	if (!ret)
		ret = snap_id_save(w, &id->id, id->has_parent ? &id->parent : NULL);
	if (!ret)
		ret = snapshot_save_memory_layout(vm, w);
	if (!ret)
		ret = snapshot_save_cpu_model(&vm->cfg, w);
	/* Devices (registers and queues) before the KVM state, as Firecracker: their
	 * configuration, then each device's state (vm_persist.c). */
	if (!ret)
		ret = snapshot_save_devices(&vm->cfg, w);
	if (!ret)
		ret = vm_save_device_state(vm, w);
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

/* A diff goes to a temporary file renamed over mem_path: if mem_path is the memory of
 * the very snapshot the diff is taken after, the rename would replace the only base the
 * diff can be merged onto. A file that cannot be read, or has no id, cannot tell. */
static int check_not_parent(const struct mem_id *id, const char *mem_path, char *err, size_t errlen)
{
	char hex[SNAP_ID_HEX_LEN + 1];
	struct mem_id there;
	int fd, ret;

	if (id->kind != MEM_ID_DIFF || !id->has_parent)
		return 0;
	fd = open(mem_path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	ret = mem_id_read(fd, &there);
	close(fd);
	if (ret || there.kind != MEM_ID_FULL || !snap_id_equal(&there.id, &id->parent))
		return 0;
	snap_id_format(&there.id, hex);
	snprintf(err, errlen,
		"snapshot: memory file %s holds snapshot %s, the one this diff is "
		"taken after: writing the diff there would replace its base (write the diff to "
		"another path, then merge it onto %s)",
		mem_path, hex, mem_path);
	return -EEXIST;
}

static int snapshot(struct vm *vm, const struct snapshot_params *p, char *err, size_t errlen)
{
	unsigned long *maps[GUEST_MEM_MAX_REGIONS] = { 0 };
	struct mem_file_stats st = { 0 };
	struct snap_writer *w = NULL;
	char mem_tmp[SNAP_PATH_MAX + 32], state_tmp[SNAP_PATH_MAX + 32];
	struct mem_id id = {
		.kind = p->type == SNAPSHOT_DIFF ? MEM_ID_DIFF : MEM_ID_FULL,
		.has_parent = p->type == SNAPSHOT_DIFF && vm->has_last_snapshot,
		.parent = vm->last_snapshot,
	};
	uint64_t t0 = mono_ns() / 1000, t_publish = 0;
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
	ret = snap_id_generate(&id.id);
	if (ret) {
		snprintf(err, errlen, "snapshot: no random snapshot id: %s", strerror(-ret));
		return ret;
	}
	ret = check_not_parent(&id, p->mem_path, err, errlen);
	if (ret)
		return ret;
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
	 * snap_publish leaves the previous pair as it was. */
	snprintf(mem_tmp, sizeof(mem_tmp), "%s.tmp.%d", p->mem_path, (int)getpid());
	snprintf(state_tmp, sizeof(state_tmp), "%s.tmp.%d", p->state_path, (int)getpid());
	ret = mem_file_write(&vm->mem, mem_tmp, p->type == SNAPSHOT_DIFF ? maps : NULL,
		vm->mem_zero_backed, &id, &st, err, errlen);
	/* Each writer removes the temporary it created on failure, and never a file that was
	 * there before it (O_EXCL): only ours are unlinked here. */
	if (ret)
		goto out;
	ret = snap_writer_write(w, state_tmp, err, errlen);
	t_publish = mono_ns() / 1000;
	if (!ret)
		ret = snap_publish(mem_tmp, p->mem_path, state_tmp, p->state_path, err, errlen);
	else
		state_tmp[0] = '\0';
	if (ret) {
		unlink(mem_tmp);
		if (state_tmp[0])
			unlink(state_tmp);
	}
out:
	/* KVM's log was reset when it was read: a snapshot that failed, full or diff, keeps
	 * those pages for the next diff, which would miss them otherwise. */
	if (ret && maps[0])
		keep_pending(vm, maps);
	else if (!ret)
		clear_pending(vm);
	free_bitmaps(maps);
	snap_writer_free(w);
	if (!ret) {
		vm->has_last_snapshot = true;
		vm->last_snapshot = id.id;
		vm->last_snapshot_us = mono_ns() / 1000 - t0;
		vm->last_snapshot_sync_us = st.fsync_us + (mono_ns() / 1000 - t_publish);
		vm->last_snapshot_bytes = st.bytes_written;
		log_info("snapshot (%s): %llu MiB of memory written in %llu us",
			p->type == SNAPSHOT_DIFF ? "diff" : "full",
			(unsigned long long)(st.bytes_written >> 20),
			(unsigned long long)vm->last_snapshot_us);
	}
	return ret;
}

int vm_snapshot(struct vm *vm, const struct snapshot_params *p, char *err, size_t errlen)
{
	/* Devices stand still too: a packet received while memory is written would land in
	 * guest memory and queues the state file no longer matches. */
	dev_thread_lock(&vm->devs);
	int ret = snapshot(vm, p, err, errlen);
	dev_thread_unlock(&vm->devs);
	return ret;
}
