/* The VM object and its lifecycle: start, pause, resume, stop, and what they report. */
#include "vm_internal.h"

#include "ember/acpi.h"
#include "ember/emulate.h"
#include "ember/layout.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <ev.h>
#include <linux/kvm.h>

#include "ember/arch.h"
#include "ember/bus.h"
#include "ember/config.h"
#include "ember/console.h"
#include "ember/cpu_template.h"
#include "ember/devices.h"
#include "ember/guest_mem.h"
#include "ember/layout.h"
#include "ember/log.h"
#include "ember/vcpu.h"

#define SERIAL_GSI LAYOUT_SERIAL_IRQ
#define I8042_GSI 1
#define INPUT_QUEUE_MAX (64u << 10)

static const char *const state_names[] = { "configured", "running", "paused", "exited" };

const char *vm_state_name(enum vm_state state)
{
	return state <= VM_EXITED ? state_names[state] : "?";
}

const char *vm_exit_reason_name(enum vm_exit_reason reason)
{
	static const char *const names[] = { "none", "poweroff", "stopped", "reset", "error",
		"signal" };
	return (unsigned)reason < sizeof(names) / sizeof(names[0]) ? names[reason] : "?";
}

/* ---- console input (control thread) ---- */

static void feed_input(struct vm *vm)
{
	size_t n = vm->serial ? serial_rx_push(vm->serial, vm->input, vm->input_len) : 0;

	memmove(vm->input, vm->input + n, vm->input_len - n);
	vm->input_len -= n;
	if (vm->input_len && vm->state == VM_RUNNING)
		ev_timer_again(vm->loop, &vm->input_retry);
	else
		ev_timer_stop(vm->loop, &vm->input_retry);
}

static void on_input_retry(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop;
	(void)revents;
	feed_input(w->data);
}

