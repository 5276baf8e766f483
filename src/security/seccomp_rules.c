/* The seccomp allowlists, one per thread kind, as data with a reason on every entry
 * (seccomp.c says which thread runs under which). The build compiles them to BPF once
 * (tools/seccomp_bpf_gen.c), so a thread installs its filter without libseccomp. */
#include "ember/seccomp_rules.h"

#include <stdio.h>
#include <string.h>
#include <sys/mman.h>

#include <linux/if_tun.h>
#include <linux/kvm.h>
#include <linux/userfaultfd.h>

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

#define RULES(a) (a), sizeof(a) / sizeof((a)[0])

/* What every filtered thread needs: locks, logging, and ending the thread or process. */
static const struct seccomp_rule common_rules[] = {
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

static const struct seccomp_rule vcpu_rules[] = {
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
static const struct seccomp_rule block_io_rules[] = {
	ALLOW(preadv, "block: read sectors from the image"),
	ALLOW(pwritev, "block: write sectors to the image"),
	ALLOW(fsync, "block: flush (fsync, as Firecracker), and writes with write-through caching"),
	ALLOW(msync, "pmem flush worker: a FLUSH makes the mapped backing file durable"),
};

/* The watch waits on the handler's socket and a stop eventfd, and unregisters guest
 * memory if the handler goes. Signals blocked as for the block worker. */
static const struct seccomp_rule uffd_watch_rules[] = {
	ALLOW(poll, "uffd watch: wait for the handler socket or the stop eventfd"),
	ALLOW(ppoll, "uffd watch: poll() where libc implements it with ppoll"),
	ALLOW(recvfrom, "uffd watch: read (and ignore) what the handler sends"),
	IOCTL(UFFDIO_UNREGISTER, "uffd watch: wake faults of a lost handler"),
};

/* The devices' loop (device thread): everything a guest's queues, taps, vsock
 * connections and MMDS requests make ember do. No open, no socket: files and taps are
 * opened on the control thread, and guest-initiated vsock connections take a socket the
 * control thread made in advance (vsock_uds.c). */
static const struct seccomp_rule device_rules[] = {
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
	IOCTL(TUNSETOFFLOAD, "devices: net: the tap told the offloads the driver accepted"),
	IOCTL(KVM_SET_USER_MEMORY_REGION,
		"devices: virtio-mem gives KVM a hotplug slot when a block in it is plugged, "
		"takes it back when the last one is unplugged"),
	ALLOW(io_uring_enter,
		"devices: io_engine Async drives submit to and wait on their "
		"io_uring (set up and registered on the control thread)"),
	ALLOW(gettid, "logging"),
	ALLOW(getpid, "logging"),
};

const struct seccomp_allowlist seccomp_lists[SECCOMP_NR_KINDS] = {
	[SECCOMP_DEVICES] = { "devices", "the device thread", RULES(device_rules) },
	[SECCOMP_VCPU] = { "vcpu", "a vcpu thread", RULES(vcpu_rules) },
	[SECCOMP_BLOCK_IO] = { "block_io", "the block I/O thread", RULES(block_io_rules) },
	[SECCOMP_UFFD_WATCH] = { "uffd_watch", "the uffd watch thread", RULES(uffd_watch_rules) },
};

static int add_rules(scmp_filter_ctx ctx, const struct seccomp_rule *rules, size_t n, char *err,
	size_t errlen)
{
	int ret = 0;

	for (size_t i = 0; !ret && i < n; i++) {
		const struct seccomp_rule *r = &rules[i];

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

int seccomp_rules_add(scmp_filter_ctx ctx, enum seccomp_kind kind, char *err, size_t errlen)
{
	const struct seccomp_allowlist *list = &seccomp_lists[kind];
	int ret = add_rules(ctx, common_rules, sizeof(common_rules) / sizeof(common_rules[0]), err,
		errlen);

	return ret ? ret : add_rules(ctx, list->rules, list->n, err, errlen);
}
