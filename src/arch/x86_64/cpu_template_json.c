/* CPU template JSON (Firecracker's custom template schema) into a struct cpu_template,
 * strictly: every key known, every value of its type, every number and bitmap valid. */
#include "ember/cpu_template.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

static int bad(char *err, size_t errlen, const char *path, const char *what)
{
	snprintf(err, errlen, "%s: %s", path, what);
	return -EINVAL;
}

/* Every key of `o` is one of `keys`; the message names the first that is not. */
static int known_keys(const cJSON *o, const char *const *keys, const char *path, char *err,
	size_t errlen)
{
	const cJSON *e;

	if (!cJSON_IsObject(o))
		return bad(err, errlen, path, "expected an object");
	cJSON_ArrayForEach (e, o) {
		unsigned i;

		for (i = 0; keys[i] && strcmp(keys[i], e->string) != 0; i++)
			;
		if (!keys[i]) {
			snprintf(err, errlen, "%s: unknown field `%.64s`", path, e->string);
			return -EINVAL;
		}
	}
	return 0;
}

/* The string member `key` of `o`; NULL (and a message) if missing or not a string. */
static const char *member_str(const cJSON *o, const char *key, const char *path, char *err,
	size_t errlen)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);

	if (!cJSON_IsString(v)) {
		snprintf(err, errlen, "%s.%s: %s", path, key,
			v ? "expected a string" : "missing field");
		return NULL;
	}
	return v->valuestring;
}

static int number_member(const cJSON *o, const char *key, const char *path, uint32_t *out,
	char *err, size_t errlen)
{
	const char *s = member_str(o, key, path, err, errlen);

	if (!s)
		return -EINVAL;
	switch (cpu_number_parse(s, out)) {
	case 0:
		return 0;
	case -EDOM:
		snprintf(err, errlen,
			"%s.%s: No supported number system prefix found in value "
			"[%.40s]. Make sure to prefix the number with '0x' for hexadecimal numbers or "
			"'0b' for binary numbers.",
			path, key, s);
		return -EINVAL;
	default:
		/* Rust's ParseIntError in its Debug form, as Firecracker prints it. */
		snprintf(err, errlen,
			"%s.%s: Failed to parse string [%.40s] as a number for CPU "
			"template - ParseIntError { kind: %s }",
			path, key, s,
			!s[2]                                         ? "Empty"
				: cpu_number_parse(s, out) == -ERANGE ? "PosOverflow"
								      : "InvalidDigit");
		return -EINVAL;
	}
}

static int bitmap_member(const cJSON *o, const char *path, unsigned bits, struct cpu_bitmap *out,
	char *err, size_t errlen)
{
	const char *s = member_str(o, "bitmap", path, err, errlen);
	char why[256];

	if (!s)
		return -EINVAL;
	if (cpu_bitmap_parse(s, bits, out, why, sizeof(why)))
		return bad(err, errlen, path, why);
	return 0;
}

static int parse_caps(const cJSON *a, struct cpu_template *t, char *err, size_t errlen)
{
	const cJSON *e;

	cJSON_ArrayForEach (e, a) {
		const char *s;
		char path[48];

		snprintf(path, sizeof(path), "kvm_capabilities[%u]", t->nr_caps);
		if (!cJSON_IsString(e))
			return bad(err, errlen, path, "expected a string");
		if (t->nr_caps == CPU_TEMPLATE_MAX_CAPS)
			return bad(err, errlen, path, "too many capabilities");
		s = e->valuestring + (e->valuestring[0] == '!');
		/* Decimal only, as Firecracker reads them. */
		if (!*s || strspn(s, "0123456789") != strlen(s) || strlen(s) > 10 ||
			strtoull(s, NULL, 10) > UINT32_MAX) {
			snprintf(err, errlen,
				"Failed to parse string [%.40s] as a kvm capability - can "
				"not convert to numeric: %s",
				e->valuestring,
				!*s ? "cannot parse integer "
				      "from empty string"
					: strspn(s, "0123456789") != strlen(s)
					? "invalid digit found in string"
					: "number too large to fit in target type");
			return -EINVAL;
		}
		t->caps[t->nr_caps].cap = (uint32_t)strtoull(s, NULL, 10);
		t->caps[t->nr_caps++].remove = e->valuestring[0] == '!';
	}
	return 0;
}

