/* seccomp allowlists per thread kind (libseccomp), installed by each thread itself before
 * it touches guest-controlled data: vCPU threads, the virtio-blk I/O worker and the uffd
 * handler watch. The control thread is not filtered, on purpose: it runs the operator's
 * Lua, which opens files, starts processes and makes sockets at will, so no allowlist
 * short of everything would hold for it; the threads that serve the guest are filtered. */
#include "ember/seccomp.h"

#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <linux/kvm.h>
#include <linux/userfaultfd.h>
#include <seccomp.h>

#include "ember/log.h"

#define EXIT_BAD_SYSCALL 148

struct rule {
	int nr;
	unsigned long ioctl; /* for ioctl: the request allowed; 0 for other calls */
	const char *why;
};

struct allowlist {
	const char *thread; /* for messages: "a vcpu thread" */
	const struct rule *rules;
	size_t n;
};

#define RULES(a) (a), sizeof(a) / sizeof((a)[0])

/* What every filtered thread needs: locks, logging, and ending the thread or process. */
static const struct rule common_rules[] = {
	{ SCMP_SYS(write), 0, "log lines, serial output, eventfd interrupts and loop wake-ups" },
	{ SCMP_SYS(futex), 0, "mutexes and condition variables" },
	{ SCMP_SYS(rt_sigprocmask), 0, "glibc signal masking around locks and thread exit" },
	{ SCMP_SYS(clock_gettime), 0, "log timestamps when the vDSO is not used" },
	{ SCMP_SYS(sched_yield), 0, "lock contention" },
	{ SCMP_SYS(madvise), 0, "glibc releasing the thread's stack at exit" },
	{ SCMP_SYS(munmap), 0, "glibc thread exit" },
	{ SCMP_SYS(exit), 0, "thread exit" },
	{ SCMP_SYS(exit_group), 0, "process exit after a fatal error (and the SIGSYS report)" },
#ifdef __SANITIZE_ADDRESS__
	/* The sanitizer runtime maps shadow and report memory from any thread. */
	{ SCMP_SYS(mmap), 0, "sanitizer runtime" },
	{ SCMP_SYS(mprotect), 0, "sanitizer runtime" },
	{ SCMP_SYS(sigaltstack), 0, "sanitizer runtime" },
	{ SCMP_SYS(prctl), 0, "sanitizer runtime" },
	{ SCMP_SYS(getrlimit), 0, "sanitizer runtime" },
	{ SCMP_SYS(prlimit64), 0, "sanitizer runtime" },
	{ SCMP_SYS(openat), 0, "sanitizer runtime (report)" },
	{ SCMP_SYS(read), 0, "sanitizer runtime (report)" },
	{ SCMP_SYS(close), 0, "sanitizer runtime (report)" },
	{ SCMP_SYS(readlink), 0, "sanitizer runtime (report)" },
	{ SCMP_SYS(sched_getaffinity), 0, "sanitizer runtime" },
	{ SCMP_SYS(gettid), 0, "sanitizer runtime" },
	{ SCMP_SYS(getpid), 0, "sanitizer runtime" },
#endif
};

static const struct rule vcpu_rules[] = {
	{ SCMP_SYS(ioctl), KVM_RUN, "vcpu: run the guest" },
	{ SCMP_SYS(ioctl), KVM_GET_REGS, "vcpu: registers for an exit report or emulation" },
	{ SCMP_SYS(ioctl), KVM_SET_REGS, "vcpu: skip an instruction ember emulated" },
	{ SCMP_SYS(ioctl), KVM_GET_SREGS, "vcpu: mode of an instruction ember emulates" },
	{ SCMP_SYS(ioctl), KVM_TRANSLATE, "vcpu: guest address of an instruction to emulate" },
	{ SCMP_SYS(ioctl), KVM_GET_VCPU_EVENTS, "vcpu: inject an exception (emulation)" },
	{ SCMP_SYS(ioctl), KVM_SET_VCPU_EVENTS, "vcpu: inject an exception (emulation)" },
	{ SCMP_SYS(ioctl), KVM_GET_XSAVE, "vcpu: MXCSR for an emulated stmxcsr/ldmxcsr" },
	{ SCMP_SYS(ioctl), KVM_SET_XSAVE, "vcpu: MXCSR for an emulated ldmxcsr" },
	{ SCMP_SYS(rt_sigreturn), 0, "return from the kick signal handler" },
	{ SCMP_SYS(gettid), 0, "logging" },
	{ SCMP_SYS(getpid), 0, "logging" },
};

