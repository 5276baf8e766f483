/* Restore's checks of a state file, made before anything is built: every section read as
 * restore will read it and held against this host, the restore parameters and the memory
 * file. No KVM, so unit tests and fuzzers reach all of it. */
#include "vm_internal.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "ember/arch.h"
#include "ember/log.h"
#include "ember/memory_file.h"
#include "ember/snapshot.h"
#include "ember/snapshot_file.h"
#include "ember/snapshot_id.h"

/* The state file's id (*found false: it has none) against the memory file's (File
 * backend). With Uffd the memory file is the handler's and ember never sees its name:
 * ember-uffd --state checks there. */
static int check_pair(const struct snap_reader *r, const struct restore_params *p,
	struct snap_id *id, bool *found, char *err, size_t errlen)
{
	int ret = snap_id_load(r, id, found, NULL, NULL, err, errlen);

	if (ret)
		return ret;
	if (p->backend == MEM_BACKEND_UFFD) {
		log_debug("restore: the memory file is the uffd handler's to check");
		return 0;
	}
	return mem_file_check_id(p->backend_path, p->state_path, *found ? id : NULL, err, errlen);
}

/* The index of the entry named `id` among `n` ids, or n. The ids were checked when the
 * configuration was loaded (vm_config_check_names): none is NULL. */
static unsigned find_id(const char *const *ids, unsigned n, const char *id)
{
	unsigned k = 0;

	while (k < n && strcmp(ids[k], id))
		k++;
	return k;
}

static int apply_nets(const struct restore_params *p, struct vm_config *c, char *err, size_t errlen)
{
	const char *ids[VM_MAX_NETS];

	for (unsigned i = 0; i < c->nr_nets; i++)
		ids[i] = c->nets[i].id;
	for (unsigned i = 0; i < p->nr_net_overrides; i++) {
		const struct net_override *o = &p->net_overrides[i];
		unsigned k;
		if (!o->iface_id) {
			snprintf(err, errlen, "net override: iface_id is required");
			return -EINVAL;
		}
		k = find_id(ids, c->nr_nets, o->iface_id);
		if (k == c->nr_nets) {
			snprintf(err, errlen,
				"Unknown Network Device: no interface '%s' in the "
				"snapshot",
				o->iface_id);
			return -EINVAL;
		}
		if (!o->host_dev_name || !o->host_dev_name[0] || strlen(o->host_dev_name) >= 16) {
			snprintf(err, errlen,
				"net override '%s': tap needs a name of 1 to 15 "
				"characters",
				o->iface_id);
			return -EINVAL;
		}
		c->nets[k].tap = (char *)o->host_dev_name;
	}
	return 0;
}

static int apply_drives(const struct restore_params *p, struct vm_config *c, char *err,
	size_t errlen)
{
	const char *ids[VM_MAX_DRIVES];

	for (unsigned i = 0; i < c->nr_drives; i++)
		ids[i] = c->drives[i].id;
	for (unsigned i = 0; i < p->nr_drive_overrides; i++) {
		const struct drive_override *o = &p->drive_overrides[i];
		unsigned k;
		if (!o->drive_id) {
			snprintf(err, errlen, "drive override: drive_id is required");
			return -EINVAL;
		}
		k = find_id(ids, c->nr_drives, o->drive_id);
		if (k == c->nr_drives) {
			snprintf(err, errlen, "Unknown Block Device: no drive '%s' in the snapshot",
				o->drive_id);
			return -EINVAL;
		}
		if (!o->path_on_host || !o->path_on_host[0]) {
			snprintf(err, errlen, "drive override '%s': path_on_host is empty",
				o->drive_id);
			return -EINVAL;
		}
		c->drives[k].path = (char *)o->path_on_host;
	}
	return 0;
}

int snapshot_apply_overrides(const struct restore_params *p, struct vm_config *c, char *err,
	size_t errlen)
{
	int ret = apply_nets(p, c, err, errlen);

	if (!ret)
		ret = apply_drives(p, c, err, errlen);
	if (!ret && p->vsock_uds_path) {
		if (!c->vsock.enabled) {
			snprintf(err, errlen, "vsock override: the snapshot has no vsock device");
			return -EINVAL;
		}
		c->vsock.uds_path = (char *)p->vsock_uds_path;
	}
	return ret;
}

/* What the memory backend needs, checked before KVM is touched. File: the memory file is
 * mapped privately, so hugetlbfs pages cannot come from it; and a file shorter than the
 * regions would turn the guest's first touch past its end into SIGBUS in ember. */
static int check_backend(const struct restore_params *p, const struct vm_config *cfg, char *err,
	size_t errlen)
{
	uint64_t need = cfg->mem_mib << 20;
	struct stat st;

	if (p->backend != MEM_BACKEND_FILE)
		return 0;
	if (cfg->mem_backing == GUEST_MEM_HUGETLB) {
		snprintf(err, errlen,
			"Cannot restore hugetlbfs backed snapshot by mapping the "
			"memory file. Please use uffd.");
		return -EINVAL;
	}
	if (stat(p->backend_path, &st) < 0) {
		int e = errno;
		snprintf(err, errlen, "memory file %s: %s", p->backend_path, strerror(e));
		return -e;
	}
	if (!S_ISREG(st.st_mode) || (uint64_t)st.st_size < need) {
		snprintf(err, errlen, "memory file %s: %llu bytes, its regions need %llu",
			p->backend_path, (unsigned long long)st.st_size, (unsigned long long)need);
		return -EINVAL;
	}
	return 0;
}

int snapshot_check_restore(const struct snap_reader *r, const struct restore_params *p,
	const char *host_vendor, struct vm_config *cfg, struct snap_id *id, bool *has_id, char *err,
	size_t errlen)
{
	int ret = snapshot_load_vm_info(r, cfg, err, errlen);

	if (!ret)
		ret = check_pair(r, p, id, has_id, err, errlen);
	if (!ret)
		ret = snapshot_check_memory_layout(r, cfg->mem_mib, err, errlen);
	if (!ret)
		ret = check_backend(p, cfg, err, errlen);
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
	return ret ? ret : vm_config_check_restored(cfg, err, errlen);
}
