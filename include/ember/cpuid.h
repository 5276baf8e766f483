/* CPUID normalization: what a vCPU sees, derived from KVM_GET_SUPPORTED_CPUID. Pure logic. */
#ifndef EMBER_CPUID_H
#define EMBER_CPUID_H

#include <stdint.h>

#include <linux/kvm.h>

/* Maximum CPUID entries handled (KVM_GET_SUPPORTED_CPUID nent). */
#define CPUID_MAX_ENTRIES 256

/* Find the entry for (function, index); NULL if absent. For functions without
 * KVM_CPUID_FLAG_SIGNIFCANT_INDEX the index is ignored. */
struct kvm_cpuid_entry2 *cpuid_find(struct kvm_cpuid2 *c, uint32_t function, uint32_t index);

/* Rewrite `c` (a copy of KVM's supported list) for vCPU `index` of `count`:
 * - leaf 1: initial APIC id = index in EBX[31:24], logical count EBX[23:16] = count,
 *   HTT set when count > 1, hypervisor bit (ECX[31]) set, TSC-deadline kept as KVM says;
 * - leaf 4: cores per package EAX[31:26] = count - 1 (one core per vCPU, no SMT),
 *   threads sharing each cache level EAX[25:14] = 0 for L1/L2 and count - 1 for L3;
 * - leaf 0xb (and 0x1f if present): level 0 SMT (1 thread, shift 0), level 1 core
 *   (count logical processors, shift = bits needed for count); EDX = x2APIC id = index;
 * - leaf 6: no turbo/energy features the VM cannot provide (ECX bit 3 cleared);
 * - leaf 0x40000000: KVM signature ("KVMKVMKVM\0\0\0"), EAX = 0x40000001;
 * - leaf 0x80000001 ECX bit 1 (CmpLegacy) cleared when count == 1.
 * Returns 0, or -EINVAL if count is 0 or > 255 or index >= count. */
int cpuid_normalize(struct kvm_cpuid2 *c, unsigned index, unsigned count);

/* Hypervisor signature check helper: true if the host CPU vendor string (leaf 0) equals
 * the one in `c`. */
int cpuid_vendor_equal(const struct kvm_cpuid2 *a, const struct kvm_cpuid2 *b);

#endif