/* The worker only executes requests the control thread parsed: the raw-file backend's
 * calls on an fd opened before (block_file.c), and its locked lists. It runs with every
 * signal blocked (blk_worker_new), so no handler ever returns on it. */
static const struct rule block_io_rules[] = {
	{ SCMP_SYS(preadv), 0, "block: read sectors from the image" },
	{ SCMP_SYS(pwritev), 0, "block: write sectors to the image" },
	{ SCMP_SYS(fdatasync), 0, "block: flush, and writes with write-through caching" },
};

/* The watch waits on the handler's socket and a stop eventfd, and unregisters guest
 * memory if the handler goes. Signals blocked as for the block worker. */
static const struct rule uffd_watch_rules[] = {
	{ SCMP_SYS(poll), 0, "uffd watch: wait for the handler socket or the stop eventfd" },
	{ SCMP_SYS(ppoll), 0, "uffd watch: poll() where libc implements it with ppoll" },
	{ SCMP_SYS(recvfrom), 0, "uffd watch: read (and ignore) what the handler sends" },
	{ SCMP_SYS(ioctl), UFFDIO_UNREGISTER, "uffd watch: wake faults of a lost handler" },
};

static const struct allowlist lists[] = {
	[SECCOMP_VCPU] = { "a vcpu thread", RULES(vcpu_rules) },
	[SECCOMP_BLOCK_IO] = { "the block I/O thread", RULES(block_io_rules) },
	[SECCOMP_UFFD_WATCH] = { "the uffd watch thread", RULES(uffd_watch_rules) },
};

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
	n = snprintf(msg, sizeof(msg), "ember: forbidden system call %d on %s\n",
		info->si_syscall, thread_name);
	if (n > 0 && write(STDERR_FILENO, msg, (size_t)n) < 0)
		_exit(EXIT_BAD_SYSCALL);
	_exit(EXIT_BAD_SYSCALL);
}

/* --no-seccomp, set once by seccomp_setup before any thread starts. */
static atomic_bool no_seccomp;

int seccomp_setup(const struct seccomp_opts *o, char *err, size_t errlen)
{
	struct sigaction sa;

	atomic_store(&no_seccomp, o->disabled);
	if (o->filter_file) {
		snprintf(err, errlen, "--seccomp-filter: not read yet");
		return -ENOTSUP;
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

static int add_rules(scmp_filter_ctx ctx, const struct rule *rules, size_t n, char *err,
	size_t errlen)
{
	int ret = 0;

	for (size_t i = 0; !ret && i < n; i++) {
		if (rules[i].ioctl)
			ret = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, rules[i].nr, 1,
				SCMP_A1(SCMP_CMP_EQ, rules[i].ioctl));
		else
			ret = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, rules[i].nr, 0);
		if (ret)
			snprintf(err, errlen, "seccomp: rule %zu (%s): %s", i, rules[i].why,
				strerror(-ret));
	}
	return ret;
}

int seccomp_install(enum seccomp_kind kind, char *err, size_t errlen)
{
	const struct allowlist *list;
	scmp_filter_ctx ctx;
	int ret;

	if ((unsigned)kind >= sizeof(lists) / sizeof(lists[0]) || !lists[kind].rules) {
		snprintf(err, errlen, "seccomp: unknown thread kind %d", (int)kind);
		return -EINVAL;
	}
	list = &lists[kind];
	if (disabled())
		return 0;
	ctx = seccomp_init(SCMP_ACT_TRAP);
	if (!ctx) {
		snprintf(err, errlen, "seccomp: cannot create a filter");
		return -ENOMEM;
	}
	ret = add_rules(ctx, common_rules, sizeof(common_rules) / sizeof(common_rules[0]), err,
		errlen);
	if (!ret)
		ret = add_rules(ctx, list->rules, list->n, err, errlen);
	/* libseccomp sets PR_SET_NO_NEW_PRIVS itself (SCMP_FLTATR_CTL_NNP, on by default). */
	if (!ret) {
		ret = seccomp_load(ctx);
		if (ret)
			snprintf(err, errlen, "seccomp: cannot load the filter for %s: %s",
				list->thread, strerror(-ret));
	}
	seccomp_release(ctx);
	if (!ret)
		thread_name = list->thread;
	return ret;
}

void seccomp_install_thread(enum seccomp_kind kind)
{
	char err[160];

	if (seccomp_install(kind, err, sizeof(err)))
		log_err("%s (the thread runs on without a filter)", err);
}
