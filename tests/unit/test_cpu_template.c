/* Unit tests for cpu_template.c and cpu_template_json.c: bitmap and number strings, the
 * JSON template (strict), its application to a CPUID table and MSR values, SMT topology
 * and the static templates' CPU check. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ember/cpu_template.h"
#include "ember/cpuid.h"

#define SIG KVM_CPUID_FLAG_SIGNIFCANT_INDEX
#define LIST_BYTES (sizeof(struct kvm_cpuid2) + CPUID_MAX_ENTRIES * sizeof(struct kvm_cpuid_entry2))
#define FMS_CASCADE_LAKE 0x00050657u /* family 6, model 0x55, stepping 7 */
#define FMS_OTHER_INTEL 0x000a0671u  /* family 6, model 0xa7 */

static const struct kvm_cpuid_entry2 host[] = {
	{ .function = 0x0, .eax = 0x1f, .ebx = 0x756e6547, .edx = 0x49656e69, .ecx = 0x6c65746e },
	{ .function = 0x1,
		.eax = FMS_CASCADE_LAKE,
		.ebx = 0x07200800,
		.ecx = 0x7ffafbff,
		.edx = 0xbfebfbff },
	{ .function = 0x4, .index = 0, .flags = SIG, .eax = 0x21u | 15u << 26, .ecx = 0x3f },
	{ .function = 0x4, .index = 1, .flags = SIG, .eax = 0x43u | 15u << 26, .ecx = 0x7ff },
	{ .function = 0x4, .index = 2, .flags = SIG, .eax = 0x63u | 15u << 26, .ecx = 0xffff },
	{ .function = 0x7, .index = 0, .flags = SIG, .ebx = 0x029c6fbf },
	{ .function = 0xb, .index = 0, .flags = SIG },
	{ .function = 0x8000001e, .eax = 0, .ebx = 0x0100, .ecx = 0 },
};

static struct kvm_cpuid2 *table_new(void)
{
	struct kvm_cpuid2 *c = calloc(1, LIST_BYTES);

	assert_non_null(c);
	memcpy(c->entries, host, sizeof(host));
	c->nent = sizeof(host) / sizeof(host[0]);
	return c;
}

static void test_bitmap_full_contracted_and_separated(void **state)
{
	struct cpu_bitmap b;
	char err[256], wide[65];

	(void)state;
	assert_int_equal(cpu_bitmap_parse("0b1x0", 32, &b, err, sizeof(err)), 0);
	assert_int_equal(b.filter, 0x5);
	assert_int_equal(b.value, 0x4);
	/* "_" separates, leading "0b" is optional, missing high bits are kept. */
	assert_int_equal(cpu_bitmap_parse("1_0000_xxxx", 32, &b, err, sizeof(err)), 0);
	assert_int_equal(b.filter, 0x1f0);
	assert_int_equal(b.value, 0x100);
	assert_int_equal(cpu_bitmap_parse("0b"
					  "11111111111111111111111111111111",
				 32, &b, err, sizeof(err)),
		0);
	assert_int_equal(b.filter, 0xffffffffu);
	memset(wide, 'x', sizeof(wide) - 1);
	wide[sizeof(wide) - 1] = 0;
	wide[0] = '1'; /* 64 digits: bit 63 set, the rest kept */
	assert_int_equal(cpu_bitmap_parse(wide, 64, &b, err, sizeof(err)), 0);
	assert_true(b.filter == 1ULL << 63 && b.value == 1ULL << 63);
	assert_int_equal(cpu_bitmap_parse("0b", 32, &b, err, sizeof(err)), 0);
	assert_int_equal(b.filter, 0);
}

static void test_bitmap_refusals(void **state)
{
	struct cpu_bitmap b;
	char err[256];

	(void)state;
	assert_int_equal(cpu_bitmap_parse("0b12", 32, &b, err, sizeof(err)), -EINVAL);
	assert_string_equal(err,
		"Failed to parse string [0b12] as a bitmap - unknown character: 50");
	assert_int_equal(cpu_bitmap_parse("0b1"
					  "00000000000000000000000000000000",
				 32, &b, err, sizeof(err)),
		-EINVAL);
	assert_string_equal(err,
		"Failed to parse string [0b100000000000000000000000000000000] as "
		"a bitmap - string is too long");
	assert_int_equal(cpu_bitmap_parse("0xff", 32, &b, err, sizeof(err)), -EINVAL);
	assert_int_equal(cpu_bitmap_parse("0b X", 32, &b, err, sizeof(err)), -EINVAL);
}

