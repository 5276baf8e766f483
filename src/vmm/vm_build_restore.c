/* The steps only a restore takes (vm_recipe_restore): guest memory from the memory file
 * or a page-fault handler, then the saved state of the vCPUs, the VM (interrupt
 * controllers, PIT, clock) and the devices, and a new generation id. */
#include "vm_internal.h"

#include <errno.h>
#include <stdio.h>

#include "ember/arch.h"
#include "ember/snapshot.h"
#include "ember/snapshot_file.h"
#include "ember/uffd.h"

/* The handler went away (its watch thread): end the VM, its memory is lost. */
static void uffd_lost(void *opaque)
{
	struct vm *vm = opaque;

	atomic_store(&vm->uffd_lost, true);
	vm_request_exit(vm, VM_EXIT_ERROR, "the page-fault handler went away");
}

/* Anonymous memory whose pages the handler at p->backend_path fills on first touch. */
static int map_from_handler(struct vm *vm, const struct restore_params *p, char *err, size_t errlen)
{
	int ret = guest_mem_map(&vm->mem, vm->cfg.mem_mib << 20,
		vm->cfg.mem_backing == GUEST_MEM_HUGETLB ? GUEST_MEM_HUGETLB : GUEST_MEM_ANON, NULL,
		err, errlen);

	if (!ret)
		ret = vm_map_device_memory(vm, err, errlen);
	if (!ret)
		ret = uffd_backend_attach(&vm->mem, p->backend_path, &vm->uffd, &vm->uffd_sock, err,
			errlen);
	if (ret)
		return ret;
	vm->mem.handler_served = true;
	vm->uffd_watch = uffd_watch_start(vm->uffd_sock, vm->uffd, &vm->mem, uffd_lost, vm, err,
		errlen);
	return vm->uffd_watch ? 0 : -ENOMEM;
}

int vm_step_kvm_or_shell(struct vm *vm, struct vm_birth *b, char *err, size_t errlen)
{
	b->warm = b->p->backend == MEM_BACKEND_FILE && !vm->cfg.mem_hotplug.enabled &&
		vm_shell_fits(vm->cfg.mem_mib << 20, vm->cfg.track_dirty_pages);
	return b->warm ? vm_shell_take(vm, b->p->backend_path, err, errlen)
		       : vm_step_kvm(vm, b, err, errlen);
}

int vm_step_memory_restore(struct vm *vm, struct vm_birth *b, char *err, size_t errlen)
{
	const struct restore_params *p = b->p;
	int ret;

	if (b->warm)
		return 0; /* the shell's slots hold the memory file already */
	/* snapshot_check_restore refused what the File backend cannot map. */
	ret = p->backend == MEM_BACKEND_FILE ? guest_mem_map(&vm->mem, vm->cfg.mem_mib << 20,
						       GUEST_MEM_FILE, p->backend_path, err, errlen)
					     : map_from_handler(vm, p, err, errlen);
	if (!ret && p->backend == MEM_BACKEND_FILE)
		ret = vm_map_device_memory(vm, err, errlen);

	return ret ? ret : vm_step_slots(vm, err, errlen);
}

int vm_step_vcpu_state(struct vm *vm, struct vm_birth *b, char *err, size_t errlen)
{
	struct snap_cursor cur;
	int ret = 0;

	for (unsigned i = 0; !ret && i < vm->nr_vcpus; i++) {
		if (snap_reader_find(b->r, SNAP_SEC_VCPU, i, &cur)) {
			snprintf(err, errlen, "state file: no state for vcpu %u", i);
			return -EINVAL;
		}
		ret = arch_vcpu_restore(vm->kvm_fd, &vm->vcpus[i], &cur, err, errlen);
	}
	return ret;
}

int vm_step_vm_state(struct vm *vm, struct vm_birth *b, char *err, size_t errlen)
{
	struct snap_cursor cur;

	if (snap_reader_find(b->r, SNAP_SEC_VM_STATE, 0, &cur)) {
		snprintf(err, errlen, "state file: no vm state section");
		return -EINVAL;
	}
	return arch_vm_restore(vm->vm_fd, &cur, b->p->clock_realtime, err, errlen);
}

int vm_step_device_state(struct vm *vm, struct vm_birth *b, char *err, size_t errlen)
{
	return vm_restore_device_state(vm, b->r, err, errlen);
}

int vm_step_new_generation(struct vm *vm, struct vm_birth *b, char *err, size_t errlen)
{
	(void)b;
	return arch_vmgenid_update(&vm->mem, vm->vm_fd, err, errlen);
}
