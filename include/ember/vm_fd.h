/* The KVM VM file descriptor: opening /dev/kvm and a VM, memory slots, the dirty log and
 * irqfds. The ioctls of a VM as a whole live here; the vmm floor calls them. Control
 * thread only. Every function fills err (naming the ioctl) and returns -errno on failure. */
#ifndef EMBER_VM_FD_H
#define EMBER_VM_FD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct guest_mem;

/* Open /dev/kvm, check its API version and create a VM. What was opened is left in
 * *kvm_fd and *vm_fd (else -1) also on failure: the caller closes them. */
__attribute__((warn_unused_result)) int kvm_vm_open(int *kvm_fd, int *vm_fd, char *err,
	size_t errlen);
/* Give KVM slot `slot`: `size` bytes at guest-physical `gpa`, backed by `host`; with
 * KVM's dirty log when `log_dirty`. */
__attribute__((warn_unused_result)) int kvm_vm_set_slot(int vm_fd, unsigned slot, uint64_t gpa,
	uint64_t size, void *host, bool log_dirty, char *err, size_t errlen);
/* A slot for device memory (pmem): `size` bytes at `gpa` backed by `host`, read-only for
 * the guest when `read_only` (its writes become MMIO exits); size 0 removes the slot. */
__attribute__((warn_unused_result)) int kvm_vm_set_device_slot(int vm_fd, unsigned slot,
	uint64_t gpa, uint64_t size, void *host, bool read_only, char *err, size_t errlen);
/* One slot per RAM region of `mem`, slot i for region i (device memory: its device's). */
__attribute__((warn_unused_result)) int kvm_vm_set_slots(int vm_fd, const struct guest_mem *mem,
	bool log_dirty, char *err, size_t errlen);
/* Fetch, and so reset, the dirty log of `slot` into `bitmap` (a bit per 4 KiB page of the
 * slot, guest_mem_bitmap_bytes long). */
__attribute__((warn_unused_result)) int kvm_vm_dirty_log(int vm_fd, unsigned slot,
	unsigned long *bitmap, char *err, size_t errlen);
/* An eventfd that raises `gsi` when written; *fd is -1 or the eventfd (the caller's to
 * close) also on failure. */
__attribute__((warn_unused_result)) int kvm_vm_irqfd(int vm_fd, unsigned gsi, int *fd, char *err,
	size_t errlen);

#endif
