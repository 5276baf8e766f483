/* CPUID normalization: the leaves a vCPU sees, derived from KVM_GET_SUPPORTED_CPUID. */
#include "ember/cpuid.h"

#include <errno.h>
#include <string.h>

#define MAX_VCPUS 255 /* 8-bit initial APIC id and logical processor count in leaf 1 */

#define LEAF_VENDOR 0x0
#define LEAF_FEATURES 0x1
#define LEAF_CACHE 0x4
#define LEAF_POWER 0x6
#define LEAF_TOPOLOGY 0xb
#define LEAF_TOPOLOGY_V2 0x1f
#define LEAF_HYPERVISOR 0x40000000u
#define LEAF_KVM_FEATURES 0x40000001u
#define LEAF_EXT_FEATURES 0x80000001u

/* Leaf 1 (Intel SDM vol. 2A, CPUID). */
#define F1_EBX_KEEP 0x0000ffffu /* brand index, CLFLUSH line size */
#define F1_EBX_COUNT_SHIFT 16
#define F1_EBX_APIC_ID_SHIFT 24
#define F1_ECX_HYPERVISOR (1u << 31)
#define F1_EDX_HTT (1u << 28)
/* Leaf 4: deterministic cache parameters, one subleaf per cache, type 0 ends the list. */
#define F4_EAX_TYPE 0x1fu
#define F4_EAX_LEVEL(eax) (((eax) >> 5) & 7)
#define F4_EAX_SHARING_SHIFT 14 /* 12 bits: logical processors sharing the cache - 1 */
#define F4_EAX_SHARING_MASK (0xfffu << F4_EAX_SHARING_SHIFT)
#define F4_EAX_CORES_SHIFT 26 /* 6 bits: cores per package - 1 */
#define F4_EAX_CORES_MASK (0x3fu << F4_EAX_CORES_SHIFT)
#define F4_EAX_CORES_MAX 0x3fu
/* Leaf 6: thermal and power management. */
#define F6_EAX_TURBO (1u << 1)
#define F6_ECX_EPB (1u << 3)
/* Leaves 0xb / 0x1f: extended topology. */
#define TOPO_TYPE_SMT 1
#define TOPO_TYPE_CORE 2
#define TOPO_TYPE_SHIFT 8
#define TOPO_SUBLEAVES 3 /* SMT, core, and the invalid level that ends the list */
/* Leaf 0x80000001. */
#define EXT_ECX_CMP_LEGACY (1u << 1)

static const char kvm_signature[12] = { 'K', 'V', 'M', 'K', 'V', 'M', 'K', 'V', 'M', 0, 0, 0 };

static int find_entry(const struct kvm_cpuid2 *c, uint32_t function, uint32_t index)
{
	for (uint32_t i = 0; i < c->nent; i++) {
		const struct kvm_cpuid_entry2 *e = &c->entries[i];

		if (e->function != function)
			continue;
		if ((e->flags & KVM_CPUID_FLAG_SIGNIFCANT_INDEX) && e->index != index)
			continue;
		return (int)i;
	}
	return -1;
}

struct kvm_cpuid_entry2 *cpuid_find(struct kvm_cpuid2 *c, uint32_t function, uint32_t index)
{
	int i = find_entry(c, function, index);

	return i < 0 ? NULL : &c->entries[i];
}

static int has_leaf(const struct kvm_cpuid2 *c, uint32_t function)
{
	for (uint32_t i = 0; i < c->nent; i++)
		if (c->entries[i].function == function)
			return 1;
	return 0;
}

/* Caller has checked there is room. */
static struct kvm_cpuid_entry2 *get_or_add(struct kvm_cpuid2 *c, uint32_t function, uint32_t index,
	uint32_t flags)
{
	struct kvm_cpuid_entry2 *e = cpuid_find(c, function, index);

	if (e)
		return e;
	e = &c->entries[c->nent++];
	memset(e, 0, sizeof(*e));
	e->function = function;
	e->index = index;
	e->flags = flags;
	return e;
}

/* How many entries normalization has to add: the hypervisor leaf, and topology subleaves
 * KVM left out (recent kernels report only subleaf 0, zeroed). */
static unsigned missing_entries(const struct kvm_cpuid2 *c)
{
	static const uint32_t topo[] = { LEAF_TOPOLOGY, LEAF_TOPOLOGY_V2 };
	unsigned n = find_entry(c, LEAF_HYPERVISOR, 0) < 0;

	for (unsigned t = 0; t < sizeof(topo) / sizeof(topo[0]); t++) {
		if (!has_leaf(c, topo[t]))
			continue;
		for (uint32_t sub = 0; sub < TOPO_SUBLEAVES; sub++)
			n += find_entry(c, topo[t], sub) < 0;
	}
	return n;
}

static unsigned order(unsigned count)
{
	unsigned shift = 0;

	while ((1u << shift) < count)
		shift++;
	return shift;
}

