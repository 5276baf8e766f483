/* seccomp allowlists per thread kind (libseccomp), installed by each thread itself before
 * it touches guest-controlled data: vCPU threads, the device thread (every virtio queue,
 * tap, vsock connection and the MMDS), the virtio-blk I/O worker and the uffd handler
 * watch. The control thread is not filtered, on purpose: it runs the operator's Lua, the
 * REPL and the API, which open files, start processes and make sockets at will; it reads
 * no guest-controlled data but the console's bytes (see ARCHITECTURE.md). */
#include "ember/seccomp.h"

#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <linux/kvm.h>
#include <linux/userfaultfd.h>
#include <seccomp.h>

#include "ember/log.h"
#include "ember/seccomp_file.h"

#define EXIT_BAD_SYSCALL 148

/* A call allowed outright, or only when one argument passes a check: an ioctl's request
 * (ARG_EQ), or memory protections without PROT_EXEC (ARG_CLEAR: no new executable
 * memory on a filtered thread). */
enum arg_check { ARG_ANY, ARG_EQ, ARG_CLEAR };
struct rule {
	int nr;
	enum arg_check check;
	unsigned arg;
	unsigned long value;
	const char *why;
};

#define ALLOW(name, why) \
	{ \
		SCMP_SYS(name), ARG_ANY, 0, 0, why \
	}
#define IOCTL(req, why) \
	{ \
		SCMP_SYS(ioctl), ARG_EQ, 1, req, why \
	}
#define NO_EXEC(name, arg, why) \
	{ \
		SCMP_SYS(name), ARG_CLEAR, arg, PROT_EXEC, why \
	}

struct allowlist {
	const char *name;   /* in a --seccomp-filter file: "vcpu" */
	const char *thread; /* for messages: "a vcpu thread" */
	const struct rule *rules;
	size_t n;
};

#define RULES(a) (a), sizeof(a) / sizeof((a)[0])

/* What every filtered thread needs: locks, logging, and ending the thread or process. */
static const struct rule common_rules[] = {
	ALLOW(write, "log lines, serial output, eventfd interrupts and loop wake-ups"),
	ALLOW(futex, "mutexes and condition variables"),
	ALLOW(rt_sigprocmask, "glibc signal masking around locks and thread exit"),
	ALLOW(clock_gettime, "log timestamps when the vDSO is not used"),
	ALLOW(sched_yield, "lock contention"),
	ALLOW(madvise, "glibc releasing the thread's stack at exit"),
	ALLOW(munmap, "glibc thread exit"),
	ALLOW(exit, "thread exit"),
	ALLOW(exit_group, "process exit after a fatal error (and the SIGSYS report)"),
	ALLOW(restart_syscall, "a wait resumed after SIGSTOP/SIGCONT, Ctrl-Z and fg, ptrace"),
	ALLOW(brk, "heap growth"),
	ALLOW(mremap, "heap growth: realloc of a large block"),
#ifndef __SANITIZE_ADDRESS__
	NO_EXEC(mmap, 2, "heap growth: a large block or a new arena, never executable"),
	NO_EXEC(mprotect, 2, "heap growth inside an arena, never executable"),
#else
	/* The sanitizer runtime maps shadow and report memory from any thread. */
	ALLOW(mmap, "sanitizer runtime"),
	ALLOW(mprotect, "sanitizer runtime"),
	ALLOW(sigaltstack, "sanitizer runtime"),
	ALLOW(prctl, "sanitizer runtime"),
	ALLOW(getrlimit, "sanitizer runtime"),
	ALLOW(prlimit64, "sanitizer runtime"),
	ALLOW(openat, "sanitizer runtime (report)"),
	ALLOW(read, "sanitizer runtime (report)"),
	ALLOW(close, "sanitizer runtime (report)"),
	ALLOW(readlink, "sanitizer runtime (report)"),
	ALLOW(sched_getaffinity, "sanitizer runtime"),
	ALLOW(gettid, "sanitizer runtime"),
	ALLOW(getpid, "sanitizer runtime"),
#endif
};

static const struct rule vcpu_rules[] = {
	IOCTL(KVM_RUN, "vcpu: run the guest"),
	IOCTL(KVM_GET_REGS, "vcpu: registers for an exit report or emulation"),
	IOCTL(KVM_SET_REGS, "vcpu: skip an instruction ember emulated"),
	IOCTL(KVM_GET_SREGS, "vcpu: mode of an instruction ember emulates"),
	IOCTL(KVM_TRANSLATE, "vcpu: guest address of an instruction to emulate"),
	IOCTL(KVM_GET_VCPU_EVENTS, "vcpu: inject an exception (emulation)"),
	IOCTL(KVM_SET_VCPU_EVENTS, "vcpu: inject an exception (emulation)"),
	IOCTL(KVM_GET_XSAVE, "vcpu: MXCSR for an emulated stmxcsr/ldmxcsr"),
	IOCTL(KVM_SET_XSAVE, "vcpu: MXCSR for an emulated ldmxcsr"),
	ALLOW(rt_sigreturn, "return from the kick signal handler"),
	ALLOW(gettid, "logging"),
	ALLOW(getpid, "logging"),
};

