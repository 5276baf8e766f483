/* The VM's half of a metrics line (util's metrics.c writes the line): vCPU exits as
 * deltas from the last line written, boot times and state, each device's counters. */
#include "ember/vm_metrics.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include <cJSON.h>

#include "ember/metrics.h"
#include "ember/vm.h"

static void add_u64(cJSON *obj, const char *key, uint64_t v)
{
	cJSON_AddNumberToObject(obj, key, (double)v);
}

#define METRICS_MAX_DEVICES 32

/* Each device's counters (virtio kicks, interrupts, needs_reset from hostile guest input,
 * the model's own), keyed "<kind>@0x<base>"; cumulative, as the device keeps them. */
static void add_devices(cJSON *obj, const struct vm *vm)
{
	struct vm_device_info dev[METRICS_MAX_DEVICES];
	/* vm_devices only reads the VM; it is not const because device stats take locks. */
	int n = vm_devices((struct vm *)vm, dev, METRICS_MAX_DEVICES);

	for (int i = 0; obj && i < n && i < METRICS_MAX_DEVICES; i++) {
		char key[64];
		cJSON *d;

		if (!dev[i].nr_stats)
			continue;
		snprintf(key, sizeof(key), "%s@0x%llx", dev[i].kind,
			(unsigned long long)dev[i].base);
		d = cJSON_AddObjectToObject(obj, key);
		for (unsigned k = 0; d && k < dev[i].nr_stats; k++)
			add_u64(d, dev[i].stats[k].name, dev[i].stats[k].value);
	}
}

/* vCPU exits of `vm` summed over its vCPUs; false if it has none running. */
static bool read_exits(const struct vm *vm, uint64_t sum[VCPU_EXIT_KINDS])
{
	uint64_t one[VCPU_EXIT_KINDS];
	unsigned n = vm ? vm_vcpu_count(vm) : 0;
	bool any = false;

	memset(sum, 0, sizeof(uint64_t) * VCPU_EXIT_KINDS);
	for (unsigned i = 0; i < n; i++) {
		if (vm_vcpu_exits(vm, i, one, VCPU_EXIT_KINDS))
			continue;
		any = true;
		for (unsigned k = 0; k < VCPU_EXIT_KINDS; k++)
			sum[k] += one[k];
	}
	return any;
}

/* One line being made: the VM, what was written of it before, the exits read now. */
struct line {
	const struct vm_metrics *before;
	struct vm_metrics *after; /* NULL when rendering only */
	const struct vm *vm;
	uint64_t exits_now[VCPU_EXIT_KINDS];
};

static void add_vm(void *opaque, cJSON *root)
{
	struct line *l = opaque;
	const struct vm *vm = l->vm;
	uint64_t *exits_now = l->exits_now;
	bool have_exits;
	char key[64];
	cJSON *o;

	/* Exits: since the last flush. A new VM (restore) starts its counts from zero. */
	have_exits = read_exits(vm, exits_now);
	o = cJSON_AddObjectToObject(root, "vcpu");
	for (unsigned k = 0; k < VCPU_EXIT_KINDS; k++) {
		uint64_t seen = vm == l->before->exits_vm ? l->before->exits_seen[k] : 0;

		if (!have_exits)
			exits_now[k] = seen;
		snprintf(key, sizeof(key), "exit_%s", vcpu_exit_kind_name(k));
		add_u64(o, key, exits_now[k] >= seen ? exits_now[k] - seen : exits_now[k]);
	}

	o = cJSON_AddObjectToObject(root, "vmm");
	if (vm) {
		struct vm_times t;
		vm_times(vm, &t);
		add_u64(o, "start_us", t.start_us);
		add_u64(o, "first_run_us", t.first_run_us);
		add_u64(o, "boot_us", t.boot_us);
		add_u64(o, "boot_time_us",
			t.boot_us > t.start_us && t.start_us ? t.boot_us - t.start_us : 0);
		/* The last snapshot, its syncs apart (Firecracker's latency counts them in). */
		add_u64(o, "last_snapshot_us", t.last_snapshot_us);
		add_u64(o, "last_snapshot_sync_us", t.last_snapshot_sync_us);
		add_u64(o, "last_snapshot_bytes", t.last_snapshot_bytes);
		add_u64(o, "restore_us", t.restore_us);
		cJSON_AddStringToObject(o, "state", vm_state_name(vm_state(vm)));
	} else {
		cJSON_AddStringToObject(o, "state", "none");
	}

	/* Firecracker's serial counter, cumulative as the devices' counters. */
	o = cJSON_AddObjectToObject(root, "uart");
	add_u64(o, "rate_limiter_dropped_bytes", vm ? vm_console_dropped((struct vm *)vm) : 0);

	if (vm)
		add_devices(cJSON_AddObjectToObject(root, "devices"), vm);
}

/* The line is written: its exits are what the next one counts from. */
static void written(void *opaque)
{
	struct line *l = opaque;

	l->after->exits_vm = l->vm;
	memcpy(l->after->exits_seen, l->exits_now, sizeof(l->exits_now));
}

int vm_metrics_flush(struct vm_metrics *vmm, const struct vm *vm, char *err, size_t errlen)
{
	struct line l = { .before = vmm, .after = vmm, .vm = vm };
	const struct metrics_source src = { .add = add_vm, .written = written, .opaque = &l };

	return metrics_flush(&src, err, errlen);
}

char *vm_metrics_render(const struct vm_metrics *vmm, const struct vm *vm)
{
	struct line l = { .before = vmm, .vm = vm };
	const struct metrics_source src = { .add = add_vm, .opaque = &l };

	return metrics_render(&src);
}
