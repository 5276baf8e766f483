/* Machine configuration: what a definition (Lua, API, JSON file) describes, and its checks. */
#ifndef EMBER_CONFIG_H
#define EMBER_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ember/guest_mem.h"

#define VM_MAX_VCPUS 32
#define VM_MIN_MEM_MIB 16

enum console_mode {
	CONSOLE_STDIO, /* guest serial on this process's stdin/stdout */
	CONSOLE_NONE,  /* output only captured (vm:wait_for, logs); no input from stdin */
};

struct vm_config {
	unsigned vcpus;
	uint64_t mem_mib;
	enum guest_mem_backing mem_backing; /* ANON, MEMFD or HUGETLB */
	char *kernel;      /* path, required */
	char *initrd;      /* path or NULL */
	char *cmdline;     /* or NULL */
	enum console_mode console;
	char *console_log; /* file that receives a copy of the guest's serial output, or NULL */
	bool track_dirty_pages; /* KVM dirty log on, so diff snapshots are possible */
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

/* Host RAM in MiB (MemTotal), used by the check; 0 if unknown. */
uint64_t vm_config_host_mem_mib(void);

/* Parse "anon", "memfd", "hugetlb" ("2M" also names hugetlb). */
__attribute__((warn_unused_result)) int vm_config_parse_backing(const char *name,
	enum guest_mem_backing *out);
const char *vm_config_backing_name(enum guest_mem_backing b);

#endif
