/* Guest-physical layout of an ember x86_64 machine: the contract between ember and its guests. */
#ifndef EMBER_LAYOUT_H
#define EMBER_LAYOUT_H

/* Boot structures written by ember below 1 MiB (Linux 64-bit boot protocol). */
#define LAYOUT_GDT 0x500ULL         /* boot GDT: null, null, code64 (0x10), data (0x18) */
#define LAYOUT_IDT 0x520ULL         /* empty IDT the guest replaces */
#define LAYOUT_ZERO_PAGE 0x7000ULL  /* struct boot_params, passed in RSI */
#define LAYOUT_BOOT_STACK 0x8ff0ULL /* initial RSP */
#define LAYOUT_PML4 0x9000ULL       /* identity map of the first 4 GiB, 2 MiB pages */
#define LAYOUT_PDPT 0xa000ULL
#define LAYOUT_PD 0xb000ULL /* four page directories, 0xb000..0xefff */
#define LAYOUT_CMDLINE 0x20000ULL
#define LAYOUT_CMDLINE_MAX 4096ULL
#define LAYOUT_EBDA 0x9fc00ULL   /* end of the low RAM e820 entry */
#define LAYOUT_HIMEM 0x100000ULL /* bzImage protected-mode code, e820 high RAM start */
/* ACPI tables (acpi_build), inside the e820-reserved EBDA..1 MiB hole: the RSDP first, at
 * 0xe0000 where Linux also scans (0xe0000..0xfffff), then XSDT, FADT, MADT and DSDT. */
#define LAYOUT_ACPI_START 0xe0000ULL
#define LAYOUT_ACPI_END 0xf0000ULL
/* VM generation id: 16 bytes, 8-byte aligned, in reserved memory outside the ACPI tables
 * (Microsoft's vmgenid spec: not RAM or ACPI in the e820 map, always cacheable). */
#define LAYOUT_VMGENID 0xf0000ULL
#define LAYOUT_VMGENID_GSI 23 /* the last IOAPIC pin; virtio devices count up from 5 */

/* Where guest RAM may live: [0, MMIO_GAP_START) and [4 GiB, ...). */
#define LAYOUT_MMIO_GAP_START 0xc0000000ULL
#define LAYOUT_MMIO_GAP_END 0x100000000ULL

/* Device memory above RAM: virtio-mem's hotplug area first, then the pmem devices, from
 * the first LAYOUT_DEVICE_MEM_ALIGN boundary at or above both 4 GiB and the end of RAM
 * (guest_mem_device_base). KVM memory slots: RAM takes 0 and 1, pmem devices
 * LAYOUT_SLOT_PMEM onwards (one each), virtio-mem LAYOUT_SLOT_HOTPLUG onwards. */
#define LAYOUT_DEVICE_MEM_ALIGN 0x40000000ULL
#define LAYOUT_SLOT_PMEM 2u
#define LAYOUT_PMEM_MAX 8u
#define LAYOUT_SLOT_HOTPLUG (LAYOUT_SLOT_PMEM + LAYOUT_PMEM_MAX)

/* Devices inside the gap. */
#define LAYOUT_BOOT_TIMER 0xd0000000ULL /* 8-byte MMIO window; write 123 to mark boot done */
#define LAYOUT_BOOT_TIMER_SIZE 0x1000ULL
#define LAYOUT_BOOT_TIMER_MAGIC 123
#define LAYOUT_VIRTIO_MMIO_BASE 0xd0001000ULL
#define LAYOUT_VIRTIO_MMIO_SIZE 0x1000ULL
#define LAYOUT_IOAPIC 0xfec00000ULL
#define LAYOUT_LAPIC 0xfee00000ULL

/* Legacy ports. */
#define LAYOUT_PORT_SERIAL 0x3f8
#define LAYOUT_SERIAL_IRQ 4
#define LAYOUT_I8042_IRQ 1
#define LAYOUT_PORT_I8042_DATA 0x60
#define LAYOUT_PORT_I8042_CMD 0x64
#define LAYOUT_I8042_CMD_RESET 0xfe
/* ACPI sleep control / status registers (hardware-reduced FADT points here).
 * Writing SLP_EN (bit 5) with SLP_TYP 5 (bits 2..4) powers the machine off. */
#define LAYOUT_PORT_SLEEP_CTL 0x3c0
#define LAYOUT_PORT_SLEEP_STS 0x3c1
#define LAYOUT_SLEEP_POWEROFF ((5u << 2) | (1u << 5))

#endif