void vm_console_send(struct vm *vm, const uint8_t *buf, size_t len)
{
	uint8_t *p;

	if (len > INPUT_QUEUE_MAX - vm->input_len)
		len = INPUT_QUEUE_MAX - vm->input_len; /* a flood is cut, never buffered without end */
	if (!len)
		return;
	p = realloc(vm->input, vm->input_len + len);
	if (!p)
		return;
	vm->input = p;
	memcpy(vm->input + vm->input_len, buf, len);
	vm->input_len += len;
	feed_input(vm);
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

const char *vm_console_text(struct vm *vm, size_t *len)
{
	if (!vm->console) {
		*len = 0;
		return "";
	}
	return console_text(vm->console, len);
}

void vm_console_consume(struct vm *vm, size_t n)
{
	if (vm->console)
		console_consume(vm->console, n);
}

const char *vm_console_since(struct vm *vm, uint64_t *pos, size_t *len)
{
	return console_text_since(vm->console, pos, len);
}

uint64_t vm_console_dropped(struct vm *vm)
{
	return vm->console ? console_dropped_bytes(vm->console) : 0;
}

uint64_t vm_console_end(const struct vm *vm)
{
	return console_end(vm->console);
}

static void notify_state(struct vm *vm, enum vm_state from)
{
	if (vm->obs && vm->obs->state_changed)
		vm->obs->state_changed(vm, from, vm->obs_opaque);
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

int vm_start(struct vm *vm, char *err, size_t errlen)
{
	struct acpi_mmio_device virtio[VM_MAX_VIRTIO];
	struct arch_boot_source boot = {
		.kernel_path = vm->cfg.kernel, .initrd_path = vm->cfg.initrd,
		.vcpus = vm->cfg.vcpus, .virtio = virtio,
	};
	const struct cpu_model model = { .smt = vm->cfg.smt,
		.static_template = (enum cpu_static_template)vm->cfg.static_template,
		.custom = vm->cfg.cpu_template };
	char cmdline[LAYOUT_CMDLINE_MAX], extra[LAYOUT_CMDLINE_MAX];
	uint64_t entry = 0;
	int ret;

	if (vm->state != VM_CONFIGURED) {
		snprintf(err, errlen, "cannot start: the vm is %s", vm_state_name(vm->state));
		return -EBUSY;
	}
	vm->start_us = log_uptime_us();
	/* The order is the documented one (STYLE.md); vm_teardown() is its reverse. */
	vm->mem_zero_backed = true;
	ret = vm_build_kvm(vm, err, errlen);
	if (!ret)
		ret = vm_build_memory(vm, vm->cfg.mem_backing, NULL, err, errlen);
	if (!ret)
		ret = arch_vm_setup(vm->vm_fd, err, errlen);
	if (!ret)
		ret = vm_build_devices(vm, err, errlen);
	if (!ret) {
		/* The devices' words (root=, virtio_mmio.device=) follow the user's. */
		boot.nr_virtio = vm_virtio_acpi(vm, virtio);
		if (vm_device_cmdline(vm, extra, sizeof(extra)) ||
			(size_t)snprintf(cmdline, sizeof(cmdline), "%s%s",
				vm->cfg.cmdline ? vm->cfg.cmdline : "", extra) >= sizeof(cmdline)) {
			snprintf(err, errlen, "cmdline: too long with the devices' words");
			ret = -E2BIG;
		}
		boot.cmdline = cmdline;
	}
	if (!ret)
		ret = vm_build_vcpus(vm, err, errlen);
	if (!ret) {
		boot.vcpu_fd = vm->vcpus[0].fd;
		ret = arch_boot_load(&vm->mem, &boot, &entry, err, errlen);
	}
	for (unsigned i = 0; !ret && i < vm->nr_vcpus; i++)
		ret = arch_vcpu_setup(vm->kvm_fd, &vm->vcpus[i], vm->nr_vcpus, &model, entry, err,
			errlen);
	if (!ret)
		ret = vm_start_threads(vm, err, errlen);
	if (ret) {
		vm_teardown(vm);
		return ret;
	}
	vm->state = VM_RUNNING;
	console_input_enable(vm->console, true);
	for (unsigned i = 0; i < vm->nr_vcpus; i++)
		vcpu_request(&vm->vcpus[i], VCPU_REQ_RUN);
	notify_state(vm, VM_CONFIGURED);
	return 0;
}

/* ---- lifecycle ---- */

int vm_pause(struct vm *vm, char *err, size_t errlen)
{
	if (vm->state != VM_RUNNING) {
		snprintf(err, errlen, "cannot pause: the vm is %s", vm_state_name(vm->state));
		return -EBUSY;
	}
	for (unsigned i = 0; i < vm->nr_vcpus; i++)
		vcpu_request(&vm->vcpus[i], VCPU_REQ_PARK);
	for (unsigned i = 0; i < vm->nr_vcpus; i++)
		vcpu_wait_parked(&vm->vcpus[i]);
	vm->state = VM_PAUSED;
	notify_state(vm, VM_RUNNING);
	return 0;
}

int vm_resume(struct vm *vm, char *err, size_t errlen)
{
	if (vm->state != VM_PAUSED) {
		snprintf(err, errlen, "cannot resume: the vm is %s", vm_state_name(vm->state));
		return -EBUSY;
	}
	vm->state = VM_RUNNING;
	for (unsigned i = 0; i < vm->nr_vcpus; i++)
		vcpu_request(&vm->vcpus[i], VCPU_REQ_RUN);
	if (vm->input_len)
		feed_input(vm);
	notify_state(vm, VM_PAUSED);
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
	vm->console = console_new(loop, &(struct console_opts){
			.stdio = cfg->console == CONSOLE_STDIO, .log_only = cfg->console_log_only,
			.log_path = cfg->console_log, .limit = &cfg->console_limit },
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

void vm_set_observer(struct vm *vm, const struct vm_observer *obs, void *opaque)
{
	vm->obs = obs;
	vm->obs_opaque = opaque;
}

enum vm_state vm_state(const struct vm *vm)
{
	return vm->state;
}

enum vm_exit_reason vm_exit_reason(const struct vm *vm, const char **detail)
{
	if (detail)
		*detail = vm->exit_detail;
	return vm->state == VM_EXITED ? (enum vm_exit_reason)atomic_load(&vm->exit_reason)
				      : VM_EXIT_NONE;
}

int vm_exit_status(const struct vm *vm)
{
	switch (vm_exit_reason(vm, NULL)) {
	case VM_EXIT_NONE:
	case VM_EXIT_POWEROFF:
	case VM_EXIT_STOPPED:
		return EMBER_EXIT_OK;
	case VM_EXIT_RESET:
		return EMBER_EXIT_RESET;
	case VM_EXIT_SIGNAL:
		return 128 + vm->exit_signal;
	case VM_EXIT_ERROR:
		break;
	}
	return EMBER_EXIT_ERROR;
}

const struct vm_config *vm_config(const struct vm *vm)
{
	return &vm->cfg;
}

const struct guest_mem *vm_memory(const struct vm *vm)
{
	return vm->state == VM_RUNNING || vm->state == VM_PAUSED ? &vm->mem : NULL;
}

int vm_send_ctrl_alt_del(struct vm *vm)
{
	if (vm->state != VM_RUNNING)
		return -EBUSY;
	i8042_send_ctrl_alt_del(vm->i8042);
	return 0;
}

void vm_times(const struct vm *vm, struct vm_times *out)
{
	out->start_us = vm->start_us;
	out->first_run_us = vm->nr_vcpus ? atomic_load(&vm->vcpus[0].first_run_us)
					 : vm->first_run_us;
	out->boot_us = atomic_load(&vm->boot_us);
	out->last_snapshot_us = vm->last_snapshot_us;
	out->last_snapshot_sync_us = vm->last_snapshot_sync_us;
	out->last_snapshot_bytes = vm->last_snapshot_bytes;
	out->restore_us = vm->last_restore_us;
}

