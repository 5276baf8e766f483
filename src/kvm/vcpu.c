/* vCPU threads: KVM_RUN loop, exit dispatch, park/kick protocol. */
#include "ember/vcpu.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <linux/kvm.h>

#include "ember/bus.h"
#include "ember/log.h"
#include "ember/seccomp.h"
#include "ember/thread.h"

#define KICK_SIGNAL (SIGRTMIN + 0)

static _Thread_local struct kvm_run *current_run;

static void kick_handler(int sig)
{
	(void)sig;
	/* Makes a KVM_RUN that has not started yet return at once. */
	if (current_run)
		current_run->immediate_exit = 1;
}

int vcpu_signal_setup(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = kick_handler;
	sigemptyset(&sa.sa_mask);
	if (sigaction(KICK_SIGNAL, &sa, NULL) < 0)
		return -errno;
	return 0;
}

int vcpu_init(struct vcpu *v, int kvm_fd, int vm_fd, unsigned index, const struct vcpu_env *env,
	char *err, size_t errlen)
{
	int size;

	memset(v, 0, sizeof(*v));
	v->index = index;
	v->env = env;
	v->req = VCPU_REQ_PARK;
	v->state = VCPU_PARKED;
	v->fd = ioctl(vm_fd, KVM_CREATE_VCPU, (unsigned long)index);
	if (v->fd < 0) {
		snprintf(err, errlen, "vcpu %u: KVM_CREATE_VCPU: %s", index, strerror(errno));
		return -errno;
	}
	size = ioctl(kvm_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
	if (size <= 0) {
		snprintf(err, errlen, "vcpu %u: KVM_GET_VCPU_MMAP_SIZE: %s", index,
			strerror(errno));
		goto err_close;
	}
	v->run_size = (size_t)size;
	v->run = mmap(NULL, v->run_size, PROT_READ | PROT_WRITE, MAP_SHARED, v->fd, 0);
	if (v->run == MAP_FAILED) {
		v->run = NULL;
		snprintf(err, errlen, "vcpu %u: mmap kvm_run: %s", index, strerror(errno));
		goto err_close;
	}
	pthread_mutex_init(&v->lock, NULL);
	pthread_cond_init(&v->cond, NULL);
	return 0;
err_close:
	close(v->fd);
	v->fd = -1;
	return -EIO;
}

static void count_exit(struct vcpu *v, enum vcpu_exit_kind kind)
{
	atomic_fetch_add_explicit(&v->exits[kind], 1, memory_order_relaxed);
}

static void handle_io(struct vcpu *v)
{
	struct kvm_run *run = v->run;
	uint8_t *data = (uint8_t *)run + run->io.data_offset;

	count_exit(v, VCPU_EXIT_IO);
	v->io_pending = true;
	for (uint32_t i = 0; i < run->io.count; i++) {
		bus_access(v->env->pio, run->io.port, data, run->io.size,
			run->io.direction == KVM_EXIT_IO_OUT);
		data += run->io.size;
	}
}

static void handle_mmio(struct vcpu *v)
{
	struct kvm_run *run = v->run;
	uint32_t len = run->mmio.len;

	count_exit(v, VCPU_EXIT_MMIO);
	v->io_pending = true;
	if (len > sizeof(run->mmio.data))
		len = sizeof(run->mmio.data);
	bus_access(v->env->mmio, run->mmio.phys_addr, run->mmio.data, len, run->mmio.is_write);
}

/* Serve one exit. Returns false when the VM must end (env->stop already called). */
static bool handle_exit(struct vcpu *v)
{
	struct kvm_run *run = v->run;
	char detail[256];

	switch (run->exit_reason) {
	case KVM_EXIT_IO:
		handle_io(v);
		return true;
	case KVM_EXIT_MMIO:
		handle_mmio(v);
		return true;
	case KVM_EXIT_INTR:
		count_exit(v, VCPU_EXIT_INTR);
		return true;
	case KVM_EXIT_HLT:
		count_exit(v, VCPU_EXIT_HLT);
		return true;
	case KVM_EXIT_SHUTDOWN:
		/* The guest resets itself this way on purpose too (reboot=t), so a warning
		 * with where it happened, not an error: a crash in early boot ends here. */
		v->env->arch_where(v->fd, detail, sizeof(detail),
			snprintf(detail, sizeof(detail), "vcpu %u: triple fault", v->index));
		log_warn("%s", detail);
		v->env->stop(v->env->opaque, VM_EXIT_RESET, detail);
		return false;
	case KVM_EXIT_SYSTEM_EVENT:
		v->env->stop(v->env->opaque,
			run->system_event.type == KVM_SYSTEM_EVENT_RESET ? VM_EXIT_RESET
									 : VM_EXIT_POWEROFF,
			"system event");
		return false;
	case KVM_EXIT_FAIL_ENTRY:
		snprintf(detail, sizeof(detail), "vcpu %u: entry failed, hardware reason 0x%llx",
			v->index,
			(unsigned long long)run->fail_entry.hardware_entry_failure_reason);
		break;
	default:
		count_exit(v, VCPU_EXIT_OTHER);
		detail[0] = 0;
		if (v->env->arch_exit(v, detail, sizeof(detail)))
			return true;
		if (!detail[0])
			snprintf(detail, sizeof(detail), "vcpu %u: unhandled exit reason %u",
				v->index, run->exit_reason);
		break;
	}
	v->env->stop(v->env->opaque, VM_EXIT_ERROR, detail);
	return false;
}

/* KVM finishes an I/O exit only on the next KVM_RUN: it stores what an IN or MMIO read
 * returns, and moves RIP (and RSI, RCX for a string instruction) past an OUT. Before
 * parking, run with immediate_exit set: KVM completes the access and returns at once,
 * so saved registers are those after it (a restored guest would otherwise do the
 * access again). Completing a string instruction may hand over its next batch first:
 * serve it and go on. */
#define SETTLE_MAX 64

static void settle_io(struct vcpu *v)
{
	for (unsigned i = 0; v->io_pending && i < SETTLE_MAX; i++) {
		v->io_pending = false;
		v->run->immediate_exit = 1;
		if (ioctl(v->fd, KVM_RUN, 0) < 0) {
			if (errno != EINTR)
				log_warn("vcpu %u: completing I/O before parking: %s", v->index,
					strerror(errno));
			return;
		}
		if (v->run->exit_reason == KVM_EXIT_IO)
			handle_io(v);
		else if (v->run->exit_reason == KVM_EXIT_MMIO)
			handle_mmio(v);
	}
}

/* Block until there is something to do. Returns false when the thread must end. */
static bool wait_for_run(struct vcpu *v)
{
	bool go;

	pthread_mutex_lock(&v->lock);
	if (v->req != VCPU_REQ_RUN && v->io_pending) {
		pthread_mutex_unlock(&v->lock);
		settle_io(v);
		pthread_mutex_lock(&v->lock);
	}
	while (v->req == VCPU_REQ_PARK) {
		if (v->state != VCPU_PARKED) {
			v->state = VCPU_PARKED;
			pthread_cond_broadcast(&v->cond);
		}
		pthread_cond_wait(&v->cond, &v->lock);
	}
	go = v->req == VCPU_REQ_RUN;
	v->state = go ? VCPU_RUNNING : VCPU_DONE;
	/* Cleared under the lock: a request posted after this sets it again. */
	v->run->immediate_exit = 0;
	if (!go)
		pthread_cond_broadcast(&v->cond);
	pthread_mutex_unlock(&v->lock);
	return go;
}

static void park_self(struct vcpu *v)
{
	pthread_mutex_lock(&v->lock);
	if (v->req == VCPU_REQ_RUN)
		v->req = VCPU_REQ_PARK;
	pthread_mutex_unlock(&v->lock);
}

static void *vcpu_thread(void *arg)
{
	struct vcpu *v = arg;
	char detail[160];

	current_run = v->run;
	/* The filter goes on before the first guest-controlled exit is served. */
	if (seccomp_install(SECCOMP_VCPU, detail, sizeof(detail))) {
		v->env->stop(v->env->opaque, VM_EXIT_ERROR, detail);
		park_self(v);
	}
	while (wait_for_run(v)) {
		uint64_t expected = 0;
		atomic_compare_exchange_strong(&v->first_run_us, &expected, log_uptime_us());
		v->io_pending = false;
		if (ioctl(v->fd, KVM_RUN, 0) < 0) {
			if (errno == EINTR || errno == EAGAIN) {
				count_exit(v, VCPU_EXIT_INTR);
				continue;
			}
			snprintf(detail, sizeof(detail), "vcpu %u: KVM_RUN: %s", v->index,
				strerror(errno));
			v->env->stop(v->env->opaque, VM_EXIT_ERROR, detail);
			park_self(v);
			continue;
		}
		if (!handle_exit(v))
			park_self(v);
	}
	return NULL;
}

int vcpu_start_thread(struct vcpu *v, char *err, size_t errlen)
{
	sigset_t mask;
	int ret;

	/* The thread starts with every signal blocked but the kick: SIGINT/SIGTERM belong
	 * to the control thread's loop. */
	sigfillset(&mask);
	sigdelset(&mask, KICK_SIGNAL);
	sigdelset(&mask, SIGSEGV);
	sigdelset(&mask, SIGBUS);
	sigdelset(&mask, SIGSYS);
	ret = thread_spawn(&v->thread, vcpu_thread, v, &mask);
	if (ret) {
		snprintf(err, errlen, "vcpu %u: cannot start thread: %s", v->index, strerror(ret));
		return -ret;
	}
	v->thread_started = true;
	return 0;
}

void vcpu_request(struct vcpu *v, enum vcpu_request req)
{
	pthread_mutex_lock(&v->lock);
	if (v->state == VCPU_DONE) {
		pthread_mutex_unlock(&v->lock);
		return;
	}
	v->req = req;
	if (req != VCPU_REQ_RUN)
		v->run->immediate_exit = 1;
	pthread_cond_broadcast(&v->cond);
	pthread_mutex_unlock(&v->lock);
	if (req != VCPU_REQ_RUN && v->thread_started)
		pthread_kill(v->thread, KICK_SIGNAL);
}

void vcpu_wait_parked(struct vcpu *v)
{
	pthread_mutex_lock(&v->lock);
	while (v->state == VCPU_RUNNING)
		pthread_cond_wait(&v->cond, &v->lock);
	pthread_mutex_unlock(&v->lock);
}

void vcpu_join(struct vcpu *v)
{
	if (!v->thread_started)
		return;
	vcpu_request(v, VCPU_REQ_EXIT);
	pthread_join(v->thread, NULL);
	v->thread_started = false;
}

void vcpu_deinit(struct vcpu *v)
{
	if (v->run)
		munmap(v->run, v->run_size);
	v->run = NULL;
	if (v->fd >= 0) {
		close(v->fd);
		pthread_mutex_destroy(&v->lock);
		pthread_cond_destroy(&v->cond);
	}
	v->fd = -1;
}
