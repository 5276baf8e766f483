/* The VM's half of a metrics line: vCPU exits since the last line written, boot times and
 * state, each device's counters (src/vmm/vm_metrics.c, over util's metrics_flush). */
#ifndef EMBER_VM_METRICS_H
#define EMBER_VM_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "ember/vcpu.h"

struct vm;

/* What the lines written so far held of a VM, embedded in its writer (the API): the
 * exits are written as deltas from these. All zero to start. */
struct vm_metrics {
	const struct vm *exits_vm; /* the VM exits_seen was read from */
	uint64_t exits_seen[VCPU_EXIT_KINDS];
};

/* metrics_flush with the sections of `vm` (which may be NULL: no exits, state "none"):
 * "vcpu", "vmm" and, with a VM, "devices". Once the line is written, `vmm` remembers the
 * exits it held. Control thread. */
__attribute__((warn_unused_result)) int vm_metrics_flush(struct vm_metrics *vmm,
	const struct vm *vm, char *err, size_t errlen);

/* The line vm_metrics_flush would write, resetting nothing; caller frees, NULL on
 * allocation failure. */
char *vm_metrics_render(const struct vm_metrics *vmm, const struct vm *vm);

#endif
