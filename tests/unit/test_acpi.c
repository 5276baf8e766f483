/* Unit tests for acpi.c and aml.c: the tables in guest memory, read back as an OS would. */
#include <dirent.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "ember/acpi.h"
#include "ember/byteorder.h"
#include "ember/guest_mem.h"
#include "ember/layout.h"
#include "guest_mem_fixture.h"

#define MIB (1ULL << 20)

/* Offsets from the ACPI 6.3 specification, written out here independently of the code
 * under test. */
#define FADT_DSDT 40
#define FADT_SCI_INT 46
#define FADT_PM_TMR_BLK 76
#define FADT_IAPC_BOOT_ARCH 109
#define FADT_FLAGS 112
#define FADT_RESET_REG 116
#define FADT_RESET_VALUE 128
#define FADT_MINOR 131
#define FADT_X_DSDT 140
#define FADT_SLEEP_CONTROL 244
#define FADT_SLEEP_STATUS 256
#define FADT_HYPERVISOR_ID 268
#define HW_REDUCED_ACPI (1u << 20)
#define RESET_REG_SUP (1u << 10)
#define BOOT_8042 (1u << 1)
#define BOOT_VGA_NOT_PRESENT (1u << 2)

struct fixture {
	struct guest_mem gm;
	struct acpi_mmio_device virtio[ACPI_MAX_VIRTIO + 1];
	struct acpi_config cfg;
	uint64_t rsdp;
	char err[256];
};

static uint8_t sum(const uint8_t *p, size_t len)
{
	uint8_t s = 0;

	while (len--)
		s = (uint8_t)(s + *p++);
	return s;
}

/* Three virtio windows as the machine lays them out, GSIs 5, 6, 7. */
static void three_virtio(struct fixture *f)
{
	for (unsigned i = 0; i < 3; i++) {
		f->virtio[i].base = LAYOUT_VIRTIO_MMIO_BASE + i * LAYOUT_VIRTIO_MMIO_SIZE;
		f->virtio[i].size = LAYOUT_VIRTIO_MMIO_SIZE;
		f->virtio[i].gsi = 5 + i;
	}
	f->cfg.virtio = f->virtio;
	f->cfg.nr_virtio = 3;
}

static int setup(void **state)
{
	struct fixture *f = mapped_fixture_new(sizeof(*f), 64 * MIB);

	if (!f)
		return -1;
	f->cfg.nr_vcpus = 2;
	three_virtio(f);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	mapped_fixture_free(*state);
	return 0;
}

static void build_ok(struct fixture *f)
{
	f->err[0] = 0;
	assert_int_equal(acpi_build(&f->gm, &f->cfg, &f->rsdp, f->err, sizeof(f->err)), 0);
	assert_string_equal(f->err, "");
}

/* A whole table at gpa, its length checked against the ACPI range. */
static const uint8_t *table(struct fixture *f, uint64_t gpa, const char *sig)
{
	const uint8_t *t = guest_mem_ptr(&f->gm, gpa, 36);

	assert_non_null(t);
	assert_true(gpa >= LAYOUT_ACPI_START && gpa + get_le32(t + 4) <= LAYOUT_ACPI_END);
	assert_memory_equal(t, sig, 4);
	return guest_mem_ptr(&f->gm, gpa, get_le32(t + 4));
}

static const uint8_t *rsdp(struct fixture *f)
{
	const uint8_t *p = guest_mem_ptr(&f->gm, f->rsdp, 36);

	assert_non_null(p);
	return p;
}

static const uint8_t *xsdt(struct fixture *f)
{
	return table(f, get_le64(rsdp(f) + 24), "XSDT");
}

/* The table the XSDT lists with this signature. */
static const uint8_t *find(struct fixture *f, const char *sig)
{
	const uint8_t *x = xsdt(f);
	unsigned n = (get_le32(x + 4) - 36) / 8;

	for (unsigned i = 0; i < n; i++) {
		const uint8_t *t = guest_mem_ptr(&f->gm, get_le64(x + 36 + 8 * i), 4);

		if (t && !memcmp(t, sig, 4))
			return table(f, get_le64(x + 36 + 8 * i), sig);
	}
	fail_msg("no %s in the XSDT", sig);
	return NULL;
}

