/* Unit tests for cpuid.c: lookup, per-vCPU normalization and the vendor check. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ember/cpuid.h"

#define SIG KVM_CPUID_FLAG_SIGNIFCANT_INDEX
#define LIST_BYTES (sizeof(struct kvm_cpuid2) + CPUID_MAX_ENTRIES * sizeof(struct kvm_cpuid_entry2))

/* Cache descriptors for leaf 4: type in EAX[4:0], level in EAX[7:5], with host topology
 * fields (EAX[31:26] = 15, EAX[25:14] = 1 or 31) that normalization must replace. */
#define HOST_CORES (15u << 26)
#define L1D (0x21u | HOST_CORES | 1u << 14)
#define L1I (0x22u | HOST_CORES | 1u << 14)
#define L2 (0x43u | HOST_CORES | 1u << 14)
#define L3 (0x63u | HOST_CORES | 31u << 14)

/* What KVM_GET_SUPPORTED_CPUID might say on an Intel host (recent KVM: leaf 0xb has only
 * subleaf 0, zeroed). */
static const struct kvm_cpuid_entry2 supported[] = {
	{ .function = 0x0, .eax = 0x1f, .ebx = 0x756e6547, .edx = 0x49656e69, .ecx = 0x6c65746e },
	{ .function = 0x1,
		.eax = 0x000806f8,
		.ebx = 0x07200800,
		.ecx = 0x7ffafbff,
		.edx = 0xbfebfbff },
	{ .function = 0x4, .index = 0, .flags = SIG, .eax = L1D, .ebx = 0x02c0003f, .ecx = 0x3f },
	{ .function = 0x4, .index = 1, .flags = SIG, .eax = L1I, .ebx = 0x01c0003f, .ecx = 0x3f },
	{ .function = 0x4, .index = 2, .flags = SIG, .eax = L2, .ebx = 0x03c0003f, .ecx = 0x7ff },
	{ .function = 0x4, .index = 3, .flags = SIG, .eax = L3, .ebx = 0x03c0003f, .ecx = 0xffff },
	{ .function = 0x4, .index = 4, .flags = SIG, .eax = HOST_CORES },
	{ .function = 0x6, .eax = 0x6, .ecx = 0x9 },
	{ .function = 0x7, .index = 0, .flags = SIG, .ebx = 0x029c6fbf },
	{ .function = 0xb, .index = 0, .flags = SIG },
	{ .function = 0x40000000,
		.eax = 0x40000001,
		.ebx = 0x4b4d564b,
		.ecx = 0x564b4d56,
		.edx = 0x4d },
	{ .function = 0x40000001, .eax = 0x01007afb },
	{ .function = 0x80000000, .eax = 0x80000008 },
	{ .function = 0x80000001, .ecx = 0x00000123, .edx = 0x2c100800 },
};

#define NSUPPORTED (sizeof(supported) / sizeof(supported[0]))

static struct kvm_cpuid2 *list_new(void)
{
	struct kvm_cpuid2 *c = calloc(1, LIST_BYTES);

	assert_non_null(c);
	memcpy(c->entries, supported, sizeof(supported));
	c->nent = NSUPPORTED;
	return c;
}

static void list_remove(struct kvm_cpuid2 *c, uint32_t function)
{
	uint32_t j = 0;

	for (uint32_t i = 0; i < c->nent; i++)
		if (c->entries[i].function != function)
			c->entries[j++] = c->entries[i];
	c->nent = j;
}

static struct kvm_cpuid_entry2 *must_find(struct kvm_cpuid2 *c, uint32_t fn, uint32_t idx)
{
	struct kvm_cpuid_entry2 *e = cpuid_find(c, fn, idx);

	assert_non_null(e);
	return e;
}

static unsigned count_leaf(const struct kvm_cpuid2 *c, uint32_t function)
{
	unsigned n = 0;

	for (uint32_t i = 0; i < c->nent; i++)
		n += c->entries[i].function == function;
	return n;
}

static void expect_topology(struct kvm_cpuid2 *c, uint32_t leaf, unsigned index, unsigned count,
	unsigned shift)
{
	struct kvm_cpuid_entry2 *e;

	e = must_find(c, leaf, 0); /* SMT level: one thread per core */
	assert_int_equal(e->eax, 0);
	assert_int_equal(e->ebx, 1);
	assert_int_equal(e->ecx, 0x100);
	assert_int_equal(e->edx, index);
	e = must_find(c, leaf, 1); /* core level: count logical processors */
	assert_int_equal(e->eax, shift);
	assert_int_equal(e->ebx, count);
	assert_int_equal(e->ecx, 0x201);
	assert_int_equal(e->edx, index);
	e = must_find(c, leaf, 2); /* no more levels */
	assert_int_equal(e->eax, 0);
	assert_int_equal(e->ebx, 0);
	assert_int_equal(e->ecx, 2);
	assert_int_equal(e->edx, index);
}

