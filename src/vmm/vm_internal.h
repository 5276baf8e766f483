/* Internals of the VM object shared by the files of src/vmm/ (object, lifecycle,
 * recipes and their steps, snapshot). Not a module interface: other modules use include/ember/vm.h. */
#ifndef EMBER_VM_INTERNAL_H
#define EMBER_VM_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <ev.h>

#include "ember/bus.h"
#include "ember/config.h"
#include "ember/guest_mem.h"
#include "ember/snapshot_id.h"
#include "ember/vcpu.h"
#include "ember/vm.h"

struct serial;
struct i8042;
struct boot_timer;
struct sleep_ctl;
struct console;
struct uffd_watch;
struct virtio_dev;
struct acpi_mmio_device;
struct snap_writer;
struct snap_cursor;

/* The device thread (device_thread.c): the devices' libev loop on a thread of its own,
 * under the devices' seccomp filter. */
struct dev_thread {
	struct ev_loop *loop; /* the loop every virtio device is built on */
	pthread_t tid;
	bool started;
	_Atomic bool stopping;
	pthread_mutex_t lock, gate;
	ev_async wake;
	/* Start-up handshake: the filter is installed, or why not. */
	pthread_mutex_t ready_lock;
	pthread_cond_t ready_cond;
	bool ready;
	int start_ret;
	char start_err[160];
};
/* An idle device loop, its lock and wake-up; -ENOMEM with err. */
__attribute__((warn_unused_result)) int dev_thread_init(struct dev_thread *t, char *err,
	size_t errlen);
/* Start the thread; returns once its filter is installed, or with the reason it could not
 * be (the thread then never runs the loop: ember fails closed). */
__attribute__((warn_unused_result)) int dev_thread_start(struct dev_thread *t, char *err,
	size_t errlen);
/* The control thread's hold on device state: between lock and unlock no device callback
 * runs, and watchers may be started or stopped. Not recursive. No-ops while the thread is
 * not running (building, restoring, torn down). */
void dev_thread_lock(struct dev_thread *t);
void dev_thread_unlock(struct dev_thread *t);
/* Stop and join the thread (the loop and its watchers stay); no-op when not started. */
void dev_thread_stop(struct dev_thread *t);
/* Stop the thread and free the loop (every watcher must be stopped before). */
void dev_thread_deinit(struct dev_thread *t);

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
	char exit_detail[256];   /* written once, by whoever set exit_reason */
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

	/* Dirty pages the last failed diff snapshot could not write (one bitmap per region,
	 * a bit per page), OR-ed into the next one so nothing is lost. */
	unsigned long *pending_dirty[GUEST_MEM_MAX_REGIONS];
	/* Guest RAM came from zero pages (a fresh boot): a full snapshot may leave pages
	 * that were never touched as holes. False after a restore. */
	bool mem_zero_backed;
	/* The snapshot guest memory was last written to or restored from: the one a diff
	 * snapshot's dirty pages are relative to, recorded as the diff's parent. None after
	 * a fresh boot (a diff then holds the pages dirtied since boot) or after a restore
	 * from a state file without an id. */
	bool has_last_snapshot;
	struct snap_id last_snapshot;
	int uffd, uffd_sock; /* userfaultfd restore: our copy of the uffd, handler socket */
	struct uffd_watch *uffd_watch;
	_Atomic bool uffd_lost; /* the handler went away: guest memory is no longer valid */
	uint64_t last_snapshot_us, last_restore_us;
	uint64_t last_snapshot_sync_us, last_snapshot_bytes;
	struct virtio_dev *virtio[VM_MAX_VIRTIO]; /* in build order, on devs.loop */
	struct dev_thread devs;
	unsigned nr_virtio;
};

/* ---- where a VM is put together (vm_recipe.c): one recipe per way it is born ----
 * Each fills err on failure; vm_teardown undoes whatever was built, in reverse, and may
 * be called at any point. */
/* A fresh boot of vm->cfg, up to its vCPU threads started (parked). */
__attribute__((warn_unused_result)) int vm_recipe_boot(struct vm *vm, char *err, size_t errlen);
/* The machine of a checked state file `r` (vm->cfg is its configuration), its state
 * applied, up to its vCPU threads started (parked). */
struct restore_params;
struct snap_reader;
__attribute__((warn_unused_result)) int vm_recipe_restore(struct vm *vm,
	const struct snap_reader *r, const struct restore_params *p, char *err, size_t errlen);

/* What the steps of one recipe share. */
struct vm_birth {
	const struct snap_reader *r;    /* restore: the checked state file */
	const struct restore_params *p; /* restore: memory backend, clock */
	bool warm;      /* restore: the prewarmed shell stands in for kvm, memory, irqchip */
	uint64_t entry; /* boot: the kernel's entry, from load_kernel to vcpu_setup */
};
/* A step: 0, or -errno with err saying why. */
typedef int (*vm_step_fn)(struct vm *vm, struct vm_birth *b, char *err, size_t errlen);

