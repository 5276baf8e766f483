/* x86_64 zero page (struct boot_params), command line and e820 map for the Linux boot protocol. */
#include "ember/x86_boot.h"

#include <errno.h>
#include <string.h>

#include "boot_params.h"
#include "ember/guest_mem.h"
#include "ember/layout.h"

#define E820_RAM 1
#define E820_RESERVED 2
#define LOADER_UNDEFINED 0xff  /* type_of_loader: a boot loader without an assigned id */
#define HEAP_END 0xfe00        /* heap_end_ptr: setup heap ends below the 0x10000 segment */
#define VID_MODE_NORMAL 0xffff /* "normal" text mode, no prompt */
#define ELF_PROTOCOL 0x020f    /* version announced in the minimal header for ELF kernels */

static unsigned add_entry(struct x86_e820_entry *out, unsigned n, unsigned max, uint64_t start,
	uint64_t end, uint32_t type)
{
	if (start >= end || n >= max)
		return n;
	out[n].addr = start;
	out[n].size = end - start;
	out[n].type = type;
	return n + 1;
}

unsigned x86_e820_build(const struct guest_mem *gm, struct x86_e820_entry *out, unsigned max)
{
	/* RAM only: device memory (virtio-mem) is the guest's to find through its device. */
	unsigned nr = guest_mem_nr_ram(gm);
	unsigned n = 0;

	/* Each region is cut at the EBDA and at 1 MiB: RAM below the EBDA, the EBDA and BIOS
	 * area reserved, RAM from 1 MiB on. Regions come in address order. */
	for (unsigned i = 0; i < nr; i++) {
		uint64_t start = gm->regions[i].gpa;
		uint64_t end = start + gm->regions[i].size;

		n = add_entry(out, n, max, start, end < LAYOUT_EBDA ? end : LAYOUT_EBDA, E820_RAM);
		if (start < LAYOUT_HIMEM && end > LAYOUT_EBDA)
			n = add_entry(out, n, max, start > LAYOUT_EBDA ? start : LAYOUT_EBDA,
				LAYOUT_HIMEM, E820_RESERVED);
		n = add_entry(out, n, max, start > LAYOUT_HIMEM ? start : LAYOUT_HIMEM, end,
			E820_RAM);
	}
	return n;
}

/* The header the kernel brought (bzImage) or a minimal one announcing the boot protocol
 * (ELF, whose 64-bit entry reads only boot_params). */
static int put_header(uint8_t *bp, const struct x86_kernel *kernel, size_t cmdlen, char *err,
	size_t errlen)
{
	uint32_t cmdline_size;

	if (kernel->kind != X86_KERNEL_BZIMAGE) {
		put_le16(bp + BP_BOOT_FLAG, BP_BOOT_FLAG_MAGIC);
		put_le32(bp + BP_HEADER, BP_HEADER_MAGIC);
		put_le16(bp + BP_VERSION, ELF_PROTOCOL);
		put_le32(bp + BP_CMDLINE_SIZE, (uint32_t)(LAYOUT_CMDLINE_MAX - 1));
		return 0;
	}
	if (kernel->setup_header_len > sizeof(kernel->setup_header) ||
		kernel->setup_header_len < BP_CMDLINE_SIZE + 4 - BP_SETUP_SECTS)
		return boot_fail(err, errlen, -EINVAL,
			"zero page: the kernel's setup header is missing or truncated");
	memcpy(bp + BP_SETUP_SECTS, kernel->setup_header, kernel->setup_header_len);
	/* A field the boot loader writes (boot.rst): we pass no setup_data, and the kernel
	 * would follow whatever the image carried there as a physical pointer. */
	put_le64(bp + BP_SETUP_DATA, 0);
	cmdline_size = get_le32(bp + BP_CMDLINE_SIZE);
	if (cmdlen > cmdline_size)
		return boot_fail(err, errlen, -E2BIG,
			"cmdline: %zu bytes exceed the kernel's limit of %u", cmdlen, cmdline_size);
	return 0;
}

