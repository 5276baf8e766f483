/* The allowlists of ember's seccomp filters (src/security/seccomp_rules.c), for the
 * runtime (src/security/seccomp.c) and the build-time compiler (tools/seccomp_bpf_gen.c).
 * The rest of ember installs filters through ember/seccomp.h. */
#ifndef EMBER_SECCOMP_RULES_H
#define EMBER_SECCOMP_RULES_H

#include <stddef.h>

#include <seccomp.h>

#include "ember/seccomp.h"

#define SECCOMP_NR_KINDS 4 /* enum seccomp_kind's values */

/* A call allowed outright, or only when one argument passes a check: an ioctl's request
 * (ARG_EQ), or memory protections without PROT_EXEC (ARG_CLEAR: no new executable
 * memory on a filtered thread). */
enum seccomp_arg_check { ARG_ANY, ARG_EQ, ARG_CLEAR };
struct seccomp_rule {
	int nr;
	enum seccomp_arg_check check;
	unsigned arg;
	unsigned long value;
	const char *why;
};

struct seccomp_allowlist {
	const char *name;   /* in a --seccomp-filter file: "vcpu" */
	const char *thread; /* for messages: "a vcpu thread" */
	const struct seccomp_rule *rules;
	size_t n;
};

extern const struct seccomp_allowlist seccomp_lists[SECCOMP_NR_KINDS];

/* Add what every filtered thread needs and `kind`'s own list to ctx: 0, or libseccomp's
 * -errno with err naming the rule. */
int seccomp_rules_add(scmp_filter_ctx ctx, enum seccomp_kind kind, char *err, size_t errlen);

#endif
