/* seccomp filters, one allowlist per thread kind, each entry with its reason. */
#ifndef EMBER_SECCOMP_H
#define EMBER_SECCOMP_H

#include <stddef.h>

enum seccomp_kind {
	SECCOMP_VCPU, /* vCPU threads: KVM_RUN, device register handlers, console output */
};

/* Install the filter for `kind` on the calling thread (PR_SET_NO_NEW_PRIVS first). A call
 * outside the list raises SIGSYS: ember reports the system call and exits with 148, as
 * Firecracker does. Skipped, with one warning, when EMBER_NO_SECCOMP=1 (debugging only). */
__attribute__((warn_unused_result)) int seccomp_install(enum seccomp_kind kind, char *err,
	size_t errlen);

/* Install the SIGSYS reporter (once per process, before any filter). */
__attribute__((warn_unused_result)) int seccomp_signal_setup(void);

#endif
