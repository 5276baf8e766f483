/* libFuzzer harness for the CPU template parser (PUT /cpu-config bodies, Lua template
 * files) and its application to a CPUID table and MSR values.
 *
 * Build and run (from the repository root), or `make fuzz`:
 *   build/fuzz/fuzz_cpu_template -max_total_time=60 -dict=tests/fuzz/cpu_template.dict \
 *     tests/fuzz/corpus/cpu_template
 *
 * The input, NUL-terminated, is parsed with a small error buffer. A refusal must leave a
 * NUL-terminated message. An acceptance must hold the header's promises: counts within
 * the limits, registers known, each bitmap's value inside its filter (32-bit for CPUID).
 * Applying it to a table with room must succeed, keep every bit outside the filters and
 * give the filtered bits their values; a full table may only refuse with -ENOSPC and be
 * left as it was up to its last entry. Any violation traps. */
#include "ember/cpu_template.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "ember/cpuid.h"
#include "fuzz.h"

#define TABLE_BYTES \
	(sizeof(struct kvm_cpuid2) + CPUID_MAX_ENTRIES * sizeof(struct kvm_cpuid_entry2))

static void check_template(const struct cpu_template *t)
{
	CHECK(t->nr_cpuid <= CPU_TEMPLATE_MAX_CPUID && t->nr_msr <= CPU_TEMPLATE_MAX_MSR &&
		t->nr_caps <= CPU_TEMPLATE_MAX_CAPS);
	for (uint32_t i = 0; i < t->nr_cpuid; i++) {
		CHECK(t->cpuid[i].reg <= CPU_REG_EDX);
		CHECK((t->cpuid[i].bits.filter >> 32) == 0);
		CHECK((t->cpuid[i].bits.value & ~t->cpuid[i].bits.filter) == 0);
	}
	for (uint32_t i = 0; i < t->nr_msr; i++)
		CHECK((t->msr[i].bits.value & ~t->msr[i].bits.filter) == 0);
	for (uint32_t i = 0; i < t->nr_caps; i++)
		CHECK(t->caps[i].remove <= 1);
}

static uint32_t reg(const struct kvm_cpuid_entry2 *e, uint32_t r)
{
	const uint32_t v[4] = { e->eax, e->ebx, e->ecx, e->edx };

	return v[r];
}

/* After application a modifier's filtered bits hold its value unless a later modifier of
 * the same leaf and register (any subleaf: a leaf without a significant index is one
 * entry for all subleaves) may have written them again; those are skipped. */
static void check_applied(const struct cpu_template *t, struct kvm_cpuid2 *c)
{
	for (uint32_t i = 0; i < t->nr_cpuid; i++) {
		const struct cpu_cpuid_mod *m = &t->cpuid[i];
		struct kvm_cpuid_entry2 *e = cpuid_find(c, m->leaf, m->subleaf);
		bool last = true;

		for (uint32_t j = i + 1; j < t->nr_cpuid; j++)
			last &= !(t->cpuid[j].leaf == m->leaf && t->cpuid[j].reg == m->reg);
		CHECK(e != NULL);
		if (last)
			CHECK((reg(e, m->reg) & (uint32_t)m->bits.filter) ==
				(uint32_t)m->bits.value);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct cpu_template t;
	struct kvm_cpuid2 *c, *before;
	uint64_t msr[CPU_TEMPLATE_MAX_MSR];
	char *text, err[48];
	int ret;

	if (size > 1 << 16)
		return 0;
	text = malloc(size + 1);
	c = calloc(1, TABLE_BYTES);
	before = calloc(1, TABLE_BYTES);
	if (!text || !c || !before)
		goto out;
	memcpy(text, data, size);
	text[size] = 0;
	memset(err, 'x', sizeof(err));
	ret = cpu_template_parse(text, &t, err, sizeof(err));
	CHECK(memchr(err, 0, sizeof(err)) != NULL || ret == 0);
	if (ret) {
		CHECK(ret == -EINVAL);
		goto out;
	}
	check_template(&t);

	/* A table with one leaf and room: application succeeds unless it adds too many. */
	c->nent = 1;
	c->entries[0] = (struct kvm_cpuid_entry2){ .function = 0, .eax = 0xd, .ebx = 0x756e6547 };
	ret = cpu_template_apply_cpuid(&t, c, err, sizeof(err));
	CHECK(ret == 0 || ret == -ENOSPC);
	CHECK(c->nent <= CPUID_MAX_ENTRIES);
	if (ret == 0)
		check_applied(&t, c);

	/* A full table: new leaves cannot be added, and nothing outside it is written. */
	memset(before, 0xa5, TABLE_BYTES);
	before->nent = CPUID_MAX_ENTRIES;
	memcpy(c, before, TABLE_BYTES);
	ret = cpu_template_apply_cpuid(&t, c, err, sizeof(err));
	CHECK(ret == 0 || ret == -ENOSPC);
	CHECK(c->nent == CPUID_MAX_ENTRIES);

	for (uint32_t i = 0; i < t.nr_msr; i++)
		msr[i] = 0x5555555555555555ULL;
	cpu_template_apply_msrs(&t, msr);
	for (uint32_t i = 0; i < t.nr_msr; i++) {
		/* Each MSR slot is its own: the filtered bits take the value, the rest stay. */
		CHECK((msr[i] & t.msr[i].bits.filter) == t.msr[i].bits.value);
		CHECK((msr[i] & ~t.msr[i].bits.filter) ==
			(0x5555555555555555ULL & ~t.msr[i].bits.filter));
	}
out:
	free(text);
	free(c);
	free(before);
	return 0;
}
