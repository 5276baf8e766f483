/* ACPI tables written by ember (ACPI 6.3): RSDP, XSDT, hardware-reduced FADT, MADT, DSDT. */
#include "ember/acpi.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aml.h"
#include "boot_params.h"
#include "ember/guest_mem.h"
#include "ember/layout.h"

/* System description table header (5.2.6) and the values ember puts in it. */
#define HDR_LEN 36
#define HDR_CHECKSUM 9
#define OEM_ID "EMBER "
#define OEM_REVISION 1
#define CREATOR_ID "EMBR"
#define CREATOR_REVISION 1
#define TABLE_ALIGN 16
#define AREA_SIZE (LAYOUT_ACPI_END - LAYOUT_ACPI_START)

/* RSDP (5.2.5.3). */
#define RSDP_LEN 36
#define RSDP_REVISION 2 /* ACPI 2.0+: XSDT address and extended checksum */
#define RSDP_V1_LEN 20  /* the part the first checksum covers */

#define XSDT_REVISION 1

/* FADT (5.2.9), revision 6.3. */
#define FADT_LEN 276
#define FADT_REVISION 6
#define FADT_MINOR 3
#define FADT_P_LVL2_LAT 96 /* > 100: C2 not supported */
#define FADT_P_LVL3_LAT 98 /* > 1000: C3 not supported */
#define FADT_IAPC_BOOT_ARCH 109
#define FADT_FLAGS 112
#define FADT_RESET_REG 116
#define FADT_RESET_VALUE 128
#define FADT_MINOR_VERSION 131
#define FADT_X_DSDT 140
#define FADT_SLEEP_CONTROL 244
#define FADT_SLEEP_STATUS 256
#define FADT_HYPERVISOR_ID 268
/* IA-PC boot architecture flags (5.2.9.3). */
#define BOOT_LEGACY_DEVICES (1u << 0) /* user-visible ISA devices: COM1, the i8042 */
#define BOOT_8042 (1u << 1)           /* ember emulates an i8042 at 0x60/0x64 */
#define BOOT_VGA_NOT_PRESENT (1u << 2)
#define BOOT_CMOS_RTC_NOT_PRESENT (1u << 5) /* neither ember nor KVM emulates one */
/* Fixed feature flags (5.2.9, table 5.10). */
#define FLAG_WBINVD (1u << 0)
#define FLAG_PWR_BUTTON (1u << 4) /* set: no fixed power button */
#define FLAG_SLP_BUTTON (1u << 5) /* set: no fixed sleep button */
#define FLAG_RESET_REG_SUP (1u << 10)
#define FLAG_HW_REDUCED_ACPI (1u << 20)
/* Generic Address Structure (5.2.3.2). */
#define GAS_SYSTEM_IO 1
#define GAS_ACCESS_BYTE 1

/* MADT (5.2.12), revision 5 in ACPI 6.3. */
#define MADT_REVISION 5
#define MADT_LEN(n) (44 + 8 * (n) + 12 + 6)
#define MADT_PCAT_COMPAT (1u << 0) /* dual 8259s present: KVM's in-kernel PIC */
#define MADT_LAPIC 0
#define MADT_LAPIC_ENABLED (1u << 0)
#define MADT_IOAPIC 1
#define MADT_IOAPIC_ID 0 /* what KVM's IOAPIC reports in its ID register */
#define MADT_LAPIC_NMI 4
#define MADT_ALL_PROCESSORS 0xff
#define MPS_INTI_HIGH_EDGE 0x0005 /* polarity 01 active high, trigger 01 edge */

/* DSDT */
#define DSDT_REVISION 2             /* 64-bit integers */
#define SLP_TYP_S5 5                /* what src/devices/legacy/sleep_ctl.c powers off on */
#define NOTIFY_VMGENID_CHANGED 0x80 /* device-specific: the generation id changed */
#define VMGENID_LEN 16
#define VMGENID_ALIGN 8
#define NAME_LEN 20 /* "virtio N" in error messages */

