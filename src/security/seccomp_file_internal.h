/* Internals of the filter file shared by its parser (seccomp_file.c) and its filter builder
 * (seccomp_file_build.c). Not a module interface: see include/ember/seccomp_file.h. */
#ifndef EMBER_SECCOMP_FILE_INTERNAL_H
#define EMBER_SECCOMP_FILE_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <seccomp.h>

#define SF_NAME_MAX 64 /* a thread name's length */
#define SF_MAX_CONDS 6 /* one check per argument: libseccomp takes no more */
#define SF_MAX_ALTS 32 /* the most masked comparisons one dword check becomes */
/* The most libseccomp rules one rule of the file may become (the product of its checks'
 * alternatives): more would not fit the kernel's 4096 BPF instructions anyway. */
#define SF_MAX_EXPANSION 256

enum sf_op { SF_EQ, SF_NE, SF_LT, SF_LE, SF_GT, SF_GE, SF_MASKED_EQ };

struct sf_cond {
	unsigned index; /* the argument, 0-5 */
	bool dword;     /* compare its low 32 bits only */
	enum sf_op op;
	uint64_t mask; /* SF_MASKED_EQ only */
	uint64_t val;
};

struct sf_rule {
	int nr; /* the system call on the native architecture */
	unsigned ncond;
	struct sf_cond cond[SF_MAX_CONDS];
};

struct sf_thread {
	char name[SF_NAME_MAX + 1];
	uint32_t default_action, filter_action; /* SCMP_ACT_* */
	size_t nrules;
	struct sf_rule *rules;
};

struct seccomp_file {
	size_t nthreads;
	struct sf_thread *threads;
};

/* The JSON layer (seccomp_file_json.c). cJSON keeps numbers as doubles, exact only below
 * 2^53, while a seccomp value or mask may use all 64 bits: so the text of every number is
 * kept too, and each number item's valueint is set to the position of its text. */
struct cJSON;
struct sf_numbers {
	char *text;       /* the document, NUL-terminated */
	const char **num; /* the text of the i-th number, in document order */
	size_t *len;
	size_t n;
};

/* Parse `len` bytes into *root (free with cJSON_Delete) and *nums (sf_numbers_free, also
 * after a failure). 0, or -EINVAL with err beginning with `label`. */
int sf_json_parse(const char *json, size_t len, struct cJSON **root, struct sf_numbers *nums,
	const char *label, char *err, size_t errlen);
void sf_numbers_free(struct sf_numbers *nums);

/* The exact value of number `item` if its text is a plain non-negative integer below 2^64;
 * else -EINVAL. */
int sf_number(const struct sf_numbers *nums, const struct cJSON *item, uint64_t *out);

/* `s` made safe to print in a message: at most 40 characters, anything but printable ASCII
 * shown as '?'. Returns buf. */
const char *sf_shown(const char *s, char *buf, size_t len);

/* Where the parser is, for messages: "thread 'vcpu', rule 3 (ioctl), check 2". */
struct sf_parse {
	const struct sf_numbers *nums;
	const char *label; /* "seccomp filter" or "seccomp filter file PATH" */
	const char *thread;
	size_t rule; /* from 1; 0: not in a rule */
	const char *syscall;
	unsigned check; /* from 1; 0: not in a check */
	char *err;
	size_t errlen;
};

/* Write "LABEL: thread 'T', rule R (NAME), check C: MESSAGE" (as far as p is in) to
 * p->err. Returns -EINVAL. */
__attribute__((format(printf, 2, 3))) int sf_fail(struct sf_parse *p, const char *fmt, ...);

/* Check thread object `o` and fill `t` (its rules allocated; the caller frees them, also
 * after a failure). 0 or -EINVAL through sf_fail. */
int sf_get_thread(struct sf_parse *p, const struct cJSON *o, struct sf_thread *t);

/* The libseccomp comparisons, one of which must hold for `c` to hold: 1 for a qword check,
 * 0 to SF_MAX_ALTS for a dword one (0: it never holds). Written to `out`; returns how many. */
unsigned sf_cond_alternatives(const struct sf_cond *c, struct scmp_arg_cmp out[SF_MAX_ALTS]);

#endif