static const uint8_t *dsdt(struct fixture *f)
{
	return table(f, get_le64(find(f, "FACP") + FADT_X_DSDT), "DSDT");
}

static size_t count(const uint8_t *hay, size_t len, const void *needle, size_t n)
{
	size_t c = 0;

	for (size_t i = 0; i + n <= len; i++)
		c += !memcmp(hay + i, needle, n);
	return c;
}

/* --- RSDP, XSDT, checksums --- */

static void test_acpi_rsdp_at_0xe0000_revision_2(void **state)
{
	struct fixture *f = *state;
	const uint8_t *p;

	build_ok(f);
	assert_int_equal(f->rsdp, 0xe0000);
	assert_int_equal(f->rsdp % 16, 0); /* Linux scans 16-byte boundaries */
	p = rsdp(f);
	assert_memory_equal(p, "RSD PTR ", 8);
	assert_memory_equal(p + 9, "EMBER ", 6);
	assert_int_equal(p[15], 2);
	assert_int_equal(get_le32(p + 16), 0);  /* no RSDT */
	assert_int_equal(get_le32(p + 20), 36); /* length */
	assert_int_equal(sum(p, 20), 0);        /* checksum: the ACPI 1.0 part */
	assert_int_equal(sum(p, 36), 0);        /* extended checksum */
}

static void test_acpi_every_checksum_sums_to_zero(void **state)
{
	struct fixture *f = *state;
	static const char *const sigs[] = { "XSDT", "FACP", "APIC", "DSDT" };
	const uint8_t *t[4];

	f->cfg.vmgenid = true;
	f->cfg.vmgenid_gpa = LAYOUT_VMGENID;
	f->cfg.vmgenid_gsi = 9;
	build_ok(f);
	t[0] = xsdt(f);
	t[1] = find(f, "FACP");
	t[2] = find(f, "APIC");
	t[3] = dsdt(f);
	for (unsigned i = 0; i < 4; i++) {
		assert_memory_equal(t[i], sigs[i], 4);
		assert_memory_equal(t[i] + 10, "EMBER ", 6);
		assert_int_equal(sum(t[i], get_le32(t[i] + 4)), 0);
	}
}

static void test_acpi_xsdt_lists_facp_and_apic(void **state)
{
	struct fixture *f = *state;
	const uint8_t *x;

	build_ok(f);
	x = xsdt(f);
	assert_int_equal(x[8], 1);
	assert_int_equal(get_le32(x + 4), 36 + 2 * 8);
	assert_memory_equal(guest_mem_ptr(&f->gm, get_le64(x + 36), 4), "FACP", 4);
	assert_memory_equal(guest_mem_ptr(&f->gm, get_le64(x + 44), 4), "APIC", 4);
}

/* --- FADT --- */

static void expect_gas_io8(const uint8_t *g, uint64_t port)
{
	assert_int_equal(g[0], 1); /* System I/O */
	assert_int_equal(g[1], 8); /* bit width */
	assert_int_equal(g[2], 0); /* bit offset */
	assert_int_equal(g[3], 1); /* byte access */
	assert_int_equal(get_le64(g + 4), port);
}