/* The worker only executes requests the control thread parsed: the raw-file backend's
 * calls on an fd opened before (block_file.c), and its locked lists. It runs with every
 * signal blocked (blk_worker_new), so no handler ever returns on it. */
static const struct rule block_io_rules[] = {
	ALLOW(preadv, "block: read sectors from the image"),
	ALLOW(pwritev, "block: write sectors to the image"),
	ALLOW(fsync, "block: flush (fsync, as Firecracker), and writes with write-through caching"),
};

/* The watch waits on the handler's socket and a stop eventfd, and unregisters guest
 * memory if the handler goes. Signals blocked as for the block worker. */
static const struct rule uffd_watch_rules[] = {
	ALLOW(poll, "uffd watch: wait for the handler socket or the stop eventfd"),
	ALLOW(ppoll, "uffd watch: poll() where libc implements it with ppoll"),
	ALLOW(recvfrom, "uffd watch: read (and ignore) what the handler sends"),
	IOCTL(UFFDIO_UNREGISTER, "uffd watch: wake faults of a lost handler"),
};

/* The devices' loop (device thread): everything a guest's queues, taps, vsock
 * connections and MMDS requests make ember do. No open, no socket: files and taps are
 * opened on the control thread, and guest-initiated vsock connections take a socket the
 * control thread made in advance (vsock_uds.c). */
static const struct rule device_rules[] = {
	ALLOW(epoll_wait, "devices: the loop waits for kicks, taps, sockets, timers"),
	ALLOW(epoll_pwait, "devices: epoll_wait where libc implements it so"),
	ALLOW(epoll_ctl, "devices: watchers started and stopped"),
	ALLOW(read, "devices: kick eventfds, tap frames, vsock sockets"),
	ALLOW(readv, "devices: tap frames into a chain's buffers"),
	ALLOW(writev, "devices: tap frames from a chain's buffers"),
	ALLOW(recvfrom, "devices: vsock sockets (recv)"),
	ALLOW(sendto, "devices: vsock sockets (send)"),
	ALLOW(accept4, "devices: a host connection to the vsock socket"),
	ALLOW(connect, "devices: a guest connection to a host vsock port (socket made before)"),
	ALLOW(shutdown, "devices: a vsock connection half-closed by the guest"),
	ALLOW(close, "devices: a vsock connection ends"),
	ALLOW(fcntl, "devices: non-blocking flags of accepted sockets"),
	ALLOW(getrandom, "devices: entropy device, MMDS session tokens"),
	ALLOW(fallocate, "devices: balloon pages of a memfd given back (punch hole)"),
	ALLOW(gettid, "logging"),
	ALLOW(getpid, "logging"),
};

static const struct allowlist lists[] = {
	[SECCOMP_DEVICES] = { "devices", "the device thread", RULES(device_rules) },
	[SECCOMP_VCPU] = { "vcpu", "a vcpu thread", RULES(vcpu_rules) },
	[SECCOMP_BLOCK_IO] = { "block_io", "the block I/O thread", RULES(block_io_rules) },
	[SECCOMP_UFFD_WATCH] = { "uffd_watch", "the uffd watch thread", RULES(uffd_watch_rules) },
};
#define NR_KINDS (sizeof(lists) / sizeof(lists[0]))

/* --seccomp-filter FILE, read by seccomp_setup; NULL: the lists above. */
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
	for (size_t k = 0; k < NR_KINDS; k++) {
		scmp_filter_ctx ctx = seccomp_file_filter(custom, lists[k].name, why, sizeof(why));
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

static int add_rules(scmp_filter_ctx ctx, const struct rule *rules, size_t n, char *err,
	size_t errlen)
{
	int ret = 0;

	for (size_t i = 0; !ret && i < n; i++) {
		const struct rule *r = &rules[i];

		if (r->check == ARG_EQ)
			ret = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, r->nr, 1,
				SCMP_CMP(r->arg, SCMP_CMP_EQ, r->value));
		else if (r->check == ARG_CLEAR)
			ret = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, r->nr, 1,
				SCMP_CMP(r->arg, SCMP_CMP_MASKED_EQ, r->value, 0));
		else
			ret = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, r->nr, 0);
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
	if (custom) {
		ctx = seccomp_file_filter(custom, list->name, err, errlen);
		if (!ctx)
			return -ENOMEM;
		ret = 0;
	} else {
		ctx = seccomp_init(SCMP_ACT_TRAP);
		if (!ctx) {
			snprintf(err, errlen, "seccomp: cannot create a filter");
			return -ENOMEM;
		}
		ret = add_rules(ctx, common_rules, sizeof(common_rules) / sizeof(common_rules[0]),
			err, errlen);
		if (!ret)
			ret = add_rules(ctx, list->rules, list->n, err, errlen);
	}
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

	/* Fails closed: a thread that serves the guest never runs unfiltered. */
	if (seccomp_install(kind, err, sizeof(err))) {
		log_err("%s: ember stops", err);
		_exit(EXIT_BAD_SYSCALL);
	}
}