/* ---- the steps both take (vm_build.c) ---- */
/* /dev/kvm and a new VM fd (src/kvm/vm_fd.c). */
__attribute__((warn_unused_result)) int vm_step_kvm(struct vm *vm, struct vm_birth *b, char *err,
	size_t errlen);
/* The in-kernel irqchip and PIT (after the slots; made ahead in a warm shell). */
__attribute__((warn_unused_result)) int vm_step_irqchip(struct vm *vm, struct vm_birth *b,
	char *err, size_t errlen);
/* Legacy devices on their ports, then the virtio devices of cfg (vm_devices.c). */
__attribute__((warn_unused_result)) int vm_step_devices(struct vm *vm, struct vm_birth *b,
	char *err, size_t errlen);
/* Create cfg.vcpus vCPUs (no architectural set-up). */
__attribute__((warn_unused_result)) int vm_step_vcpus(struct vm *vm, struct vm_birth *b, char *err,
	size_t errlen);
/* The device thread, then a thread per vCPU (parked). */
__attribute__((warn_unused_result)) int vm_step_threads(struct vm *vm, struct vm_birth *b,
	char *err, size_t errlen);
/* Give KVM a slot per region of vm->mem (mapped), with dirty logging (and ember's own
 * dirty bitmaps) when cfg.track_dirty_pages: part of either memory step. */
__attribute__((warn_unused_result)) int vm_step_slots(struct vm *vm, char *err, size_t errlen);
/* The hotplug area's dirty pages (virtio_mem_dirty_log) OR-ed into `bitmap`; 0 without
 * the device. Paused VM, device lock held (snapshot). */
__attribute__((warn_unused_result)) int vm_mem_hotplug_dirty_log(struct vm *vm,
	unsigned long *bitmap, char *err, size_t errlen);
/* Right after RAM is mapped (boot, restore from a file or a handler): the hotplug area, if
 * the configuration has one, as guest memory's device region at guest_mem_device_base. */
__attribute__((warn_unused_result)) int vm_map_device_memory(struct vm *vm, char *err,
	size_t errlen);
void vm_teardown(struct vm *vm);

/* ---- the steps only a boot takes (vm_build_boot.c) ---- */
/* Guest memory of cfg.mem_backing (zero pages) and its slots. */
__attribute__((warn_unused_result)) int vm_step_memory_boot(struct vm *vm, struct vm_birth *b,
	char *err, size_t errlen);
/* Kernel, initrd, command line (the user's, then the devices' words) and ACPI tables;
 * the kernel's entry point into b->entry. After the devices and vCPUs. */
__attribute__((warn_unused_result)) int vm_step_load_kernel(struct vm *vm, struct vm_birth *b,
	char *err, size_t errlen);
/* Registers, CPUID and MSRs of every vCPU for a start at b->entry. */
__attribute__((warn_unused_result)) int vm_step_vcpu_setup(struct vm *vm, struct vm_birth *b,
	char *err, size_t errlen);

/* ---- the steps only a restore takes (vm_build_restore.c) ---- */
/* The prewarmed shell when it fits a File restore (b->warm), else vm_step_kvm. */
__attribute__((warn_unused_result)) int vm_step_kvm_or_shell(struct vm *vm, struct vm_birth *b,
	char *err, size_t errlen);
/* Guest memory from the memory file (File) or a page-fault handler (Uffd), and slots;
 * nothing in a warm shell. */
__attribute__((warn_unused_result)) int vm_step_memory_restore(struct vm *vm, struct vm_birth *b,
	char *err, size_t errlen);
__attribute__((warn_unused_result)) int vm_step_vcpu_state(struct vm *vm, struct vm_birth *b,
	char *err, size_t errlen);
/* Interrupt controllers, PIT and kvmclock (moved to wall time when p->clock_realtime). */
__attribute__((warn_unused_result)) int vm_step_vm_state(struct vm *vm, struct vm_birth *b,
	char *err, size_t errlen);
/* Each device's saved state (vm_persist.c). */
__attribute__((warn_unused_result)) int vm_step_device_state(struct vm *vm, struct vm_birth *b,
	char *err, size_t errlen);
/* A new VM generation id: the restored VM is a clone. */
__attribute__((warn_unused_result)) int vm_step_new_generation(struct vm *vm, struct vm_birth *b,
	char *err, size_t errlen);
/* The prewarmed shell (vm_shell.c): whether it fits a restore of `size` bytes, and
 * handing it to `vm` (its kvm and VM fds, slots, irqchip) with the memory file mapped
 * into the slots. The shell is used up either way. */
