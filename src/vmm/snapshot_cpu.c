/* The CPU_MODEL state file section: smt, the static template and the custom template a
 * VM was built with, so that a restored VM reports them and its next snapshot keeps them.
 * (The CPUID and MSRs themselves are in each vCPU's section.) Optional on restore: older
 * snapshots have none. */
#include "vm_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "ember/cpu_template.h"
#include "ember/snapshot_file.h"

#define CPU_MODEL_VERSION 1

static int put_bitmap(struct snap_writer *w, const struct cpu_bitmap *b)
{
	int ret = snap_put_u64(w, b->filter);

	return ret ? ret : snap_put_u64(w, b->value);
}

static int put_template(struct snap_writer *w, const struct cpu_template *t)
{
	int ret = snap_put_u32(w, t->nr_cpuid);

	for (uint32_t i = 0; !ret && i < t->nr_cpuid; i++) {
		const struct cpu_cpuid_mod *m = &t->cpuid[i];

		ret = snap_put_u32(w, m->leaf);
		if (!ret)
			ret = snap_put_u32(w, m->subleaf);
		if (!ret)
			ret = snap_put_u32(w, m->flags);
		if (!ret)
			ret = snap_put_u32(w, m->reg);
		if (!ret)
			ret = put_bitmap(w, &m->bits);
	}
	if (!ret)
		ret = snap_put_u32(w, t->nr_msr);
	for (uint32_t i = 0; !ret && i < t->nr_msr; i++) {
		ret = snap_put_u32(w, t->msr[i].addr);
		if (!ret)
			ret = put_bitmap(w, &t->msr[i].bits);
	}
	if (!ret)
		ret = snap_put_u32(w, t->nr_caps);
	for (uint32_t i = 0; !ret && i < t->nr_caps; i++) {
		ret = snap_put_u32(w, t->caps[i].cap);
		if (!ret)
			ret = snap_put_u32(w, t->caps[i].remove);
	}
	return ret;
}

int snapshot_save_cpu_model(const struct vm_config *c, struct snap_writer *w)
{
	int ret = snap_section_begin(w, SNAP_SEC_CPU_MODEL, CPU_MODEL_VERSION);

	if (!ret)
		ret = snap_put_u32(w, c->smt);
	if (!ret)
		ret = snap_put_u32(w, c->static_template);
	if (!ret)
		ret = snap_put_u32(w, c->cpu_template != NULL);
	if (!ret && c->cpu_template)
		ret = put_template(w, c->cpu_template);
	return ret ? ret : snap_section_end(w);
}

static int get_bitmap(struct snap_cursor *cur, struct cpu_bitmap *b, unsigned bits)
{
	if (snap_get_u64(cur, &b->filter) || snap_get_u64(cur, &b->value))
		return -EINVAL;
	if ((b->value & ~b->filter) || (bits == 32 && (b->filter >> 32)))
		return -EINVAL;
	return 0;
}

/* Every count within the limits, every register known, every bitmap's value inside its
 * filter: what the template parser promises, checked again on what a file says. */
static int get_template(struct snap_cursor *cur, struct cpu_template *t)
{
	if (snap_get_u32(cur, &t->nr_cpuid) || t->nr_cpuid > CPU_TEMPLATE_MAX_CPUID)
		return -EINVAL;
	for (uint32_t i = 0; i < t->nr_cpuid; i++) {
		struct cpu_cpuid_mod *m = &t->cpuid[i];

		if (snap_get_u32(cur, &m->leaf) || snap_get_u32(cur, &m->subleaf) ||
			snap_get_u32(cur, &m->flags) || snap_get_u32(cur, &m->reg) ||
			m->reg > CPU_REG_EDX || get_bitmap(cur, &m->bits, 32))
			return -EINVAL;
	}
	if (snap_get_u32(cur, &t->nr_msr) || t->nr_msr > CPU_TEMPLATE_MAX_MSR)
		return -EINVAL;
	for (uint32_t i = 0; i < t->nr_msr; i++)
		if (snap_get_u32(cur, &t->msr[i].addr) || get_bitmap(cur, &t->msr[i].bits, 64))
			return -EINVAL;
	if (snap_get_u32(cur, &t->nr_caps) || t->nr_caps > CPU_TEMPLATE_MAX_CAPS)
		return -EINVAL;
	for (uint32_t i = 0; i < t->nr_caps; i++)
		if (snap_get_u32(cur, &t->caps[i].cap) || snap_get_u32(cur, &t->caps[i].remove) ||
			t->caps[i].remove > 1)
			return -EINVAL;
	return 0;
}

int snapshot_load_cpu_model(const struct snap_reader *r, struct vm_config *c, char *err,
	size_t errlen)
{
	struct snap_cursor cur;
	uint32_t smt, st, has_custom;
	struct cpu_template *t = NULL;

	if (snap_reader_find(r, SNAP_SEC_CPU_MODEL, 0, &cur))
		return 0;
	if (cur.version != CPU_MODEL_VERSION) {
		snprintf(err, errlen,
			"state file: cpu model section version %u, this ember reads %d",
			cur.version, CPU_MODEL_VERSION);
		return -EINVAL;
	}
	if (snap_get_u32(&cur, &smt) || snap_get_u32(&cur, &st) ||
		snap_get_u32(&cur, &has_custom) || smt > 1 || st > CPU_STATIC_T2A || has_custom > 1)
		goto err_malformed;
	if (has_custom) {
		t = calloc(1, sizeof(*t));
		if (!t) {
			snprintf(err, errlen, "state file: out of memory");
			return -ENOMEM;
		}
		if (get_template(&cur, t))
			goto err_malformed;
	}
	c->smt = smt;
	c->static_template = st;
	free(c->cpu_template);
	c->cpu_template = t;
	return 0;

err_malformed:
	free(t);
	snprintf(err, errlen, "state file: cpu model section is malformed");
	return -EINVAL;
}
