/* The VM object and its lifecycle: configured -> running <-> paused -> exited.
 *
 * Thread rules (the whole program keeps them):
 * - Only the control thread touches the libev loop, Lua, the API, device configuration
 *   and uffd; it calls every function in this header.
 * - vCPU threads run KVM_RUN and device register handlers, which neither block nor
 *   allocate; they reach the control thread only through ev_async (vm_request_exit,
 *   boot timer, console output).
 * Every lifecycle transition is one function here, used by Lua, the API and the REPL. */
#ifndef EMBER_VM_H
#define EMBER_VM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ember/balloon.h"
#include "ember/vm_exit.h"

struct ev_loop;
struct vm;
struct vm_config;
struct guest_mem;

enum vm_state { VM_CONFIGURED, VM_RUNNING, VM_PAUSED, VM_EXITED };

/* Events for the VM's owner, called on the control thread. */
struct vm_observer {
	void (*booted)(struct vm *vm, void *opaque);  /* boot timer written */
	void (*console)(struct vm *vm, void *opaque); /* new console output captured */
	void (*exited)(struct vm *vm, void *opaque);  /* the VM reached VM_EXITED */
	/* started, paused or resumed: the state went from `from` to vm_state(vm). Called at
	 * the end of the lifecycle function; the callee must not call back into the VM. */
	void (*state_changed)(struct vm *vm, enum vm_state from, void *opaque);
};

/* A configured VM (nothing built yet). The config is copied. */
struct vm *vm_new(const struct vm_config *cfg, struct ev_loop *loop, char *err, size_t errlen);
/* Stop the VM if it runs, release everything. NULL is a no-op. */
void vm_free(struct vm *vm);

void vm_set_observer(struct vm *vm, const struct vm_observer *obs, void *opaque);

/* configured -> running: build the machine in the documented order, start the vCPUs. On
 * failure the VM stays configured and nothing is left allocated. */
__attribute__((warn_unused_result)) int vm_start(struct vm *vm, char *err, size_t errlen);
/* running -> paused: every vCPU parked when this returns. -EBUSY in another state. */
__attribute__((warn_unused_result)) int vm_pause(struct vm *vm, char *err, size_t errlen);
/* paused -> running. -EBUSY in another state. */
__attribute__((warn_unused_result)) int vm_resume(struct vm *vm, char *err, size_t errlen);
/* running/paused -> exited with `reason` (STOPPED or SIGNAL); no-op once exited. */
void vm_stop(struct vm *vm, enum vm_exit_reason reason, int signo);

enum vm_state vm_state(const struct vm *vm);
const char *vm_state_name(enum vm_state state);
/* Why the VM ended and the detail line ("vcpu 0: ..."); VM_EXIT_NONE while it runs. */
enum vm_exit_reason vm_exit_reason(const struct vm *vm, const char **detail);
/* The process exit status that tells how the VM ended. */
int vm_exit_status(const struct vm *vm);

const struct vm_config *vm_config(const struct vm *vm);
/* Guest memory while the VM is running or paused, else NULL. */
const struct guest_mem *vm_memory(const struct vm *vm);

/* Console: queue input for the guest's serial port (control thread). */
void vm_console_send(struct vm *vm, const uint8_t *buf, size_t len);
/* Captured console text not yet consumed; see console.h. */
const char *vm_console_text(struct vm *vm, size_t *len);
void vm_console_consume(struct vm *vm, size_t n);
/* Console text from stream offset *pos on (see console_text_since), for readers that
 * keep their own position; and the offset of the end of the captured text. */
const char *vm_console_since(struct vm *vm, uint64_t *pos, size_t *len);
uint64_t vm_console_end(const struct vm *vm);
/* Console output bytes dropped by the configured limit (console_limit) so far. */
uint64_t vm_console_dropped(struct vm *vm);
/* Send Ctrl-Alt-Del to the guest's i8042. -EBUSY unless running. */
__attribute__((warn_unused_result)) int vm_send_ctrl_alt_del(struct vm *vm);