static void expect_caches(struct kvm_cpuid2 *c, unsigned count)
{
	assert_int_equal(must_find(c, 4, 0)->eax, 0x21u | (count - 1) << 26);
	assert_int_equal(must_find(c, 4, 1)->eax, 0x22u | (count - 1) << 26);
	assert_int_equal(must_find(c, 4, 2)->eax, 0x43u | (count - 1) << 26);
	assert_int_equal(must_find(c, 4, 3)->eax, 0x63u | (count - 1) << 26 | (count - 1) << 14);
	assert_int_equal(must_find(c, 4, 4)->eax, HOST_CORES); /* the end marker is left alone */
	assert_int_equal(must_find(c, 4, 3)->ebx, 0x03c0003f);
}

static void expect_common(struct kvm_cpuid2 *c)
{
	struct kvm_cpuid_entry2 *e;

	e = must_find(c, 1, 0);
	assert_true(e->ecx & (1u << 31)); /* hypervisor */
	assert_true(e->ecx & (1u << 24)); /* TSC deadline as KVM said */
	assert_int_equal(e->ebx & 0xffff, 0x0800);
	e = must_find(c, 6, 0);
	assert_int_equal(e->eax, 0x4); /* ARAT kept, turbo gone */
	assert_int_equal(e->ecx, 0x1); /* energy-performance bias gone */
	e = must_find(c, 0x40000000, 0);
	assert_int_equal(e->eax, 0x40000001);
	assert_memory_equal(&e->ebx, "KVMK", 4);
	assert_memory_equal(&e->ecx, "VMKV", 4);
	assert_memory_equal(&e->edx, "M\0\0\0", 4);
	/* Leaves normalization does not own are left as KVM said. */
	assert_int_equal(must_find(c, 7, 0)->ebx, 0x029c6fbf);
	assert_int_equal(must_find(c, 0x40000001, 0)->eax, 0x01007afb);
}

static void test_cpuid_find_without_significant_index(void **state)
{
	struct kvm_cpuid2 *c = list_new();

	(void)state;
	assert_ptr_equal(cpuid_find(c, 1, 0), &c->entries[1]);
	assert_ptr_equal(cpuid_find(c, 1, 7), &c->entries[1]); /* index ignored */
	free(c);
}

static void test_cpuid_find_with_significant_index(void **state)
{
	struct kvm_cpuid2 *c = list_new();

	(void)state;
	assert_ptr_equal(cpuid_find(c, 4, 0), &c->entries[2]);
	assert_ptr_equal(cpuid_find(c, 4, 3), &c->entries[5]);
	assert_null(cpuid_find(c, 4, 5));
	assert_null(cpuid_find(c, 0xb, 1));
	assert_null(cpuid_find(c, 0x12345, 0));
	c->nent = 0;
	assert_null(cpuid_find(c, 0, 0));
	free(c);
}

static void test_cpuid_normalize_one_vcpu(void **state)
{
	struct kvm_cpuid2 *c = list_new();
	struct kvm_cpuid_entry2 *e;

	(void)state;
	assert_int_equal(cpuid_normalize(c, 0, 1), 0);
	e = must_find(c, 1, 0);
	assert_int_equal(e->ebx, 0x00010800); /* APIC id 0, 1 logical processor */
	assert_false(e->edx & (1u << 28));    /* no HTT */
	expect_caches(c, 1);
	expect_topology(c, 0xb, 0, 1, 0);
	expect_common(c);
	assert_int_equal(must_find(c, 0x80000001, 0)->ecx, 0x121); /* CmpLegacy cleared */
	assert_int_equal(c->nent, NSUPPORTED + 2);                 /* 0xb subleaves 1 and 2 added */
	free(c);
}

static void test_cpuid_normalize_two_vcpus(void **state)
{
	struct kvm_cpuid2 *c = list_new();
	struct kvm_cpuid_entry2 *e;

	(void)state;
	assert_int_equal(cpuid_normalize(c, 1, 2), 0);
	e = must_find(c, 1, 0);
	assert_int_equal(e->ebx, 0x01020800); /* APIC id 1, 2 logical processors */
	assert_true(e->edx & (1u << 28));
	expect_caches(c, 2);
	expect_topology(c, 0xb, 1, 2, 1);
	expect_common(c);
	assert_int_equal(must_find(c, 0x80000001, 0)->ecx, 0x123); /* CmpLegacy kept */
	free(c);
}

