/* The KVM VM file descriptor: create it, give it memory slots, read its dirty log, wire
 * interrupt lines to eventfds. */
#include "ember/vm_fd.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>

#include <linux/kvm.h>

#include "ember/guest_mem.h"

/* err = "<what>: <strerror(e)>", what formatted from fmt; returns -e. The caller reads
 * errno into e before anything else can change it. */
__attribute__((format(printf, 4, 5))) static int fail(int e, char *err, size_t errlen,
	const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	if (n >= 0 && (size_t)n < errlen)
		snprintf(err + n, errlen - (size_t)n, ": %s", strerror(e));
	return -e;
}

int kvm_vm_open(int *kvm_fd, int *vm_fd, char *err, size_t errlen)
{
	int version;

	*vm_fd = -1;
	*kvm_fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (*kvm_fd < 0)
		return fail(errno, err, errlen, "/dev/kvm");
	version = ioctl(*kvm_fd, KVM_GET_API_VERSION, 0);
	if (version != KVM_API_VERSION) {
		snprintf(err, errlen, "/dev/kvm: API version %d, ember needs %d", version,
			KVM_API_VERSION);
		return -ENOTSUP;
	}
	/* EINTR: the kernel gave up because the thread had a signal or task work pending
	 * (seen once in the sandbox, at the start of a VM whose Async drive had just had its
	 * io_uring set up on this thread); nothing was made, so ask again. */
	do
		*vm_fd = ioctl(*kvm_fd, KVM_CREATE_VM, 0);
	while (*vm_fd < 0 && errno == EINTR);
	return *vm_fd < 0 ? fail(errno, err, errlen, "KVM_CREATE_VM") : 0;
}

static int set_region(int vm_fd, unsigned slot, uint64_t gpa, uint64_t size, void *host,
	uint32_t flags, char *err, size_t errlen)
{
	struct kvm_userspace_memory_region r = {
		.slot = slot,
		.guest_phys_addr = gpa,
		.memory_size = size,
		.userspace_addr = (uint64_t)(uintptr_t)host,
		.flags = flags,
	};

	if (ioctl(vm_fd, KVM_SET_USER_MEMORY_REGION, &r) < 0)
		return fail(errno, err, errlen, "KVM_SET_USER_MEMORY_REGION slot %u", slot);
	return 0;
}

int kvm_vm_set_slot(int vm_fd, unsigned slot, uint64_t gpa, uint64_t size, void *host,
	bool log_dirty, char *err, size_t errlen)
{
	return set_region(vm_fd, slot, gpa, size, host, log_dirty ? KVM_MEM_LOG_DIRTY_PAGES : 0,
		err, errlen);
}

int kvm_vm_set_device_slot(int vm_fd, unsigned slot, uint64_t gpa, uint64_t size, void *host,
	bool read_only, char *err, size_t errlen)
{
	return set_region(vm_fd, slot, gpa, size, host, read_only ? KVM_MEM_READONLY : 0, err,
		errlen);
}

int kvm_vm_set_slots(int vm_fd, const struct guest_mem *mem, bool log_dirty, char *err,
	size_t errlen)
{
	int ret = 0;

	for (unsigned i = 0; !ret && i < guest_mem_nr_ram(mem); i++)
		ret = kvm_vm_set_slot(vm_fd, i, mem->regions[i].gpa, mem->regions[i].size,
			mem->regions[i].host, log_dirty, err, errlen);
	return ret;
}

int kvm_vm_dirty_log(int vm_fd, unsigned slot, unsigned long *bitmap, char *err, size_t errlen)
{
	struct kvm_dirty_log log = { .slot = slot, .dirty_bitmap = bitmap };

	if (ioctl(vm_fd, KVM_GET_DIRTY_LOG, &log) < 0)
		return fail(errno, err, errlen, "KVM_GET_DIRTY_LOG slot %u", slot);
	return 0;
}

int kvm_vm_irqfd(int vm_fd, unsigned gsi, int *fd, char *err, size_t errlen)
{
	struct kvm_irqfd irqfd = { .gsi = gsi };

	*fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (*fd < 0)
		return fail(errno, err, errlen, "eventfd");
	irqfd.fd = (uint32_t)*fd;
	if (ioctl(vm_fd, KVM_IRQFD, &irqfd) < 0)
		return fail(errno, err, errlen, "KVM_IRQFD gsi %u", gsi);
	return 0;
}
