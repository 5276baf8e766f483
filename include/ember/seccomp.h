/* seccomp filters, one allowlist per thread kind, each entry with its reason. */
#ifndef EMBER_SECCOMP_H
#define EMBER_SECCOMP_H

#include <stdbool.h>
#include <stddef.h>

enum seccomp_kind {
	SECCOMP_DEVICES,    /* the device thread: virtio queues, taps, vsock, MMDS, timers */
	SECCOMP_VCPU,       /* vCPU threads: KVM_RUN, device register handlers, console output */
	SECCOMP_BLOCK_IO,   /* the virtio-blk worker: preadv/pwritev/fdatasync on its image */
	SECCOMP_UFFD_WATCH, /* the uffd handler watch: poll, recv, UFFDIO_UNREGISTER */
};
/* The control thread has no kind: it runs the operator's Lua, the REPL and the API
 * (files, processes, sockets) and stays unfiltered; guest data is not handled there. */

/* Install the filter for `kind` on the calling thread (PR_SET_NO_NEW_PRIVS first): the
 * calls every filtered thread needs plus the kind's own. A call outside the list raises
 * SIGSYS: ember reports the system call and the thread kind and exits with 148, as
 * Firecracker does. The thread must have every other signal blocked or handled by
 * handlers whose calls are on its list. Skipped, with one warning, under --no-seccomp. */
__attribute__((warn_unused_result)) int seccomp_install(enum seccomp_kind kind, char *err,
	size_t errlen);

/* seccomp_install for threads that have no one to hand an error to (I/O workers): a
 * failure is logged and ends the process (status 148): no thread that serves the guest
 * runs unfiltered. Calling thread. */
void seccomp_install_thread(enum seccomp_kind kind);

/* The command line's choice (--no-seccomp, --seccomp-filter FILE). */
struct seccomp_opts {
	bool disabled;           /* no filter on any thread (debugging only) */
	const char *filter_file; /* NULL: ember's own filters */
};
/* Install the SIGSYS reporter and take `o` (once per process, before any thread starts
 * and any filter). A filter file is read and checked here, so a bad one stops ember
 * before a VM exists. 0, or -errno and err naming the problem. */
__attribute__((warn_unused_result)) int seccomp_setup(const struct seccomp_opts *o, char *err,
	size_t errlen);

#endif