static int put_initrd(uint8_t *bp, const struct guest_mem *gm, const struct x86_kernel *kernel,
	const struct x86_boot_info *info, char *err, size_t errlen)
{
	uint64_t gpa = info->initrd_gpa, size = info->initrd_size;
	int above_4g = kernel->kind != X86_KERNEL_BZIMAGE ||
		(get_le16(bp + BP_XLOADFLAGS) & BP_XLF_CAN_BE_LOADED_ABOVE_4G);

	/* Written even without an initrd: the image's own ramdisk_image / ramdisk_size came
	 * with its setup header, and the kernel would take them for an initrd. */
	if (size == 0)
		gpa = 0;
	else if (!guest_mem_ptr(gm, gpa, size))
		return boot_fail(err, errlen, -EFAULT,
			"initrd: 0x%llx bytes at 0x%llx lie outside guest memory",
			(unsigned long long)size, (unsigned long long)gpa);
	/* guest_mem_ptr proved gpa + size does not overflow. */
	if (size && !above_4g && gpa + size - 1 > kernel->initrd_addr_max)
		return boot_fail(err, errlen, -EINVAL,
			"initrd: ends at 0x%llx, above the kernel's initrd_addr_max 0x%x",
			(unsigned long long)(gpa + size - 1), kernel->initrd_addr_max);
	put_le32(bp + BP_RAMDISK_IMAGE, (uint32_t)gpa);
	put_le32(bp + BP_EXT_RAMDISK_IMAGE, (uint32_t)(gpa >> 32));
	put_le32(bp + BP_RAMDISK_SIZE, (uint32_t)size);
	put_le32(bp + BP_EXT_RAMDISK_SIZE, (uint32_t)(size >> 32));
	return 0;
}

int x86_zero_page_setup(struct guest_mem *gm, const struct x86_kernel *kernel,
	const struct x86_boot_info *info, char *err, size_t errlen)
{
	uint8_t bp[BP_SIZE];
	struct x86_e820_entry e820[BP_E820_MAX];
	const char *cmdline = info->cmdline ? info->cmdline : "";
	size_t cmdlen = strnlen(cmdline, LAYOUT_CMDLINE_MAX);
	unsigned n;
	int ret;

	if (cmdlen >= LAYOUT_CMDLINE_MAX)
		return boot_fail(err, errlen, -E2BIG, "cmdline: longer than %llu bytes",
			LAYOUT_CMDLINE_MAX - 1);
	memset(bp, 0, sizeof(bp));
	ret = put_header(bp, kernel, cmdlen, err, errlen);
	if (ret)
		return ret;
	ret = put_initrd(bp, gm, kernel, info, err, errlen);
	if (ret)
		return ret;

	bp[BP_TYPE_OF_LOADER] = LOADER_UNDEFINED;
	bp[BP_LOADFLAGS] |= BP_CAN_USE_HEAP;
	put_le16(bp + BP_HEAP_END_PTR, HEAP_END);
	put_le16(bp + BP_VID_MODE, VID_MODE_NORMAL);
	put_le32(bp + BP_CMD_LINE_PTR, (uint32_t)LAYOUT_CMDLINE);
	put_le32(bp + BP_EXT_CMD_LINE_PTR, (uint32_t)(LAYOUT_CMDLINE >> 32));
	/* Older kernels see padding here and find the RSDP by scanning 0xe0000..0xfffff. */
	put_le64(bp + BP_ACPI_RSDP_ADDR, info->acpi_rsdp);

	n = x86_e820_build(gm, e820, BP_E820_MAX);
	bp[BP_E820_ENTRIES] = (uint8_t)n;
	for (unsigned i = 0; i < n; i++) {
		uint8_t *e = bp + BP_E820_TABLE + i * BP_E820_ENTRY_SIZE;

		put_le64(e, e820[i].addr);
		put_le64(e + 8, e820[i].size);
		put_le32(e + 16, e820[i].type);
	}

	if (guest_mem_write(gm, LAYOUT_CMDLINE, cmdline, cmdlen + 1))
		return boot_fail(err, errlen, -EFAULT, "cmdline: 0x%llx lies outside guest memory",
			LAYOUT_CMDLINE);
	if (guest_mem_write(gm, LAYOUT_ZERO_PAGE, bp, sizeof(bp)))
		return boot_fail(err, errlen, -EFAULT,
			"zero page: 0x%llx lies outside guest memory", LAYOUT_ZERO_PAGE);
	return 0;
}