bool vm_shell_fits(uint64_t size, bool track_dirty);
__attribute__((warn_unused_result)) int vm_shell_take(struct vm *vm, const char *mem_path,
	char *err, size_t errlen);

/* ---- the persist contract of the devices (vm_persist.c) ----
 * One DEVICE section per device, from one const table of device kinds: save writes
 * them; restore applies each saved section to the device of its kind and rank, and on
 * a refusal err says which device and why. */
__attribute__((warn_unused_result)) int vm_save_device_state(struct vm *vm, struct snap_writer *w);
__attribute__((warn_unused_result)) int vm_restore_device_state(struct vm *vm,
	const struct snap_reader *r, char *err, size_t errlen);

/* Virtio devices (vm_devices.c): build them from cfg in the documented order, free them,
 * list their windows for ACPI (0 when they go on the command line), append their kernel
 * command-line words to buf. */
__attribute__((warn_unused_result)) int vm_build_virtio(struct vm *vm, char *err, size_t errlen);
void vm_free_virtio(struct vm *vm);
unsigned vm_virtio_acpi(const struct vm *vm, struct acpi_mmio_device *out);
__attribute__((warn_unused_result)) int vm_device_cmdline(const struct vm *vm, char *buf,
	size_t len);

/* ---- the VM object itself (vm.c) ---- */
/* Hand queued console input to the serial FIFO as far as it has room (control thread). */
void vm_feed_input(struct vm *vm);
/* Tell the observer the state changed from `from` to vm->state. */
void vm_notify_state(struct vm *vm, enum vm_state from);

/* Device configuration in a snapshot (snapshot_config.c). Loaded strings point into the
 * reader. A snapshot without the section describes a machine without devices. */
__attribute__((warn_unused_result)) int snapshot_save_devices(const struct vm_config *c,
	struct snap_writer *w);
__attribute__((warn_unused_result)) int snapshot_load_devices(const struct snap_reader *r,
	struct vm_config *c, char *err, size_t errlen);

/* The VM_INFO and memory layout sections (snapshot_sections.c). Loading checks the vCPU
 * count, memory size and backing against this host; loaded strings point into the reader.
 * The layout check refuses regions that are not the ones this ember builds for mem_mib
 * (none, no DRAM at 0, unplugged, moved). Failures fill err naming the problem. */
__attribute__((warn_unused_result)) int snapshot_save_vm_info(const struct vm *vm,
	struct snap_writer *w);
__attribute__((warn_unused_result)) int snapshot_load_vm_info(const struct snap_reader *r,
	struct vm_config *c, char *err, size_t errlen);
__attribute__((warn_unused_result)) int snapshot_save_memory_layout(const struct vm *vm,
	struct snap_writer *w);
__attribute__((warn_unused_result)) int snapshot_check_memory_layout(const struct snap_reader *r,
	uint64_t mem_mib, char *err, size_t errlen);

/* The CPU_MODEL section (snapshot_cpu.c): smt and the templates of the configuration.
 * Loading one that is absent leaves `c` as it is; a loaded custom template is allocated
 * into c->cpu_template (the caller frees it); a malformed section fails with a message. */
__attribute__((warn_unused_result)) int snapshot_save_cpu_model(const struct vm_config *c,
	struct snap_writer *w);
__attribute__((warn_unused_result)) int snapshot_load_cpu_model(const struct snap_reader *r,
	struct vm_config *c, char *err, size_t errlen);

/* Restore's checks before anything is built (snapshot_check.c, no KVM): the VM info,
 * the snapshot id against the memory file's (File backend), the memory layout, the vCPU
 * count, every vCPU and VM section (arch_state_check, against `host_vendor`), the device
 * configuration, the overrides of `p`, and the resulting configuration. Fills `cfg`
 * (strings point into the reader and into `p`) and the snapshot's id (*has_id false: the
 * state file has none), the parent of the restored VM's next diff. 0, or -errno and err
 * naming the problem. */
struct snap_id;
__attribute__((warn_unused_result)) int snapshot_check_restore(const struct snap_reader *r,
	const struct restore_params *p, const char *host_vendor, struct vm_config *cfg,
	struct snap_id *id, bool *has_id, char *err, size_t errlen);
/* Network (iface id -> tap), drive (id -> path) and vsock socket overrides, applied to a
 * configuration loaded from a state file; strings point into `p`. */
__attribute__((warn_unused_result)) int snapshot_apply_overrides(const struct restore_params *p,
	struct vm_config *c, char *err, size_t errlen);

/* Record why the VM ends (first caller wins) and wake the control thread. Any thread
 * (vm.c). */
void vm_request_exit(struct vm *vm, enum vm_exit_reason reason, const char *detail);

#endif
