/* CPU templates: bitmap strings, their application to CPUID and MSRs, SMT topology and
 * the static templates' CPU check. Pure logic over a kvm_cpuid2 table. */
#include "ember/cpu_template.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "ember/cpuid.h"

/* Leaf 1 (Intel SDM vol. 2A, CPUID). */
#define F1_EDX_HTT (1u << 28)
/* Leaf 4: cache sharing and cores per package. */
#define F4_EAX_TYPE 0x1fu
#define F4_EAX_LEVEL(eax) (((eax) >> 5) & 7)
#define F4_EAX_SHARING_SHIFT 14
#define F4_EAX_SHARING_MASK (0xfffu << F4_EAX_SHARING_SHIFT)
#define F4_EAX_CORES_SHIFT 26
#define F4_EAX_CORES_MASK (0x3fu << F4_EAX_CORES_SHIFT)
/* Leaves 0xb / 0x1f subleaf 1: the core level. */
#define TOPO_SHIFT_MASK 0x1fu
/* AMD leaf 0x8000001e (APM vol. 3): EBX[15:8] threads per core - 1, EBX[7:0] core id. */
#define LEAF_AMD_TOPOLOGY 0x8000001eu

static const char *const static_names[] = {
	[CPU_STATIC_NONE] = "None",
	[CPU_STATIC_C3] = "C3",
	[CPU_STATIC_T2] = "T2",
	[CPU_STATIC_T2S] = "T2S",
	[CPU_STATIC_T2CL] = "T2CL",
	[CPU_STATIC_T2A] = "T2A",
};

int cpu_static_parse(const char *name, enum cpu_static_template *out)
{
	for (unsigned i = 0; i < sizeof(static_names) / sizeof(static_names[0]); i++) {
		if (strcmp(name, static_names[i]) == 0) {
			*out = (enum cpu_static_template)i;
			return 0;
		}
	}
	return -EINVAL;
}

const char *cpu_static_name(enum cpu_static_template t)
{
	return (unsigned)t < sizeof(static_names) / sizeof(static_names[0]) ? static_names[t] : "?";
}

int cpu_bitmap_parse(const char *s, unsigned bits, struct cpu_bitmap *out, char *err, size_t errlen)
{
	const char *digits = strncmp(s, "0b", 2) == 0 ? s + 2 : s;
	size_t len = strlen(digits);
	unsigned bit = 0;

	out->filter = out->value = 0;
	/* Read from the right: the last character is bit 0. */
	for (size_t i = len; i-- > 0;) {
		char ch = digits[i];

		if (bit == bits) {
			snprintf(err, errlen,
				"Failed to parse string [%s] as a bitmap - string is too "
				"long",
				s);
			return -EINVAL;
		}
		if (ch == '_')
			continue;
		if (ch != 'x' && ch != '0' && ch != '1') {
			/* Firecracker prints the byte's number. */
			snprintf(err, errlen,
				"Failed to parse string [%s] as a bitmap - unknown "
				"character: %u",
				s, (unsigned)(unsigned char)ch);
			return -EINVAL;
		}
		if (ch != 'x')
			out->filter |= 1ULL << bit;
		if (ch == '1')
			out->value |= 1ULL << bit;
		bit++;
	}
	return 0;
}

int cpu_number_parse(const char *s, uint32_t *out)
{
	unsigned base;
	uint64_t v = 0;

	if (s[0] != '0' || (s[1] != 'x' && s[1] != 'b'))
		return -EDOM;
	base = s[1] == 'x' ? 16 : 2;
	s += 2;
	if (!*s)
		return -ENODATA;
	for (; *s; s++) {
		unsigned d;

		if (*s >= '0' && *s <= '9')
			d = (unsigned)(*s - '0');
		else if (*s >= 'a' && *s <= 'f')
			d = (unsigned)(*s - 'a' + 10);
		else if (*s >= 'A' && *s <= 'F')
			d = (unsigned)(*s - 'A' + 10);
		else
			return -EINVAL;
		if (d >= base)
			return -EINVAL;
		if (v <= UINT32_MAX)
			v = v * base + d;
	}
	if (v > UINT32_MAX)
		return -ERANGE;
	*out = (uint32_t)v;
	return 0;
}

