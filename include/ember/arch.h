/* Architecture hooks called by generic VM code (x86_64 today, in src/arch/x86_64). */
#ifndef EMBER_ARCH_H
#define EMBER_ARCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct acpi_mmio_device;
struct guest_mem;
struct snap_cursor;
struct snap_writer;
struct vcpu;

/* VM-wide set-up after memory slots exist: in-kernel irqchip, PIT, TSS and identity
 * map addresses. Memory first: see HOST-KVM.md (ten times faster here). */
__attribute__((warn_unused_result)) int arch_vm_setup(int vm_fd, char *err, size_t errlen);

/* Per-vCPU set-up: CPUID normalized for (index, count), then the CPU `model`
 * (smt topology; the custom template, or the static one where the host CPU fits it:
 * its KVM capabilities, CPUID and MSR modifiers), boot MSRs, LAPIC LINT0/LINT1. For vCPU 0 also the boot registers
 * entering at `entry`. A template that does not fit fails with "Failed to get CPU
 * template: ..." (Firecracker's words). */
struct cpu_model;
__attribute__((warn_unused_result)) int arch_vcpu_setup(int kvm_fd, struct vcpu *v, unsigned count,
	const struct cpu_model *model, uint64_t entry, char *err, size_t errlen);

/* Exits generic code does not know (emulation failures...). Returns true if the vCPU
 * may carry on; otherwise fills detail for the error. vCPU thread. */
bool arch_vcpu_exit(struct vcpu *v, char *detail, size_t len);

/* Load kernel, initrd and command line into guest memory and write the boot tables.
 * Returns the entry point in *entry. */
struct arch_boot_source {
	const char *kernel_path;
	const char *initrd_path; /* NULL if none */
	const char *cmdline;
	unsigned vcpus;                        /* described to the guest in the ACPI MADT */
	const struct acpi_mmio_device *virtio; /* virtio-mmio windows for the DSDT */
	unsigned nr_virtio;
	int vcpu_fd; /* vCPU 0, asked for its TSC frequency on an emulating host */
};

/* Write a new random VM generation id into guest memory and notify the guest through its
 * GSI (call on restore, after the KVM state is set, so the interrupt is not overwritten). */
__attribute__((warn_unused_result)) int arch_vmgenid_update(struct guest_mem *gm, int vm_fd,
	char *err, size_t errlen);
__attribute__((warn_unused_result)) int arch_boot_load(struct guest_mem *gm,
	const struct arch_boot_source *src, uint64_t *entry, char *err, size_t errlen);

/* MSRs: the index list KVM reports (KVM_GET_MSR_INDEX_LIST), cached after the first call. */
__attribute__((warn_unused_result)) int arch_msr_list(int kvm_fd, const uint32_t **indices,
	unsigned *count);
/* Read / write `count` MSRs of a vCPU (any thread while it is parked). -EIO if KVM
 * handled fewer than asked. */
__attribute__((warn_unused_result)) int arch_msrs_get(int vcpu_fd, const uint32_t *indices,
	uint64_t *values, unsigned count);
__attribute__((warn_unused_result)) int arch_msrs_set(int vcpu_fd, const uint32_t *indices,
	const uint64_t *values, unsigned count);

/* Read every MSR of `indices` KVM lets us read: unreadable ones are skipped. Fills
 * out_indices/values (capacity `count`) and returns how many in *got. */
__attribute__((warn_unused_result)) int arch_msrs_get_readable(int vcpu_fd, const uint32_t *indices,
	unsigned count, uint32_t *out_indices, uint64_t *values, unsigned *got);

/* Snapshot state. Save runs while the vCPUs are parked; restore on a fresh VM, vCPU state
 * in Firecracker's order (cpuid, mp_state, regs, sregs, xsave, xcrs, debugregs, lapic,
 * msrs with TSC_DEADLINE last, events). Messages name the item that failed. */
__attribute__((warn_unused_result)) int arch_vcpu_save(int kvm_fd, const struct vcpu *v,
	struct snap_writer *w, char *err, size_t errlen);
__attribute__((warn_unused_result)) int arch_vcpu_restore(int kvm_fd, struct vcpu *v,
	struct snap_cursor *c, char *err, size_t errlen);
/* PIC master and slave, IOAPIC, PIT, kvmclock. Restore after the vCPUs. */
__attribute__((warn_unused_result)) int arch_vm_save(int vm_fd, struct snap_writer *w, char *err,
	size_t errlen);
/* `realtime`: kvmclock jumps by the wall time since the snapshot (KVM_CLOCK_REALTIME);
 * refused if the saved clock carries no realtime stamp. */
__attribute__((warn_unused_result)) int arch_vm_restore(int vm_fd, struct snap_cursor *c,
	bool realtime, char *err, size_t errlen);
/* The CPU vendor string (CPUID leaf 0) of the host ("AuthenticAMD"). */
void arch_host_vendor(char out[13]);
/* Restore's early check, before anything is built and without KVM: `vcpus` vCPU sections
 * and the VM section of `r` are read as restore will read them, every item's size and
 * count checked, and vCPU 0's CPU vendor compared with `host_vendor` (arch_host_vendor's;
 * a parameter so tests can play another host). 0, or -EINVAL / -ENOMEM and a message
 * naming the section and item. */
struct snap_reader;
__attribute__((warn_unused_result)) int arch_state_check(const struct snap_reader *r,
	unsigned vcpus, const char *host_vendor, char *err, size_t errlen);

/* Appends where a vCPU stopped (" rip=0x... rsp=... cr2=..." on x86) to out, whose first
 * `used` bytes are taken; keeps out a string. The vCPU's own thread, after an exit. */
void arch_vcpu_where(int vcpu_fd, char *out, size_t len, int used);

/* One register of a paused vCPU; `name` is a static string ("rip", "cr3", "cs"). */
struct vm_reg {
	const char *name;
	uint64_t value;
};

/* Registers of a parked vCPU for people (vm_vcpu_regs): general registers, instruction
 * pointer, flags, control registers, segment selectors, in the architecture's order,
 * with static names. Fills up to `cap`, sets *count to the number there are; -E2BIG if
 * that is more than cap, -errno if KVM refuses. Control thread, vCPU parked. */
__attribute__((warn_unused_result)) int arch_vcpu_regs(int vcpu_fd, struct vm_reg *regs,
	unsigned cap, unsigned *count);

#endif
