/* PUT /cpu-config: a custom CPU template, checked in full and kept for the boot. */
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
	api->boot_path = true;
	resp_ok(r);
}
