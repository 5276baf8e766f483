/* CPUID normalization: what a vCPU sees, derived from KVM_GET_SUPPORTED_CPUID. Pure logic. */
#ifndef EMBER_CPUID_H
#define EMBER_CPUID_H

#include <stdbool.h>
#include <stdint.h>

#include <linux/kvm.h>

/* Maximum CPUID entries handled (KVM_GET_SUPPORTED_CPUID nent). */
#define CPUID_MAX_ENTRIES 256

/* Find the entry for (function, index); NULL if absent. For functions without
 * KVM_CPUID_FLAG_SIGNIFCANT_INDEX the index is ignored. */
struct kvm_cpuid_entry2 *cpuid_find(struct kvm_cpuid2 *c, uint32_t function, uint32_t index);

/* Rewrite `c` (a copy of KVM's supported list) for vCPU `index` of `count`. `c` must have
 * room for CPUID_MAX_ENTRIES entries: the few entries normalization needs and KVM left out
 * (leaf 0x40000000, topology subleaves) are appended and c->nent grows.
 * - leaf 1: initial APIC id = index in EBX[31:24], logical count EBX[23:16] = count,
 *   HTT set when count > 1, hypervisor bit (ECX[31]) set, TSC-deadline kept as KVM says;
 * - leaf 4: cores per package EAX[31:26] = count - 1 (one core per vCPU, no SMT; the
 *   6-bit field saturates at 63), threads sharing each cache level EAX[25:14] = 0 for
 *   L1/L2 and count - 1 for L3;
 * - leaf 0xb (and 0x1f if present): level 0 SMT (1 thread, shift 0), level 1 core
 *   (count logical processors, shift = bits needed for count), subleaves >= 2 invalid
 *   (level type 0); missing subleaves 0..2 are added; EDX = x2APIC id = index;
 * - leaf 6: no turbo/energy features the VM cannot provide (EAX bit 1 turbo and ECX
 *   bit 3 energy-performance bias cleared);
 * - leaf 0x40000000: KVM signature ("KVMKVMKVM\0\0\0"), EAX = 0x40000001 (added if absent);
 * - leaf 0x80000001 ECX bit 1 (CmpLegacy) cleared when count == 1.
 * Other absent leaves are not invented. Returns 0; -EINVAL if count is 0 or > 255,
 * index >= count, or c->nent > CPUID_MAX_ENTRIES; -ENOSPC if the entries to add would not
 * fit. `c` is unchanged on error. */
__attribute__((warn_unused_result)) int cpuid_normalize(struct kvm_cpuid2 *c, unsigned index,
	unsigned count);

/* Vendor check for restore: true if the CPU vendor strings (leaf 0 EBX, EDX, ECX) of `a`
 * (e.g. the host's supported list) and `b` (e.g. a snapshot's) are equal; false if either
 * lacks leaf 0. */
int cpuid_vendor_equal(const struct kvm_cpuid2 *a, const struct kvm_cpuid2 *b);

/* The vendor string of CPUID leaf 0 ("GenuineIntel"), NUL-terminated in `out`; false (and
 * `out` empty) if the leaf is missing. */
bool cpuid_vendor(struct kvm_cpuid2 *c, char out[13]);

#endif
