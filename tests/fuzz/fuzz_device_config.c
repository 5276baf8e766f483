/* libFuzzer harness for the device configuration section of a state file
 * (snapshot_load_devices) and the overrides restore applies to what it loaded
 * (snapshot_apply_overrides): the input is the section's payload. `make fuzz` builds it;
 * `make fuzz-seeds` rewrites its seeds from sections snapshot_save_devices writes.
 * A loaded configuration must hold only names the rest of ember can use: at most
 * VM_MAX_DRIVES drives and VM_MAX_NETS interfaces, every id 1 to 64 letters, digits or _
 * and unique, a path per drive, a tap name of 1 to 15 characters per interface, vsock
 * with a cid of 3 or more and a socket; at most VM_MAX_PMEM pmem devices, ids as drives'
 * each with a path. Overrides by id then find their device or are
 * refused; a refused section says why, starting "state file: ". Any violation traps. */
#include <stdio.h>
#include <string.h>

#include "ember/snapshot.h"
#include "ember/snapshot_file.h"

#include "../../src/vmm/vm_internal.h"
#include "fuzz.h"
#include "one_section.h"

static void check_id(const char *id)
{
	size_t n;

	CHECK(id != NULL);
	n = strlen(id);
	CHECK(n >= 1 && n <= 64);
	for (size_t i = 0; i < n; i++)
		CHECK((id[i] >= 'a' && id[i] <= 'z') || (id[i] >= 'A' && id[i] <= 'Z') ||
			(id[i] >= '0' && id[i] <= '9') || id[i] == '_');
}

static void check_loaded(const struct vm_config *c)
{
	CHECK(c->nr_drives <= VM_MAX_DRIVES && c->nr_nets <= VM_MAX_NETS);
	CHECK(c->device_discovery == DISCOVERY_ACPI || c->device_discovery == DISCOVERY_CMDLINE);
	for (unsigned i = 0; i < c->nr_drives; i++) {
		check_id(c->drives[i].id);
		CHECK(c->drives[i].path && c->drives[i].path[0]);
		for (unsigned k = 0; k < i; k++)
			CHECK(strcmp(c->drives[k].id, c->drives[i].id) != 0);
	}
	for (unsigned i = 0; i < c->nr_nets; i++) {
		check_id(c->nets[i].id);
		CHECK(c->nets[i].tap && c->nets[i].tap[0] && strlen(c->nets[i].tap) < 16);
		for (unsigned k = 0; k < i; k++)
			CHECK(strcmp(c->nets[k].id, c->nets[i].id) != 0);
	}
	CHECK(!c->vsock.enabled || (c->vsock.guest_cid >= 3 && c->vsock.uds_path));
	CHECK(c->nr_pmem <= VM_MAX_PMEM);
	for (unsigned i = 0; i < c->nr_pmem; i++) {
		check_id(c->pmem[i].id);
		CHECK(c->pmem[i].path && c->pmem[i].path[0]);
		for (unsigned k = 0; k < i; k++)
			CHECK(strcmp(c->pmem[k].id, c->pmem[i].id) != 0);
	}
}

/* Override the first drive and interface by their ids, and a device that is not there. */
static void check_overrides(const struct vm_config *loaded)
{
	struct drive_override d = { .drive_id = "rootfs", .path_on_host = "/moved/rootfs.img" };
	struct net_override n = { .iface_id = "eth0", .host_dev_name = "tap9" };
	struct restore_params p = { .drive_overrides = &d,
		.nr_drive_overrides = 1,
		.net_overrides = &n,
		.nr_net_overrides = 1 };
	struct vm_config c = *loaded;
	bool has_drive = false, has_net = false;
	char err[512] = "";
	int ret;

	for (unsigned i = 0; i < c.nr_drives; i++)
		has_drive |= !strcmp(c.drives[i].id, d.drive_id);
	for (unsigned i = 0; i < c.nr_nets; i++)
		has_net |= !strcmp(c.nets[i].id, n.iface_id);
	ret = snapshot_apply_overrides(&p, &c, err, sizeof(err));
	CHECK((ret == 0) == (has_drive && has_net));
	if (ret == 0) {
		check_loaded(&c);
		return;
	}
	CHECK(err[0] && strstr(err, has_net ? "rootfs" : "eth0"));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* The current version (3: with pmem devices); older payloads are its prefixes. */
	struct snap_reader *r = fuzz_one_section(SNAP_SEC_DEVICE_CONFIG, 3, data, size);
	struct vm_config c;
	char err[512] = "";

	if (!r)
		return 0;
	vm_config_init(&c);
	if (snapshot_load_devices(r, &c, err, sizeof(err)) == 0) {
		check_loaded(&c);
		check_overrides(&c);
	} else {
		CHECK(strncmp(err, "state file: ", 12) == 0);
	}
	snap_reader_free(r);
	return 0;
}

#ifdef FUZZ_SEED_MAIN
static int save(const void *c, struct snap_writer *w)
{
	return snapshot_save_devices(c, w);
}

int main(int argc, char **argv)
{
	struct vm_config c;
	int bad = 0;

	if (argc != 2) {
		fprintf(stderr, "usage: %s CORPUS_DIR\n", argv[0]);
		return 2;
	}
	vm_config_init(&c);
	bad |= fuzz_seed_section(argv[1], "none", NULL, 0, save, &c);
	c.nr_drives = 2;
	c.drives[0] = (struct drive_config){ .id = "rootfs",
		.path = "/img/root.ext4",
		.root = 1,
		.limit = { .bandwidth = { 1 << 20, 0, 100 } } };
	c.drives[1] = (struct drive_config){ .id = "data", .path = "/img/data", .read_only = 1 };
	c.nr_nets = 1;
	c.nets[0] = (struct net_config){ .id = "eth0",
		.tap = "tap0",
		.has_mac = true,
		.mac = { 2, 0, 0, 0, 0, 1 } };
	c.vsock = (struct vsock_config){ .enabled = true, .guest_cid = 3, .uds_path = "/v.sock" };
	c.entropy.enabled = true;
	c.balloon = (struct balloon_config){ .enabled = true, .amount_mib = 16 };
	c.nr_pmem = 2;
	c.pmem[0] = (struct pmem_config){ .id = "pmem0",
		.path = "/img/root.squashfs",
		.root = 1,
		.read_only = 1 };
	c.pmem[1] = (struct pmem_config){ .id = "pmem1",
		.path = "/img/data",
		.limit = { .ops = { 10, 0, 1000 } } };
	bad |= fuzz_seed_section(argv[1], "machine", NULL, 0, save, &c);
	c.drives[0].id = NULL; /* issue 13: NULL ids met the overrides' strcmp */
	c.nets[0].id = NULL;
	c.pmem[1].id = NULL;
	bad |= fuzz_seed_section(argv[1], "null_ids", NULL, 0, save, &c);
	return bad ? 1 : 0;
}
#endif
