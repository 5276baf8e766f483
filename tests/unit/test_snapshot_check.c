/* Unit tests for restore's early checks (snapshot_check.c, arch_state_check): CRC-valid
 * state files built to be wrong in one way each, refused with a message that names the
 * problem, and the same check passing on the well-formed original afterwards. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cmocka.h>

#include "ember/arch.h"
#include "ember/cpuid.h"
#include "ember/snapshot.h"
#include "ember/snapshot_file.h"
#include "ember/snapshot_id.h"
#include "snap_image.h"

#include "../../src/arch/x86_64/state_internal.h"
#include "../../src/vmm/vm_internal.h"

#define HOST_VENDOR "GenuineIntel"
#define MEM_MIB 64

/* One state file to craft: a well-formed machine by default; each test spoils one thing. */
struct craft {
	struct vm vm; /* cfg and mem.regions, as the save functions read them */
	unsigned vcpu_sections;
	const char *vendor; /* vCPU 0's CPUID leaf 0; NULL: no leaf 0 */
	uint32_t xsave_len, nr_msrs, msrs_len;
	bool with_id;
	struct snap_id id;
};

/* Files in a fresh directory: the kernel, a drive, the state and memory files. */
struct files {
	char dir[64], kernel[96], drive[96], state[96], mem[96];
};

static struct files F;

static void touch(const char *path, off_t size)
{
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, size), 0);
	close(fd);
}

static int setup(void **state)
{
	(void)state;
	strcpy(F.dir, "/tmp/ember-check-XXXXXX");
	assert_non_null(mkdtemp(F.dir));
	snprintf(F.kernel, sizeof(F.kernel), "%s/vmlinux", F.dir);
	snprintf(F.drive, sizeof(F.drive), "%s/rootfs.img", F.dir);
	snprintf(F.state, sizeof(F.state), "%s/vm.state", F.dir);
	snprintf(F.mem, sizeof(F.mem), "%s/vm.mem", F.dir);
	touch(F.kernel, 4096);
	touch(F.drive, 1 << 20);
	touch(F.mem, (off_t)MEM_MIB << 20);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	unlink(F.kernel);
	unlink(F.drive);
	unlink(F.state);
	unlink(F.mem);
	rmdir(F.dir);
	return 0;
}

/* One vCPU, 64 MiB, one drive, one network interface. */
static void craft_init(struct craft *c)
{
	struct vm_config *cfg = &c->vm.cfg;

	memset(c, 0, sizeof(*c));
	vm_config_init(cfg);
	cfg->mem_mib = MEM_MIB;
	cfg->kernel = F.kernel;
	cfg->cmdline = "console=ttyS0";
	cfg->nr_drives = 1;
	cfg->drives[0] = (struct drive_config){ .id = "rootfs", .path = F.drive, .root = true };
	cfg->nr_nets = 1;
	cfg->nets[0] = (struct net_config){ .id = "eth0", .tap = "tap0" };
	c->vm.mem.nr_regions = guest_mem_layout((uint64_t)MEM_MIB << 20, c->vm.mem.regions);
	c->vcpu_sections = 1;
	c->vendor = HOST_VENDOR;
	c->xsave_len = sizeof(struct kvm_xsave);
	c->nr_msrs = 2;
	c->msrs_len = 4 + 2 * STATE_MSR_ENTRY;
	c->with_id = true;
	c->id = (struct snap_id){ .b = { 0xec, 0x4e, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12 } };
}

static void put_item(struct snap_writer *w, unsigned tag, size_t len)
{
	void *zero = calloc(1, len ? len : 1);

	assert_non_null(zero);
	assert_int_equal(state_put_item(w, tag, zero, len), 0);
	free(zero);
}

