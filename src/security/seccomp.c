/* seccomp allowlists per thread kind (libseccomp), installed by each thread itself before
 * it touches guest-controlled data. The control thread runs the operator's Lua (files,
 * processes, sockets), so it is not filtered; the threads that serve the guest are. */
#include "ember/seccomp.h"

#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <linux/kvm.h>
#include <seccomp.h>

#include "ember/log.h"

#define EXIT_BAD_SYSCALL 148

struct rule {
	int nr;
	unsigned long ioctl; /* for ioctl: the request allowed; 0 for other calls */
	const char *why;
};

static const struct rule vcpu_rules[] = {
	{ SCMP_SYS(ioctl), KVM_RUN, "vcpu: run the guest" },
	{ SCMP_SYS(ioctl), KVM_GET_REGS, "vcpu: registers for an exit report or emulation" },
	{ SCMP_SYS(ioctl), KVM_SET_REGS, "vcpu: skip an instruction ember emulated" },
	{ SCMP_SYS(ioctl), KVM_GET_SREGS, "vcpu: mode of an instruction ember emulates" },
	{ SCMP_SYS(ioctl), KVM_TRANSLATE, "vcpu: guest address of an instruction to emulate" },
	{ SCMP_SYS(ioctl), KVM_GET_VCPU_EVENTS, "vcpu: inject an exception (emulation)" },
	{ SCMP_SYS(ioctl), KVM_SET_VCPU_EVENTS, "vcpu: inject an exception (emulation)" },
	{ SCMP_SYS(write), 0, "serial output, logs, eventfd interrupts and loop wake-ups" },
	{ SCMP_SYS(futex), 0, "device locks, mailbox condition variable" },
	{ SCMP_SYS(rt_sigreturn), 0, "return from the kick signal handler" },
	{ SCMP_SYS(rt_sigprocmask), 0, "glibc signal masking around locks and thread exit" },
	{ SCMP_SYS(clock_gettime), 0, "timestamps when the vDSO is not used" },
	{ SCMP_SYS(gettid), 0, "logging" },
	{ SCMP_SYS(getpid), 0, "logging" },
	{ SCMP_SYS(sched_yield), 0, "lock contention" },
	{ SCMP_SYS(madvise), 0, "glibc releasing the thread's stack at exit" },
	{ SCMP_SYS(munmap), 0, "glibc thread exit" },
	{ SCMP_SYS(exit), 0, "thread exit" },
	{ SCMP_SYS(exit_group), 0, "process exit after a fatal error" },
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
#endif
};

static void on_sigsys(int sig, siginfo_t *info, void *ctx)
{
	char msg[96];
	int n;

	(void)sig;
	(void)ctx;
	/* Async-signal-safe: format by hand-sized snprintf into a stack buffer, one write.
	 * A forbidden call means the thread is no longer doing what it was written to do;
	 * ending the process is the point of the filter. */
	n = snprintf(msg, sizeof(msg), "ember: forbidden system call %d on a vcpu thread\n",
		info->si_syscall);
	if (n > 0 && write(STDERR_FILENO, msg, (size_t)n) < 0)
		_exit(EXIT_BAD_SYSCALL);
	_exit(EXIT_BAD_SYSCALL);
}

int seccomp_signal_setup(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = on_sigsys;
	sa.sa_flags = SA_SIGINFO;
	sigemptyset(&sa.sa_mask);
	return sigaction(SIGSYS, &sa, NULL) < 0 ? -errno : 0;
}

static bool disabled(void)
{
	static bool warned;
	const char *v = getenv("EMBER_NO_SECCOMP");

	if (!v || strcmp(v, "1"))
		return false;
	if (!warned) {
		log_warn("seccomp: EMBER_NO_SECCOMP=1: threads run WITHOUT system call filters");
		warned = true;
	}
	return true;
}

int seccomp_install(enum seccomp_kind kind, char *err, size_t errlen)
{
	const struct rule *rules = vcpu_rules;
	size_t n = sizeof(vcpu_rules) / sizeof(vcpu_rules[0]);
	scmp_filter_ctx ctx;
	int ret = 0;

	(void)kind;
	if (disabled())
		return 0;
	ctx = seccomp_init(SCMP_ACT_TRAP);
	if (!ctx) {
		snprintf(err, errlen, "seccomp: cannot create a filter");
		return -ENOMEM;
	}
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
	/* libseccomp sets PR_SET_NO_NEW_PRIVS itself (SCMP_FLTATR_CTL_NNP, on by default). */
	if (!ret) {
		ret = seccomp_load(ctx);
		if (ret)
			snprintf(err, errlen, "seccomp: cannot load the vcpu filter: %s",
				strerror(-ret));
	}
	seccomp_release(ctx);
	return ret;
}
