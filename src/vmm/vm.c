/* The VM object: building the machine in order, the lifecycle, and teardown in reverse. */
#include "ember/vm.h"

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
#include "ember/devices.h"
#include "ember/guest_mem.h"
#include "ember/layout.h"
#include "ember/log.h"
#include "ember/vcpu.h"

#define SERIAL_GSI LAYOUT_SERIAL_IRQ
#define I8042_GSI 1
#define INPUT_QUEUE_MAX (64u << 10)

struct vm {
	struct vm_config cfg;
	enum vm_state state;
	struct ev_loop *loop;
	const struct vm_observer *obs;
	void *obs_opaque;

	/* Built by vm_start, released by teardown. */
	int kvm_fd, vm_fd;
	struct guest_mem mem;
	struct bus pio, mmio;
	struct vcpu_env env;
	struct vcpu *vcpus;
	unsigned nr_vcpus; /* vCPUs initialised */
	int serial_irq_fd, i8042_irq_fd;
	struct serial *serial;
	struct i8042 *i8042;
	struct boot_timer *boot_timer;
	struct sleep_ctl *sleep_ctl;
	struct console *console;

	/* vCPU threads -> control thread. */
	ev_async wake;
	_Atomic int exit_reason;
	char exit_detail[256]; /* written once, by whoever set exit_reason */
	_Atomic bool exit_ready; /* exit_detail is complete */
	int exit_signal;
	_Atomic uint64_t boot_us;
	_Atomic bool boot_pending;

	/* Console input waiting for room in the serial FIFO. */
	uint8_t *input;
	size_t input_len;
	ev_timer input_retry;

	uint64_t start_us;
	uint64_t first_run_us; /* kept from vCPU 0 when the vCPUs are torn down */
};

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

/* ---- events from vCPU threads (any thread) ---- */

static void request_exit(struct vm *vm, enum vm_exit_reason reason, const char *detail)
{
	int expected = VM_EXIT_NONE;

	if (atomic_compare_exchange_strong(&vm->exit_reason, &expected, (int)reason)) {
		snprintf(vm->exit_detail, sizeof(vm->exit_detail), "%s", detail ? detail : "");
		atomic_store(&vm->exit_ready, true);
		ev_async_send(vm->loop, &vm->wake);
	}
}

static void vcpu_stop(void *opaque, enum vm_exit_reason reason, const char *detail)
{
	request_exit(opaque, reason, detail);
}

static void on_reset(void *opaque)
{
	request_exit(opaque, VM_EXIT_RESET, "i8042 reset");
}

static void on_sleep(void *opaque, enum vm_exit_reason reason)
{
	request_exit(opaque, reason, "ACPI S5");
}

static void on_boot_timer(void *opaque)
{
	struct vm *vm = opaque;
	uint64_t expected = 0;

	if (atomic_compare_exchange_strong(&vm->boot_us, &expected, log_uptime_us())) {
		atomic_store(&vm->boot_pending, true);
		ev_async_send(vm->loop, &vm->wake);
	}
}

