/* A fake VM for unit tests of modules that drive one (the API): the lifecycle functions of
 * vm.h and snapshot.h, recording calls and failing on request. */
#ifndef EMBER_TEST_FAKE_VM_H
#define EMBER_TEST_FAKE_VM_H

#include "ember/rate_limiter.h"
#include "ember/snapshot.h"
#include "ember/vm.h"

struct fake_vm_control {
	int start_ret; /* vm_start returns this (with a message) when non-zero */
	int snapshot_ret;
	bool restore_fails;
	int vms_alive;    /* vm_new/vm_restore minus vm_free */
	int ctrl_alt_del; /* vm_send_ctrl_alt_del calls that succeeded */
	struct snapshot_params last_snapshot;
	char last_snapshot_path[256];
	struct restore_params last_restore;
	char last_restore_path[256];
	char last_restore_vsock[256];
	struct vm *last;
	/* Run-time device updates: how many were applied, and the last ones. */
	int drive_updates, net_updates;
	char last_drive_path[256];
	struct rate_limit_update last_drive_limit, last_rx, last_tx;
	bool last_drive_had_limit;
	/* Balloon hinting: the driver is not up (start/stop answer -EAGAIN); the state. */
	bool hint_driver_down;
	struct balloon_hinting hint;
	/* Memory hotplug: the guest's driver has not started the device (-EAGAIN). */
	bool hotplug_driver_down;
};

extern struct fake_vm_control fake_vm;

void fake_vm_reset(void);
/* Make the VM end as the guest would (the observer's exited callback runs). */
void fake_vm_exit(struct vm *vm, enum vm_exit_reason reason);

#endif