static void test_numbers(void **state)
{
	uint32_t v;

	(void)state;
	assert_int_equal(cpu_number_parse("0x8000001e", &v), 0);
	assert_int_equal(v, 0x8000001eu);
	assert_int_equal(cpu_number_parse("0b101", &v), 0);
	assert_int_equal(v, 5);
	assert_int_equal(cpu_number_parse("0xFFFFFFFF", &v), 0);
	assert_int_equal(v, UINT32_MAX);
	/* Firecracker wants the prefix: a decimal number is refused. */
	assert_int_equal(cpu_number_parse("17", &v), -EDOM);
	assert_int_equal(cpu_number_parse("", &v), -EDOM);
	assert_int_equal(cpu_number_parse("0x100000000", &v), -ERANGE);
	assert_int_equal(cpu_number_parse("0x1000000000000000000000", &v), -ERANGE);
	assert_int_equal(cpu_number_parse("0x", &v), -ENODATA);
	assert_int_equal(cpu_number_parse("0b2", &v), -EINVAL);
	assert_int_equal(cpu_number_parse("0x-1", &v), -EINVAL);
}

static const char good[] =
	"{\"kvm_capabilities\": [\"171\", \"!56\"],"
	"\"cpuid_modifiers\": [{\"leaf\": \"0x7\", \"subleaf\": \"0x0\", \"flags\": 1,"
	"  \"modifiers\": [{\"register\": \"ebx\", \"bitmap\": \"0b0xxxxxxxxx\"},"
	"                {\"register\": \"edx\", \"bitmap\": \"0b1\"}]},"
	" {\"leaf\": \"0x40000010\", \"subleaf\": \"0b0\", \"flags\": 0,"
	"  \"modifiers\": [{\"register\": \"eax\", \"bitmap\": \"0b1010\"}]}],"
	"\"msr_modifiers\": [{\"addr\": \"0x10a\", \"bitmap\": \"0b1x0\"}]}";

static void test_parse_good_template(void **state)
{
	struct cpu_template *t = malloc(sizeof(*t));
	char err[256];

	(void)state;
	assert_int_equal(cpu_template_parse(good, t, err, sizeof(err)), 0);
	assert_int_equal(t->nr_caps, 2);
	assert_true(t->caps[0].cap == 171 && !t->caps[0].remove);
	assert_true(t->caps[1].cap == 56 && t->caps[1].remove);
	assert_int_equal(t->nr_cpuid, 3);
	assert_true(t->cpuid[0].leaf == 7 && t->cpuid[0].subleaf == 0 && t->cpuid[0].flags == 1);
	assert_true(t->cpuid[0].reg == CPU_REG_EBX && t->cpuid[0].bits.filter == 1u << 9);
	assert_true(t->cpuid[1].reg == CPU_REG_EDX && t->cpuid[1].bits.value == 1);
	assert_int_equal(t->cpuid[2].leaf, 0x40000010u);
	assert_int_equal(t->nr_msr, 1);
	assert_true(
		t->msr[0].addr == 0x10a && t->msr[0].bits.filter == 5 && t->msr[0].bits.value == 4);
	free(t);
}

static void refused(const char *json, const char *want)
{
	struct cpu_template *t = malloc(sizeof(*t));
	char err[256] = "";

	assert_int_equal(cpu_template_parse(json, t, err, sizeof(err)), -EINVAL);
	if (!strstr(err, want))
		fail_msg("'%s': got '%s', want '%s'", json, err, want);
	free(t);
}

