/* Building a VM's parts in the documented order, and tearing them down in reverse. */
#include "vm_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <linux/kvm.h>

#include "ember/arch.h"
#include "ember/console.h"
#include "ember/devices.h"
#include "ember/layout.h"
#include "ember/log.h"
#include "ember/uffd.h"

#define SERIAL_GSI LAYOUT_SERIAL_IRQ
#define I8042_GSI 1

/* ---- events from vCPU threads (any thread) ---- */

void vm_request_exit(struct vm *vm, enum vm_exit_reason reason, const char *detail)
{
	int expected = VM_EXIT_NONE;

	if (atomic_compare_exchange_strong(&vm->exit_reason, &expected, (int)reason)) {
		snprintf(vm->exit_detail, sizeof(vm->exit_detail), "%s", detail ? detail : "");
		atomic_store(&vm->exit_ready, true);
		ev_async_send(vm->loop, &vm->wake);
	}
}

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

int vm_build_kvm(struct vm *vm, char *err, size_t errlen)
{
	int version;

	vm->kvm_fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (vm->kvm_fd < 0) {
		snprintf(err, errlen, "/dev/kvm: %s", strerror(errno));
		return -errno;
	}
	version = ioctl(vm->kvm_fd, KVM_GET_API_VERSION, 0);
	if (version != KVM_API_VERSION) {
		snprintf(err, errlen, "/dev/kvm: API version %d, ember needs %d", version,
			KVM_API_VERSION);
		return -ENOTSUP;
	}
	vm->vm_fd = ioctl(vm->kvm_fd, KVM_CREATE_VM, 0);
	if (vm->vm_fd < 0) {
		snprintf(err, errlen, "KVM_CREATE_VM: %s", strerror(errno));
		return -errno;
	}
	return 0;
}

int vm_build_memory(struct vm *vm, enum guest_mem_backing backing, const char *path,
	char *err, size_t errlen)
{
	int ret = guest_mem_map(&vm->mem, vm->cfg.mem_mib << 20, backing, path, err, errlen);

	return ret ? ret : vm_register_memory(vm, err, errlen);
}

int vm_register_memory(struct vm *vm, char *err, size_t errlen)
{
	if (vm->cfg.track_dirty_pages && guest_mem_track_dirty(&vm->mem)) {
		snprintf(err, errlen, "memory: out of memory for dirty page tracking");
		return -ENOMEM;
	}
	for (unsigned i = 0; i < vm->mem.nr_regions; i++) {
		const struct guest_mem_region *r = &vm->mem.regions[i];
		struct kvm_userspace_memory_region slot = {
			.slot = i, .guest_phys_addr = r->gpa, .memory_size = r->size,
			.userspace_addr = (uint64_t)(uintptr_t)r->host,
			.flags = vm->cfg.track_dirty_pages ? KVM_MEM_LOG_DIRTY_PAGES : 0,
		};
		if (ioctl(vm->vm_fd, KVM_SET_USER_MEMORY_REGION, &slot) < 0) {
			snprintf(err, errlen, "KVM_SET_USER_MEMORY_REGION slot %u: %s", i,
				strerror(errno));
			return -errno;
		}
	}
	return 0;
}

static int make_irqfd(struct vm *vm, int *fd, unsigned gsi, char *err, size_t errlen)
{
	struct kvm_irqfd irqfd = { .gsi = gsi };

	*fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (*fd < 0) {
		snprintf(err, errlen, "eventfd: %s", strerror(errno));
		return -errno;
	}
	irqfd.fd = (uint32_t)*fd;
	if (ioctl(vm->vm_fd, KVM_IRQFD, &irqfd) < 0) {
		snprintf(err, errlen, "KVM_IRQFD gsi %u: %s", gsi, strerror(errno));
		return -errno;
	}
	return 0;
}

int vm_build_devices(struct vm *vm, char *err, size_t errlen)
{
	int ret;


	vm->pio.name = "pio";
	vm->mmio.name = "mmio";
	ret = make_irqfd(vm, &vm->serial_irq_fd, SERIAL_GSI, err, errlen);
	if (!ret)
		ret = make_irqfd(vm, &vm->i8042_irq_fd, I8042_GSI, err, errlen);
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

int vm_build_vcpus(struct vm *vm, char *err, size_t errlen)
{
	int ret;

	vm->vcpus = calloc(vm->cfg.vcpus, sizeof(*vm->vcpus));
	if (!vm->vcpus) {
		snprintf(err, errlen, "vcpus: out of memory");
		return -ENOMEM;
	}
	vm->env = (struct vcpu_env){ .pio = &vm->pio, .mmio = &vm->mmio, .mem = &vm->mem,
		.stop = vcpu_stop, .opaque = vm, .arch_exit = arch_vcpu_exit,
		.arch_where = arch_vcpu_where };
	for (unsigned i = 0; i < vm->cfg.vcpus; i++) {
		ret = vcpu_init(&vm->vcpus[i], vm->kvm_fd, vm->vm_fd, i, &vm->env, err, errlen);
		if (ret)
			return ret;
		vm->nr_vcpus++;
	}
	return 0;
}

int vm_start_threads(struct vm *vm, char *err, size_t errlen)
{
	/* First: its filter must hold before a vCPU lets the guest touch a queue. */
	int ret = dev_thread_start(&vm->devs, err, errlen);

	if (ret)
		return ret;
	for (unsigned i = 0; !ret && i < vm->nr_vcpus; i++)
		ret = vcpu_start_thread(&vm->vcpus[i], err, errlen);
	return ret;
}

