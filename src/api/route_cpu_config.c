/* PUT /cpu-config: a custom CPU template, checked in full and kept for the boot; and its
 * JSON for GET /vm/config. */
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>

#include "ember/cpu_template.h"
#include "json.h"

static const char *const registers[] = { "eax", "ebx", "ecx", "edx", NULL };

static const struct jfield reg_mod_fields[] = {
	JF_ENUM("register", J_REQUIRED, registers),
	JF_STR("bitmap", J_REQUIRED),
	JF_END,
};
static const struct jschema reg_mod = { "CpuidRegisterModifier", reg_mod_fields };

static const struct jfield leaf_fields[] = {
	JF_STR("leaf", J_REQUIRED),
	JF_STR("subleaf", J_REQUIRED),
	JF_U32("flags", J_REQUIRED),
	JF_ARR("modifiers", J_REQUIRED, &reg_mod),
	JF_END,
};
static const struct jschema leaf_mod = { "CpuidLeafModifier", leaf_fields };

static const struct jfield msr_fields[] = {
	JF_STR("addr", J_REQUIRED),
	JF_STR("bitmap", J_REQUIRED),
	JF_END,
};
static const struct jschema msr_mod = { "RegisterModifier", msr_fields };

static const struct jfield template_fields[] = {
	JF_ARR("kvm_capabilities", J_DEFAULT, NULL),
	JF_ARR("cpuid_modifiers", J_DEFAULT, &leaf_mod),
	JF_ARR("msr_modifiers", J_DEFAULT, &msr_mod),
	JF_END,
};
static const struct jschema template_schema = { "CustomCpuTemplate", template_fields };

void api_put_cpu_config(struct api *api, const struct api_call *call, struct api_resp *r)
{
	struct cpu_template *t;
	char err[512];

	/* The schema gives serde's words for types and fields; the template parser checks
	 * numbers, bitmaps and counts. */
	if (json_check(call->body, &template_schema, err, sizeof(err))) {
		resp_bad_body(r, err);
		return;
	}
	if (api_booted(api)) {
		resp_fault(r, 400, MSG_POST_BOOT);
		return;
	}
	t = malloc(sizeof(*t));
	if (!t) {
		resp_fault(r, 500, "Out of memory.");
		return;
	}
	if (cpu_template_from_json(call->body, t, err, sizeof(err))) {
		free(t);
		resp_bad_body(r, err);
		return;
	}
	free(api->cfg.cpu_template);
	api->cfg.cpu_template = t;
	api->cfg.static_template = CPU_STATIC_NONE; /* the custom template replaces it */
	api->boot_path = true;
	resp_ok(r);
}

/* A bitmap in full width, as Firecracker writes one back: 0b, then 0, 1 or x per bit. */
static cJSON *bitmap_json(const struct cpu_bitmap *b, unsigned bits)
{
	char s[2 + 64 + 1] = "0b";

	for (unsigned i = 0; i < bits; i++) {
		unsigned bit = bits - 1 - i;

		s[2 + i] = !(b->filter >> bit & 1) ? 'x' : (b->value >> bit & 1) ? '1' : '0';
	}
	s[2 + bits] = 0;
	return cJSON_CreateString(s);
}

static void add_hex(cJSON *o, const char *key, uint32_t v)
{
	char s[16];

	snprintf(s, sizeof(s), "0x%x", v);
	cJSON_AddStringToObject(o, key, s);
}

/* Modifiers of one leaf and subleaf are grouped, in the order they were given. */
static void add_cpuid_json(cJSON *o, const struct cpu_template *t)
{
	static const char *const regs[] = { "eax", "ebx", "ecx", "edx" };
	cJSON *leaves = cJSON_AddArrayToObject(o, "cpuid_modifiers"), *leaf = NULL, *mods = NULL;

	for (uint32_t i = 0; i < t->nr_cpuid; i++) {
		const struct cpu_cpuid_mod *m = &t->cpuid[i];
		cJSON *mod;

		if (!leaf || m->leaf != t->cpuid[i - 1].leaf ||
			m->subleaf != t->cpuid[i - 1].subleaf) {
			leaf = cJSON_CreateObject();
			cJSON_AddItemToArray(leaves, leaf);
			add_hex(leaf, "leaf", m->leaf);
			add_hex(leaf, "subleaf", m->subleaf);
			cJSON_AddNumberToObject(leaf, "flags", m->flags);
			mods = cJSON_AddArrayToObject(leaf, "modifiers");
		}
		mod = cJSON_CreateObject();
		cJSON_AddStringToObject(mod, "register", regs[m->reg & 3]);
		cJSON_AddItemToObject(mod, "bitmap", bitmap_json(&m->bits, 32));
		cJSON_AddItemToArray(mods, mod);
	}
}

cJSON *api_cpu_config_json(const struct cpu_template *t)
{
	cJSON *o, *caps, *msrs;

	if (!t)
		return cJSON_CreateNull();
	o = cJSON_CreateObject();
	caps = cJSON_AddArrayToObject(o, "kvm_capabilities");
	for (uint32_t i = 0; i < t->nr_caps; i++) {
		char s[16];

		snprintf(s, sizeof(s), "%s%u", t->caps[i].remove ? "!" : "", t->caps[i].cap);
		cJSON_AddItemToArray(caps, cJSON_CreateString(s));
	}
	add_cpuid_json(o, t);
	msrs = cJSON_AddArrayToObject(o, "msr_modifiers");
	for (uint32_t i = 0; i < t->nr_msr; i++) {
		cJSON *m = cJSON_CreateObject();

		add_hex(m, "addr", t->msr[i].addr);
		cJSON_AddItemToObject(m, "bitmap", bitmap_json(&t->msr[i].bits, 64));
		cJSON_AddItemToArray(msrs, m);
	}
	return o;
}