static void test_parse_refusals(void **state)
{
	(void)state;
	refused("{", "not valid JSON");
	refused("[]", "expected an object");
	refused("{\"cpuid\": []}", "unknown field `cpuid`");
	refused("{\"msr_modifiers\": {}}", "must be arrays");
	refused("{\"kvm_capabilities\": [\"x1\"]}",
		"[x1] as a kvm capability - can not convert "
		"to numeric: invalid digit found in string");
	refused("{\"kvm_capabilities\": [\"!\"]}", "cannot parse integer from empty string");
	refused("{\"kvm_capabilities\": [\"99999999999\"]}", "number too large");
	refused("{\"kvm_capabilities\": [5]}", "kvm_capabilities[0]: expected a string");
	refused("{\"cpuid_modifiers\": [{\"leaf\": \"0x7\", \"subleaf\": \"0x0\", \"flags\": 0,"
		"\"modifiers\": [{\"register\": \"rax\", \"bitmap\": \"0b1\"}]}]}",
		"cpuid_modifiers[0].modifiers[0]: Invalid CPUID register");
	refused("{\"cpuid_modifiers\": [{\"leaf\": \"0x7\", \"subleaf\": \"0x0\", \"flags\": 0,"
		"\"modifiers\": [{\"register\": \"eax\", \"bitmap\": \"0b1\", \"mask\": 1}]}]}",
		"unknown field `mask`");
	refused("{\"cpuid_modifiers\": [{\"leaf\": 7, \"subleaf\": \"0x0\", \"flags\": 0,"
		"\"modifiers\": []}]}",
		"cpuid_modifiers[0].leaf: expected a string");
	refused("{\"cpuid_modifiers\": [{\"leaf\": \"0x1g\", \"subleaf\": \"0x0\", \"flags\": 0,"
		"\"modifiers\": []}]}",
		"cpuid_modifiers[0].leaf: Failed to parse string [0x1g] as a "
		"number for CPU template - ParseIntError { kind: InvalidDigit }");
	refused("{\"cpuid_modifiers\": [{\"leaf\": \"0x1\", \"subleaf\": \"0b\", \"flags\": 0,"
		"\"modifiers\": []}]}",
		"ParseIntError { kind: Empty }");
	refused("{\"msr_modifiers\": [{\"addr\": \"0x100000000\", \"bitmap\": \"0b1\"}]}",
		"ParseIntError { kind: PosOverflow }");
	refused("{\"cpuid_modifiers\": [{\"leaf\": \"1\", \"subleaf\": \"0x0\", \"flags\": 0,"
		"\"modifiers\": []}]}",
		"No supported number system prefix found in value [1]. Make "
		"sure to prefix the number with '0x' for hexadecimal numbers or '0b' for binary "
		"numbers.");
	refused("{\"cpuid_modifiers\": [{\"leaf\": \"0x1\", \"subleaf\": \"0x0\", \"flags\": -1,"
		"\"modifiers\": []}]}",
		"flags: expected a 32-bit unsigned integer");
	refused("{\"cpuid_modifiers\": [{\"leaf\": \"0x1\", \"subleaf\": \"0x0\"}]}",
		"modifiers: expected an array");
	refused("{\"msr_modifiers\": [{\"addr\": \"0x10a\"}]}", "msr_modifiers[0].bitmap: missing");
	refused("{\"msr_modifiers\": [{\"addr\": \"0x10a\", \"bitmap\": \"0b1"
		"0000000000000000000000000000000000000000000000000000000000000000\"}]}",
		"string is too long");
}

static void test_parse_limits(void **state)
{
	size_t size = 64 + (CPU_TEMPLATE_MAX_MSR + 1) * 48;
	char *json = malloc(size), *p = json;

	(void)state;
	p += sprintf(p, "{\"msr_modifiers\": [");
	for (int i = 0; i <= CPU_TEMPLATE_MAX_MSR; i++)
		p += sprintf(p, "%s{\"addr\": \"%#x\", \"bitmap\": \"0b1\"}", i ? "," : "", i + 1);
	sprintf(p, "]}");
	refused(json, "too many MSR modifiers");
	free(json);
}

