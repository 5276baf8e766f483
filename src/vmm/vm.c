/* The VM object itself: its state and what it reports, console input waiting for the
 * serial FIFO, and the request to end (from any thread). Calls nothing else of src/vmm/:
 * the recipes, the build steps and the lifecycle stand on it. */
#include "vm_internal.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ev.h>

#include "ember/console.h"
#include "ember/devices.h"
#include "ember/vcpu.h"

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

void vm_feed_input(struct vm *vm)
{
	size_t n = vm->serial ? serial_rx_push(vm->serial, vm->input, vm->input_len) : 0;

	memmove(vm->input, vm->input + n, vm->input_len - n);
	vm->input_len -= n;
	if (vm->input_len && vm->state == VM_RUNNING)
		ev_timer_again(vm->loop, &vm->input_retry);
	else
		ev_timer_stop(vm->loop, &vm->input_retry);
}

void vm_console_send(struct vm *vm, const uint8_t *buf, size_t len)
{
	uint8_t *p;

	if (len > INPUT_QUEUE_MAX - vm->input_len)
		len = INPUT_QUEUE_MAX -
			vm->input_len; /* a flood is cut, never buffered without end */
	if (!len)
		return;
	p = realloc(vm->input, vm->input_len + len);
	if (!p)
		return;
	vm->input = p;
	memcpy(vm->input + vm->input_len, buf, len);
	vm->input_len += len;
	vm_feed_input(vm);
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

void vm_notify_state(struct vm *vm, enum vm_state from)
{
	if (vm->obs && vm->obs->state_changed)
		vm->obs->state_changed(vm, from, vm->obs_opaque);
}

/* Any thread: a vCPU or device asks the VM to end; the first caller's reason wins. */
void vm_request_exit(struct vm *vm, enum vm_exit_reason reason, const char *detail)
{
	int expected = VM_EXIT_NONE;

	if (atomic_compare_exchange_strong(&vm->exit_reason, &expected, (int)reason)) {
		snprintf(vm->exit_detail, sizeof(vm->exit_detail), "%s", detail ? detail : "");
		atomic_store(&vm->exit_ready, true);
		ev_async_send(vm->loop, &vm->wake);
	}
}

/* ---- what the object reports ---- */

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
