/* x86_64 boot: kernel image loading (ELF vmlinux, bzImage), zero page and e820, boot page
 * tables and GDT, initial vCPU registers. Pure logic on guest memory: no KVM calls. */
#ifndef EMBER_X86_BOOT_H
#define EMBER_X86_BOOT_H

#include <stddef.h>
#include <stdint.h>

#include <linux/kvm.h>

struct guest_mem;

enum x86_kernel_kind { X86_KERNEL_ELF, X86_KERNEL_BZIMAGE };

struct x86_kernel {
	enum x86_kernel_kind kind;
	uint64_t entry;      /* guest-physical 64-bit entry point */
	uint64_t load_start; /* lowest guest-physical byte written */
	uint64_t load_end;   /* one past the highest byte written (initrd goes above this) */
	/* bzImage only: the real-mode setup header (offset 0x1f1 of the image, up to 0x290),
	 * copied into the zero page. */
	uint8_t setup_header[0x290 - 0x1f1];
	size_t setup_header_len;
	uint16_t boot_protocol;   /* bzImage protocol version, e.g. 0x020f; 0 for ELF */
	uint32_t initrd_addr_max; /* highest initrd byte the kernel accepts (ELF: UINT32_MAX) */
};

/* Parse `image` (len bytes, an ELF64 x86_64 vmlinux or a bzImage with the 64-bit entry,
 * protocol >= 2.06 and XLF_KERNEL_64) and copy it into guest memory. Every header field is
 * checked against `len` and against guest memory, and nothing is written unless the whole
 * image passed.
 * - ELF: ET_EXEC, EM_X86_64; each PT_LOAD goes to p_paddr (at or above 1 MiB, where the
 *   boot structures end), its bss zeroed; e_entry must lie inside a loaded segment.
 * - bzImage: the protected-mode code goes to LAYOUT_HIMEM, entry = LAYOUT_HIMEM + 0x200;
 *   load_end also covers the init_size bytes the kernel decompresses into (boot.rst,
 *   "kernel runtime start address"), which must be non-zero and lie in guest memory.
 * On error fills err ("kernel: <what is wrong>") and returns -ENOEXEC (not a kernel this
 * loader supports), -EINVAL (malformed: a field points outside the file or is
 * inconsistent) or -EFAULT (does not fit in guest memory). */
__attribute__((warn_unused_result)) int x86_kernel_load(struct guest_mem *gm, const void *image,
	size_t len, struct x86_kernel *out, char *err, size_t errlen);

/* Place an initrd of `len` bytes page-aligned at the top of low RAM, below
 * min(initrd_addr_max, low RAM end) and above kernel->load_end. Sets *gpa. Returns -EINVAL
 * for an empty initrd, -ENOMEM when it does not fit ("initrd: ..." in err). */
__attribute__((warn_unused_result)) int x86_initrd_load(struct guest_mem *gm,
	const struct x86_kernel *kernel, const void *initrd, size_t len, uint64_t *gpa, char *err,
	size_t errlen);

struct x86_boot_info {
	const char *cmdline; /* NUL-terminated, < LAYOUT_CMDLINE_MAX bytes */
	uint64_t initrd_gpa; /* 0 if none */
	uint64_t initrd_size;
	uint64_t acpi_rsdp; /* the RSDP's gpa (acpi_build), 0 if none */
};

/* Write the command line at LAYOUT_CMDLINE and the zero page (struct boot_params) at
 * LAYOUT_ZERO_PAGE: setup header (bzImage) or a minimal one (ELF), type_of_loader 0xff,
 * cmd_line_ptr, ramdisk, acpi_rsdp_addr, and the e820 map built from guest memory regions
 * (low RAM up to LAYOUT_EBDA, reserved EBDA..1 MiB, RAM from 1 MiB to the gap, RAM above
 * 4 GiB).
 * A NULL cmdline is "". Errors: -E2BIG if the command line is longer than
 * LAYOUT_CMDLINE_MAX - 1 or the bzImage's cmdline_size; -EFAULT if the initrd, the
 * command line or the zero page lies outside guest memory; -EINVAL if the initrd ends
 * above initrd_addr_max (bzImage without XLF_CAN_BE_LOADED_ABOVE_4G) or a bzImage
 * kernel has no setup header. */
__attribute__((warn_unused_result)) int x86_zero_page_setup(struct guest_mem *gm,
	const struct x86_kernel *kernel, const struct x86_boot_info *info, char *err,
	size_t errlen);

/* Build the e820 table for `gm` into `out` (up to max entries, the rest dropped); returns
 * the count. Each entry is {addr, size, type} with type 1 = RAM, 2 = reserved. Reads only
 * the region list: works on a guest_mem that is laid out but not mapped. */
struct x86_e820_entry {
	uint64_t addr;
	uint64_t size;
	uint32_t type;
} __attribute__((packed));
unsigned x86_e820_build(const struct guest_mem *gm, struct x86_e820_entry *out, unsigned max);

/* Write the boot GDT (LAYOUT_GDT), an empty IDT (LAYOUT_IDT, 16 zero bytes) and identity
 * page tables for the first 4 GiB with 2 MiB pages (LAYOUT_PML4/PDPT/PD). -EFAULT if guest
 * memory does not cover them (it must reach 0xf000). */
__attribute__((warn_unused_result)) int x86_boot_tables_setup(struct guest_mem *gm);

/* Registers for the boot vCPU entering the 64-bit boot protocol at `entry`: long mode,
 * paging on (CR3 = LAYOUT_PML4), CS 0x10, data segments 0x18, RSI = zero page,
 * RSP = LAYOUT_BOOT_STACK, RFLAGS = 2; every other general register 0. `sregs` must hold
 * the values KVM_GET_SREGS returned: segments, GDT/IDT, CR0/3/4 and EFER are set, the
 * rest (TR, LDT, CR2, CR8, APIC base, pending interrupts) is left as KVM gave it. */
void x86_boot_regs(uint64_t entry, struct kvm_regs *regs, struct kvm_sregs *sregs);

#endif