static void put_cpuid(struct snap_writer *w, const char *vendor)
{
	size_t len = sizeof(struct kvm_cpuid2) + 2 * sizeof(struct kvm_cpuid_entry2);
	struct kvm_cpuid2 *cpuid = calloc(1, len);

	assert_non_null(cpuid);
	cpuid->nent = 2;
	cpuid->entries[0].function = vendor ? 0 : 0x40000000; /* no leaf 0 without a vendor */
	cpuid->entries[0].eax = 0xd;
	if (vendor) {
		memcpy(&cpuid->entries[0].ebx, vendor, 4);
		memcpy(&cpuid->entries[0].edx, vendor + 4, 4);
		memcpy(&cpuid->entries[0].ecx, vendor + 8, 4);
	}
	cpuid->entries[1].function = 1;
	assert_int_equal(state_put_item(w, I_CPUID, cpuid, len), 0);
	free(cpuid);
}

static void put_msrs(struct snap_writer *w, const struct craft *c)
{
	uint8_t buf[4 + 4 * STATE_MSR_ENTRY] = { 0 };

	assert_true(c->msrs_len <= sizeof(buf));
	memcpy(buf, &c->nr_msrs, 4);
	assert_int_equal(state_put_item(w, I_MSRS, buf, c->msrs_len), 0);
}

/* A vCPU section in the order arch_vcpu_save writes it, with zeroed KVM structs. */
static void put_vcpu(struct snap_writer *w, const struct craft *c, uint32_t index)
{
	assert_int_equal(snap_section_begin(w, SNAP_SEC_VCPU, 1), 0);
	assert_int_equal(snap_put_u32(w, index), 0);
	put_item(w, I_MP_STATE, sizeof(struct kvm_mp_state));
	put_item(w, I_REGS, sizeof(struct kvm_regs));
	put_item(w, I_SREGS, sizeof(struct kvm_sregs));
	put_item(w, I_XSAVE, c->xsave_len);
	put_item(w, I_XCRS, sizeof(struct kvm_xcrs));
	put_item(w, I_DEBUGREGS, sizeof(struct kvm_debugregs));
	put_item(w, I_LAPIC, sizeof(struct kvm_lapic_state));
	put_item(w, I_TSC_KHZ, sizeof(uint32_t));
	put_cpuid(w, c->vendor);
	put_msrs(w, c);
	put_item(w, I_EVENTS, sizeof(struct kvm_vcpu_events));
	assert_int_equal(snap_section_end(w), 0);
}

static void put_vm_state(struct snap_writer *w)
{
	assert_int_equal(snap_section_begin(w, SNAP_SEC_VM_STATE, 1), 0);
	for (unsigned i = 0; i < 3; i++) {
		struct kvm_irqchip chip = { .chip_id = i };
		assert_int_equal(state_put_item(w, I_PIC_MASTER + i, &chip, sizeof(chip)), 0);
	}
	put_item(w, I_PIT, sizeof(struct kvm_pit_state2));
	put_item(w, I_CLOCK, sizeof(struct kvm_clock_data));
	assert_int_equal(snap_section_end(w), 0);
}

/* Write the crafted state file to F.state (CRC and all: the writer's). */
static void craft_write(const struct craft *c)
{
	struct snap_writer *w = snap_writer_new();
	char err[256];

	assert_non_null(w);
	assert_int_equal(snapshot_save_vm_info(&c->vm, w), 0);
	assert_int_equal(snapshot_save_memory_layout(&c->vm, w), 0);
	for (unsigned i = 0; i < c->vcpu_sections; i++)
		put_vcpu(w, c, i);
	put_vm_state(w);
	assert_int_equal(snapshot_save_devices(&c->vm.cfg, w), 0);
	if (c->with_id)
		assert_int_equal(snap_id_save(w, &c->id, NULL), 0);
	unlink(F.state); /* a new file each time: the writer never writes over one */
	assert_int_equal(snap_writer_write(w, F.state, err, sizeof(err)), 0);
	snap_writer_free(w);
}

static struct restore_params params(void)
{
	return (struct restore_params){ .state_path = F.state,
		.backend = MEM_BACKEND_FILE,
		.backend_path = F.mem };
}

/* Run the check as vm_restore does; the message for a refusal goes to err. */
static int check_with(const struct restore_params *p, const char *vendor, char *err, size_t errlen)
{
	struct snap_reader *r = NULL;
	struct vm_config cfg;
	struct snap_id id;
	bool has_id;
	int ret = snap_reader_open(&r, F.state, err, errlen);

	assert_int_equal(ret, 0);
	vm_config_init(&cfg);
	err[0] = '\0';
	ret = snapshot_check_restore(r, p, vendor, &cfg, &id, &has_id, err, errlen);
	snap_reader_free(r);
	return ret;
}