static uint32_t *reg_of(struct kvm_cpuid_entry2 *e, uint32_t reg)
{
	switch (reg) {
	case CPU_REG_EAX:
		return &e->eax;
	case CPU_REG_EBX:
		return &e->ebx;
	case CPU_REG_ECX:
		return &e->ecx;
	default:
		return &e->edx;
	}
}

static uint32_t apply_bits(uint32_t old, const struct cpu_bitmap *b)
{
	return (old & ~(uint32_t)b->filter) | ((uint32_t)b->value & (uint32_t)b->filter);
}

int cpu_template_apply_cpuid(const struct cpu_template *t, struct kvm_cpuid2 *c, char *err,
	size_t errlen)
{
	for (uint32_t i = 0; i < t->nr_cpuid; i++) {
		const struct cpu_cpuid_mod *m = &t->cpuid[i];
		struct kvm_cpuid_entry2 *e = cpuid_find(c, m->leaf, m->subleaf);

		if (!e) {
			if (c->nent >= CPUID_MAX_ENTRIES) {
				snprintf(err, errlen,
					"CPU template: no room for CPUID leaf %#x subleaf "
					"%#x",
					m->leaf, m->subleaf);
				return -ENOSPC;
			}
			e = &c->entries[c->nent++];
			memset(e, 0, sizeof(*e));
			e->function = m->leaf;
			e->index = m->subleaf;
			e->flags = m->flags;
		}
		*reg_of(e, m->reg) = apply_bits(*reg_of(e, m->reg), &m->bits);
	}
	return 0;
}

void cpu_template_apply_msrs(const struct cpu_template *t, uint64_t *vals)
{
	for (uint32_t i = 0; i < t->nr_msr; i++) {
		const struct cpu_bitmap *b = &t->msr[i].bits;

		vals[i] = (vals[i] & ~b->filter) | (b->value & b->filter);
	}
}

static unsigned order(unsigned n)
{
	unsigned shift = 0;

	while ((1u << shift) < n)
		shift++;
	return shift;
}

static bool is_amd(struct kvm_cpuid2 *c)
{
	char vendor[13];

	return cpuid_vendor(c, vendor) && strcmp(vendor, "AuthenticAMD") == 0;
}

/* AMD: Linux sees threads of one core only with TOPOEXT and leaf 0x8000001e (core or
 * compute unit id in EBX[7:0], threads per core - 1 in EBX[15:8]); leaf 0x80000008 ECX
 * gives the thread count - 1 (7:0) and the APIC id bits (15:12). Facts from AMD's APM and
 * Firecracker's normalization table. */
static int amd_smt(struct kvm_cpuid2 *c, unsigned index, unsigned count, unsigned threads)
{
	struct kvm_cpuid_entry2 *max = cpuid_find(c, 0x80000000u, 0);
	struct kvm_cpuid_entry2 *e = cpuid_find(c, LEAF_AMD_TOPOLOGY, 0);

	if (!max)
		return 0; /* no extended leaves at all: nothing to describe the topology with */
	if (!e) {
		if (c->nent >= CPUID_MAX_ENTRIES)
			return -ENOSPC;
		e = &c->entries[c->nent++];
		memset(e, 0, sizeof(*e));
		e->function = LEAF_AMD_TOPOLOGY;
	}
	if (max->eax < LEAF_AMD_TOPOLOGY)
		max->eax = LEAF_AMD_TOPOLOGY;
	e->eax = index;
	e->ebx = (threads - 1) << 8 | index / threads;
	e->ecx = 0;
	e->edx = 0;
	e = cpuid_find(c, 0x80000001u, 0);
	if (e)
		e->ecx |= 1u << 22; /* TOPOEXT */
	e = cpuid_find(c, 0x80000008u, 0);
	if (e)
		e->ecx = (e->ecx & ~0xf0ffu) | (order(count) & 0xf) << 12 | (count - 1);
	return 0;
}

