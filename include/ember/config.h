/* Machine configuration: what a definition (Lua, API, JSON file) describes, and its checks. */
#ifndef EMBER_CONFIG_H
#define EMBER_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct cpu_template;
struct mmds;

#include "ember/balloon.h"
#include "ember/block.h"
#include "ember/guest_mem.h"
#include "ember/net.h"
#include "ember/pmem.h"
#include "ember/rate_limiter.h"
#include "ember/virtio_mem.h"
#include "ember/vsock.h"

#define VM_MAX_VCPUS 32
#define VM_MIN_MEM_MIB 16

/* Virtio devices have the IOAPIC's pins from 5 up to LAYOUT_VMGENID_GSI (23), not
 * included: 18, as many as Firecracker's MMIO machines with a VM generation id; drives
 * and interfaces may each take them all, as Firecracker's. */
#define VM_MAX_VIRTIO 18
#define VM_MAX_DRIVES VM_MAX_VIRTIO
#define VM_MAX_NETS VM_MAX_VIRTIO
#define VM_MAX_PMEM 8 /* LAYOUT_PMEM_MAX: one KVM slot each */

/* How the guest finds virtio-mmio devices: ACPI (every kernel with ACPI, including
 * Debian's stock one) or virtio_mmio.device= on the command line (kernels built with
 * VIRTIO_MMIO_CMDLINE_DEVICES). Never both, so no window is registered twice. */
enum device_discovery { DISCOVERY_ACPI, DISCOVERY_CMDLINE };

struct entropy_config {
	bool enabled;
	struct rate_limit limit;
};

enum console_mode {
	CONSOLE_STDIO, /* guest serial on this process's stdin/stdout */
	CONSOLE_NONE,  /* output only captured (vm:wait_for, logs); no input from stdin */
};

struct vm_config {
	unsigned vcpus;
	uint64_t mem_mib;
	enum guest_mem_backing mem_backing; /* ANON, MEMFD or HUGETLB */
	char *kernel;                       /* path, required */
	char *initrd;                       /* path or NULL */
	char *cmdline;                      /* or NULL */
	enum console_mode console;
	char *console_log;     /* file that receives a copy of the guest's serial output, or NULL */
	bool console_log_only; /* output to console_log only, not stdout (Firecracker's
				* serial_out_path) */
	struct token_bucket_config console_limit; /* output bytes; size 0: no limit */
	bool track_dirty_pages; /* KVM dirty log on, so diff snapshots are possible */
	/* Devices, created in this order (block, net, vsock, entropy, balloon), each on the
	 * next virtio-mmio window. */
	struct drive_config drives[VM_MAX_DRIVES];
	unsigned nr_drives;
	struct net_config nets[VM_MAX_NETS];
	unsigned nr_nets;
	struct vsock_config vsock;
	struct entropy_config entropy;
	struct balloon_config balloon;
	/* pmem devices, after the others, in this order: the guest's /dev/pmem0, 1, ... */
	struct pmem_config pmem[VM_MAX_PMEM];
	unsigned nr_pmem;
	struct mem_hotplug_config mem_hotplug; /* built last, after the balloon */
	enum device_discovery device_discovery;
	/* CPU model: two threads per core in CPUID (vcpus 1 or even), a static template by
	 * number (enum cpu_static_template, 0 = none) and a custom template (owned, or NULL). */
	bool smt;
	unsigned static_template;
	struct cpu_template *cpu_template;
	/* The store the interfaces with MMDS answer from: the process's, not owned, not part
	 * of a definition (whoever makes the VM sets it); NULL: none may have MMDS. */
	struct mmds *mmds;
};

/* Defaults: 1 vCPU, 128 MiB, anonymous memory, console on stdio. */
void vm_config_init(struct vm_config *cfg);
/* Free the strings; the struct may be initialised again. */
void vm_config_deinit(struct vm_config *cfg);
/* Deep copy; -ENOMEM on failure (dst is then empty). */
__attribute__((warn_unused_result)) int vm_config_copy(struct vm_config *dst,
	const struct vm_config *src);

/* Check a configuration before anything is built. The message names the key or file:
 * "vcpus: 0 is out of range 1..32", "kernel /x: No such file or directory",
 * "memory_mib: 999999 MiB is more than this host has (23975 MiB)". */
__attribute__((warn_unused_result)) int vm_config_check(const struct vm_config *cfg, char *err,
	size_t errlen);
/* vm_config_check for a VM restored from a snapshot: its kernel and initrd are in guest
 * memory already and are not looked for (a jail, or a host, without them restores). */
__attribute__((warn_unused_result)) int vm_config_check_restored(const struct vm_config *cfg,
	char *err, size_t errlen);

/* The part of the device checks that needs no file: drive and net ids (1 to 64 letters,
 * digits or _, unique), a path for each drive, a tap name for each interface, vsock's cid
 * and socket. Also for configurations read from a state file, whose strings may be NULL. */
__attribute__((warn_unused_result)) int vm_config_check_names(const struct vm_config *cfg,
	char *err, size_t errlen);

/* Host RAM in MiB (MemTotal), used by the check; 0 if unknown. */
uint64_t vm_config_host_mem_mib(void);

/* Parse "anon", "memfd", "hugetlb" ("2M" also names hugetlb). */
__attribute__((warn_unused_result)) int vm_config_parse_backing(const char *name,
	enum guest_mem_backing *out);
const char *vm_config_backing_name(enum guest_mem_backing b);

#endif
