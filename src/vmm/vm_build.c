/* The steps both recipes take (vm_recipe.c): KVM, memory slots, irqchip, devices,
 * vCPUs, threads; and the teardown, which undoes any of them in reverse. */
#include "vm_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ember/arch.h"
#include "ember/console.h"
#include "ember/devices.h"
#include "ember/layout.h"
#include "ember/log.h"
#include "ember/uffd.h"
#include "ember/vm_fd.h"

#define SERIAL_GSI LAYOUT_SERIAL_IRQ
#define I8042_GSI 1

/* ---- what the devices and vCPUs report (any thread): all of it ends in vm.c ---- */

static void vcpu_stop(void *opaque, enum vm_exit_reason reason, const char *detail)
{
	vm_request_exit(opaque, reason, detail);
}

static void on_reset(void *opaque)
{
	vm_request_exit(opaque, VM_EXIT_RESET, "i8042 reset");
}

static void on_sleep(void *opaque, enum vm_exit_reason reason)
{
	vm_request_exit(opaque, reason, "ACPI S5");
}

static void on_boot_timer(void *opaque)
{
	struct vm *vm = opaque;
	uint64_t expected = 0;

	if (atomic_compare_exchange_strong(&vm->boot_us, &expected, log_uptime_us())) {
		atomic_store(&vm->boot_pending, true);
		ev_async_send(vm->loop, &vm->wake);
	}
}

static void on_serial_out(void *opaque, const uint8_t *buf, size_t len)
{
	struct vm *vm = opaque;

	if (vm->console)
		console_output(vm->console, buf, len);
}

/* ---- teardown, in the exact reverse of the build ---- */

void vm_teardown(struct vm *vm)
{
	if (vm->nr_vcpus)
		vm->first_run_us = atomic_load(&vm->vcpus[0].first_run_us);
	for (unsigned i = 0; i < vm->nr_vcpus; i++)
		vcpu_join(&vm->vcpus[i]);
	for (unsigned i = 0; i < vm->nr_vcpus; i++)
		vcpu_deinit(&vm->vcpus[i]);
	free(vm->vcpus);
	vm->vcpus = NULL;
	vm->nr_vcpus = 0;
	if (vm->console)
		console_input_enable(vm->console, false);
	ev_timer_stop(vm->loop, &vm->input_retry);
	dev_thread_stop(&vm->devs); /* no device callback runs from here on */
	vm_free_virtio(vm);
	sleep_ctl_free(vm->sleep_ctl);
	boot_timer_free(vm->boot_timer);
	i8042_free(vm->i8042);
	serial_free(vm->serial);
	vm->sleep_ctl = NULL;
	vm->boot_timer = NULL;
	vm->i8042 = NULL;
	vm->serial = NULL;
	if (vm->i8042_irq_fd >= 0)
		close(vm->i8042_irq_fd);
	if (vm->serial_irq_fd >= 0)
		close(vm->serial_irq_fd);
	vm->i8042_irq_fd = vm->serial_irq_fd = -1;
	memset(&vm->pio, 0, sizeof(vm->pio));
	memset(&vm->mmio, 0, sizeof(vm->mmio));
	for (unsigned i = 0; i < GUEST_MEM_MAX_REGIONS; i++) {
		free(vm->pending_dirty[i]);
		vm->pending_dirty[i] = NULL;
	}
	uffd_watch_stop(vm->uffd_watch);
	vm->uffd_watch = NULL;
	guest_mem_unmap(&vm->mem);
	if (vm->uffd_sock >= 0)
		close(vm->uffd_sock);
	if (vm->uffd >= 0)
		close(vm->uffd);
	vm->uffd = vm->uffd_sock = -1;
	if (vm->vm_fd >= 0)
		close(vm->vm_fd);
	if (vm->kvm_fd >= 0)
		close(vm->kvm_fd);
	vm->vm_fd = vm->kvm_fd = -1;
}

/* ---- build ---- */

int vm_step_kvm(struct vm *vm, struct vm_birth *b, char *err, size_t errlen)
{
	(void)b;
	return kvm_vm_open(&vm->kvm_fd, &vm->vm_fd, err, errlen);
}

