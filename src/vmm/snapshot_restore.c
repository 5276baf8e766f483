/* Snapshot restore: open and check a state file against this host, make a VM of the
 * configuration it holds, and hand it to the restore recipe (vm_recipe.c), which
 * rebuilds the machine on the memory file (or a page-fault handler) and applies the
 * saved state. */
#include "ember/snapshot.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ember/arch.h"
#include "ember/clock.h"
#include "ember/console.h"
#include "ember/log.h"
#include "ember/snapshot_file.h"
#include "vm_internal.h"

struct vm *vm_restore(const struct restore_params *p, struct ev_loop *loop, char *err,
	size_t errlen)
{
	struct snap_reader *r = NULL;
	struct vm_config cfg;
	struct vm *vm = NULL;
	char host_vendor[13];
	struct snap_id id = { 0 };
	bool has_id = false;
	uint64_t t0 = mono_ns() / 1000;
	int ret;

	err[0] = 0;
	if (!p->state_path || !p->backend_path) {
		snprintf(err, errlen, "restore: needs a state file and a memory backend path");
		return NULL;
	}
	ret = snap_reader_open(&r, p->state_path, err, errlen);
	if (ret)
		return NULL;
	vm_config_init(&cfg);
	arch_host_vendor(host_vendor);
	ret = snapshot_check_restore(r, p, host_vendor, &cfg, &id, &has_id, err, errlen);
	if (!ret)
		ret = snapshot_load_cpu_model(r, &cfg, err, errlen);
	if (ret)
		goto out;
	cfg.track_dirty_pages = p->track_dirty_pages;
	cfg.console = p->console_stdio ? CONSOLE_STDIO : CONSOLE_NONE;
	cfg.mmds = p->mmds;
	vm = vm_new(&cfg, loop, err, errlen);
	if (!vm)
		goto out;
	vm->start_us = log_uptime_us();
	ret = vm_recipe_restore(vm, r, p, err, errlen);
	if (!ret && atomic_load(&vm->uffd_lost)) {
		snprintf(err, errlen, "restore: the page-fault handler went away during restore");
		ret = -EIO;
	}
	if (ret) {
		vm_free(vm);
		vm = NULL;
		goto out;
	}
	vm->state = VM_PAUSED;
	/* Guest memory is this snapshot's now: a diff taken later holds what changed since. */
	vm->has_last_snapshot = has_id;
	vm->last_snapshot = id;
	console_input_enable(vm->console, true);
	vm->last_restore_us = mono_ns() / 1000 - t0;
	log_info("restore: %u vCPUs, %llu MiB from %s in %llu us", cfg.vcpus,
		(unsigned long long)cfg.mem_mib, p->backend == MEM_BACKEND_UFFD ? "uffd" : "file",
		(unsigned long long)vm->last_restore_us);
	if (p->resume && vm_resume(vm, err, errlen)) {
		vm_free(vm);
		vm = NULL;
	}
out:
	free(cfg.cpu_template); /* vm_new copied it */
	snap_reader_free(r);
	return vm;
}