/* `c` is refused with a message containing `want`. */
static void refused_only(const struct craft *c, const struct restore_params *p, const char *want)
{
	char err[512];

	craft_write(c);
	assert_int_equal(check_with(p, HOST_VENDOR, err, sizeof(err)), -EINVAL);
	if (!strstr(err, want))
		fail_msg("message '%s' lacks '%s'", err, want);
}

/* The well-formed state passes: a refusal leaves nothing behind. */
static void good_still_passes(void)
{
	struct restore_params good = params();
	struct craft fine;
	char err[512];

	craft_init(&fine);
	craft_write(&fine);
	if (check_with(&good, HOST_VENDOR, err, sizeof(err)) != 0)
		fail_msg("the well-formed state is refused: %s", err);
}

static void assert_refused_with(const struct craft *c, const struct restore_params *p,
	const char *want)
{
	refused_only(c, p, want);
	good_still_passes();
}

static void assert_refused(const struct craft *c, const char *want)
{
	struct restore_params p = params();

	assert_refused_with(c, &p, want);
}

/* ---- tests ---- */

static void test_snapshot_check_accepts_a_well_formed_state(void **state)
{
	struct restore_params p = params();
	struct snap_reader *r = NULL;
	struct vm_config cfg;
	struct snap_id id;
	bool has_id = false;
	struct craft c;
	char err[512] = "";

	(void)state;
	craft_init(&c);
	craft_write(&c);
	assert_int_equal(snap_reader_open(&r, F.state, err, sizeof(err)), 0);
	vm_config_init(&cfg);
	assert_int_equal(snapshot_check_restore(r, &p, HOST_VENDOR, &cfg, &id, &has_id, err,
				 sizeof(err)),
		0);
	assert_true(has_id);
	assert_true(snap_id_equal(&id, &c.id));
	assert_int_equal(cfg.vcpus, 1);
	assert_int_equal(cfg.mem_mib, MEM_MIB);
	assert_int_equal(cfg.nr_drives, 1);
	assert_string_equal(cfg.drives[0].id, "rootfs");
	assert_string_equal(cfg.nets[0].tap, "tap0");
	snap_reader_free(r);
}

static void test_snapshot_check_refuses_a_vcpu_count_that_does_not_match(void **state)
{
	struct craft c;

	(void)state;
	craft_init(&c);
	c.vm.cfg.vcpus = 2; /* VM_INFO says two, one section follows */
	assert_refused(&c, "state file: 1 vcpu sections for 2 vCPUs");
	craft_init(&c);
	c.vcpu_sections = 2;
	assert_refused(&c, "state file: 2 vcpu sections for 1 vCPUs");
	craft_init(&c);
	c.vm.cfg.vcpus = VM_MAX_VCPUS + 1;
	c.vcpu_sections = 0;
	assert_refused(&c, "33 vCPUs is out of range 1..32");
	craft_init(&c);
	c.vm.cfg.vcpus = 0;
	c.vcpu_sections = 0;
	assert_refused(&c, "0 vCPUs is out of range");
}

static void test_snapshot_check_refuses_a_memory_size_this_host_cannot_give(void **state)
{
	struct craft c;

	(void)state;
	craft_init(&c);
	c.vm.cfg.mem_mib = vm_config_host_mem_mib() + 1024;
	c.vm.mem.nr_regions = guest_mem_layout(c.vm.cfg.mem_mib << 20, c.vm.mem.regions);
	assert_refused(&c, "MiB of memory does not fit this host");
	craft_init(&c);
	c.vm.cfg.mem_mib = VM_MIN_MEM_MIB - 1;
	assert_refused(&c, "15 MiB of memory does not fit this host");
}

