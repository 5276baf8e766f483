/* A VM shell made before a restore is asked for (ember.prewarm): the VM fd, its memory
 * slots, the irqchip and PIT. A File restore of the same memory size then only maps the
 * memory file and applies state. On kvm_pvm slot registration grows with guest size
 * (about 2.5 ms for 4 GiB, 0.15 ms for 128 MiB: the shadow MMU's per-page metadata).
 * Mapping a file over reserved slots costs KVM an invalidation walk of the whole range
 * (1.3 ms for 4 GiB there), so a shell told the memory file maps it at once: a restore
 * of that same file (same inode) then maps nothing. One shell per process, used by the
 * control thread only. */
#include "vm_internal.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ember/arch.h"
#include "ember/log.h"
#include "ember/snapshot.h"
#include "ember/vm_fd.h"

static struct shell {
	bool ready;
	int kvm_fd, vm_fd;
	uint64_t size;
	bool track_dirty;
	unsigned nr_regions;
	struct guest_mem_region regions[GUEST_MEM_MAX_REGIONS];
	struct guest_mem mem; /* the memory file, when prewarm was told it (mem.total != 0) */
} shell = { .kvm_fd = -1, .vm_fd = -1 }; /* not fd 0: stdin is never ours to close */

static void shell_drop(void)
{
	if (shell.mem.total)
		guest_mem_unmap(&shell.mem);
	else
		for (unsigned i = 0; i < shell.nr_regions; i++)
			if (shell.regions[i].host)
				munmap(shell.regions[i].host, shell.regions[i].size);
	if (shell.vm_fd >= 0)
		close(shell.vm_fd);
	if (shell.kvm_fd >= 0)
		close(shell.kvm_fd);
	memset(&shell, 0, sizeof(shell));
	shell.kvm_fd = shell.vm_fd = -1;
}

/* Reserve each region (no access, no memory committed), or map the memory file, and give
 * it to KVM as a slot: the slots stay as they are when the memory file is mapped over a
 * reservation. */
static int reserve_slots(const char *mem_path, char *err, size_t errlen)
{
	shell.nr_regions = guest_mem_layout(shell.size, shell.regions);
	if (mem_path) {
		int ret = guest_mem_map(&shell.mem, shell.size, GUEST_MEM_FILE, mem_path, err,
			errlen);
		if (ret)
			return ret;
		for (unsigned i = 0; i < shell.nr_regions; i++)
			shell.regions[i].host = shell.mem.regions[i].host;
	}
	for (unsigned i = 0; i < shell.nr_regions; i++) {
		struct guest_mem_region *r = &shell.regions[i];
		int ret;
		void *p = r->host ? r->host
				  : mmap(NULL, r->size, PROT_NONE,
					    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);

		if (p == MAP_FAILED) {
			snprintf(err, errlen, "prewarm: cannot reserve %llu MiB: %s",
				(unsigned long long)(r->size >> 20), strerror(errno));
			return -errno;
		}
		r->host = p;
		ret = kvm_vm_set_slot(shell.vm_fd, i, r->gpa, r->size, p, shell.track_dirty, err,
			errlen);
		if (ret)
			return ret;
	}
	return 0;
}

int vm_prewarm(uint64_t mem_mib, bool track_dirty_pages, const char *mem_path, char *err,
	size_t errlen)
{
	int ret;

	if (!mem_mib || mem_mib > (UINT64_MAX >> 20) / 2) {
		snprintf(err, errlen, "prewarm: memory_mib %llu is out of range",
			(unsigned long long)mem_mib);
		return -EINVAL;
	}
	shell_drop();
	/* kvm_vm_open leaves what it opened in the shell, also on failure. */
	ret = kvm_vm_open(&shell.kvm_fd, &shell.vm_fd, err, errlen);
	shell.size = mem_mib << 20;
	shell.track_dirty = track_dirty_pages;
	/* Memory slots before the irqchip, as vm_start does (HOST-KVM.md). */
	if (!ret)
		ret = reserve_slots(mem_path, err, errlen);
	if (!ret)
		ret = arch_vm_setup(shell.vm_fd, err, errlen);
	if (ret) {
		shell_drop();
		return ret;
	}
	shell.ready = true;
	return 0;
}

bool vm_shell_fits(uint64_t size, bool track_dirty)
{
	return shell.ready && shell.size == size && shell.track_dirty == track_dirty;
}

/* Whether the shell's mapped memory file is the file at `path` now (not replaced since). */
static bool same_file(const char *path)
{
	struct stat a, b;

	return shell.mem.total && fstat(shell.mem.fd, &a) == 0 && stat(path, &b) == 0 &&
		a.st_dev == b.st_dev && a.st_ino == b.st_ino;
}

int vm_shell_take(struct vm *vm, const char *mem_path, char *err, size_t errlen)
{
	void *at[GUEST_MEM_MAX_REGIONS] = { 0 };
	bool mapped = same_file(mem_path);
	int ret = 0;

	for (unsigned i = 0; i < shell.nr_regions; i++)
		at[i] = shell.regions[i].host;
	vm->kvm_fd = shell.kvm_fd;
	vm->vm_fd = shell.vm_fd;
	/* The VM owns the fds and the address ranges from here, also on failure; a region
	 * a failed map left reserved stays so (address space only, no memory). */
	if (mapped) {
		vm->mem = shell.mem;
	} else if (shell.mem.total) {
		/* Another file: it goes over the old one's mapping, which is let go. */
		close(shell.mem.fd);
	}
	memset(&shell, 0, sizeof(shell));
	shell.kvm_fd = shell.vm_fd = -1;
	log_info("restore: into the prewarmed VM shell%s",
		mapped ? ", memory file mapped ahead" : "");
	if (!mapped)
		ret = guest_mem_map_at(&vm->mem, vm->cfg.mem_mib << 20, GUEST_MEM_FILE, mem_path,
			at, err, errlen);
	if (!ret && vm->cfg.track_dirty_pages && guest_mem_track_dirty(&vm->mem)) {
		snprintf(err, errlen, "memory: out of memory for dirty page tracking");
		ret = -ENOMEM;
	}
	return ret;
}