static void test_acpi_fadt_hardware_reduced_with_sleep_registers(void **state)
{
	struct fixture *f = *state;
	const uint8_t *t;

	build_ok(f);
	t = find(f, "FACP");
	assert_int_equal(get_le32(t + 4), 276);
	assert_int_equal(t[8], 6);
	assert_int_equal(t[FADT_MINOR], 3);
	assert_true(get_le32(t + FADT_FLAGS) & HW_REDUCED_ACPI);
	assert_true(get_le32(t + FADT_FLAGS) & RESET_REG_SUP);
	assert_int_equal(get_le32(t + FADT_DSDT), 0);
	assert_memory_equal(guest_mem_ptr(&f->gm, get_le64(t + FADT_X_DSDT), 4), "DSDT", 4);
	assert_int_equal(get_le16(t + FADT_SCI_INT), 0);
	assert_int_equal(get_le32(t + FADT_PM_TMR_BLK), 0);
	expect_gas_io8(t + FADT_SLEEP_CONTROL, LAYOUT_PORT_SLEEP_CTL);
	expect_gas_io8(t + FADT_SLEEP_STATUS, LAYOUT_PORT_SLEEP_STS);
	expect_gas_io8(t + FADT_RESET_REG, LAYOUT_PORT_I8042_CMD);
	assert_int_equal(t[FADT_RESET_VALUE], LAYOUT_I8042_CMD_RESET);
	assert_true(get_le16(t + FADT_IAPC_BOOT_ARCH) & BOOT_8042);
	assert_true(get_le16(t + FADT_IAPC_BOOT_ARCH) & BOOT_VGA_NOT_PRESENT);
	assert_memory_equal(t + FADT_HYPERVISOR_ID, "EMBER", 5);
}

/* --- MADT --- */

static void expect_madt(struct fixture *f, unsigned nr_vcpus)
{
	const uint8_t *t, *e, *end;
	unsigned lapics = 0, ioapics = 0, nmis = 0;

	f->cfg.nr_vcpus = nr_vcpus;
	build_ok(f);
	t = find(f, "APIC");
	assert_int_equal(get_le32(t + 36), LAYOUT_LAPIC);
	assert_int_equal(get_le32(t + 40) & 1, 1); /* PCAT_COMPAT */
	end = t + get_le32(t + 4);
	for (e = t + 44; e < end; e += e[1]) {
		assert_true(e[1] >= 2 && e + e[1] <= end);
		switch (e[0]) {
		case 0: /* Processor Local APIC */
			assert_int_equal(e[1], 8);
			assert_int_equal(e[2], lapics);       /* processor UID */
			assert_int_equal(e[3], lapics);       /* APIC id */
			assert_int_equal(get_le32(e + 4), 1); /* enabled */
			lapics++;
			break;
		case 1: /* I/O APIC */
			assert_int_equal(e[1], 12);
			assert_int_equal(get_le32(e + 4), LAYOUT_IOAPIC);
			assert_int_equal(get_le32(e + 8), 0); /* GSI base */
			ioapics++;
			break;
		case 4: /* Local APIC NMI */
			assert_int_equal(e[2], 0xff);
			assert_int_equal(e[5], 1); /* LINT1 */
			nmis++;
			break;
		default:
			fail_msg("unexpected MADT entry type %u", e[0]);
		}
	}
	assert_ptr_equal(e, end);
	assert_int_equal(lapics, nr_vcpus);
	assert_int_equal(ioapics, 1);
	assert_int_equal(nmis, 1);
}

static void test_acpi_madt_one_vcpu(void **state)
{
	expect_madt(*state, 1);
}

static void test_acpi_madt_two_vcpus(void **state)
{
	expect_madt(*state, 2);
}

static void test_acpi_madt_32_vcpus(void **state)
{
	expect_madt(*state, 32);
}

/* --- DSDT --- */

