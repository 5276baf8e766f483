/* ACPI tables for an x86_64 guest: RSDP, XSDT, hardware-reduced FADT, MADT and a DSDT. */
#ifndef EMBER_ACPI_H
#define EMBER_ACPI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct guest_mem;

#define ACPI_MAX_VCPUS 32
/* KVM's in-kernel IOAPIC has 24 pins, GSI = pin (no ISA override: see acpi.c). */
#define ACPI_IOAPIC_PINS 24
/* One exclusive, edge-triggered IOAPIC pin per device: 24 pins less the four legacy lines
 * ember keeps (0 PIT, 1 i8042, 2 ISA cascade, 4 COM1). */
#define ACPI_MAX_VIRTIO 20

/* A virtio-mmio window, described to the guest as a "LNRO0005" device. */
struct acpi_mmio_device {
	uint64_t base; /* inside [LAYOUT_MMIO_GAP_START, LAYOUT_MMIO_GAP_END) */
	uint64_t size; /* > 0; the window may not leave the gap */
	uint32_t gsi;  /* IOAPIC pin, edge-triggered, active high */
};

struct acpi_config {
	unsigned nr_vcpus;                     /* 1..ACPI_MAX_VCPUS, APIC ids 0..n-1 */
	const struct acpi_mmio_device *virtio; /* virtio-mmio windows; may be NULL if none */
	unsigned nr_virtio;                    /* 0..ACPI_MAX_VIRTIO, _UID = index */
	bool vmgenid;                          /* describe a VM generation id device */
	uint64_t vmgenid_gpa; /* its 16-byte buffer: 8-byte aligned, in guest memory inside the
				* reserved [LAYOUT_EBDA, LAYOUT_HIMEM) hole and outside the ACPI
				* tables (LAYOUT_VMGENID is such a place) */
	uint32_t vmgenid_gsi; /* edge interrupt of a Generic Event Device whose _EVT sends
				* Notify(VGEN, 0x80): pulse it after changing the id */
};

/* Write the RSDP (revision 2), XSDT, FADT, MADT and DSDT into guest memory at
 * [LAYOUT_ACPI_START, LAYOUT_ACPI_END) and set *rsdp_gpa to the RSDP's address
 * (LAYOUT_ACPI_START, for boot_params.acpi_rsdp_addr). The whole range is rewritten; nothing
 * is written unless every check passed. Control thread, before the vCPUs run.
 * Errors, with "acpi: ..." in err:
 * -EINVAL  a vCPU count outside 1..ACPI_MAX_VCPUS; a virtio window that is empty, outside
 *          the MMIO gap or NULL; a GSI beyond the IOAPIC, on a legacy line or used twice;
 *          a vmgenid buffer that is misaligned or not in the reserved hole;
 * -E2BIG   more than ACPI_MAX_VIRTIO virtio devices;
 * -ENOSPC  the tables outgrow the ACPI range;
 * -EFAULT  guest memory does not cover the ACPI range or the vmgenid buffer;
 * -ENOMEM  no memory for the scratch copy. */
__attribute__((warn_unused_result)) int acpi_build(struct guest_mem *gm,
	const struct acpi_config *cfg, uint64_t *rsdp_gpa, char *err, size_t errlen);

#endif
