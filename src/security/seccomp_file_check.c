/* Checking one thread's filter in a filter file: its actions, its rules and their argument
 * checks, each turned into the form seccomp_file_build.c adds to libseccomp. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "seccomp_file_internal.h"

int sf_fail(struct sf_parse *p, const char *fmt, ...)
{
	char msg[256], thread[80] = "", rule[80] = "", check[24] = "", name[48];
	va_list ap;

	if (p->thread)
		snprintf(thread, sizeof(thread), "thread '%s'", p->thread);
	if (p->rule)
		snprintf(rule, sizeof(rule), ", rule %zu%s%s%s", p->rule, p->syscall ? " (" : "",
			p->syscall ? sf_shown(p->syscall, name, sizeof(name)) : "",
			p->syscall ? ")" : "");
	if (p->check)
		snprintf(check, sizeof(check), ", check %u", p->check);
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	snprintf(p->err, p->errlen, "%s: %s%s%s%s%s", p->label, thread, rule, check,
		p->thread ? ": " : "", msg);
	return -EINVAL;
}

/* Refuse keys outside `keys` and keys given twice (cJSON would silently take the first);
 * `required` of them (a bit each) must be present. */
static int check_keys(struct sf_parse *p, const cJSON *obj, const char *what,
	const char *const *keys, unsigned nkeys, unsigned required)
{
	unsigned seen = 0;
	char name[48];
	const cJSON *c;

	if (!cJSON_IsObject(obj))
		return sf_fail(p, "%s is not an object", what);
	cJSON_ArrayForEach (c, obj) {
		unsigned k = 0;

		while (k < nkeys && strcmp(c->string, keys[k]))
			k++;
		if (k == nkeys)
			return sf_fail(p, "unknown key '%s' in %s",
				sf_shown(c->string, name, sizeof(name)), what);
		if (seen & (1u << k))
			return sf_fail(p, "key '%s' given twice in %s", keys[k], what);
		seen |= 1u << k;
	}
	for (unsigned k = 0; k < nkeys; k++)
		if ((required & (1u << k)) && !(seen & (1u << k)))
			return sf_fail(p, "%s has no '%s'", what, keys[k]);
	return 0;
}

static int get_uint(struct sf_parse *p, const cJSON *item, const char *what, uint64_t max,
	uint64_t *out)
{
	if (!cJSON_IsNumber(item) || sf_number(p->nums, item, out) || *out > max)
		return sf_fail(p, "%s is not an integer from 0 to %llu", what,
			(unsigned long long)max);
	return 0;
}

static int get_action(struct sf_parse *p, const cJSON *a, const char *what, uint32_t *out)
{
	static const struct {
		const char *name;
		uint32_t action;
	} simple[] = {
		{ "allow", SCMP_ACT_ALLOW },
		{ "trap", SCMP_ACT_TRAP },
		{ "kill_thread", SCMP_ACT_KILL_THREAD },
		{ "kill_process", SCMP_ACT_KILL_PROCESS },
		{ "log", SCMP_ACT_LOG },
	};
	const cJSON *c = a ? a->child : NULL;
	uint64_t n;
	char name[48], data[48];

	for (size_t i = 0; cJSON_IsString(a) && i < sizeof(simple) / sizeof(simple[0]); i++)
		if (!strcmp(a->valuestring, simple[i].name)) {
			*out = simple[i].action;
			return 0;
		}
	/* {"errno": N} returns -N from the call (at most MAX_ERRNO, as the kernel caps it);
	 * {"trace": N} hands N to a ptrace tracer (16 bits of SECCOMP_RET_DATA). */
	snprintf(data, sizeof(data), "%s %s", what, c && c->string ? c->string : "");
	if (cJSON_IsObject(a) && c && !c->next && !strcmp(c->string, "errno")) {
		if (get_uint(p, c, data, 4095, &n))
			return -EINVAL;
		*out = SCMP_ACT_ERRNO((uint32_t)n);
		return 0;
	}
	if (cJSON_IsObject(a) && c && !c->next && !strcmp(c->string, "trace")) {
		if (get_uint(p, c, data, 0xffff, &n))
			return -EINVAL;
		*out = SCMP_ACT_TRACE((uint32_t)n);
		return 0;
	}
	return sf_fail(p,
		"%s: unknown action%s%s%s (allow, trap, kill_thread, kill_process, log, "
		"{\"errno\": N} or {\"trace\": N})",
		what, cJSON_IsString(a) ? " '" : "",
		cJSON_IsString(a) ? sf_shown(a->valuestring, name, sizeof(name)) : "",
		cJSON_IsString(a) ? "'" : "");
}

static int get_op(struct sf_parse *p, const cJSON *op, struct sf_cond *c)
{
	static const char *const names[] = {
		[SF_EQ] = "eq",
		[SF_NE] = "ne",
		[SF_LT] = "lt",
		[SF_LE] = "le",
		[SF_GT] = "gt",
		[SF_GE] = "ge",
	};
	const cJSON *m = op ? op->child : NULL;

	for (unsigned i = 0; cJSON_IsString(op) && i < sizeof(names) / sizeof(names[0]); i++)
		if (!strcmp(op->valuestring, names[i])) {
			c->op = (enum sf_op)i;
			return 0;
		}
	if (cJSON_IsObject(op) && m && !m->next && !strcmp(m->string, "masked_eq")) {
		c->op = SF_MASKED_EQ;
		return get_uint(p, m, "masked_eq mask", c->dword ? 0xffffffffu : UINT64_MAX,
			&c->mask);
	}
	return sf_fail(p, "unknown op (eq, ne, lt, le, gt, ge or {\"masked_eq\": MASK})");
}