static void test_acpi_dsdt_resource_templates_carry_each_window(void **state)
{
	struct fixture *f = *state;
	const uint8_t *t;
	size_t len;

	build_ok(f);
	t = dsdt(f);
	len = get_le32(t + 4);
	assert_int_equal(t[8], 2);
	assert_int_equal(count(t, len, "LNRO0005", 9), 3);
	for (unsigned i = 0; i < 3; i++) {
		uint64_t base = f->virtio[i].base, size = f->virtio[i].size;
		uint32_t gsi = f->virtio[i].gsi;
		/* Memory32Fixed (ReadWrite, base, size), then Interrupt (ResourceConsumer, Edge,
		 * ActiveHigh, Exclusive) { gsi }: ACPI 6.3, 6.4.3.4 and 6.4.3.6. */
		const uint8_t res[] = { 0x86, 9, 0, 1, (uint8_t)base, (uint8_t)(base >> 8),
			(uint8_t)(base >> 16), (uint8_t)(base >> 24), (uint8_t)size,
			(uint8_t)(size >> 8), (uint8_t)(size >> 16), (uint8_t)(size >> 24), 0x89, 6,
			0, 0x03, 1, (uint8_t)gsi, (uint8_t)(gsi >> 8), (uint8_t)(gsi >> 16),
			(uint8_t)(gsi >> 24), 0x79, 0 };
		const uint8_t uid[] = { 0x08, '_', 'U', 'I', 'D' };

		assert_int_equal(count(t, len, res, sizeof(res)), 1);
		assert_int_equal(count(t, len, uid, sizeof(uid)), 3);
	}
}

static void test_acpi_dsdt_length_grows_by_one_device_each(void **state)
{
	struct fixture *f = *state;
	uint32_t len[4];

	for (unsigned n = 0; n < 4; n++) {
		f->cfg.nr_virtio = n;
		build_ok(f);
		len[n] = get_le32(dsdt(f) + 4);
	}
	assert_true(len[0] > 36);
	/* _UID 0 and 1 are one-byte Zero/One, _UID 2 a two-byte ByteConst. */
	assert_int_equal(len[2] - len[1], len[1] - len[0]);
	assert_int_equal(len[3] - len[2], len[2] - len[1] + 1);
}

static void test_acpi_dsdt_s5_matches_sleep_ctl(void **state)
{
	struct fixture *f = *state;
	/* Name (_S5_, Package (4) { 5, Zero, Zero, Zero }) */
	const uint8_t s5[] = { 0x08, '_', 'S', '5', '_', 0x12, 7, 4, 0x0a, 5, 0, 0, 0 };
	const uint8_t *t;

	build_ok(f);
	t = dsdt(f);
	assert_int_equal(count(t, get_le32(t + 4), s5, sizeof(s5)), 1);
	/* What a hardware-reduced OS writes: SLP_TYP << 2 | SLP_EN. */
	assert_int_equal((5u << 2) | (1u << 5), LAYOUT_SLEEP_POWEROFF);
}

static void test_acpi_dsdt_scope_pkglength_covers_the_rest(void **state)
{
	struct fixture *f = *state;
	const uint8_t *t, *s;
	size_t len, pkglen;

	build_ok(f);
	t = dsdt(f);
	len = get_le32(t + 4);
	s = t + 36 + 13;                /* after the 13-byte _S5_ */
	assert_int_equal(s[0], 0x10);   /* ScopeOp */
	assert_int_equal(s[1] >> 6, 1); /* two-byte PkgLength */
	pkglen = (s[1] & 0x0f) | (size_t)s[2] << 4;
	assert_int_equal(1 + pkglen, len - 36 - 13);
	assert_memory_equal(s + 3, "\\_SB_", 5);
}

static void test_acpi_dsdt_legacy_devices(void **state)
{
	struct fixture *f = *state;
	const uint8_t com1_hid[] = { 0x08, '_', 'H', 'I', 'D', 0x0c, 0x41, 0xd0, 0x05, 0x01 };
	const uint8_t kbd_hid[] = { 0x08, '_', 'H', 'I', 'D', 0x0c, 0x41, 0xd0, 0x03, 0x03 };
	/* IO (Decode16, 0x3f8, 0x3f8, 1, 8), IRQNoFlags () { 4 } */
	const uint8_t com1_res[] = { 0x47, 1, 0xf8, 3, 0xf8, 3, 1, 8, 0x22, 0x10, 0, 0x79, 0 };
	const uint8_t kbd_res[] = { 0x47, 1, 0x60, 0, 0x60, 0, 1, 1, 0x47, 1, 0x64, 0, 0x64, 0, 1,
		1, 0x22, 0x02, 0, 0x79, 0 };
	const uint8_t *t;
	size_t len;

	build_ok(f);
	t = dsdt(f);
	len = get_le32(t + 4);
	assert_int_equal(count(t, len, com1_hid, sizeof(com1_hid)), 1);
	assert_int_equal(count(t, len, kbd_hid, sizeof(kbd_hid)), 1);
	assert_int_equal(count(t, len, com1_res, sizeof(com1_res)), 1);
	assert_int_equal(count(t, len, kbd_res, sizeof(kbd_res)), 1);
}

