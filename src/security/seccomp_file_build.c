/* Filter file -> libseccomp context: each rule of a thread added with its filter_action,
 * its 32-bit ("dword") checks rewritten as masked comparisons. */
#include "ember/seccomp_file.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "seccomp_file_internal.h"

#define LOW32 0xffffffffull

/* A dword check compares the low 32 bits of the argument and ignores the upper ones, as
 * seccompiler does: the kernel hands a filter the whole 64-bit register, and glibc
 * sign-extends an int (AT_FDCWD, -1) into it, so a plain 64-bit EQ against 0xffffff9c would
 * miss. libseccomp's SCMP_CMP32 does not help: it only truncates the datum and still
 * compares all 64 bits. So every dword check becomes masked equalities whose masks lie
 * within the low 32 bits: EQ is one, (arg & 0xffffffff) == val; NE holds when any one bit
 * differs (32 alternatives); x > v holds when, at some bit i where v has 0, x has 1 and
 * the bits above i equal v's (one alternative per 0 bit of v); x < v likewise over v's 1
 * bits; x >= v is x > v - 1 and x <= v is x < v + 1. The alternatives become separate
 * rules, which seccomp ORs. */
static struct scmp_arg_cmp masked(unsigned index, uint64_t mask, uint64_t val)
{
	return (struct scmp_arg_cmp){ .arg = index,
		.op = SCMP_CMP_MASKED_EQ,
		.datum_a = mask,
		.datum_b = val };
}

/* Alternatives for "low 32 bits > v" (greater) or "< v" (!greater). */
static unsigned ordered(unsigned index, uint64_t v, int greater, struct scmp_arg_cmp *out)
{
	unsigned n = 0;

	for (unsigned i = 0; i < 32; i++) {
		uint64_t bit = 1ull << i, above = LOW32 & ~(bit - 1);

		if (greater && !(v & bit))
			out[n++] = masked(index, above, (v & above) | bit);
		else if (!greater && (v & bit))
			out[n++] = masked(index, above, v & above & ~bit);
	}
	return n;
}

static unsigned dword_alternatives(const struct sf_cond *c, struct scmp_arg_cmp *out)
{
	uint64_t v = c->val & LOW32;

	switch (c->op) {
	case SF_EQ:
		out[0] = masked(c->index, LOW32, v);
		return 1;
	case SF_MASKED_EQ:
		out[0] = masked(c->index, c->mask & LOW32, v);
		return 1;
	case SF_NE:
		for (unsigned i = 0; i < 32; i++)
			out[i] = masked(c->index, 1ull << i, ~v & (1ull << i));
		return 32;
	case SF_GT:
		return ordered(c->index, v, 1, out);
	case SF_LT:
		return ordered(c->index, v, 0, out);
	case SF_GE:
		if (v == 0) /* always holds: a mask of 0 makes an always-true check */
			break;
		return ordered(c->index, v - 1, 1, out);
	case SF_LE:
		if (v == LOW32)
			break;
		return ordered(c->index, v + 1, 0, out);
	}
	out[0] = masked(c->index, 0, 0);
	return 1;
}

unsigned sf_cond_alternatives(const struct sf_cond *c, struct scmp_arg_cmp out[SF_MAX_ALTS])
{
	static const enum scmp_compare ops[] = {
		[SF_EQ] = SCMP_CMP_EQ,
		[SF_NE] = SCMP_CMP_NE,
		[SF_LT] = SCMP_CMP_LT,
		[SF_LE] = SCMP_CMP_LE,
		[SF_GT] = SCMP_CMP_GT,
		[SF_GE] = SCMP_CMP_GE,
		[SF_MASKED_EQ] = SCMP_CMP_MASKED_EQ,
	};

	if (c->dword)
		return dword_alternatives(c, out);
	out[0] = (struct scmp_arg_cmp){ .arg = c->index,
		.op = ops[c->op],
		.datum_a = c->op == SF_MASKED_EQ ? c->mask : c->val,
		.datum_b = c->val };
	return 1;
}

/* Add rule `r` (number i from 0) as one libseccomp rule per combination of its checks'
 * alternatives; none when a check can never hold. */
static int add_rule(scmp_filter_ctx ctx, const struct sf_thread *t, size_t i, char *err,
	size_t errlen)
{
	const struct sf_rule *r = &t->rules[i];
	struct scmp_arg_cmp alt[SF_MAX_CONDS][SF_MAX_ALTS], args[SF_MAX_CONDS];
	unsigned nalt[SF_MAX_CONDS], pick[SF_MAX_CONDS] = { 0 }, k;
	int ret;

	for (k = 0; k < r->ncond; k++)
		if ((nalt[k] = sf_cond_alternatives(&r->cond[k], alt[k])) == 0)
			return 0;
	for (;;) {
		for (k = 0; k < r->ncond; k++)
			args[k] = alt[k][pick[k]];
		ret = seccomp_rule_add_array(ctx, t->filter_action, r->nr, r->ncond, args);
		if (ret) {
			char *name = seccomp_syscall_resolve_num_arch(SCMP_ARCH_NATIVE, r->nr);

			snprintf(err, errlen,
				"seccomp filter: thread '%s', rule %zu (%s): libseccomp "
				"refuses it: %s",
				t->name, i + 1, name ? name : "?", strerror(-ret));
			free(name);
			return ret;
		}
		/* The next combination, counting with pick[] as digits. */
		for (k = 0; k < r->ncond && ++pick[k] == nalt[k]; k++)
			pick[k] = 0;
		if (k == r->ncond)
			return 0;
	}
}

scmp_filter_ctx seccomp_file_filter(const struct seccomp_file *f, const char *thread, char *err,
	size_t errlen)
{
	const struct sf_thread *t = NULL;
	scmp_filter_ctx ctx;

	for (size_t i = 0; i < f->nthreads && !t; i++)
		if (!strcmp(f->threads[i].name, thread))
			t = &f->threads[i];
	if (!t) {
		snprintf(err, errlen, "seccomp filter: the file has no filter for thread '%s'",
			thread);
		return NULL;
	}
	ctx = seccomp_init(t->default_action);
	if (!ctx) {
		snprintf(err, errlen,
			"seccomp filter: thread '%s': libseccomp cannot make a "
			"filter (out of memory?)",
			t->name);
		return NULL;
	}
	for (size_t i = 0; i < t->nrules; i++)
		if (add_rule(ctx, t, i, err, errlen)) {
			seccomp_release(ctx);
			return NULL;
		}
	return ctx;
}