static void test_cpuid_normalize_32_vcpus(void **state)
{
	struct kvm_cpuid2 *c = list_new();
	struct kvm_cpuid_entry2 *e;

	(void)state;
	assert_int_equal(cpuid_normalize(c, 31, 32), 0);
	e = must_find(c, 1, 0);
	assert_int_equal(e->ebx, 0x1f200800);
	assert_true(e->edx & (1u << 28));
	expect_caches(c, 32);
	expect_topology(c, 0xb, 31, 32, 5);
	expect_common(c);

	free(c);
	c = list_new();
	assert_int_equal(cpuid_normalize(c, 0, 32), 0);
	assert_int_equal(must_find(c, 1, 0)->ebx >> 24, 0);
	assert_int_equal(must_find(c, 0xb, 1)->edx, 0);
	free(c);
}

static void test_cpuid_normalize_odd_and_largest_counts(void **state)
{
	struct kvm_cpuid2 *c = list_new();

	(void)state;
	assert_int_equal(cpuid_normalize(c, 2, 3), 0);
	expect_topology(c, 0xb, 2, 3, 2); /* 3 ids need 2 bits */
	free(c);

	c = list_new();
	assert_int_equal(cpuid_normalize(c, 254, 255), 0);
	assert_int_equal(must_find(c, 1, 0)->ebx, 0xfeff0800);
	expect_topology(c, 0xb, 254, 255, 8);
	/* Cores per package is a 6-bit field: it saturates. */
	assert_int_equal(must_find(c, 4, 3)->eax, 0x63u | 63u << 26 | 254u << 14);
	free(c);
}

static void test_cpuid_normalize_rewrites_existing_topology(void **state)
{
	struct kvm_cpuid2 *c = list_new();
	struct kvm_cpuid_entry2 host[] = {
		{ .function = 0xb,
			.index = 1,
			.flags = SIG,
			.eax = 6,
			.ebx = 40,
			.ecx = 0x201,
			.edx = 9 },
		{ .function = 0xb, .index = 2, .flags = SIG, .eax = 0, .ebx = 0, .ecx = 2, .edx = 9 },
		{ .function = 0xb,
			.index = 3,
			.flags = SIG,
			.eax = 7,
			.ebx = 80,
			.ecx = 0x503,
			.edx = 9 },
	};

	(void)state;
	/* Older KVM: the host's levels, one subleaf each, plus one we do not want. */
	memcpy(&c->entries[c->nent], host, sizeof(host));
	c->nent += 3;
	assert_int_equal(cpuid_normalize(c, 1, 4), 0);
	assert_int_equal(c->nent, NSUPPORTED + 3); /* nothing added, nothing duplicated */
	assert_int_equal(count_leaf(c, 0xb), 4);
	expect_topology(c, 0xb, 1, 4, 2);
	assert_int_equal(must_find(c, 0xb, 3)->eax, 0);
	assert_int_equal(must_find(c, 0xb, 3)->ebx, 0);
	assert_int_equal(must_find(c, 0xb, 3)->ecx, 3);
	assert_int_equal(must_find(c, 0xb, 3)->edx, 1);
	free(c);
}

static void test_cpuid_normalize_leaf_0x1f_when_present(void **state)
{
	struct kvm_cpuid2 *c = list_new();

	(void)state;
	assert_int_equal(cpuid_normalize(c, 0, 2), 0);
	assert_int_equal(count_leaf(c, 0x1f), 0); /* absent stays absent */
	free(c);

	c = list_new();
	c->entries[c->nent++] = (struct kvm_cpuid_entry2){ .function = 0x1f,
		.index = 0,
		.flags = SIG,
		.eax = 1,
		.ebx = 2,
		.ecx = 0x100,
		.edx = 5 };
	assert_int_equal(cpuid_normalize(c, 5, 6), 0);
	expect_topology(c, 0x1f, 5, 6, 3);
	expect_topology(c, 0xb, 5, 6, 3);
	assert_int_equal(c->nent, NSUPPORTED + 1 + 4);
	free(c);
}

static void test_cpuid_normalize_adds_hypervisor_leaf(void **state)
{
	struct kvm_cpuid2 *c = list_new();

	(void)state;
	list_remove(c, 0x40000000);
	assert_null(cpuid_find(c, 0x40000000, 0));
	assert_int_equal(cpuid_normalize(c, 0, 1), 0);
	expect_common(c);
	free(c);
}

static void test_cpuid_normalize_is_idempotent(void **state)
{
	struct kvm_cpuid2 *a = list_new(), *b = list_new();

	(void)state;
	assert_int_equal(cpuid_normalize(a, 1, 2), 0);
	assert_int_equal(cpuid_normalize(b, 1, 2), 0);
	assert_int_equal(cpuid_normalize(b, 1, 2), 0);
	assert_memory_equal(a, b, LIST_BYTES);
	free(a);
	free(b);
}