static void normalize_features(struct kvm_cpuid2 *c, unsigned index, unsigned count)
{
	struct kvm_cpuid_entry2 *e = cpuid_find(c, LEAF_FEATURES, 0);

	if (!e)
		return;
	e->ebx = (e->ebx & F1_EBX_KEEP) | (uint32_t)index << F1_EBX_APIC_ID_SHIFT |
		(uint32_t)count << F1_EBX_COUNT_SHIFT;
	e->ecx |= F1_ECX_HYPERVISOR;
	if (count > 1)
		e->edx |= F1_EDX_HTT;
	else
		e->edx &= ~F1_EDX_HTT;
}

static void normalize_caches(struct kvm_cpuid2 *c, unsigned count)
{
	uint32_t cores = count - 1 < F4_EAX_CORES_MAX ? count - 1 : F4_EAX_CORES_MAX;

	for (uint32_t i = 0; i < c->nent; i++) {
		struct kvm_cpuid_entry2 *e = &c->entries[i];
		uint32_t sharing;

		if (e->function != LEAF_CACHE || !(e->eax & F4_EAX_TYPE))
			continue;
		/* One core per vCPU: L1 and L2 are private, the L3 is shared by all. */
		sharing = F4_EAX_LEVEL(e->eax) >= 3 ? count - 1 : 0;
		e->eax &= ~(F4_EAX_CORES_MASK | F4_EAX_SHARING_MASK);
		e->eax |= cores << F4_EAX_CORES_SHIFT | sharing << F4_EAX_SHARING_SHIFT;
	}
}

/* Leaf 0xb or 0x1f: subleaf 0 the SMT level (1 thread), subleaf 1 the core level (count
 * logical processors), every later subleaf invalid. EDX is the x2APIC id throughout. */
static void normalize_topology(struct kvm_cpuid2 *c, uint32_t leaf, unsigned index, unsigned count)
{
	if (!has_leaf(c, leaf))
		return;
	for (uint32_t sub = 0; sub < TOPO_SUBLEAVES; sub++)
		get_or_add(c, leaf, sub, KVM_CPUID_FLAG_SIGNIFCANT_INDEX);
	for (uint32_t i = 0; i < c->nent; i++) {
		struct kvm_cpuid_entry2 *e = &c->entries[i];
		uint32_t sub = e->index;

		if (e->function != leaf)
			continue;
		if (!(e->flags & KVM_CPUID_FLAG_SIGNIFCANT_INDEX))
			continue; /* KVM always flags these; an unflagged copy would be ambiguous */
		e->edx = index;
		e->ecx = sub & 0xff;
		if (sub == 0) {
			e->eax = 0;
			e->ebx = 1;
			e->ecx |= TOPO_TYPE_SMT << TOPO_TYPE_SHIFT;
		} else if (sub == 1) {
			e->eax = order(count);
			e->ebx = count;
			e->ecx |= TOPO_TYPE_CORE << TOPO_TYPE_SHIFT;
		} else {
			e->eax = 0;
			e->ebx = 0;
		}
	}
}

int cpuid_normalize(struct kvm_cpuid2 *c, unsigned index, unsigned count)
{
	struct kvm_cpuid_entry2 *e;

	if (count == 0 || count > MAX_VCPUS || index >= count || c->nent > CPUID_MAX_ENTRIES)
		return -EINVAL;
	if (c->nent + missing_entries(c) > CPUID_MAX_ENTRIES)
		return -ENOSPC;

	normalize_features(c, index, count);
	normalize_caches(c, count);
	normalize_topology(c, LEAF_TOPOLOGY, index, count);
	normalize_topology(c, LEAF_TOPOLOGY_V2, index, count);

	e = cpuid_find(c, LEAF_POWER, 0);
	if (e) {
		e->eax &= ~F6_EAX_TURBO;
		e->ecx &= ~F6_ECX_EPB;
	}

	e = get_or_add(c, LEAF_HYPERVISOR, 0, 0);
	e->eax = LEAF_KVM_FEATURES;
	memcpy(&e->ebx, kvm_signature, 4);
	memcpy(&e->ecx, kvm_signature + 4, 4);
	memcpy(&e->edx, kvm_signature + 8, 4);

	e = cpuid_find(c, LEAF_EXT_FEATURES, 0);
	if (e && count == 1)
		e->ecx &= ~EXT_ECX_CMP_LEGACY;
	return 0;
}

int cpuid_vendor_equal(const struct kvm_cpuid2 *a, const struct kvm_cpuid2 *b)
{
	int i = find_entry(a, LEAF_VENDOR, 0);
	int j = find_entry(b, LEAF_VENDOR, 0);

	if (i < 0 || j < 0)
		return 0;
	/* The vendor string is EBX, EDX, ECX. */
	return a->entries[i].ebx == b->entries[j].ebx && a->entries[i].edx == b->entries[j].edx &&
		a->entries[i].ecx == b->entries[j].ecx;
}

bool cpuid_vendor(struct kvm_cpuid2 *c, char out[13])
{
	struct kvm_cpuid_entry2 *leaf0 = cpuid_find(c, LEAF_VENDOR, 0);

	memset(out, 0, 13);
	if (!leaf0)
		return false;
	/* The vendor string is EBX, EDX, ECX. */
	memcpy(out, &leaf0->ebx, 4);
	memcpy(out + 4, &leaf0->edx, 4);
	memcpy(out + 8, &leaf0->ecx, 4);
	return true;
}