/* ISA lines ember keeps for itself; with no interrupt source override ISA IRQ n is GSI n. */
static const char *const legacy_gsi[ACPI_IOAPIC_PINS] = {
	[0] = "the PIT",
	[LAYOUT_I8042_IRQ] = "the i8042",
	[2] = "the ISA cascade",
	[LAYOUT_SERIAL_IRQ] = "COM1",
};

static uint8_t sum(const uint8_t *p, size_t len)
{
	uint8_t s = 0;

	while (len--)
		s = (uint8_t)(s + *p++);
	return s;
}

static void header(uint8_t *t, const char *sig, uint32_t len, uint8_t revision,
	const char *table_id)
{
	memcpy(t, sig, 4);
	put_le32(t + 4, len);
	t[8] = revision;
	memcpy(t + 10, OEM_ID, 6);
	memcpy(t + 16, table_id, 8);
	put_le32(t + 24, OEM_REVISION);
	memcpy(t + 28, CREATOR_ID, 4);
	put_le32(t + 32, CREATOR_REVISION);
}

/* Set the checksum so that all `len` bytes of the finished table sum to zero. */
static void seal(uint8_t *t, size_t len)
{
	t[HDR_CHECKSUM] = 0;
	t[HDR_CHECKSUM] = (uint8_t)-sum(t, len);
}

static void gas(uint8_t *p, uint8_t space, uint8_t bits, uint8_t access, uint64_t addr)
{
	p[0] = space;
	p[1] = bits;
	p[2] = 0; /* bit offset */
	p[3] = access;
	put_le64(p + 4, addr);
}

static size_t align(size_t off)
{
	return (off + TABLE_ALIGN - 1) & ~(size_t)(TABLE_ALIGN - 1);
}

static void build_rsdp(uint8_t *p, uint64_t xsdt)
{
	memcpy(p, "RSD PTR ", 8);
	memcpy(p + 9, OEM_ID, 6);
	p[15] = RSDP_REVISION;
	put_le32(p + 16, 0); /* no RSDT: an OS that reads revision 2 uses the XSDT */
	put_le32(p + 20, RSDP_LEN);
	put_le64(p + 24, xsdt);
	p[8] = (uint8_t)-sum(p, RSDP_V1_LEN);
	p[32] = (uint8_t)-sum(p, RSDP_LEN);
}

static size_t build_xsdt(uint8_t *t, uint64_t fadt, uint64_t madt)
{
	size_t len = HDR_LEN + 2 * 8;

	header(t, "XSDT", (uint32_t)len, XSDT_REVISION, "EMBRXSDT");
	put_le64(t + HDR_LEN, fadt);
	put_le64(t + HDR_LEN + 8, madt);
	seal(t, len);
	return len;
}

/* Hardware-reduced (4.1): no PM timer, GPE or PM1 blocks, no SCI, no FACS. Sleep goes
 * through the sleep control/status registers (4.8.3.7); the RESET_REG points at the
 * i8042's reset command, which ember's i8042 turns into a clean VM exit. */
