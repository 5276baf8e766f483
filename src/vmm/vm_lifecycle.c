/* The VM's lifecycle: made, started (the boot recipe), paused, resumed, stopped, freed;
 * each transition one function, used by the API, Lua and the REPL alike. */
#include "vm_internal.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ev.h>

#include "ember/console.h"
#include "ember/emulate.h"
#include "ember/log.h"
#include "ember/vcpu.h"

static void on_input_retry(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop;
	(void)revents;
	vm_feed_input(w->data);
}

static void on_console_input(void *opaque, const uint8_t *buf, size_t len)
{
	vm_console_send(opaque, buf, len);
}

static void on_console_output(void *opaque)
{
	struct vm *vm = opaque;

	if (vm->obs && vm->obs->console)
		vm->obs->console(vm, vm->obs_opaque);
}

/* Control thread: a vCPU or device asked the VM to end. */
static void finish(struct vm *vm)
{
	enum vm_exit_reason reason = (enum vm_exit_reason)atomic_load(&vm->exit_reason);

	if (vm->state == VM_EXITED || vm->state == VM_CONFIGURED)
		return;
	vm_teardown(vm);
	emulate_log_summary();
	vm->state = VM_EXITED;
	if (reason == VM_EXIT_ERROR)
		log_err("vm: %s", vm->exit_detail);
	else
		log_info("vm: exited (%s%s%s)", vm_exit_reason_name(reason),
			vm->exit_detail[0] ? ": " : "", vm->exit_detail);
	if (vm->obs && vm->obs->exited)
		vm->obs->exited(vm, vm->obs_opaque);
}

static void on_wake(struct ev_loop *loop, ev_async *w, int revents)
{
	struct vm *vm = w->data;

	(void)loop;
	(void)revents;
	if (atomic_exchange(&vm->boot_pending, false)) {
		uint64_t us = atomic_load(&vm->boot_us);
		log_info("guest boot done: %llu.%03llu ms after process start",
			(unsigned long long)(us / 1000), (unsigned long long)(us % 1000));
		if (vm->obs && vm->obs->booted)
			vm->obs->booted(vm, vm->obs_opaque);
	}
	if (atomic_load(&vm->exit_ready))
		finish(vm);
}

static void request_all(struct vm *vm, enum vcpu_request req)
{
	for (unsigned i = 0; i < vm->nr_vcpus; i++)
		vcpu_request(&vm->vcpus[i], req);
}

/* A transition `what` starts only from state `from`: -EBUSY, and why, otherwise. */
static int only_from(const struct vm *vm, enum vm_state from, const char *what, char *err,
	size_t errlen)
{
	if (vm->state == from)
		return 0;
	snprintf(err, errlen, "cannot %s: the vm is %s", what, vm_state_name(vm->state));
	return -EBUSY;
}

int vm_start(struct vm *vm, char *err, size_t errlen)
{
	int ret = only_from(vm, VM_CONFIGURED, "start", err, errlen);

	if (ret)
		return ret;
	vm->start_us = log_uptime_us();
	ret = vm_recipe_boot(vm, err, errlen);
	if (ret) {
		vm_teardown(vm);
		return ret;
	}
	vm->state = VM_RUNNING;
	console_input_enable(vm->console, true);
	request_all(vm, VCPU_REQ_RUN);
	vm_notify_state(vm, VM_CONFIGURED);
	return 0;
}

/* ---- lifecycle ---- */

int vm_pause(struct vm *vm, char *err, size_t errlen)
{
	int ret = only_from(vm, VM_RUNNING, "pause", err, errlen);

	if (ret)
		return ret;
	request_all(vm, VCPU_REQ_PARK);
	for (unsigned i = 0; i < vm->nr_vcpus; i++)
		vcpu_wait_parked(&vm->vcpus[i]);
	vm->state = VM_PAUSED;
	vm_notify_state(vm, VM_RUNNING);
	return 0;
}

int vm_resume(struct vm *vm, char *err, size_t errlen)
{
	int ret = only_from(vm, VM_PAUSED, "resume", err, errlen);

	if (ret)
		return ret;
	vm->state = VM_RUNNING;
	request_all(vm, VCPU_REQ_RUN);
	if (vm->input_len)
		vm_feed_input(vm);
	vm_notify_state(vm, VM_PAUSED);
	return 0;
}

void vm_stop(struct vm *vm, enum vm_exit_reason reason, int signo)
{
	if (vm->state != VM_RUNNING && vm->state != VM_PAUSED)
		return;
	if (reason == VM_EXIT_SIGNAL)
		vm->exit_signal = signo;
	vm_request_exit(vm, reason, reason == VM_EXIT_SIGNAL ? strsignal(signo) : "by request");
	finish(vm);
}

/* ---- object ---- */

struct vm *vm_new(const struct vm_config *cfg, struct ev_loop *loop, char *err, size_t errlen)
{
	struct vm *vm = calloc(1, sizeof(*vm));

	if (!vm || vm_config_copy(&vm->cfg, cfg)) {
		free(vm);
		snprintf(err, errlen, "vm: out of memory");
		return NULL;
	}
	vm->loop = loop;
	vm->state = VM_CONFIGURED;
	vm->kvm_fd = vm->vm_fd = vm->serial_irq_fd = vm->i8042_irq_fd = -1;
	vm->uffd = vm->uffd_sock = -1;
	vm->mem.fd = -1;
	if (dev_thread_init(&vm->devs, err, errlen)) {
		vm_config_deinit(&vm->cfg);
		free(vm);
		return NULL;
	}
	ev_async_init(&vm->wake, on_wake);
	vm->wake.data = vm;
	ev_async_start(loop, &vm->wake);
	ev_init(&vm->input_retry, on_input_retry);
	vm->input_retry.repeat = 0.002;
	vm->input_retry.data = vm;
	vm->console = console_new(loop,
		&(struct console_opts){ .stdio = cfg->console == CONSOLE_STDIO,
			.log_only = cfg->console_log_only,
			.log_path = cfg->console_log,
			.limit = &cfg->console_limit },
		on_console_input, on_console_output, vm, err, errlen);
	if (!vm->console) {
		vm_free(vm);
		return NULL;
	}
	return vm;
}

void vm_free(struct vm *vm)
{
	if (!vm)
		return;
	vm->obs = NULL;
	vm_stop(vm, VM_EXIT_STOPPED, 0);
	vm_teardown(vm);
	dev_thread_deinit(&vm->devs);
	console_free(vm->console);
	ev_async_stop(vm->loop, &vm->wake);
	free(vm->input);
	vm_config_deinit(&vm->cfg);
	free(vm);
}