static void test_acpi_dsdt_vmgenid_only_when_enabled(void **state)
{
	struct fixture *f = *state;
	const uint8_t addr[] = { 0xa4, 0x12, 8, 2, 0x0c, 0x00, 0x00, 0x0f, 0x00, 0x00 };
	const uint8_t ged_irq[] = { 0x89, 6, 0, 0x03, 1, 9, 0, 0, 0, 0x79, 0 };
	const uint8_t *t;
	size_t len;

	build_ok(f);
	t = dsdt(f);
	len = get_le32(t + 4);
	assert_int_equal(count(t, len, "VM_Gen_Counter", 14), 0);
	assert_int_equal(count(t, len, "ACPI0013", 8), 0);

	f->cfg.vmgenid = true;
	f->cfg.vmgenid_gpa = LAYOUT_VMGENID;
	f->cfg.vmgenid_gsi = 9;
	build_ok(f);
	t = dsdt(f);
	len = get_le32(t + 4);
	assert_int_equal(count(t, len, "VM_Gen_Counter", 15), 2); /* _CID and _DDN */
	assert_int_equal(count(t, len, "VMGENCTR", 9), 1);
	assert_int_equal(count(t, len, "ACPI0013", 9), 1);
	/* Return (Package (2) { 0x000f0000, Zero }) */
	assert_int_equal(count(t, len, addr, sizeof(addr)), 1);
	assert_int_equal(count(t, len, ged_irq, sizeof(ged_irq)), 1);
}

static void test_acpi_max_devices_fit(void **state)
{
	struct fixture *f = *state;
	unsigned gsi = 3;

	for (unsigned i = 0; i < ACPI_MAX_VIRTIO; i++, gsi++) {
		if (gsi == 4)
			gsi++;
		f->virtio[i].base = LAYOUT_VIRTIO_MMIO_BASE + i * LAYOUT_VIRTIO_MMIO_SIZE;
		f->virtio[i].size = LAYOUT_VIRTIO_MMIO_SIZE;
		f->virtio[i].gsi = gsi;
	}
	assert_int_equal(gsi, ACPI_IOAPIC_PINS);
	f->cfg.nr_virtio = ACPI_MAX_VIRTIO;
	f->cfg.nr_vcpus = ACPI_MAX_VCPUS;
	build_ok(f);
	assert_int_equal(count(dsdt(f), get_le32(dsdt(f) + 4), "LNRO0005", 9), ACPI_MAX_VIRTIO);
}

static void test_acpi_rebuild_leaves_nothing_stale(void **state)
{
	struct fixture *f = *state;
	const uint8_t *area;
	size_t used;

	f->cfg.vmgenid = true;
	f->cfg.vmgenid_gpa = LAYOUT_VMGENID;
	f->cfg.vmgenid_gsi = 9;
	build_ok(f);
	f->cfg.vmgenid = false;
	f->cfg.nr_virtio = 0;
	build_ok(f);
	area = guest_mem_ptr(&f->gm, LAYOUT_ACPI_START, LAYOUT_ACPI_END - LAYOUT_ACPI_START);
	used = (size_t)(get_le64(find(f, "FACP") + FADT_X_DSDT) - LAYOUT_ACPI_START) +
		get_le32(dsdt(f) + 4);
	for (size_t i = used; i < LAYOUT_ACPI_END - LAYOUT_ACPI_START; i++)
		assert_int_equal(area[i], 0);
}