static size_t build_fadt(uint8_t *t, uint64_t dsdt)
{
	header(t, "FACP", FADT_LEN, FADT_REVISION, "EMBRFACP");
	put_le16(t + FADT_P_LVL2_LAT, 101);
	put_le16(t + FADT_P_LVL3_LAT, 1001);
	put_le16(t + FADT_IAPC_BOOT_ARCH,
		BOOT_LEGACY_DEVICES | BOOT_8042 | BOOT_VGA_NOT_PRESENT | BOOT_CMOS_RTC_NOT_PRESENT);
	put_le32(t + FADT_FLAGS,
		FLAG_WBINVD | FLAG_PWR_BUTTON | FLAG_SLP_BUTTON | FLAG_RESET_REG_SUP |
			FLAG_HW_REDUCED_ACPI);
	gas(t + FADT_RESET_REG, GAS_SYSTEM_IO, 8, GAS_ACCESS_BYTE, LAYOUT_PORT_I8042_CMD);
	t[FADT_RESET_VALUE] = LAYOUT_I8042_CMD_RESET;
	t[FADT_MINOR_VERSION] = FADT_MINOR;
	/* The 32-bit DSDT field stays 0: "if X_DSDT is non-zero, DSDT must be ignored". */
	put_le64(t + FADT_X_DSDT, dsdt);
	gas(t + FADT_SLEEP_CONTROL, GAS_SYSTEM_IO, 8, GAS_ACCESS_BYTE, LAYOUT_PORT_SLEEP_CTL);
	gas(t + FADT_SLEEP_STATUS, GAS_SYSTEM_IO, 8, GAS_ACCESS_BYTE, LAYOUT_PORT_SLEEP_STS);
	memcpy(t + FADT_HYPERVISOR_ID, "EMBER   ", 8);
	seal(t, FADT_LEN);
	return FADT_LEN;
}

/* No interrupt source override for ISA IRQ 0: KVM's default GSI routing (ember installs no
 * other) wires the in-kernel PIT to IOAPIC pin 0, so the ACPI default identity mapping is
 * the truth. An IRQ0 -> GSI 2 override, right for a PC whose 8254 is wired to pin 2, would
 * send Linux to pin 2, where nothing arrives. Add one only together with a KVM routing
 * table that moves GSI 0 to pin 2. */
static size_t build_madt(uint8_t *t, unsigned nr_vcpus)
{
	size_t len = MADT_LEN(nr_vcpus);
	uint8_t *e = t + 44;

	header(t, "APIC", (uint32_t)len, MADT_REVISION, "EMBRAPIC");
	put_le32(t + 36, (uint32_t)LAYOUT_LAPIC);
	put_le32(t + 40, MADT_PCAT_COMPAT);
	for (unsigned i = 0; i < nr_vcpus; i++, e += 8) {
		e[0] = MADT_LAPIC;
		e[1] = 8;
		e[2] = (uint8_t)i; /* ACPI processor UID */
		e[3] = (uint8_t)i; /* APIC id, as CPUID and the LAPIC report it */
		put_le32(e + 4, MADT_LAPIC_ENABLED);
	}
	e[0] = MADT_IOAPIC;
	e[1] = 12;
	e[2] = MADT_IOAPIC_ID;
	e[3] = 0;
	put_le32(e + 4, (uint32_t)LAYOUT_IOAPIC);
	put_le32(e + 8, 0); /* GSI base */
	e += 12;
	e[0] = MADT_LAPIC_NMI;
	e[1] = 6;
	e[2] = MADT_ALL_PROCESSORS;
	put_le16(e + 3, MPS_INTI_HIGH_EDGE);
	e[5] = 1; /* LINT1, which ember's LAPIC setup programs for NMI */
	seal(t, len);
	return len;
}

/* Name (_CRS, ResourceTemplate () { ... }) from a filled scratch builder. */
static void crs(struct aml *a, struct aml *res)
{
	aml_res_end(res);
	if (res->err && !a->err)
		a->err = res->err;
	aml_name(a, "_CRS");
	aml_buffer(a, res->buf, res->len);
}

static void dsdt_legacy(struct aml *a)
{
	uint8_t buf[64];
	struct aml res;
	size_t dev;

	dev = aml_device(a, "COM1");
	aml_name(a, "_HID");
	aml_eisaid(a, "PNP0501"); /* 16550A-compatible UART */
	aml_init(&res, buf, sizeof(buf));
	aml_res_io(&res, LAYOUT_PORT_SERIAL, 8);
	aml_res_irq(&res, LAYOUT_SERIAL_IRQ);
	crs(a, &res);
	aml_close(a, dev);

	dev = aml_device(a, "PS2K");
	aml_name(a, "_HID");
	aml_eisaid(a, "PNP0303"); /* IBM enhanced keyboard behind an 8042 */
	aml_init(&res, buf, sizeof(buf));
	aml_res_io(&res, LAYOUT_PORT_I8042_DATA, 1);
	aml_res_io(&res, LAYOUT_PORT_I8042_CMD, 1);
	aml_res_irq(&res, LAYOUT_I8042_IRQ);
	crs(a, &res);
	aml_close(a, dev);
}