/* Timings, microseconds since process start; 0 if not reached. */
struct vm_times {
	uint64_t start_us;              /* vm_start called */
	uint64_t first_run_us;          /* first KVM_RUN of vCPU 0 */
	uint64_t boot_us;               /* boot timer written */
	uint64_t last_snapshot_us;      /* duration of the last vm_snapshot */
	uint64_t last_snapshot_sync_us; /* of which: memory file fsync and directory syncs */
	uint64_t last_snapshot_bytes;   /* memory bytes it wrote (holes excluded) */
	uint64_t restore_us;            /* duration of vm_restore, for a restored VM */
};
void vm_times(const struct vm *vm, struct vm_times *out);

/* Memory use: guest RAM size, how much of it is resident (mincore), how much of that is
 * private to this VM (copy-on-write pages of a restored clone, /proc/self/smaps), and
 * the whole process's resident set, in KiB. -EBUSY unless running or paused. */
struct vm_memory_stats {
	uint64_t guest_kib;
	uint64_t guest_resident_kib;
	uint64_t guest_private_kib; /* anonymous pages: not shared with a memory file */
	uint64_t process_rss_kib;
};
__attribute__((warn_unused_result)) int vm_memory_stats(const struct vm *vm,
	struct vm_memory_stats *out);

unsigned vm_vcpu_count(const struct vm *vm);
/* Exit counters of a vCPU by kind (see vcpu.h); -EINVAL for a bad index. */
__attribute__((warn_unused_result)) int vm_vcpu_exits(const struct vm *vm, unsigned index,
	uint64_t *counts, unsigned n);

/* MSRs of a paused vCPU: the full list KVM reports. *count is in/out (capacity/used).
 * -EBUSY unless paused. */
__attribute__((warn_unused_result)) int vm_vcpu_msrs_get(struct vm *vm, unsigned index,
	uint32_t *indices, uint64_t *values, unsigned *count, char *err, size_t errlen);
__attribute__((warn_unused_result)) int vm_vcpu_msrs_set(struct vm *vm, unsigned index,
	const uint32_t *indices, const uint64_t *values, unsigned count, char *err, size_t errlen);

/* ---- for the operator (the REPL); control thread ---- */

/* struct vm_reg, one register with its static name, is the architecture's (ember/arch.h). */
struct vm_reg;
#define VM_REGS_MAX 64
/* General registers, rip, rflags, control registers, EFER and segment selectors of a
 * paused vCPU, in the architecture's order. *count is in/out (capacity/used). -EBUSY
 * unless paused, -EINVAL for a bad index; err says which. */
__attribute__((warn_unused_result)) int vm_vcpu_regs(struct vm *vm, unsigned index,
	struct vm_reg *regs, unsigned *count, char *err, size_t errlen);

/* A device on one of the VM's buses, with the counters that cost nothing to read. The
 * strings are static or owned by the VM (valid until it exits). */
#define VM_DEVICE_STATS_MAX 16
struct vm_device_info {
	const char *name, *kind, *bus; /* "serial", "uart-16550a", "pio" */
	uint64_t base, len;
	unsigned nr_stats;
	struct {
		const char *name;
		uint64_t value;
	} stats[VM_DEVICE_STATS_MAX];
};
/* Fill up to `cap` entries in bus order (pio, then mmio); returns how many devices there
 * are, or -EBUSY unless running or paused. */
__attribute__((warn_unused_result)) int vm_devices(struct vm *vm, struct vm_device_info *out,
	unsigned cap);

/* Attach the terminal to the guest's serial console (see console_attach): keys go to the
 * guest, its output is shown, until `escape` is typed; then detached(opaque) is called
 * from the loop. -EBUSY if the VM has exited or the console already reads stdin. */
typedef void (*vm_console_detach_fn)(void *opaque);
__attribute__((warn_unused_result)) int vm_console_attach(struct vm *vm, uint8_t escape,
	vm_console_detach_fn detached, void *opaque);
