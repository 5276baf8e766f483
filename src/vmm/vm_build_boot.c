/* The steps only a boot takes (vm_recipe_boot): fresh guest memory, the kernel with its
 * command line and ACPI tables, and each vCPU set up at the kernel's entry. */
#include "vm_internal.h"

#include <errno.h>
#include <stdio.h>

#include "ember/acpi.h"
#include "ember/arch.h"
#include "ember/cpu_template.h"
#include "ember/layout.h"

int vm_step_memory_boot(struct vm *vm, struct vm_birth *b, char *err, size_t errlen)
{
	int ret;

	(void)b;
	vm->mem_zero_backed = true; /* untouched pages are zeros: a full snapshot skips them */
	ret = guest_mem_map(&vm->mem, vm->cfg.mem_mib << 20, vm->cfg.mem_backing, NULL, err,
		errlen);
	if (!ret)
		ret = vm_map_device_memory(vm, err, errlen);
	return ret ? ret : vm_step_slots(vm, err, errlen);
}

int vm_step_load_kernel(struct vm *vm, struct vm_birth *b, char *err, size_t errlen)
{
	struct acpi_mmio_device virtio[VM_MAX_VIRTIO];
	char cmdline[LAYOUT_CMDLINE_MAX], extra[LAYOUT_CMDLINE_MAX];
	struct arch_boot_source boot = {
		.kernel_path = vm->cfg.kernel,
		.initrd_path = vm->cfg.initrd,
		.vcpus = vm->cfg.vcpus,
		.virtio = virtio,
		.cmdline = cmdline,
		.vcpu_fd = vm->vcpus[0].fd,
	};

	/* The devices' words (root=, virtio_mmio.device=) follow the user's. */
	boot.nr_virtio = vm_virtio_acpi(vm, virtio);
	if (vm_device_cmdline(vm, extra, sizeof(extra)) ||
		(size_t)snprintf(cmdline, sizeof(cmdline), "%s%s",
			vm->cfg.cmdline ? vm->cfg.cmdline : "", extra) >= sizeof(cmdline)) {
		snprintf(err, errlen, "cmdline: too long with the devices' words");
		return -E2BIG;
	}
	return arch_boot_load(&vm->mem, &boot, &b->entry, err, errlen);
}

int vm_step_vcpu_setup(struct vm *vm, struct vm_birth *b, char *err, size_t errlen)
{
	const struct cpu_model model = { .smt = vm->cfg.smt,
		.static_template = (enum cpu_static_template)vm->cfg.static_template,
		.custom = vm->cfg.cpu_template };
	int ret = 0;

	for (unsigned i = 0; !ret && i < vm->nr_vcpus; i++)
		ret = arch_vcpu_setup(vm->kvm_fd, &vm->vcpus[i], vm->nr_vcpus, &model, b->entry,
			err, errlen);
	return ret;
}