static void test_snapshot_check_refuses_a_memory_layout_of_another_machine(void **state)
{
	struct craft c;

	(void)state;
	craft_init(&c);
	c.vm.mem.nr_regions = 0;
	assert_refused(&c, "state file: no memory regions");
	craft_init(&c);
	c.vm.mem.regions[0].size -= 4096; /* one page short of the VM_INFO size */
	assert_refused(&c, "memory region 0 (0x0, 67104768 bytes) is not one slot of a 64 MiB");
	craft_init(&c);
	c.vm.mem.regions[0].gpa = 1 << 20;
	assert_refused(&c, "no DRAM region at address 0");
	craft_init(&c);
	c.vm.mem.nr_regions = 3;
	c.vm.mem.regions[1] = (struct guest_mem_region){ .gpa = 4ULL << 30,
		.size = 128 << 20,
		.file_offset = (uint64_t)MEM_MIB << 20 };
	c.vm.mem.regions[2] = (struct guest_mem_region){ .gpa = 5ULL << 30,
		.size = 128 << 20,
		.file_offset = (uint64_t)(MEM_MIB + 128) << 20 };
	assert_refused(&c, "3 memory regions, a 64 MiB machine has 1");
	/* One more region is a hotplug area: at the device base, after RAM in the file,
	 * whole 128 MiB slots; anything else is refused. */
	craft_init(&c);
	c.vm.mem.nr_regions = 2;
	c.vm.mem.regions[1] = (struct guest_mem_region){ .gpa = 4ULL << 30,
		.size = 1 << 20,
		.file_offset = (uint64_t)MEM_MIB << 20 };
	assert_refused(&c, "memory region 1 (0x100000000, 1048576 bytes) is not one slot");
	c.vm.mem.regions[1].size = 128 << 20;
	c.vm.mem.regions[1].gpa = 6ULL << 30;
	assert_refused(&c, "memory region 1 (0x180000000, 134217728 bytes) is not one slot");
	c.vm.mem.regions[1].gpa = 4ULL << 30;
	c.vm.mem.regions[1].file_offset = 0;
	assert_refused(&c, "memory region 1 (0x100000000, 134217728 bytes) is not one slot");
}

static void test_snapshot_check_refuses_huge_pages_it_cannot_map(void **state)
{
	struct restore_params p = params();
	struct craft c;
	char err[512];

	(void)state;
	/* A hugetlbfs snapshot cannot be mapped from its memory file (Firecracker's words):
	 * refused here, before any KVM call, not once the VM is half built. */
	craft_init(&c);
	c.vm.cfg.mem_backing = GUEST_MEM_HUGETLB;
	assert_refused(&c,
		"Cannot restore hugetlbfs backed snapshot by mapping the memory "
		"file. Please use uffd.");
	/* With Uffd it passes the early check (the handler gives the pages). */
	craft_write(&c);
	p.backend = MEM_BACKEND_UFFD;
	p.backend_path = "/nonexistent/uffd.sock";
	assert_int_equal(check_with(&p, HOST_VENDOR, err, sizeof(err)), 0);
	/* Huge pages hold 2 MiB each. */
	craft_init(&c);
	c.vm.cfg.mem_backing = GUEST_MEM_HUGETLB;
	c.vm.cfg.mem_mib = MEM_MIB - 1;
	c.vm.mem.nr_regions = guest_mem_layout(c.vm.cfg.mem_mib << 20, c.vm.mem.regions);
	assert_refused_with(&c, &p, "63 MiB is not a multiple of 2 MiB huge pages");
}

static void test_snapshot_check_refuses_an_unmerged_diff(void **state)
{
	struct restore_params p;
	char hex[SNAP_ID_HEX_LEN + 1], value[SNAP_ID_HEX_LEN + 8];
	struct craft c;

	(void)state;
	craft_init(&c);
	snap_id_format(&c.id, hex);
	snprintf(value, sizeof(value), "%s diff", hex);
	if (setxattr(F.mem, SNAP_ID_XATTR, value, strlen(value), 0) < 0)
		skip(); /* no user xattrs where the test runs */
	p = params();
	refused_only(&c, &p, "holds only the pages snapshot");
	assert_int_equal(removexattr(F.mem, SNAP_ID_XATTR), 0);
	good_still_passes();
}