/* End an attachment without calling `detached`; no-op when not attached. */
void vm_console_detach(struct vm *vm);

/* The memory hotplug area (virtio-mem): ask the guest for `requested_mib` MiB plugged
 * (-EINVAL: not a multiple of the block size or more than the total, with Firecracker's
 * "Size N is invalid: ..."; -EAGAIN: "Device is not active", the guest's driver has not
 * started it), or read the sizes now. -ENODEV without the device or a live
 * VM; the message says which. Control thread. */
struct mem_hotplug_status;
__attribute__((warn_unused_result)) int vm_mem_hotplug_set(struct vm *vm, uint32_t requested_mib,
	char *err, size_t errlen);
__attribute__((warn_unused_result)) int vm_mem_hotplug_status(struct vm *vm,
	struct mem_hotplug_status *out, char *err, size_t errlen);

/* The balloon device: set its target (MiB the guest should give back) and read its
 * statistics. -ENODEV without a balloon; the message says why. Control thread. */
struct balloon_stats;
__attribute__((warn_unused_result)) int vm_balloon_set(struct vm *vm, uint32_t amount_mib,
	char *err, size_t errlen);
__attribute__((warn_unused_result)) int vm_balloon_stats(struct vm *vm, struct balloon_stats *out,
	char *err, size_t errlen);
/* Change the statistics polling interval. -ENOTSUP when it would turn statistics on or
 * off (0 before or after): as in Firecracker, that is fixed at boot. */
__attribute__((warn_unused_result)) int vm_balloon_set_stats_interval(struct vm *vm,
	uint32_t seconds, char *err, size_t errlen);
/* The balloon's configuration as it is now: amount_mib is the current target, the
 * interval the one last set. */
struct balloon_config;
__attribute__((warn_unused_result)) int vm_balloon_config(struct vm *vm, struct balloon_config *out,
	char *err, size_t errlen);

/* Free page hinting (virtio_balloon_hinting): start a run, stop it, or read its status
 * into `out` (may be NULL). -ENOTSUP when the balloon was built without
 * free_page_hinting, -EAGAIN for start/stop before the guest's driver is up, -ENODEV
 * without a balloon; the message says which. */
__attribute__((warn_unused_result)) int vm_balloon_hinting(struct vm *vm, enum balloon_hint_op op,
	bool acknowledge_on_stop, struct balloon_hinting *out, char *err, size_t errlen);

/* Run-time changes of devices (Firecracker's PATCH /drives and /network-interfaces after
 * boot), running or paused; the VM's configuration (GET /vm/config, snapshots) follows.
 * vm_drive_update: a new backing file `path` (NULL: keep it) swapped in between requests,
 * the guest told of the new capacity; and/or new rate-limit buckets `limit` (NULL: keep
 * them). The limit is checked first; a path that cannot be opened leaves the drive as it
 * was. vm_net_update: new rx / tx buckets (NULL: keep them). -ENOENT for an unknown id,
 * -EBUSY when the VM is neither running nor paused, -EINVAL for a bad bucket; err says
 * which ("drive 'data': cannot open /x.img: No such file or directory"). */
struct rate_limit_update;
__attribute__((warn_unused_result)) int vm_drive_update(struct vm *vm, const char *drive_id,
	const char *path, const struct rate_limit_update *limit, char *err, size_t errlen);
__attribute__((warn_unused_result)) int vm_net_update(struct vm *vm, const char *iface_id,
	const struct rate_limit_update *rx, const struct rate_limit_update *tx, char *err,
	size_t errlen);
/* PATCH /pmem after boot: new FLUSH rate-limit buckets for pmem `pmem_id`; errors as
 * vm_drive_update ("pmem 'p0': no such pmem device" with -ENOENT). */
__attribute__((warn_unused_result)) int vm_pmem_update(struct vm *vm, const char *pmem_id,
	const struct rate_limit_update *limit, char *err, size_t errlen);

#endif