/* Linux's virtio-mmio driver binds "LNRO0005" and takes the first memory and interrupt
 * resources; it requests the interrupt shared, edge is what an irqfd delivers. */
static void dsdt_virtio(struct aml *a, const struct acpi_mmio_device *v, unsigned index)
{
	char name[5] = { 'V', (char)('0' + index / 100 % 10), (char)('0' + index / 10 % 10),
		(char)('0' + index % 10), 0 };
	uint8_t buf[64];
	struct aml res;
	size_t dev = aml_device(a, name);

	aml_name(a, "_HID");
	aml_string(a, "LNRO0005");
	aml_name(a, "_UID");
	aml_integer(a, index);
	aml_name(a, "_CCA");
	aml_integer(a, 1); /* cache-coherent DMA */
	aml_init(&res, buf, sizeof(buf));
	aml_res_mem32(&res, (uint32_t)v->base, (uint32_t)v->size);
	aml_res_ext_irq(&res, v->gsi);
	crs(a, &res);
	aml_close(a, dev);
}

/* Microsoft's "Virtual Machine Generation ID" (2012): _HID unique to the hypervisor,
 * _CID and _DDN "VM_Gen_Counter", ADDR returning the buffer's address as two 32-bit
 * integers (low, high), Notify (0x80) when the id changes. "VMGENCTR" is the short _CID
 * Linux's vmgenid driver matches; ACPICA upper-cases _CID strings, so Linux matches the
 * long one too ("VM_GEN_COUNTER"), and Windows finds the one the spec names.
 * Hardware-reduced ACPI has no GPEs, so a Generic Event Device (5.6.9) carries the
 * notification: its interrupt runs _EVT, which notifies VGEN. */
static void dsdt_vmgenid(struct aml *a, uint64_t gpa, uint32_t gsi)
{
	uint8_t buf[64];
	struct aml res;
	size_t dev, m, pkg, cond;

	dev = aml_device(a, "VGEN");
	aml_name(a, "_HID");
	aml_string(a, "EMBR0001");
	aml_name(a, "_CID");
	pkg = aml_package(a, 2);
	aml_string(a, "VMGENCTR");
	aml_string(a, "VM_Gen_Counter");
	aml_close(a, pkg);
	aml_name(a, "_DDN");
	aml_string(a, "VM_Gen_Counter");
	m = aml_method(a, "ADDR", 0);
	aml_byte(a, AML_RETURN);
	pkg = aml_package(a, 2);
	aml_integer(a, gpa & UINT32_MAX);
	aml_integer(a, gpa >> 32);
	aml_close(a, pkg);
	aml_close(a, m);
	aml_close(a, dev);

	dev = aml_device(a, "GED_");
	aml_name(a, "_HID");
	aml_string(a, "ACPI0013");
	aml_init(&res, buf, sizeof(buf));
	aml_res_ext_irq(&res, gsi);
	crs(a, &res);
	m = aml_method(a, "_EVT", 1);
	cond = aml_if(a);
	aml_byte(a, AML_LEQUAL);
	aml_byte(a, AML_ARG0);
	aml_integer(a, gsi);
	aml_notify(a, "\\_SB_.VGEN", NOTIFY_VMGENID_CHANGED);
	aml_close(a, cond);
	aml_close(a, m);
	aml_close(a, dev);
}