/* --- refusals --- */

static void expect_refusal(struct fixture *f, int ret, const char *msg)
{
	static const uint8_t zero[64];
	const uint8_t *area = guest_mem_ptr(&f->gm, LAYOUT_ACPI_START, sizeof(zero));

	f->rsdp = 0x1234;
	assert_int_equal(acpi_build(&f->gm, &f->cfg, &f->rsdp, f->err, sizeof(f->err)), ret);
	assert_string_equal(f->err, msg);
	assert_int_equal(f->rsdp, 0x1234);
	if (area) /* nothing written */
		assert_memory_equal(area, zero, sizeof(zero));
}

static void test_acpi_rejects_vcpu_counts(void **state)
{
	struct fixture *f = *state;

	f->cfg.nr_vcpus = 0;
	expect_refusal(f, -EINVAL, "acpi: 0 vCPUs, need 1..32");
	f->cfg.nr_vcpus = 33;
	expect_refusal(f, -EINVAL, "acpi: 33 vCPUs, need 1..32");
}

static void test_acpi_rejects_too_many_devices(void **state)
{
	struct fixture *f = *state;

	f->cfg.nr_virtio = ACPI_MAX_VIRTIO + 1;
	expect_refusal(f, -E2BIG, "acpi: 21 virtio devices, at most 20 fit (one IOAPIC pin each)");
}

static void test_acpi_rejects_bad_gsis(void **state)
{
	struct fixture *f = *state;

	f->virtio[1].gsi = 4;
	expect_refusal(f, -EINVAL, "acpi: virtio 1: GSI 4 is already used by COM1");
	f->virtio[1].gsi = 5;
	expect_refusal(f, -EINVAL, "acpi: virtio 1: GSI 5 is already used by virtio 0");
	f->virtio[1].gsi = 24;
	expect_refusal(f, -EINVAL, "acpi: virtio 1: GSI 24 is beyond the IOAPIC's 24 pins");
	f->virtio[1].gsi = 6;
	f->cfg.vmgenid = true;
	f->cfg.vmgenid_gpa = LAYOUT_VMGENID;
	f->cfg.vmgenid_gsi = 0;
	expect_refusal(f, -EINVAL, "acpi: vmgenid: GSI 0 is already used by the PIT");
}

static void test_acpi_rejects_window_outside_gap(void **state)
{
	struct fixture *f = *state;

	f->virtio[2].base = 0xfffff000;
	f->virtio[2].size = 0x2000;
	expect_refusal(f, -EINVAL,
		"acpi: virtio 2: window 0xfffff000+0x2000 is not inside the "
		"MMIO gap 0xc0000000..0x100000000");
	f->virtio[2].base = LAYOUT_VIRTIO_MMIO_BASE;
	f->virtio[2].size = 0;
	expect_refusal(f, -EINVAL,
		"acpi: virtio 2: window 0xd0001000+0x0 is not inside the "
		"MMIO gap 0xc0000000..0x100000000");
}

static void test_acpi_rejects_vmgenid_buffer_in_ram_or_tables(void **state)
{
	struct fixture *f = *state;
	const uint64_t bad[] = { LAYOUT_VMGENID + 4, 0x1000, LAYOUT_ACPI_END - 8, 0xffff8,
		LAYOUT_HIMEM };
	char want[256];

	f->cfg.vmgenid = true;
	f->cfg.vmgenid_gsi = 9;
	for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		f->cfg.vmgenid_gpa = bad[i];
		snprintf(want, sizeof(want),
			"acpi: vmgenid: buffer at 0x%llx must be 8-byte "
			"aligned, in the reserved 0x9fc00..0x100000 and outside the ACPI tables "
			"0xe0000..0xf0000",
			(unsigned long long)bad[i]);
		expect_refusal(f, -EINVAL, want);
	}
	f->cfg.vmgenid_gpa = 0xffff0;
	build_ok(f);
}