static void test_snapshot_check_refuses_another_cpu_vendor(void **state)
{
	struct craft c;

	(void)state;
	craft_init(&c);
	c.vendor = "AuthenticAMD";
	assert_refused(&c,
		"snapshot CPU vendor AuthenticAMD differs from this host's "
		"GenuineIntel");
	craft_init(&c);
	c.vendor = NULL;
	assert_refused(&c, "vcpu 0 cpuid has no leaf 0");
}

static void test_snapshot_check_refuses_a_memory_file_shorter_than_its_regions(void **state)
{
	struct restore_params p = params();
	struct craft c;

	(void)state;
	craft_init(&c);
	touch(F.mem, ((off_t)MEM_MIB << 20) - 4096);
	refused_only(&c, &p, "67104768 bytes, its regions need 67108864");
	touch(F.mem, (off_t)MEM_MIB << 20);
	good_still_passes();
}

/* Issue 13 item 5: a NULL id met the overrides' strcmp before any KVM call. */
static void test_snapshot_check_refuses_null_device_names_with_overrides(void **state)
{
	struct drive_override d = { .drive_id = "rootfs", .path_on_host = F.drive };
	struct net_override n = { .iface_id = "eth0", .host_dev_name = "tap1" };
	struct restore_params p = params();
	struct craft c;

	(void)state;
	p.drive_overrides = &d;
	p.nr_drive_overrides = 1;
	p.net_overrides = &n;
	p.nr_net_overrides = 1;
	craft_init(&c);
	c.vm.cfg.drives[0].id = NULL;
	assert_refused_with(&c, &p,
		"state file: device configuration: drive: an id of 1 to "
		"64 characters is required");
	craft_init(&c);
	c.vm.cfg.nets[0].id = NULL;
	assert_refused_with(&c, &p,
		"state file: device configuration: net: an id of 1 to 64 "
		"characters is required");
	craft_init(&c);
	c.vm.cfg.drives[0].path = NULL;
	assert_refused(&c, "state file: device configuration: drive 'rootfs': no path");
	craft_init(&c);
	c.vm.cfg.nets[0].tap = NULL;
	assert_refused(&c,
		"state file: device configuration: net 'eth0': tap needs a device "
		"name");
	craft_init(&c);
	c.vm.cfg.nets[1] = c.vm.cfg.nets[0];
	c.vm.cfg.nr_nets = 2;
	assert_refused(&c, "state file: device configuration: net 'eth0': duplicate id");
}

/* The device configuration of `w`'s image (w is freed), loaded as restore does. */
static void load_devices(struct snap_writer *w, struct vm_config *cfg)
{
	struct snap_reader *r = snap_image_reader(w);
	char err[256];

	vm_config_init(cfg);
	if (snapshot_load_devices(r, cfg, err, sizeof(err)))
		fail_msg("device configuration refused: %s", err);
	snap_reader_free(r);
}

/* Version 2 keeps a drive's cache_type and the balloon's free_page_hinting; version 1
 * (embers before: FLUSH on every drive, no hinting) still loads, its drives Writeback. */