static int parse_leaf(const cJSON *l, unsigned li, struct cpu_template *t, char *err, size_t errlen)
{
	static const char *const keys[] = { "leaf", "subleaf", "flags", "modifiers", NULL };
	static const char *const regs[] = { "eax", "ebx", "ecx", "edx" };
	static const char *const mod_keys[] = { "register", "bitmap", NULL };
	const cJSON *flags = cJSON_GetObjectItemCaseSensitive(l, "flags");
	const cJSON *mods = cJSON_GetObjectItemCaseSensitive(l, "modifiers"), *m;
	uint32_t leaf, subleaf;
	char path[48], mpath[80];
	unsigned mi = 0;

	snprintf(path, sizeof(path), "cpuid_modifiers[%u]", li);
	if (known_keys(l, keys, path, err, errlen) ||
		number_member(l, "leaf", path, &leaf, err, errlen) ||
		number_member(l, "subleaf", path, &subleaf, err, errlen))
		return -EINVAL;
	if (flags &&
		(!cJSON_IsNumber(flags) || flags->valuedouble < 0 ||
			flags->valuedouble > UINT32_MAX ||
			flags->valuedouble != (double)(uint32_t)flags->valuedouble))
		return bad(err, errlen, path, "flags: expected a 32-bit unsigned integer");
	if (!cJSON_IsArray(mods))
		return bad(err, errlen, path, "modifiers: expected an array");
	cJSON_ArrayForEach (m, mods) {
		struct cpu_cpuid_mod *c = &t->cpuid[t->nr_cpuid];
		const char *reg;
		unsigned r;

		snprintf(mpath, sizeof(mpath), "%s.modifiers[%u]", path, mi++);
		if (known_keys(m, mod_keys, mpath, err, errlen))
			return -EINVAL;
		reg = member_str(m, "register", mpath, err, errlen);
		if (!reg)
			return -EINVAL;
		for (r = 0; r < 4 && strcmp(reg, regs[r]) != 0; r++)
			;
		if (r == 4)
			return bad(err, errlen, mpath,
				"Invalid CPUID register. Must be one of [eax, "
				"ebx, ecx, edx]");
		if (t->nr_cpuid == CPU_TEMPLATE_MAX_CPUID)
			return bad(err, errlen, mpath, "too many CPUID modifiers");
		if (bitmap_member(m, mpath, 32, &c->bits, err, errlen))
			return -EINVAL;
		c->leaf = leaf;
		c->subleaf = subleaf;
		c->flags = flags ? (uint32_t)flags->valuedouble : 0;
		c->reg = r;
		t->nr_cpuid++;
	}
	return 0;
}

static int parse_msr(const cJSON *o, struct cpu_template *t, char *err, size_t errlen)
{
	static const char *const keys[] = { "addr", "bitmap", NULL };
	struct cpu_msr_mod *m = &t->msr[t->nr_msr];
	char path[48];

	snprintf(path, sizeof(path), "msr_modifiers[%u]", t->nr_msr);
	if (known_keys(o, keys, path, err, errlen) ||
		number_member(o, "addr", path, &m->addr, err, errlen))
		return -EINVAL;
	if (t->nr_msr == CPU_TEMPLATE_MAX_MSR)
		return bad(err, errlen, path, "too many MSR modifiers");
	if (bitmap_member(o, path, 64, &m->bits, err, errlen))
		return -EINVAL;
	t->nr_msr++;
	return 0;
}

int cpu_template_from_json(const cJSON *o, struct cpu_template *t, char *err, size_t errlen)
{
	static const char *const keys[] = { "kvm_capabilities", "cpuid_modifiers", "msr_modifiers",
		NULL };
	const cJSON *caps = cJSON_GetObjectItemCaseSensitive(o, "kvm_capabilities");
	const cJSON *leaves = cJSON_GetObjectItemCaseSensitive(o, "cpuid_modifiers");
	const cJSON *msrs = cJSON_GetObjectItemCaseSensitive(o, "msr_modifiers"), *e;
	unsigned i = 0;

	memset(t, 0, sizeof(*t));
	if (known_keys(o, keys, "CPU template", err, errlen))
		return -EINVAL;
	if ((caps && !cJSON_IsArray(caps)) || (leaves && !cJSON_IsArray(leaves)) ||
		(msrs && !cJSON_IsArray(msrs)))
		return bad(err, errlen, "CPU template",
			"kvm_capabilities, cpuid_modifiers and "
			"msr_modifiers must be arrays");
	if (parse_caps(caps, t, err, errlen))
		return -EINVAL;
	cJSON_ArrayForEach (e, leaves)
		if (parse_leaf(e, i++, t, err, errlen))
			return -EINVAL;
	cJSON_ArrayForEach (e, msrs)
		if (parse_msr(e, t, err, errlen))
			return -EINVAL;
	return 0;
}

int cpu_template_parse(const char *text, struct cpu_template *t, char *err, size_t errlen)
{
	cJSON *o = cJSON_Parse(text);
	int ret;

	if (!o) {
		snprintf(err, errlen, "CPU template: not valid JSON");
		return -EINVAL;
	}
	ret = cpu_template_from_json(o, t, err, errlen);
	cJSON_Delete(o);
	return ret;
}
