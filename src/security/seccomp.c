/* seccomp filters per thread kind, installed by each thread itself before it touches
 * guest-controlled data: vCPU threads, the device thread (every virtio queue, tap, vsock
 * connection and the MMDS), the virtio-blk I/O worker and the uffd handler watch. The
 * control thread is not filtered, on purpose: it runs the operator's Lua, the REPL and
 * the API, which open files, start processes and make sockets at will; it reads no
 * guest-controlled data but the console's bytes (see ARCHITECTURE.md). ember's own
 * allowlists (seccomp_rules.c) are compiled to BPF at build time (seccomp_bpf.inc, made by
 * tools/seccomp_bpf_gen.c with libseccomp): compiling one at run time cost a thread's
 * start about as much as the rest of a restore. A --seccomp-filter file is compiled by
 * libseccomp when it is read. */
#include "ember/seccomp.h"

#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <linux/filter.h>
#include <linux/seccomp.h>

#include "ember/log.h"
#include "ember/seccomp_file.h"
#include "ember/seccomp_rules.h"

/* precompiled[kind]: ember's filter for that thread kind, as the build compiled it. */
struct precompiled {
	const struct sock_filter *insns;
	unsigned short len;
};
#include <seccomp_bpf.inc> /* generated into the build tree (Makefile) */

#define EXIT_BAD_SYSCALL 148

/* --seccomp-filter FILE, read by seccomp_setup; NULL: ember's own filters. */
static struct seccomp_file *custom;

/* Which filter the thread runs under, for the SIGSYS report. Initial-exec TLS in the
 * executable: reading it is async-signal-safe. */
static _Thread_local const char *thread_name = "a thread";

static void on_sigsys(int sig, siginfo_t *info, void *ctx)
{
	char msg[96];
	int n;

	(void)sig;
	(void)ctx;
	/* Async-signal-safe: format by hand-sized snprintf into a stack buffer, one write.
	 * A forbidden call means the thread is no longer doing what it was written to do;
	 * ending the process is the point of the filter. */
	n = snprintf(msg, sizeof(msg), "ember: forbidden system call %d on %s\n", info->si_syscall,
		thread_name);
	if (n > 0 && write(STDERR_FILENO, msg, (size_t)n) < 0)
		_exit(EXIT_BAD_SYSCALL);
	_exit(EXIT_BAD_SYSCALL);
}

/* Read a filter file and check that it has a filter for every thread kind, so that a
 * thread never finds its filter missing after the VM started. */
static int load_custom(const char *path, char *err, size_t errlen)
{
	char why[256];

	custom = seccomp_file_load(path, why, sizeof(why)); /* seccomp_setup freed the last */
	if (!custom) {
		snprintf(err, errlen, "--seccomp-filter: %s", why);
		return -EINVAL;
	}
	for (size_t k = 0; k < SECCOMP_NR_KINDS; k++) {
		scmp_filter_ctx ctx = seccomp_file_filter(custom, seccomp_lists[k].name, why,
			sizeof(why));
		if (!ctx) {
			snprintf(err, errlen,
				"--seccomp-filter %s: %s (ember's thread kinds: "
				"devices, vcpu, block_io, uffd_watch)",
				path, why);
			seccomp_file_free(custom);
			custom = NULL;
			return -EINVAL;
		}
		seccomp_release(ctx);
	}
	return 0;
}

/* --no-seccomp, set once by seccomp_setup before any thread starts. */
static atomic_bool no_seccomp;

int seccomp_setup(const struct seccomp_opts *o, char *err, size_t errlen)
{
	struct sigaction sa;

	atomic_store(&no_seccomp, o->disabled);
	seccomp_file_free(custom); /* ember's own lists unless a file is given now */
	custom = NULL;
	if (o->filter_file && !o->disabled) {
		int ret = load_custom(o->filter_file, err, errlen);
		if (ret)
			return ret;
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = on_sigsys;
	sa.sa_flags = SA_SIGINFO;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGSYS, &sa, NULL) < 0) {
		snprintf(err, errlen, "cannot install the SIGSYS handler: %s", strerror(errno));
		return -errno;
	}
	return 0;
}

static bool disabled(void)
{
	static atomic_bool warned; /* threads of several kinds start at once */

	if (!atomic_load(&no_seccomp))
		return false;
	if (!atomic_exchange(&warned, true))
		log_warn("seccomp: --no-seccomp: threads run WITHOUT system call filters");
	return true;
}

/* The build's filter for `kind`, loaded as libseccomp's seccomp_load would: no new
 * privileges first (a filter may not be installed without), no flags. */
static int load_precompiled(enum seccomp_kind kind)
{
	struct sock_fprog prog = { .len = precompiled[kind].len,
		.filter = (struct sock_filter *)precompiled[kind].insns };

	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 ||
		syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) < 0)
		return -errno;
	return 0;
}

/* A --seccomp-filter file's filter for `list`, compiled and loaded by libseccomp (which
 * sets PR_SET_NO_NEW_PRIVS itself: SCMP_FLTATR_CTL_NNP is on by default). */
static int load_custom_filter(const struct seccomp_allowlist *list, char *err, size_t errlen)
{
	scmp_filter_ctx ctx = seccomp_file_filter(custom, list->name, err, errlen);
	int ret;

	if (!ctx)
		return -ENOMEM;
	ret = seccomp_load(ctx);
	seccomp_release(ctx);
	return ret;
}

int seccomp_install(enum seccomp_kind kind, char *err, size_t errlen)
{
	const struct seccomp_allowlist *list;
	int ret;

	if ((unsigned)kind >= SECCOMP_NR_KINDS || !precompiled[kind].insns) {
		snprintf(err, errlen, "seccomp: unknown thread kind %d", (int)kind);
		return -EINVAL;
	}
	list = &seccomp_lists[kind];
	if (disabled())
		return 0;
	err[0] = 0;
	ret = custom ? load_custom_filter(list, err, errlen) : load_precompiled(kind);
	if (ret && !err[0])
		snprintf(err, errlen, "seccomp: cannot load the filter for %s: %s", list->thread,
			strerror(-ret));
	if (!ret)
		thread_name = list->thread;
	return ret;
}

void seccomp_install_thread(enum seccomp_kind kind)
{
	char err[160];

	/* Fails closed: a thread that serves the guest never runs unfiltered. */
	if (seccomp_install(kind, err, sizeof(err))) {
		log_err("%s: ember stops", err);
		_exit(EXIT_BAD_SYSCALL);
	}
}