static void test_apply_cpuid_and_msrs(void **state)
{
	struct cpu_template *t = malloc(sizeof(*t));
	struct kvm_cpuid2 *c = table_new();
	uint32_t n = c->nent;
	uint64_t msr[1] = { 0x3 };
	char err[256];

	(void)state;
	assert_int_equal(cpu_template_parse(good, t, err, sizeof(err)), 0);
	assert_int_equal(cpu_template_apply_cpuid(t, c, err, sizeof(err)), 0);
	assert_int_equal(cpuid_find(c, 7, 0)->ebx, 0x029c6fbfu & ~(1u << 9));
	assert_int_equal(cpuid_find(c, 7, 0)->edx, 1);
	/* A leaf the table lacked is added with the template's flags. */
	assert_int_equal(c->nent, n + 1);
	assert_non_null(cpuid_find(c, 0x40000010, 0));
	assert_int_equal(cpuid_find(c, 0x40000010, 0)->eax, 0xa);
	assert_int_equal(cpuid_find(c, 0x1, 0)->ecx, 0x7ffafbff); /* untouched */
	cpu_template_apply_msrs(t, msr);
	assert_int_equal(msr[0], 0x6); /* bit 2 set, bit 0 cleared, bit 1 kept */
	/* A full table has no room for the new leaf. */
	c->nent = CPUID_MAX_ENTRIES;
	memset(&c->entries[n], 0xff, (CPUID_MAX_ENTRIES - n) * sizeof(c->entries[0]));
	assert_int_equal(cpu_template_apply_cpuid(t, c, err, sizeof(err)), -ENOSPC);
	free(c);
	free(t);
}

static void test_smt_topology(void **state)
{
	struct kvm_cpuid2 *c = table_new();
	struct kvm_cpuid_entry2 *e;

	(void)state;
	assert_int_equal(cpuid_normalize(c, 3, 4), 0);
	assert_int_equal(cpuid_apply_smt(c, 3, 4), 0);
	assert_true(cpuid_find(c, 1, 0)->edx & (1u << 28));
	assert_int_equal((cpuid_find(c, 1, 0)->ebx >> 16) & 0xff, 4);
	e = cpuid_find(c, 4, 0); /* L1: one core, two threads */
	assert_int_equal((e->eax >> 14) & 0xfff, 1);
	assert_int_equal((e->eax >> 26) & 0x3f, 1);
	e = cpuid_find(c, 4, 2); /* L3: all four */
	assert_int_equal((e->eax >> 14) & 0xfff, 3);
	e = cpuid_find(c, 0xb, 0);
	assert_true(e->eax == 1 && e->ebx == 2 && e->edx == 3);
	assert_int_equal((e->ecx >> 8) & 0xff, 1);
	e = cpuid_find(c, 0xb, 1);
	assert_true(e->eax == 2 && e->ebx == 4 && e->edx == 3);
	e = cpuid_find(c, 0x8000001e, 0); /* AMD's leaf: left alone on Intel */
	assert_true(e->eax == 0 && e->ebx == 0x0100);
	free(c);

	/* AMD, without leaf 0x8000001e: added, TOPOEXT set, 0x80000008 ECX thread count. */
	c = table_new();
	c->nent--;                      /* drop 0x8000001e */
	c->entries[0].ebx = 0x68747541; /* AuthenticAMD */
	c->entries[0].edx = 0x69746e65;
	c->entries[0].ecx = 0x444d4163;
	c->entries[c->nent++] = (struct kvm_cpuid_entry2){ .function = 0x80000000,
		.eax = 0x8000000a };
	c->entries[c->nent++] = (struct kvm_cpuid_entry2){ .function = 0x80000001, .ecx = 0x77 };
	c->entries[c->nent++] = (struct kvm_cpuid_entry2){ .function = 0x80000008, .ecx = 0x1001 };
	assert_int_equal(cpuid_normalize(c, 3, 4), 0);
	assert_int_equal(cpuid_apply_smt(c, 3, 4), 0);
	e = cpuid_find(c, 0x8000001e, 0);
	assert_non_null(e);
	assert_int_equal(e->eax, 3);
	assert_int_equal(e->ebx, 1u << 8 | 1); /* 2 threads per core, core 1 */
	assert_int_equal(cpuid_find(c, 0x80000000, 0)->eax, 0x8000001e);
	assert_true(cpuid_find(c, 0x80000001, 0)->ecx & (1u << 22));
	assert_int_equal(cpuid_find(c, 0x80000008, 0)->ecx, 2u << 12 | 3);
	free(c);

	c = table_new();
	assert_int_equal(cpuid_normalize(c, 0, 1), 0);
	assert_int_equal(cpuid_apply_smt(c, 0, 1), 0);
	assert_int_equal(cpuid_find(c, 0xb, 0)->ebx, 1);
	assert_int_equal(cpuid_find(c, 0xb, 1)->eax, 0);
	assert_int_equal(cpuid_apply_smt(c, 0, 3), -EINVAL);
	assert_int_equal(cpuid_apply_smt(c, 2, 2), -EINVAL);
	free(c);
}

