/* --seccomp-filter FILE: filters in Firecracker's seccompiler JSON format, per thread kind. */
#ifndef EMBER_SECCOMP_FILE_H
#define EMBER_SECCOMP_FILE_H

#include <stddef.h>

#include <seccomp.h>

/* The most a filter file may hold, in bytes. */
#define SECCOMP_FILE_MAX (1u << 20)

/* A checked filter file: for each thread name, the actions and the rules. Immutable once
 * made, so one may be read from any thread. */
struct seccomp_file;

/* Read FILE and check it whole: every thread's actions, every rule's system call name
 * (resolved for this architecture) and every argument check (index 0-5, "dword" or
 * "qword", the operator, the value's range). Unknown keys, a thread or key named twice and
 * anything libseccomp could not express are refused too, so a file accepted here builds
 * filters without error. NULL on failure with err naming the file, the thread, the rule
 * (from 1) and the problem. The caller frees the result with seccomp_file_free. */
__attribute__((warn_unused_result)) struct seccomp_file *seccomp_file_load(const char *path,
	char *err, size_t errlen);

/* seccomp_file_load on `len` bytes of JSON in memory (any bytes; at most
 * SECCOMP_FILE_MAX). */
__attribute__((warn_unused_result)) struct seccomp_file *seccomp_file_parse(const char *json,
	size_t len, char *err, size_t errlen);

/* A new libseccomp context for `thread` (a name in the file: "vcpu", "block_io", ...):
 * seccomp_init(default_action) plus each rule with filter_action, for the native
 * architecture. Not loaded; the caller loads it (seccomp_load) and releases it
 * (seccomp_release). NULL and err if the file has no such thread or libseccomp fails (out
 * of memory). */
__attribute__((warn_unused_result)) scmp_filter_ctx
seccomp_file_filter(const struct seccomp_file *f, const char *thread, char *err, size_t errlen);

/* Free `f`; NULL is a no-op. */
void seccomp_file_free(struct seccomp_file *f);

#endif