int cpuid_apply_smt(struct kvm_cpuid2 *c, unsigned index, unsigned count)
{
	unsigned cores = count == 1 ? 1 : count / 2, threads = count == 1 ? 1 : 2;
	struct kvm_cpuid_entry2 *e;

	if (count == 0 || index >= count || (count > 1 && count % 2))
		return -EINVAL;
	if (is_amd(c) && amd_smt(c, index, count, threads))
		return -ENOSPC;
	e = cpuid_find(c, 0x1, 0);
	if (e && count > 1)
		e->edx |= F1_EDX_HTT;
	for (uint32_t i = 0; i < c->nent; i++) {
		e = &c->entries[i];
		if (e->function == 0x4 && (e->eax & F4_EAX_TYPE)) {
			/* L1 and L2 belong to a core (both its threads); the L3 to all. */
			uint32_t sharing = F4_EAX_LEVEL(e->eax) >= 3 ? count - 1 : threads - 1;
			uint32_t core_field = cores - 1 < 0x3f ? cores - 1 : 0x3f;

			e->eax &= ~(F4_EAX_CORES_MASK | F4_EAX_SHARING_MASK);
			e->eax |= core_field << F4_EAX_CORES_SHIFT |
				sharing << F4_EAX_SHARING_SHIFT;
		} else if ((e->function == 0xb || e->function == 0x1f) &&
			(e->flags & KVM_CPUID_FLAG_SIGNIFCANT_INDEX) && e->index <= 1) {
			/* Subleaf 0: threads of a core; subleaf 1: all logical processors, the
			 * x2APIC id shift at least 1 so that thread and core ids stay apart. */
			if (e->index == 0) {
				e->eax = order(threads);
				e->ebx = threads;
			} else {
				unsigned shift = order(count);

				e->eax = (shift < order(threads) ? order(threads) : shift) &
					TOPO_SHIFT_MASK;
				e->ebx = count;
			}
		}
	}
	return 0;
}

/* The CPUs Firecracker lets each static template run on: vendor, then family, model and
 * stepping as leaf 1 EAX reports them (stepping 3:0, model 7:4, family 11:8, extended
 * model 19:16, extended family 27:20). Facts from its static template documentation. */
#define FMS(ext_fam, ext_model, fam, model, step) \
	((uint32_t)(ext_fam) << 20 | (uint32_t)(ext_model) << 16 | (uint32_t)(fam) << 8 | \
		(uint32_t)(model) << 4 | (uint32_t)(step))
#define FMS_MASK 0x0fff0fffu
#define SKYLAKE FMS(0, 5, 6, 5, 4)
#define CASCADE_LAKE FMS(0, 5, 6, 5, 7)
#define ICE_LAKE FMS(0, 6, 6, 0xa, 6)
#define MILAN FMS(0xa, 0, 0xf, 1, 1)

struct static_fit {
	const char *vendor;
	uint32_t models[3];
};

static const struct static_fit static_fits[] = {
	[CPU_STATIC_C3] = { "GenuineIntel", { SKYLAKE, CASCADE_LAKE, ICE_LAKE } },
	[CPU_STATIC_T2] = { "GenuineIntel", { SKYLAKE, CASCADE_LAKE, ICE_LAKE } },
	[CPU_STATIC_T2S] = { "GenuineIntel", { SKYLAKE, CASCADE_LAKE } },
	[CPU_STATIC_T2CL] = { "GenuineIntel", { CASCADE_LAKE, ICE_LAKE } },
	[CPU_STATIC_T2A] = { "AuthenticAMD", { MILAN } },
};

int cpu_static_check(enum cpu_static_template t, struct kvm_cpuid2 *host, char *err, size_t errlen)
{
	struct kvm_cpuid_entry2 *f = cpuid_find(host, 1, 0);
	char vendor[13];
	bool has_vendor = cpuid_vendor(host, vendor);

	if (t == CPU_STATIC_NONE || (unsigned)t >= sizeof(static_fits) / sizeof(static_fits[0]))
		return 0;
	if (!has_vendor || !f) {
		snprintf(err, errlen, "Failed to get CPU vendor information: no CPUID leaf %d",
			has_vendor ? 1 : 0);
		return -EINVAL;
	}
	if (strcmp(vendor, static_fits[t].vendor) != 0) {
		snprintf(err, errlen, "CPU vendor mismatched between actual CPU and CPU template.");
		return -EINVAL;
	}
	for (unsigned i = 0; i < 3; i++)
		if (static_fits[t].models[i] && (f->eax & FMS_MASK) == static_fits[t].models[i])
			return 0;
	snprintf(err, errlen, "The current CPU model is not permitted to apply the CPU template.");
	return -EINVAL;
}
