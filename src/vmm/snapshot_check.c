/* Restore's checks of a state file, made before anything is built: every section read as
 * restore will read it and held against this host, the restore parameters and the memory
 * file. No KVM, so unit tests and fuzzers reach all of it. */
#include "vm_internal.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "ember/arch.h"
#include "ember/log.h"
#include "ember/memory_file.h"
#include "ember/snapshot.h"
#include "ember/snapshot_file.h"
#include "ember/snapshot_id.h"

/* The state file's id against the memory file's (File backend). With Uffd the memory
 * file is the handler's and ember never sees its name: ember-uffd --state checks there. */
static int check_pair(const struct snap_reader *r, const struct restore_params *p, char *err,
	size_t errlen)
{
	struct snap_id id;
	bool found;
	int ret = snap_id_load(r, &id, &found, err, errlen);

	if (ret)
		return ret;
	if (p->backend == MEM_BACKEND_UFFD) {
		log_debug("restore: the memory file is the uffd handler's to check");
		return 0;
	}
	return mem_file_check_id(p->backend_path, p->state_path, found ? &id : NULL, err,
		errlen);
}

int snapshot_apply_overrides(const struct restore_params *p, struct vm_config *c, char *err,
	size_t errlen)
{
	for (unsigned i = 0; i < p->nr_net_overrides; i++) {
		const struct net_override *o = &p->net_overrides[i];
		unsigned k = 0;
		while (k < c->nr_nets && strcmp(c->nets[k].id, o->iface_id))
			k++;
		if (k == c->nr_nets) {
			snprintf(err, errlen, "Unknown Network Device: no interface '%s' in the "
				"snapshot", o->iface_id);
			return -EINVAL;
		}
		if (!o->host_dev_name || !o->host_dev_name[0] || strlen(o->host_dev_name) >= 16) {
			snprintf(err, errlen, "net override '%s': tap needs a name of 1 to 15 "
				"characters", o->iface_id);
			return -EINVAL;
		}
		c->nets[k].tap = (char *)o->host_dev_name;
	}
	for (unsigned i = 0; i < p->nr_drive_overrides; i++) {
		const struct drive_override *o = &p->drive_overrides[i];
		unsigned k = 0;
		while (k < c->nr_drives && strcmp(c->drives[k].id, o->drive_id))
			k++;
		if (k == c->nr_drives) {
			snprintf(err, errlen, "Unknown Block Device: no drive '%s' in the snapshot",
				o->drive_id);
			return -EINVAL;
		}
		if (!o->path_on_host || !o->path_on_host[0]) {
			snprintf(err, errlen, "drive override '%s': path_on_host is empty", o->drive_id);
			return -EINVAL;
		}
		c->drives[k].path = (char *)o->path_on_host;
	}
	if (p->vsock_uds_path) {
		if (!c->vsock.enabled) {
			snprintf(err, errlen, "vsock override: the snapshot has no vsock device");
			return -EINVAL;
		}
		c->vsock.uds_path = (char *)p->vsock_uds_path;
	}
	return 0;
}

int snapshot_check_restore(const struct snap_reader *r, const struct restore_params *p,
	const char *host_vendor, struct vm_config *cfg, char *err, size_t errlen)
{
	int ret = snapshot_load_vm_info(r, cfg, err, errlen);

	if (!ret)
		ret = check_pair(r, p, err, errlen);
	if (!ret)
		ret = snapshot_check_memory_layout(r, cfg->mem_mib, err, errlen);
	if (!ret && snap_reader_count_id(r, SNAP_SEC_VCPU) != cfg->vcpus) {
		snprintf(err, errlen, "state file: %u vcpu sections for %u vCPUs",
			snap_reader_count_id(r, SNAP_SEC_VCPU), cfg->vcpus);
		ret = -EINVAL;
	}
	if (!ret)
		ret = arch_state_check(r, cfg->vcpus, host_vendor, err, errlen);
	if (!ret)
		ret = snapshot_load_devices(r, cfg, err, errlen);
	if (!ret)
		ret = snapshot_apply_overrides(p, cfg, err, errlen);
	return ret ? ret : vm_config_check(cfg, err, errlen);
}