static void test_snapshot_devices_keep_cache_type_and_hinting(void **state)
{
	struct snap_writer *w = snap_writer_new();
	struct vm_config cfg;
	struct craft c;

	(void)state;
	craft_init(&c);
	c.vm.cfg.drives[0].writeback = true;
	c.vm.cfg.balloon = (struct balloon_config){ .enabled = true,
		.amount_mib = 3,
		.free_page_hinting = true };
	c.vm.cfg.nets[0].no_offloads = true; /* kept too: a restore offers what the boot did */
	assert_int_equal(snapshot_save_devices(&c.vm.cfg, w), 0);
	load_devices(w, &cfg);
	assert_true(cfg.nets[0].no_offloads);
	assert_true(cfg.drives[0].writeback);
	assert_false(cfg.drives[0].read_only);
	assert_true(cfg.balloon.free_page_hinting);
	assert_false(cfg.balloon.free_page_reporting);
	assert_int_equal(cfg.balloon.amount_mib, 3);

	/* Version 1, as embers before wrote it: one read-only drive, a balloon. */
	w = snap_writer_new();
	assert_int_equal(snap_section_begin(w, SNAP_SEC_DEVICE_CONFIG, 1), 0);
	assert_int_equal(snap_put_u32(w, 0), 0); /* discovery */
	assert_int_equal(snap_put_u32(w, 1), 0);
	assert_int_equal(snap_put_str(w, "rootfs"), 0);
	assert_int_equal(snap_put_str(w, "/r.img"), 0);
	assert_int_equal(snap_put_u32(w, 1), 0); /* read_only */
	for (unsigned i = 0; i < 6; i++)         /* its limit */
		assert_int_equal(snap_put_u64(w, 0), 0);
	assert_int_equal(snap_put_u32(w, 0), 0); /* no nets */
	assert_int_equal(snap_put_u32(w, 0), 0); /* no vsock */
	assert_int_equal(snap_put_u32(w, 0), 0);
	assert_int_equal(snap_put_str(w, NULL), 0);
	assert_int_equal(snap_put_u32(w, 0), 0); /* no entropy */
	for (unsigned i = 0; i < 6; i++)
		assert_int_equal(snap_put_u64(w, 0), 0);
	assert_int_equal(snap_put(w, &(uint32_t[5]){ 1, 7, 1, 0, 1 }, 20), 0);
	assert_int_equal(snap_section_end(w), 0);
	load_devices(w, &cfg);
	assert_int_equal(cfg.nr_drives, 1);
	assert_true(cfg.drives[0].read_only && cfg.drives[0].writeback);
	assert_true(cfg.balloon.enabled && cfg.balloon.free_page_reporting);
	assert_false(cfg.balloon.free_page_hinting);
	assert_int_equal(cfg.balloon.amount_mib, 7);
}

static void test_snapshot_check_refuses_overrides_without_an_id(void **state)
{
	struct drive_override d = { .drive_id = NULL, .path_on_host = F.drive };
	struct net_override n = { .iface_id = NULL, .host_dev_name = "tap1" };
	struct restore_params p = params();
	struct craft c;

	(void)state;
	craft_init(&c);
	p.drive_overrides = &d;
	p.nr_drive_overrides = 1;
	assert_refused_with(&c, &p, "drive override: drive_id is required");
	p = params();
	p.net_overrides = &n;
	p.nr_net_overrides = 1;
	assert_refused_with(&c, &p, "net override: iface_id is required");
}

static void test_snapshot_check_refuses_malformed_vcpu_items(void **state)
{
	struct craft c;

	(void)state;
	craft_init(&c);
	c.xsave_len = 512;
	assert_refused(&c, "state file: vcpu 0 xsave is 512 bytes");
	craft_init(&c);
	c.nr_msrs = 3; /* two entries follow */
	assert_refused(&c, "state file: vcpu 0 msrs is malformed");
	craft_init(&c);
	c.msrs_len = 2;
	assert_refused(&c, "state file: vcpu 0 msrs is malformed");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_snapshot_check_accepts_a_well_formed_state),
		cmocka_unit_test(test_snapshot_check_refuses_a_vcpu_count_that_does_not_match),
		cmocka_unit_test(test_snapshot_check_refuses_a_memory_size_this_host_cannot_give),
		cmocka_unit_test(test_snapshot_check_refuses_a_memory_layout_of_another_machine),
		cmocka_unit_test(test_snapshot_check_refuses_huge_pages_it_cannot_map),
		cmocka_unit_test(test_snapshot_check_refuses_an_unmerged_diff),
		cmocka_unit_test(test_snapshot_check_refuses_another_cpu_vendor),
		cmocka_unit_test(
			test_snapshot_check_refuses_a_memory_file_shorter_than_its_regions),
		cmocka_unit_test(test_snapshot_check_refuses_null_device_names_with_overrides),
		cmocka_unit_test(test_snapshot_check_refuses_overrides_without_an_id),
		cmocka_unit_test(test_snapshot_devices_keep_cache_type_and_hinting),
		cmocka_unit_test(test_snapshot_check_refuses_malformed_vcpu_items),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