static void test_acpi_rejects_memory_too_small(void **state)
{
	struct fixture *f = *state;
	struct guest_mem gm = f->gm;

	/* 512 KiB of RAM ends below the ACPI range. */
	assert_int_equal(guest_mem_map(&f->gm, 512 * 1024, GUEST_MEM_ANON, NULL, f->err,
				 sizeof(f->err)),
		0);
	expect_refusal(f, -EFAULT,
		"acpi: guest memory does not cover the ACPI tables at 0xe0000..0xf0000");
	guest_mem_unmap(&f->gm);
	f->gm = gm;
}

/* --- ACPICA's own tools, when installed (Debian: acpica-tools) --- */

static bool have(const char *tool)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "command -v %s >/dev/null 2>&1", tool);
	return system(cmd) == 0;
}

static char *slurp(const char *path)
{
	FILE *fp = fopen(path, "r");
	char *buf = calloc(1, 1 << 20);

	assert_non_null(fp);
	assert_non_null(buf);
	assert_true(fread(buf, 1, (1 << 20) - 1, fp) > 0);
	fclose(fp);
	return buf;
}

static void save(const char *dir, const char *name, const uint8_t *t, size_t len)
{
	char path[512];
	FILE *fp;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fp = fopen(path, "wb");
	assert_non_null(fp);
	assert_int_equal(fwrite(t, 1, len, fp), len);
	fclose(fp);
}

static int run(const char *dir, const char *cmd)
{
	char line[1024];
	int st;

	snprintf(line, sizeof(line), "cd '%s' && %s", dir, cmd);
	st = system(line);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void remove_dir(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	char path[512];

	if (!d)
		return;
	while ((de = readdir(d)))
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..")) {
			snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
			unlink(path);
		}
	closedir(d);
	rmdir(dir);
}

static void save_tables(struct fixture *f, const char *dir)
{
	const uint8_t *t;

	f->cfg.vmgenid = true;
	f->cfg.vmgenid_gpa = LAYOUT_VMGENID;
	f->cfg.vmgenid_gsi = 9;
	build_ok(f);
	save(dir, "xsdt.dat", xsdt(f), get_le32(xsdt(f) + 4));
	t = find(f, "FACP");
	save(dir, "facp.dat", t, get_le32(t + 4));
	t = find(f, "APIC");
	save(dir, "apic.dat", t, get_le32(t + 4));
	save(dir, "dsdt.dat", dsdt(f), get_le32(dsdt(f) + 4));
}

static void test_acpi_iasl_disassembles_every_table(void **state)
{
	struct fixture *f = *state;
	static const char *const names[] = { "xsdt", "facp", "apic", "dsdt" };
	char dir[] = "/tmp/ember-acpi-XXXXXX", cmd[256], *log, *dsl;

	if (!have("iasl")) {
		print_message("iasl not installed (apt-get install acpica-tools): skipped\n");
		skip();
	}
	assert_non_null(mkdtemp(dir));
	save_tables(f, dir);
	for (unsigned i = 0; i < 4; i++) {
		snprintf(cmd, sizeof(cmd), "iasl -d %s.dat > %s.log 2>&1", names[i], names[i]);
		assert_int_equal(run(dir, cmd), 0);
		snprintf(cmd, sizeof(cmd), "%s/%s.log", dir, names[i]);
		log = slurp(cmd);
		assert_null(strstr(log, "Incorrect checksum"));
		assert_null(strstr(log, "Error"));
		free(log);
	}
	snprintf(cmd, sizeof(cmd), "%s/dsdt.dsl", dir);
	dsl = slurp(cmd);
	assert_non_null(strstr(dsl, "Name (_S5, Package (0x04)"));
	assert_non_null(strstr(dsl, "Name (_HID, EisaId (\"PNP0501\")"));
	assert_non_null(strstr(dsl, "Name (_HID, EisaId (\"PNP0303\")"));
	assert_non_null(strstr(dsl, "Device (V002)"));
	assert_non_null(strstr(dsl, "0xD0003000,         // Address Base"));
	assert_non_null(strstr(dsl, "Interrupt (ResourceConsumer, Edge, ActiveHigh, Exclusive"));
	assert_non_null(strstr(dsl, "Name (_DDN, \"VM_Gen_Counter\")"));
	assert_non_null(strstr(dsl, "Notify (\\_SB.VGEN, 0x80)"));
	free(dsl);
	/* Compile the disassembly back: iasl's semantic checks (predefined names, _HID
	 * formats, resource templates) must have nothing to say. */
	assert_int_equal(run(dir, "iasl dsdt.dsl > compile.log 2>&1"), 0);
	snprintf(cmd, sizeof(cmd), "%s/compile.log", dir);
	log = slurp(cmd);
	assert_non_null(strstr(log, "0 Errors, 0 Warnings, 0 Remarks"));
	free(log);
	remove_dir(dir);
}