static void test_static_check(void **state)
{
	struct kvm_cpuid2 *c = table_new();
	enum cpu_static_template st;
	char err[256];

	(void)state;
	assert_int_equal(cpu_static_parse("T2CL", &st), 0);
	assert_int_equal(st, CPU_STATIC_T2CL);
	assert_string_equal(cpu_static_name(st), "T2CL");
	assert_int_equal(cpu_static_parse("V1N1", &st), -EINVAL);
	assert_int_equal(cpu_static_check(CPU_STATIC_NONE, c, err, sizeof(err)), 0);
	assert_int_equal(cpu_static_check(CPU_STATIC_T2S, c, err, sizeof(err)), 0);
	assert_int_equal(cpu_static_check(CPU_STATIC_T2CL, c, err, sizeof(err)), 0);
	assert_int_equal(cpu_static_check(CPU_STATIC_T2A, c, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "CPU vendor mismatched between actual CPU and CPU template.");
	cpuid_find(c, 1, 0)->eax = FMS_OTHER_INTEL;
	assert_int_equal(cpu_static_check(CPU_STATIC_C3, c, err, sizeof(err)), -EINVAL);
	assert_string_equal(err,
		"The current CPU model is not permitted to apply the CPU "
		"template.");
	free(c);
}

/* Firecracker's static templates as ember builds them in (configs/cpu-templates/): each parses
 * and applies; T2 gives leaf 1 EAX Firecracker's fixed family/model/stepping bits. */
static void test_static_template_data(void **state)
{
	static const char *const names[] = { "C3", "T2", "T2S", "T2CL", "T2A" };
	struct cpu_template *t = malloc(sizeof(*t));
	char path[64], *text = malloc(1 << 16), err[256];

	(void)state;
	assert_non_null(t);
	assert_non_null(text);
	for (unsigned i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		struct kvm_cpuid2 *c = table_new();
		FILE *f;
		size_t n;

		snprintf(path, sizeof(path), "configs/cpu-templates/%s.json", names[i]);
		f = fopen(path, "r");
		assert_non_null(f);
		n = fread(text, 1, (1 << 16) - 1, f);
		fclose(f);
		text[n] = 0;
		if (cpu_template_parse(text, t, err, sizeof(err)))
			fail_msg("%s: %s", names[i], err);
		assert_true(t->nr_cpuid >= 10);
		assert_int_equal(cpu_template_apply_cpuid(t, c, err, sizeof(err)), 0);
		if (i == 1)
			/* 0bxxxx000000000011xx00011011110010 on 0x00050657 */
			assert_int_equal(cpuid_find(c, 1, 0)->eax, 0x000306f2);
		free(c);
	}
	free(text);
	free(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bitmap_full_contracted_and_separated),
		cmocka_unit_test(test_bitmap_refusals),
		cmocka_unit_test(test_numbers),
		cmocka_unit_test(test_parse_good_template),
		cmocka_unit_test(test_parse_refusals),
		cmocka_unit_test(test_parse_limits),
		cmocka_unit_test(test_apply_cpuid_and_msrs),
		cmocka_unit_test(test_smt_topology),
		cmocka_unit_test(test_static_check),
		cmocka_unit_test(test_static_template_data),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
