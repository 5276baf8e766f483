/* Where a VM is put together: one recipe per way a VM is born, side by side in one
 * table over the same named steps (vm_build.c holds those both take, vm_build_boot.c and
 * vm_build_restore.c the others). vm_teardown undoes either, from any step. */
#include "vm_internal.h"

#include <stdbool.h>

#include "ember/snapshot.h"

struct recipe_row {
	vm_step_fn boot, restore; /* NULL: that recipe has no such step */
};

/* Boot is the order of STYLE.md; restore is Firecracker's: the same machine built from
 * the state file's configuration, then saved state where a boot loads a kernel.
 * - Memory slots before the irqchip and PIT: the other order made building a VM ten
 *   times slower on kvm_pvm (HOST-KVM.md).
 * - A restore that fits the prewarmed shell takes it in its first row, and the shell
 *   stands in for the next two (vm_shell.c).
 * - Device state after the interrupt controllers: an interrupt a device raises while it
 *   is restored (vsock's transport reset) must not be overwritten by them. A restored
 *   VM is a clone: it gets a new generation id, for the same reason after them. */
static const struct recipe_row recipe[] = {
	/* boot                 restore */
	{ vm_step_kvm, vm_step_kvm_or_shell },
	{ vm_step_memory_boot, vm_step_memory_restore },
	{ vm_step_irqchip, vm_step_irqchip },
	{ vm_step_devices, vm_step_devices },
	{ vm_step_vcpus, vm_step_vcpus },
	{ vm_step_load_kernel, vm_step_vcpu_state },
	{ vm_step_vcpu_setup, vm_step_vm_state },
	{ NULL, vm_step_device_state },
	{ NULL, vm_step_new_generation },
	{ vm_step_threads, vm_step_threads },
};

/* Run one column of the table: the first failing step's -errno, err saying why. */
static int run(struct vm *vm, struct vm_birth *b, bool restore, char *err, size_t errlen)
{
	int ret = 0;

	for (size_t i = 0; !ret && i < sizeof(recipe) / sizeof(recipe[0]); i++) {
		vm_step_fn step = restore ? recipe[i].restore : recipe[i].boot;

		if (step)
			ret = step(vm, b, err, errlen);
	}
	return ret;
}

int vm_recipe_boot(struct vm *vm, char *err, size_t errlen)
{
	struct vm_birth b = { 0 };

	return run(vm, &b, false, err, errlen);
}

int vm_recipe_restore(struct vm *vm, const struct snap_reader *r, const struct restore_params *p,
	char *err, size_t errlen)
{
	struct vm_birth b = { .r = r, .p = p };

	return run(vm, &b, true, err, errlen);
}
