/* CPU templates (Firecracker's custom template language) and SMT topology: what a vCPU's
 * CPUID and MSRs become before boot. Parsing and application are pure logic. */
#ifndef EMBER_CPU_TEMPLATE_H
#define EMBER_CPU_TEMPLATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <linux/kvm.h>

struct cJSON;

#define CPU_TEMPLATE_MAX_CPUID 256 /* register modifiers, all leaves together */
#define CPU_TEMPLATE_MAX_MSR 64
#define CPU_TEMPLATE_MAX_CAPS 32

/* Bits in `filter` are replaced by the same bits of `value`; the rest are kept ("x"). */
struct cpu_bitmap {
	uint64_t filter;
	uint64_t value;
};

enum cpu_reg { CPU_REG_EAX, CPU_REG_EBX, CPU_REG_ECX, CPU_REG_EDX };

struct cpu_cpuid_mod {
	uint32_t leaf, subleaf, flags;
	uint32_t reg; /* enum cpu_reg */
	struct cpu_bitmap bits;
};

struct cpu_msr_mod {
	uint32_t addr;
	struct cpu_bitmap bits;
};

struct cpu_cap {
	uint32_t cap;    /* KVM_CAP_* number */
	uint32_t remove; /* 1: "!N", taken off the checks */
};

/* Fixed-width so that it can be copied, stored in a snapshot section and compared. */
struct cpu_template {
	uint32_t nr_cpuid, nr_msr, nr_caps;
	struct cpu_cpuid_mod cpuid[CPU_TEMPLATE_MAX_CPUID];
	struct cpu_msr_mod msr[CPU_TEMPLATE_MAX_MSR];
	struct cpu_cap caps[CPU_TEMPLATE_MAX_CAPS];
};

/* Firecracker's static templates (machine-config cpu_template). */
enum cpu_static_template {
	CPU_STATIC_NONE,
	CPU_STATIC_C3,
	CPU_STATIC_T2,
	CPU_STATIC_T2S,
	CPU_STATIC_T2CL,
	CPU_STATIC_T2A,
};

/* What a VM asks of its vCPUs (from its configuration): handed to arch_vcpu_setup. */
struct cpu_model {
	bool smt;
	enum cpu_static_template static_template;
	const struct cpu_template *custom; /* or NULL */
};

/* "C3" -> CPU_STATIC_C3 ... "None" -> CPU_STATIC_NONE; -EINVAL for any other name. */
__attribute__((warn_unused_result)) int cpu_static_parse(const char *name,
	enum cpu_static_template *out);
const char *cpu_static_name(enum cpu_static_template t);

/* A bitmap string as Firecracker reads it: optional "0b", then 0 (clear), 1 (set), x (keep)
 * and _ (separator), the last character being bit 0; missing high bits are kept. At most
 * `bits` (32 or 64) digits. The message says what is wrong, in Firecracker's words. */
__attribute__((warn_unused_result)) int cpu_bitmap_parse(const char *s, unsigned bits,
	struct cpu_bitmap *out, char *err, size_t errlen);

/* "0x1f" or "0b101" (the prefix is required, as in Firecracker), at most 32 bits.
 * -EDOM: no prefix; -ENODATA: no digits; -EINVAL: a bad digit; -ERANGE: too large. */
__attribute__((warn_unused_result)) int cpu_number_parse(const char *s, uint32_t *out);

/* The template from its JSON object ({"kvm_capabilities": [...], "cpuid_modifiers": [...],
 * "msr_modifiers": [...]}), strictly: unknown keys, wrong types, bad numbers and bitmaps,
 * unknown registers and too many modifiers are refused, with the path in the message
 * ("cpuid_modifiers[1].modifiers[0].bitmap: ..."). `t` is zeroed first. */
__attribute__((warn_unused_result)) int cpu_template_from_json(const struct cJSON *o,
	struct cpu_template *t, char *err, size_t errlen);
/* The same from JSON text (a template file). */
__attribute__((warn_unused_result)) int cpu_template_parse(const char *text, struct cpu_template *t,
	char *err, size_t errlen);

/* Apply the CPUID modifiers to `c` (room for CPUID_MAX_ENTRIES entries). A leaf/subleaf the
 * table lacks is added with the template's flags (zero registers, then modified). -ENOSPC
 * if the table is full, with a message. */
__attribute__((warn_unused_result)) int cpu_template_apply_cpuid(const struct cpu_template *t,
	struct kvm_cpuid2 *c, char *err, size_t errlen);

/* Apply the MSR modifiers to values read from the vCPU: vals[i] is MSR t->msr[i].addr. */
void cpu_template_apply_msrs(const struct cpu_template *t, uint64_t *vals);

/* Two threads per core in a normalized table (cpuid_normalize ran first) for vCPU `index`
 * of `count` (1 or even): leaf 1 HTT, leaf 4 L1/L2 shared by the two threads and
 * count/2 cores, leaves 0xb/0x1f SMT level of 2 threads (shift 1); on AMD also TOPOEXT,
 * leaf 0x8000001e (added if absent, extended APIC id, threads per core 2, core id
 * index/2) and leaf 0x80000008 ECX thread count and APIC id size. -EINVAL if count is odd
 * and not 1, -ENOSPC if the table has no room for the AMD leaf. */
__attribute__((warn_unused_result)) int cpuid_apply_smt(struct kvm_cpuid2 *c, unsigned index,
	unsigned count);

/* Static template `t` as template JSON, NUL-terminated (built in, cpu_static.c); NULL for
 * CPU_STATIC_NONE. */
const char *cpu_static_json(enum cpu_static_template t);

/* Does static template `t` fit the CPU described by `host` (its leaf 0 vendor and leaf 1
 * family/model/stepping)? 0 if so; otherwise -EINVAL and Firecracker's reason in `err`
 * ("CPU vendor mismatched between actual CPU and CPU template." or "The current CPU model
 * is not permitted to apply the CPU template."). */
__attribute__((warn_unused_result)) int cpu_static_check(enum cpu_static_template t,
	struct kvm_cpuid2 *host, char *err, size_t errlen);

#endif