/* The DSDT into t (room for cap bytes); returns its length or a negative errno. */
static long build_dsdt(uint8_t *t, size_t cap, const struct acpi_config *cfg)
{
	struct aml a;
	size_t pkg, sb;

	if (cap < HDR_LEN)
		return -ENOSPC;
	aml_init(&a, t + HDR_LEN, cap - HDR_LEN);
	/* \_S5_: SLP_TYPa, SLP_TYPb, reserved, reserved. A hardware-reduced OS writes
	 * SLP_TYPa << 2 | SLP_EN to the sleep control register. */
	aml_name(&a, "_S5_");
	pkg = aml_package(&a, 4);
	aml_integer(&a, SLP_TYP_S5);
	aml_integer(&a, 0);
	aml_integer(&a, 0);
	aml_integer(&a, 0);
	aml_close(&a, pkg);

	sb = aml_scope(&a, "\\_SB_");
	dsdt_legacy(&a);
	for (unsigned i = 0; i < cfg->nr_virtio; i++)
		dsdt_virtio(&a, &cfg->virtio[i], i);
	if (cfg->vmgenid)
		dsdt_vmgenid(&a, cfg->vmgenid_gpa, cfg->vmgenid_gsi);
	aml_close(&a, sb);
	if (a.err)
		return a.err;
	header(t, "DSDT", (uint32_t)(HDR_LEN + a.len), DSDT_REVISION, "EMBRDSDT");
	seal(t, HDR_LEN + a.len);
	return (long)(HDR_LEN + a.len);
}

static int claim_gsi(const char *owner[ACPI_IOAPIC_PINS], uint32_t gsi, const char *who, char *err,
	size_t errlen)
{
	if (gsi >= ACPI_IOAPIC_PINS)
		return boot_fail(err, errlen, -EINVAL,
			"acpi: %s: GSI %u is beyond the IOAPIC's %u pins", who, gsi,
			ACPI_IOAPIC_PINS);
	if (owner[gsi])
		return boot_fail(err, errlen, -EINVAL, "acpi: %s: GSI %u is already used by %s",
			who, gsi, owner[gsi]);
	owner[gsi] = who;
	return 0;
}

static int check_virtio(const struct acpi_config *cfg, const char *owner[ACPI_IOAPIC_PINS],
	char names[ACPI_MAX_VIRTIO][NAME_LEN], char *err, size_t errlen)
{
	if (cfg->nr_virtio > ACPI_MAX_VIRTIO)
		return boot_fail(err, errlen, -E2BIG,
			"acpi: %u virtio devices, at most %u fit (one IOAPIC pin each)",
			cfg->nr_virtio, ACPI_MAX_VIRTIO);
	if (cfg->nr_virtio && !cfg->virtio)
		return boot_fail(err, errlen, -EINVAL, "acpi: %u virtio devices but no list",
			cfg->nr_virtio);
	for (unsigned i = 0; i < cfg->nr_virtio; i++) {
		const struct acpi_mmio_device *v = &cfg->virtio[i];
		int ret;

		snprintf(names[i], sizeof(names[i]), "virtio %u", i);
		if (v->size == 0 || v->base < LAYOUT_MMIO_GAP_START ||
			v->base >= LAYOUT_MMIO_GAP_END || v->size > LAYOUT_MMIO_GAP_END - v->base)
			return boot_fail(err, errlen, -EINVAL,
				"acpi: %s: window 0x%llx+0x%llx is not inside the MMIO gap "
				"0x%llx..0x%llx",
				names[i], (unsigned long long)v->base, (unsigned long long)v->size,
				LAYOUT_MMIO_GAP_START, LAYOUT_MMIO_GAP_END);
		ret = claim_gsi(owner, v->gsi, names[i], err, errlen);
		if (ret)
			return ret;
	}
	return 0;
}