static int get_cond(struct sf_parse *p, const cJSON *a, struct sf_rule *r)
{
	static const char *const keys[] = { "index", "type", "op", "val", "comment" };
	const cJSON *type = cJSON_GetObjectItemCaseSensitive(a, "type");
	const cJSON *comment = cJSON_GetObjectItemCaseSensitive(a, "comment");
	struct sf_cond *c = &r->cond[r->ncond];
	uint64_t index;

	if (check_keys(p, a, "the check", keys, 5, 0xf))
		return -EINVAL;
	if (get_uint(p, cJSON_GetObjectItemCaseSensitive(a, "index"), "index", 5, &index))
		return -EINVAL;
	for (unsigned k = 0; k < r->ncond; k++)
		if (r->cond[k].index == index)
			return sf_fail(p,
				"argument %u is checked twice (libseccomp takes one check "
				"per argument in a rule)",
				(unsigned)index);
	if (!cJSON_IsString(type) ||
		(strcmp(type->valuestring, "dword") && strcmp(type->valuestring, "qword")))
		return sf_fail(p, "type is not \"dword\" or \"qword\"");
	if (comment && !cJSON_IsString(comment))
		return sf_fail(p, "comment is not a string");
	c->index = (unsigned)index;
	c->dword = !strcmp(type->valuestring, "dword");
	if (get_op(p, cJSON_GetObjectItemCaseSensitive(a, "op"), c) ||
		get_uint(p, cJSON_GetObjectItemCaseSensitive(a, "val"),
			c->dword ? "dword val" : "val", c->dword ? 0xffffffffu : UINT64_MAX,
			&c->val))
		return -EINVAL;
	r->ncond++;
	return 0;
}

static int get_rule(struct sf_parse *p, const cJSON *o, struct sf_rule *r)
{
	static const char *const keys[] = { "syscall", "comment", "args" };
	const cJSON *name = cJSON_GetObjectItemCaseSensitive(o, "syscall");
	const cJSON *comment = cJSON_GetObjectItemCaseSensitive(o, "comment");
	const cJSON *args = cJSON_GetObjectItemCaseSensitive(o, "args"), *a;
	struct scmp_arg_cmp scratch[SF_MAX_ALTS];
	unsigned long expansion = 1;
	char shown[48];

	if (check_keys(p, o, "the rule", keys, 3, 0x1))
		return -EINVAL;
	if (!cJSON_IsString(name))
		return sf_fail(p, "syscall is not a string");
	/* Negative numbers below -1 are libseccomp's pseudo calls, absent on this arch. */
	r->nr = seccomp_syscall_resolve_name(name->valuestring);
	if (r->nr < 0)
		return sf_fail(p, "unknown system call '%s' on this architecture",
			sf_shown(name->valuestring, shown, sizeof(shown)));
	p->syscall = name->valuestring;
	if (comment && !cJSON_IsString(comment))
		return sf_fail(p, "comment is not a string");
	if (args && !cJSON_IsArray(args))
		return sf_fail(p, "args is not an array");
	cJSON_ArrayForEach (a, args) {
		p->check = r->ncond + 1;
		if (r->ncond == SF_MAX_CONDS)
			return sf_fail(p, "more than %d checks (one per argument)", SF_MAX_CONDS);
		if (get_cond(p, a, r))
			return -EINVAL;
		expansion *= sf_cond_alternatives(&r->cond[r->ncond - 1], scratch);
		if (expansion > SF_MAX_EXPANSION)
			return sf_fail(p,
				"its dword checks need more than %d libseccomp rules; check "
				"fewer arguments with ne, lt, le, gt or ge",
				SF_MAX_EXPANSION);
	}
	p->check = 0;
	return 0;
}

int sf_get_thread(struct sf_parse *p, const cJSON *o, struct sf_thread *t)
{
	static const char *const keys[] = { "default_action", "filter_action", "filter" };
	const cJSON *filter = cJSON_GetObjectItemCaseSensitive(o, "filter"), *r;

	if (check_keys(p, o, "the thread's filter", keys, 3, 0x7) ||
		get_action(p, cJSON_GetObjectItemCaseSensitive(o, "default_action"),
			"default_action", &t->default_action) ||
		get_action(p, cJSON_GetObjectItemCaseSensitive(o, "filter_action"), "filter_action",
			&t->filter_action))
		return -EINVAL;
	/* libseccomp refuses a rule whose action is the default: it would do nothing. */
	if (t->default_action == t->filter_action)
		return sf_fail(p, "filter_action is the same as default_action");
	if (!cJSON_IsArray(filter))
		return sf_fail(p, "filter is not an array");
	t->rules = calloc((size_t)cJSON_GetArraySize(filter) + 1, sizeof(*t->rules));
	if (!t->rules)
		return sf_fail(p, "out of memory");
	cJSON_ArrayForEach (r, filter) {
		p->rule = t->nrules + 1;
		p->syscall = NULL;
		if (get_rule(p, r, &t->rules[t->nrules]))
			return -EINVAL;
		t->nrules++;
	}
	p->rule = 0;
	return 0;
}