int vm_map_device_memory(struct vm *vm, char *err, size_t errlen)
{
	const struct mem_hotplug_config *h = &vm->cfg.mem_hotplug;

	if (!h->enabled)
		return 0;
	return guest_mem_add_device(&vm->mem, guest_mem_device_base(&vm->mem),
		(uint64_t)h->total_mib << 20, err, errlen);
}

int vm_step_slots(struct vm *vm, char *err, size_t errlen)
{
	if (vm->cfg.track_dirty_pages && guest_mem_track_dirty(&vm->mem)) {
		snprintf(err, errlen, "memory: out of memory for dirty page tracking");
		return -ENOMEM;
	}
	return kvm_vm_set_slots(vm->vm_fd, &vm->mem, vm->cfg.track_dirty_pages, err, errlen);
}

int vm_step_irqchip(struct vm *vm, struct vm_birth *b, char *err, size_t errlen)
{
	if (b->warm)
		return 0; /* the shell has one */
	return arch_vm_setup(vm->vm_fd, err, errlen);
}

int vm_step_devices(struct vm *vm, struct vm_birth *b, char *err, size_t errlen)
{
	int ret;

	(void)b;
	vm->pio.name = "pio";
	vm->mmio.name = "mmio";
	ret = kvm_vm_irqfd(vm->vm_fd, SERIAL_GSI, &vm->serial_irq_fd, err, errlen);
	if (!ret)
		ret = kvm_vm_irqfd(vm->vm_fd, I8042_GSI, &vm->i8042_irq_fd, err, errlen);
	if (ret)
		return ret;
	vm->serial = serial_new(vm->serial_irq_fd, on_serial_out, vm);
	vm->i8042 = i8042_new(vm->i8042_irq_fd, on_reset, vm);
	vm->boot_timer = boot_timer_new(on_boot_timer, vm);
	vm->sleep_ctl = sleep_ctl_new(on_sleep, vm);
	if (!vm->serial || !vm->i8042 || !vm->boot_timer || !vm->sleep_ctl) {
		snprintf(err, errlen, "devices: out of memory");
		return -ENOMEM;
	}
	ret = serial_attach(vm->serial, &vm->pio, LAYOUT_PORT_SERIAL);
	if (!ret)
		ret = i8042_attach(vm->i8042, &vm->pio);
	if (!ret)
		ret = sleep_ctl_attach(vm->sleep_ctl, &vm->pio);
	if (!ret)
		ret = boot_timer_attach(vm->boot_timer, &vm->mmio);
	if (ret) {
		snprintf(err, errlen, "devices: cannot place legacy devices on the bus: %s",
			strerror(-ret));
		return ret;
	}
	return vm_build_virtio(vm, err, errlen);
}

int vm_step_vcpus(struct vm *vm, struct vm_birth *b, char *err, size_t errlen)
{
	int ret;

	(void)b;
	vm->vcpus = calloc(vm->cfg.vcpus, sizeof(*vm->vcpus));
	if (!vm->vcpus) {
		snprintf(err, errlen, "vcpus: out of memory");
		return -ENOMEM;
	}
	vm->env = (struct vcpu_env){ .pio = &vm->pio,
		.mmio = &vm->mmio,
		.mem = &vm->mem,
		.stop = vcpu_stop,
		.opaque = vm,
		.arch_exit = arch_vcpu_exit,
		.arch_where = arch_vcpu_where };
	for (unsigned i = 0; i < vm->cfg.vcpus; i++) {
		ret = vcpu_init(&vm->vcpus[i], vm->kvm_fd, vm->vm_fd, i, &vm->env, err, errlen);
		if (ret)
			return ret;
		vm->nr_vcpus++;
	}
	return 0;
}

int vm_step_threads(struct vm *vm, struct vm_birth *b, char *err, size_t errlen)
{
	/* First: its filter must hold before a vCPU lets the guest touch a queue. */
	int ret = dev_thread_start(&vm->devs, err, errlen);

	(void)b;
	if (ret)
		return ret;
	for (unsigned i = 0; !ret && i < vm->nr_vcpus; i++)
		ret = vcpu_start_thread(&vm->vcpus[i], err, errlen);
	return ret;
}