/* Microsoft's requirements: 8-byte aligned, not RAM or ACPI memory in the e820 map. */
static int check_vmgenid(const struct guest_mem *gm, const struct acpi_config *cfg,
	const char *owner[ACPI_IOAPIC_PINS], char *err, size_t errlen)
{
	uint64_t gpa = cfg->vmgenid_gpa;

	if (!cfg->vmgenid)
		return 0;
	if (gpa % VMGENID_ALIGN || gpa < LAYOUT_EBDA || gpa > LAYOUT_HIMEM - VMGENID_LEN ||
		(gpa + VMGENID_LEN > LAYOUT_ACPI_START && gpa < LAYOUT_ACPI_END))
		return boot_fail(err, errlen, -EINVAL,
			"acpi: vmgenid: buffer at 0x%llx must be 8-byte aligned, in the reserved "
			"0x%llx..0x%llx and outside the ACPI tables 0x%llx..0x%llx",
			(unsigned long long)gpa, LAYOUT_EBDA, LAYOUT_HIMEM, LAYOUT_ACPI_START,
			LAYOUT_ACPI_END);
	if (!guest_mem_ptr(gm, gpa, VMGENID_LEN))
		return boot_fail(err, errlen, -EFAULT,
			"acpi: vmgenid: buffer at 0x%llx lies outside guest memory",
			(unsigned long long)gpa);
	return claim_gsi(owner, cfg->vmgenid_gsi, "vmgenid", err, errlen);
}

int acpi_build(struct guest_mem *gm, const struct acpi_config *cfg, uint64_t *rsdp_gpa, char *err,
	size_t errlen)
{
	const char *owner[ACPI_IOAPIC_PINS];
	char names[ACPI_MAX_VIRTIO][NAME_LEN];
	size_t xsdt, fadt, madt, dsdt;
	uint8_t *area;
	long dsdt_len;
	int ret;

	if (cfg->nr_vcpus < 1 || cfg->nr_vcpus > ACPI_MAX_VCPUS)
		return boot_fail(err, errlen, -EINVAL, "acpi: %u vCPUs, need 1..%u", cfg->nr_vcpus,
			ACPI_MAX_VCPUS);
	memcpy(owner, legacy_gsi, sizeof(owner));
	ret = check_virtio(cfg, owner, names, err, errlen);
	if (!ret)
		ret = check_vmgenid(gm, cfg, owner, err, errlen);
	if (ret)
		return ret;
	if (!guest_mem_ptr(gm, LAYOUT_ACPI_START, AREA_SIZE))
		return boot_fail(err, errlen, -EFAULT,
			"acpi: guest memory does not cover the ACPI tables at 0x%llx..0x%llx",
			LAYOUT_ACPI_START, LAYOUT_ACPI_END);

	/* Built in a scratch copy, so that a failure leaves guest memory untouched. */
	area = calloc(1, AREA_SIZE);
	if (!area)
		return boot_fail(err, errlen, -ENOMEM, "acpi: out of memory");
	xsdt = align(RSDP_LEN);
	fadt = align(xsdt + HDR_LEN + 2 * 8);
	madt = align(fadt + FADT_LEN);
	dsdt = align(madt + MADT_LEN(cfg->nr_vcpus));
	dsdt_len = build_dsdt(area + dsdt, AREA_SIZE - dsdt, cfg);
	if (dsdt_len < 0) {
		ret = boot_fail(err, errlen, (int)dsdt_len,
			dsdt_len == -ENOSPC ? "acpi: the DSDT does not fit in 0x%llx..0x%llx"
					    : "acpi: cannot encode the DSDT (0x%llx..0x%llx)",
			LAYOUT_ACPI_START, LAYOUT_ACPI_END);
		goto out_free;
	}
	build_madt(area + madt, cfg->nr_vcpus);
	build_fadt(area + fadt, LAYOUT_ACPI_START + dsdt);
	build_xsdt(area + xsdt, LAYOUT_ACPI_START + fadt, LAYOUT_ACPI_START + madt);
	build_rsdp(area, LAYOUT_ACPI_START + xsdt);
	ret = guest_mem_write(gm, LAYOUT_ACPI_START, area, AREA_SIZE);
	if (ret) {
		boot_fail(err, errlen, ret, "acpi: cannot write the tables to guest memory");
		goto out_free;
	}
	*rsdp_gpa = LAYOUT_ACPI_START;
out_free:
	free(area);
	return ret;
}
