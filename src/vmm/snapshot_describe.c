/* `ember snapshot info`: what a state file holds, for a person, without building a VM. */
#include "ember/snapshot.h"

#include <stdio.h>

#include "ember/config.h"
#include "ember/snapshot_file.h"
#include "ember/snapshot_id.h"
#include "vm_internal.h"

static void describe_devices(const struct snap_reader *r, struct vm_config *cfg, FILE *out)
{
	char err[128];

	if (snapshot_load_devices(r, cfg, err, sizeof(err))) {
		fprintf(out, "devices:       %s\n", err);
		return;
	}
	for (unsigned i = 0; i < cfg->nr_drives; i++)
		fprintf(out, "drive:         %s %s%s\n", cfg->drives[i].id, cfg->drives[i].path,
			cfg->drives[i].read_only ? " (read-only)" : "");
	for (unsigned i = 0; i < cfg->nr_nets; i++)
		fprintf(out, "net:           %s tap %s\n", cfg->nets[i].id, cfg->nets[i].tap);
	for (unsigned i = 0; i < cfg->nr_pmem; i++)
		fprintf(out, "pmem:          %s %s%s\n", cfg->pmem[i].id, cfg->pmem[i].path,
			cfg->pmem[i].read_only ? " (read-only)" : "");
	if (cfg->vsock.enabled)
		fprintf(out, "vsock:         cid %u %s\n", cfg->vsock.guest_cid,
			cfg->vsock.uds_path);
	if (cfg->entropy.enabled)
		fprintf(out, "entropy:       yes\n");
	if (cfg->balloon.enabled)
		fprintf(out, "balloon:       %u MiB\n", cfg->balloon.amount_mib);
}

static void describe_id(const struct snap_reader *r, FILE *out)
{
	char err[128], hex[SNAP_ID_HEX_LEN + 1];
	struct snap_id id, parent;
	bool found, has_parent;

	if (snap_id_load(r, &id, &found, &parent, &has_parent, err, sizeof(err)))
		fprintf(out, "snapshot id:   %s\n", err);
	else if (!found)
		fprintf(out, "snapshot id:   none (written before snapshot ids)\n");
	else {
		snap_id_format(&id, hex);
		fprintf(out, "snapshot id:   %s\n", hex);
		/* A diff's parent: the snapshot whose full memory it merges onto. */
		snap_id_format(&parent, hex);
		fprintf(out, "parent:        %s\n", has_parent ? hex : "none");
	}
}

int vm_snapshot_format(const char *state_path, unsigned *major, unsigned *minor, char *err,
	size_t errlen)
{
	struct snap_reader *r = NULL;
	int ret = snap_reader_open(&r, state_path, err, errlen);

	if (ret)
		return ret;
	snap_reader_version(r, major, minor);
	snap_reader_free(r);
	return 0;
}

int vm_snapshot_describe(const char *state_path, FILE *out, char *err, size_t errlen)
{
	static const char *const section_names[] = { "?", "vm info", "memory", "vm state", "vcpu",
		"device" };
	struct snap_reader *r = NULL;
	struct vm_config cfg;
	unsigned major, minor;
	int ret = snap_reader_open(&r, state_path, err, errlen);

	if (ret)
		return ret;
	vm_config_init(&cfg);
	ret = snapshot_load_vm_info(r, &cfg, err, errlen);
	if (!ret)
		ret = snapshot_check_memory_layout(r, cfg.mem_mib, err, errlen);
	if (!ret) {
		snap_reader_version(r, &major, &minor);
		fprintf(out, "state file:    %s\n", state_path);
		fprintf(out, "format:        ember snapshot v%u.%u\n", major, minor);
		describe_id(r, out);
		fprintf(out, "vcpus:         %u\n", cfg.vcpus);
		fprintf(out, "memory:        %llu MiB (%s)\n", (unsigned long long)cfg.mem_mib,
			vm_config_backing_name(cfg.mem_backing));
		fprintf(out, "kernel:        %s\n", cfg.kernel ? cfg.kernel : "-");
		fprintf(out, "initrd:        %s\n", cfg.initrd ? cfg.initrd : "-");
		fprintf(out, "cmdline:       %s\n", cfg.cmdline ? cfg.cmdline : "");
		describe_devices(r, &cfg, out);
		fprintf(out, "sections:      %u\n", snap_reader_count(r));
		for (unsigned id = SNAP_SEC_VM_INFO; id <= SNAP_SEC_DEVICE; id++)
			fprintf(out, "  %-12s %u\n", section_names[id],
				snap_reader_count_id(r, id));
		for (unsigned i = 0; i < snap_reader_count_id(r, SNAP_SEC_DEVICE); i++) {
			struct snap_cursor cur;
			const char *name = NULL;
			if (!snap_reader_find(r, SNAP_SEC_DEVICE, i, &cur) &&
				!snap_get_str(&cur, &name, 64) && name)
				fprintf(out, "device:        %s\n", name);
		}
	}
	snap_reader_free(r);
	return ret;
}