/* acpiexec runs the DSDT in ACPICA's interpreter, the one Linux uses. */
static void test_acpi_acpiexec_evaluates_the_dsdt(void **state)
{
	struct fixture *f = *state;
	char dir[] = "/tmp/ember-acpi-XXXXXX", path[256], *out;

	if (!have("acpiexec")) {
		print_message("acpiexec not installed (apt-get install acpica-tools): skipped\n");
		skip();
	}
	assert_non_null(mkdtemp(dir));
	save_tables(f, dir);
	assert_int_equal(run(dir,
				 "acpiexec -b 'evaluate \\_SB.VGEN.ADDR; "
				 "evaluate \\_SB.VGEN._CID; evaluate \\_S5_; "
				 "evaluate \\_SB.GED_._EVT 9' facp.dat dsdt.dat > exec.log 2>&1"),
		0);
	snprintf(path, sizeof(path), "%s/exec.log", dir);
	out = slurp(path);
	assert_non_null(strstr(out, "7 Devices"));
	assert_non_null(strstr(out, "[Integer] = 00000000000F0000"));
	assert_non_null(strstr(out, "\"VMGENCTR\""));
	assert_non_null(strstr(out, "\"VM_GEN_COUNTER\"")); /* _CID repaired to upper case */
	assert_non_null(strstr(out, "[Integer] = 0000000000000005"));
	assert_non_null(strstr(out, "Device Notify on [VGEN]"));
	free(out);
	remove_dir(dir);
}

#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_acpi_rsdp_at_0xe0000_revision_2),
		T(test_acpi_every_checksum_sums_to_zero),
		T(test_acpi_xsdt_lists_facp_and_apic),
		T(test_acpi_fadt_hardware_reduced_with_sleep_registers),
		T(test_acpi_madt_one_vcpu),
		T(test_acpi_madt_two_vcpus),
		T(test_acpi_madt_32_vcpus),
		T(test_acpi_dsdt_resource_templates_carry_each_window),
		T(test_acpi_dsdt_length_grows_by_one_device_each),
		T(test_acpi_dsdt_s5_matches_sleep_ctl),
		T(test_acpi_dsdt_scope_pkglength_covers_the_rest),
		T(test_acpi_dsdt_legacy_devices),
		T(test_acpi_dsdt_vmgenid_only_when_enabled),
		T(test_acpi_max_devices_fit),
		T(test_acpi_rebuild_leaves_nothing_stale),
		T(test_acpi_rejects_vcpu_counts),
		T(test_acpi_rejects_too_many_devices),
		T(test_acpi_rejects_bad_gsis),
		T(test_acpi_rejects_window_outside_gap),
		T(test_acpi_rejects_vmgenid_buffer_in_ram_or_tables),
		T(test_acpi_rejects_memory_too_small),
		T(test_acpi_iasl_disassembles_every_table),
		T(test_acpi_acpiexec_evaluates_the_dsdt),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