static void on_serial_out(void *opaque, const uint8_t *buf, size_t len)
{
	struct vm *vm = opaque;

	if (vm->console)
		console_output(vm->console, buf, len);
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

/* ---- teardown, in the exact reverse of the build ---- */

static void teardown(struct vm *vm)
{
	if (vm->nr_vcpus)
		vm->first_run_us = atomic_load(&vm->vcpus[0].first_run_us);
	for (unsigned i = 0; i < vm->nr_vcpus; i++)
		vcpu_join(&vm->vcpus[i]);
	for (unsigned i = 0; i < vm->nr_vcpus; i++)
		vcpu_deinit(&vm->vcpus[i]);
	free(vm->vcpus);
	vm->vcpus = NULL;
	vm->nr_vcpus = 0;
	if (vm->console)
		console_input_enable(vm->console, false);
	ev_timer_stop(vm->loop, &vm->input_retry);
	sleep_ctl_free(vm->sleep_ctl);
	boot_timer_free(vm->boot_timer);
	i8042_free(vm->i8042);
	serial_free(vm->serial);
	vm->sleep_ctl = NULL;
	vm->boot_timer = NULL;
	vm->i8042 = NULL;
	vm->serial = NULL;
	if (vm->i8042_irq_fd >= 0)
		close(vm->i8042_irq_fd);
	if (vm->serial_irq_fd >= 0)
		close(vm->serial_irq_fd);
	vm->i8042_irq_fd = vm->serial_irq_fd = -1;
	memset(&vm->pio, 0, sizeof(vm->pio));
	memset(&vm->mmio, 0, sizeof(vm->mmio));
	guest_mem_unmap(&vm->mem);
	if (vm->vm_fd >= 0)
		close(vm->vm_fd);
	if (vm->kvm_fd >= 0)
		close(vm->kvm_fd);
	vm->vm_fd = vm->kvm_fd = -1;
}

/* Control thread: a vCPU or device asked the VM to end. */
static void finish(struct vm *vm)
{
	enum vm_exit_reason reason = (enum vm_exit_reason)atomic_load(&vm->exit_reason);

	if (vm->state == VM_EXITED || vm->state == VM_CONFIGURED)
		return;
	teardown(vm);
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

/* ---- build ---- */

static int open_kvm(struct vm *vm, char *err, size_t errlen)
{
	int version;

	vm->kvm_fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (vm->kvm_fd < 0) {
		snprintf(err, errlen, "/dev/kvm: %s", strerror(errno));
		return -errno;
	}
	version = ioctl(vm->kvm_fd, KVM_GET_API_VERSION, 0);
	if (version != KVM_API_VERSION) {
		snprintf(err, errlen, "/dev/kvm: API version %d, ember needs %d", version,
			KVM_API_VERSION);
		return -ENOTSUP;
	}
	vm->vm_fd = ioctl(vm->kvm_fd, KVM_CREATE_VM, 0);
	if (vm->vm_fd < 0) {
		snprintf(err, errlen, "KVM_CREATE_VM: %s", strerror(errno));
		return -errno;
	}
	return 0;
}

static int build_memory(struct vm *vm, char *err, size_t errlen)
{
	int ret = guest_mem_map(&vm->mem, vm->cfg.mem_mib << 20, vm->cfg.mem_backing, NULL, err,
		errlen);

	if (ret)
		return ret;
	for (unsigned i = 0; i < vm->mem.nr_regions; i++) {
		const struct guest_mem_region *r = &vm->mem.regions[i];
		struct kvm_userspace_memory_region slot = {
			.slot = i, .guest_phys_addr = r->gpa, .memory_size = r->size,
			.userspace_addr = (uint64_t)(uintptr_t)r->host,
		};
		if (ioctl(vm->vm_fd, KVM_SET_USER_MEMORY_REGION, &slot) < 0) {
			snprintf(err, errlen, "KVM_SET_USER_MEMORY_REGION slot %u: %s", i,
				strerror(errno));
			return -errno;
		}
	}
	return 0;
}

static int make_irqfd(struct vm *vm, int *fd, unsigned gsi, char *err, size_t errlen)
{
	struct kvm_irqfd irqfd = { .gsi = gsi };

	*fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (*fd < 0) {
		snprintf(err, errlen, "eventfd: %s", strerror(errno));
		return -errno;
	}
	irqfd.fd = (uint32_t)*fd;
	if (ioctl(vm->vm_fd, KVM_IRQFD, &irqfd) < 0) {
		snprintf(err, errlen, "KVM_IRQFD gsi %u: %s", gsi, strerror(errno));
		return -errno;
	}
	return 0;
}

static int build_legacy_devices(struct vm *vm, char *err, size_t errlen)
{
	int ret;

	vm->pio.name = "pio";
	vm->mmio.name = "mmio";
	ret = make_irqfd(vm, &vm->serial_irq_fd, SERIAL_GSI, err, errlen);
	if (!ret)
		ret = make_irqfd(vm, &vm->i8042_irq_fd, I8042_GSI, err, errlen);
	if (ret)
		return ret;
	vm->serial = serial_new(vm->serial_irq_fd, on_serial_out, vm);
	vm->i8042 = i8042_new(vm->i8042_irq_fd, on_reset, vm);
	vm->boot_timer = boot_timer_new(on_boot_timer, vm);
	vm->sleep_ctl = sleep_ctl_new(on_sleep, vm);
	if (!vm->serial || !vm->i8042 || !vm->boot_timer || !vm->sleep_ctl) {
		snprintf(err, errlen, "devices: out of memory");
		return -ENOMEM;
	}
	ret = serial_attach(vm->serial, &vm->pio, LAYOUT_PORT_SERIAL);
	if (!ret)
		ret = i8042_attach(vm->i8042, &vm->pio);
	if (!ret)
		ret = sleep_ctl_attach(vm->sleep_ctl, &vm->pio);
	if (!ret)
		ret = boot_timer_attach(vm->boot_timer, &vm->mmio);
	if (ret)
		snprintf(err, errlen, "devices: cannot place legacy devices on the bus: %s",
			strerror(-ret));
	return ret;
}

static int build_vcpus(struct vm *vm, uint64_t entry, char *err, size_t errlen)
{
	int ret;

	vm->vcpus = calloc(vm->cfg.vcpus, sizeof(*vm->vcpus));
	if (!vm->vcpus) {
		snprintf(err, errlen, "vcpus: out of memory");
		return -ENOMEM;
	}
	vm->env = (struct vcpu_env){ .pio = &vm->pio, .mmio = &vm->mmio, .stop = vcpu_stop,
		.opaque = vm };
	for (unsigned i = 0; i < vm->cfg.vcpus; i++) {
		ret = vcpu_init(&vm->vcpus[i], vm->kvm_fd, vm->vm_fd, i, &vm->env, err, errlen);
		if (ret)
			return ret;
		vm->nr_vcpus++;
		ret = arch_vcpu_setup(vm->kvm_fd, &vm->vcpus[i], vm->cfg.vcpus, entry, err, errlen);
		if (ret)
			return ret;
	}
	return 0;
}

int vm_start(struct vm *vm, char *err, size_t errlen)
{
	struct arch_boot_source boot = {
		.kernel_path = vm->cfg.kernel, .initrd_path = vm->cfg.initrd,
		.cmdline = vm->cfg.cmdline,
	};
	uint64_t entry = 0;
	int ret;

	if (vm->state != VM_CONFIGURED) {
		snprintf(err, errlen, "cannot start: the vm is %s", vm_state_name(vm->state));
		return -EBUSY;
	}
	vm->start_us = log_uptime_us();
	/* The order is the documented one (STYLE.md); teardown() is its reverse. */
	ret = open_kvm(vm, err, errlen);
	if (!ret)
		ret = build_memory(vm, err, errlen);
	if (!ret)
		ret = arch_vm_setup(vm->vm_fd, err, errlen);
	if (!ret)
		ret = build_legacy_devices(vm, err, errlen);
	if (!ret)
		ret = arch_boot_load(&vm->mem, &boot, &entry, err, errlen);
	if (!ret)
		ret = build_vcpus(vm, entry, err, errlen);
	for (unsigned i = 0; !ret && i < vm->nr_vcpus; i++)
		ret = vcpu_start_thread(&vm->vcpus[i], err, errlen);
	if (ret) {
		teardown(vm);
		return ret;
	}
	vm->state = VM_RUNNING;
	console_input_enable(vm->console, true);
	for (unsigned i = 0; i < vm->nr_vcpus; i++)
		vcpu_request(&vm->vcpus[i], VCPU_REQ_RUN);
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
	return 0;
}

void vm_stop(struct vm *vm, enum vm_exit_reason reason, int signo)
{
	if (vm->state != VM_RUNNING && vm->state != VM_PAUSED)
		return;
	if (reason == VM_EXIT_SIGNAL)
		vm->exit_signal = signo;
	request_exit(vm, reason, reason == VM_EXIT_SIGNAL ? strsignal(signo) : "by request");
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
	vm->mem.fd = -1;
	ev_async_init(&vm->wake, on_wake);
	vm->wake.data = vm;
	ev_async_start(loop, &vm->wake);
	ev_init(&vm->input_retry, on_input_retry);
	vm->input_retry.repeat = 0.002;
	vm->input_retry.data = vm;
	vm->console = console_new(loop, cfg->console == CONSOLE_STDIO, cfg->console_log,
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
	teardown(vm);
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
}

static uint64_t resident_kib(const struct guest_mem_region *r)
{
	size_t pages = r->size / 4096, n = 0;
	unsigned char vec[4096];

	/* In chunks: one byte per page, so a 4 GiB region needs 1 MiB of vector. */
	for (size_t off = 0; off < pages; off += sizeof(vec)) {
		size_t chunk = pages - off < sizeof(vec) ? pages - off : sizeof(vec);
		if (mincore(r->host + off * 4096, chunk * 4096, vec) < 0)
			return 0;
		for (size_t i = 0; i < chunk; i++)
			n += vec[i] & 1;
	}
	return n * 4;
}

int vm_memory_stats(const struct vm *vm, struct vm_memory_stats *out)
{
	const struct guest_mem *gm = vm_memory(vm);
	unsigned long long size = 0, rss = 0;
	FILE *f;

	if (!gm)
		return -EBUSY;
	memset(out, 0, sizeof(*out));
	out->guest_kib = gm->total >> 10;
	for (unsigned i = 0; i < gm->nr_regions; i++)
		out->guest_resident_kib += resident_kib(&gm->regions[i]);
	f = fopen("/proc/self/statm", "re");
	if (f) {
		if (fscanf(f, "%llu %llu", &size, &rss) == 2)
			out->process_rss_kib = rss * (uint64_t)(sysconf(_SC_PAGESIZE) >> 10);
		fclose(f);
	}
	return 0;
}

unsigned vm_vcpu_count(const struct vm *vm)
{
	return vm->cfg.vcpus;
}

int vm_vcpu_exits(const struct vm *vm, unsigned index, uint64_t *counts, unsigned n)
{
	if (index >= vm->nr_vcpus)
		return -EINVAL;
	for (unsigned k = 0; k < n && k < VCPU_EXIT_KINDS; k++)
		counts[k] = atomic_load(&vm->vcpus[index].exits[k]);
	return 0;
}

static int paused_vcpu(struct vm *vm, unsigned index, char *err, size_t errlen)
{
	if (vm->state != VM_PAUSED) {
		snprintf(err, errlen, "vcpu state needs a paused vm (it is %s)",
			vm_state_name(vm->state));
		return -EBUSY;
	}
	if (index >= vm->nr_vcpus) {
		snprintf(err, errlen, "vcpu %u: no such vcpu (the vm has %u)", index, vm->nr_vcpus);
		return -EINVAL;
	}
	return vm->vcpus[index].fd;
}

int vm_vcpu_msrs_get(struct vm *vm, unsigned index, uint32_t *indices, uint64_t *values,
	unsigned *count, char *err, size_t errlen)
{
	const uint32_t *list;
	unsigned n;
	int fd = paused_vcpu(vm, index, err, errlen), ret;

	if (fd < 0)
		return fd;
	ret = arch_msr_list(vm->kvm_fd, &list, &n);
	if (ret) {
		snprintf(err, errlen, "KVM_GET_MSR_INDEX_LIST: %s", strerror(-ret));
		return ret;
	}
	if (n > *count) {
		snprintf(err, errlen, "vcpu %u: %u MSRs do not fit in %u", index, n, *count);
		return -E2BIG;
	}
	memcpy(indices, list, n * sizeof(*list));
	ret = arch_msrs_get(fd, indices, values, n);
	if (ret) {
		snprintf(err, errlen, "vcpu %u: KVM_GET_MSRS: %s", index, strerror(-ret));
		return ret;
	}
	*count = n;
	return 0;
}

int vm_vcpu_msrs_set(struct vm *vm, unsigned index, const uint32_t *indices,
	const uint64_t *values, unsigned count, char *err, size_t errlen)
{
	int fd = paused_vcpu(vm, index, err, errlen), ret;

	if (fd < 0)
		return fd;
	ret = arch_msrs_set(fd, indices, values, count);
	if (ret)
		snprintf(err, errlen, "vcpu %u: KVM_SET_MSRS: %s", index,
			ret == -EIO ? "KVM refused an MSR" : strerror(-ret));
	return ret;
}
