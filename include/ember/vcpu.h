/* vCPU threads: one KVM_RUN loop per vCPU, parked and woken through a mailbox.
 *
 * Thread rules: vcpu_init, vcpu_start_thread, vcpu_request, vcpu_wait_parked, vcpu_join
 * and vcpu_deinit are called on the control thread only. The vCPU thread touches its
 * kvm_run, the buses (device handlers under their locks) and calls env->stop(); nothing
 * else. */
#ifndef EMBER_VCPU_H
#define EMBER_VCPU_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ember/vm_exit.h"

struct bus;
struct guest_mem;
struct kvm_run;
struct vcpu;

enum vcpu_state { VCPU_PARKED, VCPU_RUNNING, VCPU_DONE };
enum vcpu_request { VCPU_REQ_PARK, VCPU_REQ_RUN, VCPU_REQ_EXIT };

enum vcpu_exit_kind {
	VCPU_EXIT_IO,
	VCPU_EXIT_MMIO,
	VCPU_EXIT_INTR,
	VCPU_EXIT_HLT,
	VCPU_EXIT_OTHER,
	VCPU_EXIT_KINDS
};

/* "io", "mmio", "intr", "hlt", "other" ("?" out of range): the name Lua's vm:exits() and
 * the metrics ("exit_" and the name) give a kind of exit. Inline so that the metrics,
 * which count exits without running vCPUs, need not link the vCPU code. (A VM's own end
 * is another enum, named by vm_exit_reason_name in vm_exit.h.) */
static inline const char *vcpu_exit_kind_name(enum vcpu_exit_kind kind)
{
	static const char *const names[VCPU_EXIT_KINDS] = { "io", "mmio", "intr", "hlt", "other" };

	return (unsigned)kind < VCPU_EXIT_KINDS ? names[kind] : "?";
}

/* What a vCPU thread may reach. `stop` is called on the vCPU thread when the guest ends
 * the VM (power off, reset) or the vCPU fails; it must not block. `arch_exit` and
 * `arch_where` are the architecture's exit handling (arch_vcpu_exit, arch_vcpu_where in
 * ember/arch.h), handed down by the VM so that this floor calls nothing above it. */
struct vcpu_env {
	const struct bus *pio;
	const struct bus *mmio;
	const struct guest_mem *mem; /* read only: instructions the VMM must emulate */
	void (*stop)(void *opaque, enum vm_exit_reason reason, const char *detail);
	void *opaque;
	bool (*arch_exit)(struct vcpu *v, char *detail, size_t len);
	void (*arch_where)(int vcpu_fd, char *out, size_t len, int used);
};

struct vcpu {
	unsigned index;
	int fd;
	struct kvm_run *run;
	size_t run_size;
	const struct vcpu_env *env;
	pthread_t thread;
	bool thread_started;
	pthread_mutex_t lock; /* guards req and state */
	pthread_cond_t cond;
	enum vcpu_request req;
	enum vcpu_state state;
	bool io_pending; /* vCPU thread only: the last exit was PIO/MMIO, not yet completed */
	_Atomic uint64_t exits[VCPU_EXIT_KINDS];
	_Atomic uint64_t first_run_us; /* log_uptime_us() at the first KVM_RUN, 0 before */
};

/* Install the kick signal handler (once per process). */
__attribute__((warn_unused_result)) int vcpu_signal_setup(void);

/* Create vCPU `index` on `vm_fd`; mmap its kvm_run. */
__attribute__((warn_unused_result)) int vcpu_init(struct vcpu *v, int kvm_fd, int vm_fd,
	unsigned index, const struct vcpu_env *env, char *err, size_t errlen);

/* Start the thread; it parks until vcpu_request(RUN). */
__attribute__((warn_unused_result)) int vcpu_start_thread(struct vcpu *v, char *err, size_t errlen);

/* Post a request and kick the vCPU out of KVM_RUN. */
void vcpu_request(struct vcpu *v, enum vcpu_request req);

/* Wait until the vCPU has parked (or ended). */
void vcpu_wait_parked(struct vcpu *v);

/* Ask the thread to end and join it. Safe if the thread never started. */
void vcpu_join(struct vcpu *v);

/* Unmap kvm_run, close the fd. After vcpu_join. */
void vcpu_deinit(struct vcpu *v);

#endif