static void test_cpuid_normalize_without_optional_leaves(void **state)
{
	struct kvm_cpuid2 *c = list_new();

	(void)state;
	list_remove(c, 0xb);
	list_remove(c, 4);
	list_remove(c, 6);
	list_remove(c, 0x80000001);
	assert_int_equal(cpuid_normalize(c, 0, 2), 0);
	assert_int_equal(count_leaf(c, 0xb), 0);
	assert_int_equal(must_find(c, 1, 0)->ebx, 0x00020800);
	free(c);
}

static void test_cpuid_normalize_rejects_bad_vcpu_numbers(void **state)
{
	struct kvm_cpuid2 *c = list_new(), *orig = list_new();

	(void)state;
	assert_int_equal(cpuid_normalize(c, 0, 0), -EINVAL);
	assert_int_equal(cpuid_normalize(c, 1, 1), -EINVAL);
	assert_int_equal(cpuid_normalize(c, 2, 2), -EINVAL);
	assert_int_equal(cpuid_normalize(c, 32, 2), -EINVAL);
	assert_int_equal(cpuid_normalize(c, 0, 256), -EINVAL);
	assert_int_equal(cpuid_normalize(c, 255, 255), -EINVAL);
	assert_memory_equal(c, orig, LIST_BYTES); /* refused before anything changed */
	c->nent = CPUID_MAX_ENTRIES + 1;
	assert_int_equal(cpuid_normalize(c, 0, 1), -EINVAL);
	free(c);
	free(orig);
}

static void test_cpuid_normalize_rejects_full_list(void **state)
{
	struct kvm_cpuid2 *c = list_new(), *orig;

	(void)state;
	list_remove(c, 0x40000000);
	/* Fill up with unrelated leaves, leaving room for 2 of the 3 entries to add. */
	while (c->nent < CPUID_MAX_ENTRIES - 2) {
		c->entries[c->nent] = (struct kvm_cpuid_entry2){ .function = 0x14,
			.flags = SIG,
			.index = c->nent };
		c->nent++;
	}
	orig = malloc(LIST_BYTES);
	assert_non_null(orig);
	memcpy(orig, c, LIST_BYTES);
	assert_int_equal(cpuid_normalize(c, 0, 1), -ENOSPC);
	assert_memory_equal(c, orig, LIST_BYTES);

	c->nent--; /* room for exactly three */
	assert_int_equal(cpuid_normalize(c, 0, 1), 0);
	assert_int_equal(c->nent, CPUID_MAX_ENTRIES);
	free(c);
	free(orig);
}

static void test_cpuid_vendor_equal(void **state)
{
	struct kvm_cpuid2 *a = list_new(), *b = list_new();

	(void)state;
	assert_true(cpuid_vendor_equal(a, b));
	b->entries[0].eax = 0xd; /* max leaf differs: same vendor */
	assert_true(cpuid_vendor_equal(a, b));
	/* "AuthenticAMD" */
	b->entries[0].ebx = 0x68747541;
	b->entries[0].edx = 0x69746e65;
	b->entries[0].ecx = 0x444d4163;
	assert_false(cpuid_vendor_equal(a, b));
	b->entries[0] = a->entries[0];
	b->entries[0].ecx ^= 1;
	assert_false(cpuid_vendor_equal(a, b));
	list_remove(b, 0);
	assert_false(cpuid_vendor_equal(a, b));
	assert_false(cpuid_vendor_equal(b, a));
	free(a);
	free(b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cpuid_find_without_significant_index),
		cmocka_unit_test(test_cpuid_find_with_significant_index),
		cmocka_unit_test(test_cpuid_normalize_one_vcpu),
		cmocka_unit_test(test_cpuid_normalize_two_vcpus),
		cmocka_unit_test(test_cpuid_normalize_32_vcpus),
		cmocka_unit_test(test_cpuid_normalize_odd_and_largest_counts),
		cmocka_unit_test(test_cpuid_normalize_rewrites_existing_topology),
		cmocka_unit_test(test_cpuid_normalize_leaf_0x1f_when_present),
		cmocka_unit_test(test_cpuid_normalize_adds_hypervisor_leaf),
		cmocka_unit_test(test_cpuid_normalize_is_idempotent),
		cmocka_unit_test(test_cpuid_normalize_without_optional_leaves),
		cmocka_unit_test(test_cpuid_normalize_rejects_bad_vcpu_numbers),
		cmocka_unit_test(test_cpuid_normalize_rejects_full_list),
		cmocka_unit_test(test_cpuid_vendor_equal),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
