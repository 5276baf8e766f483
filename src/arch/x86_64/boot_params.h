/* Private to src/arch/x86_64: struct boot_params / setup header offsets, boot_fail. */
#ifndef EMBER_ARCH_X86_64_BOOT_PARAMS_H
#define EMBER_ARCH_X86_64_BOOT_PARAMS_H

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>

#include "ember/byteorder.h"

/* Offsets into the zero page (struct boot_params), from Linux
 * Documentation/arch/x86/zero-page.rst and boot.rst. The setup header sits at the same
 * offsets in the first sector of a bzImage. */
#define BP_ACPI_RSDP_ADDR 0x070     /* u64: RSDP address (protocol 2.14+) */
#define BP_EXT_RAMDISK_IMAGE 0x0c0  /* u32: bits 63..32 of ramdisk_image */
#define BP_EXT_RAMDISK_SIZE 0x0c4   /* u32: bits 63..32 of ramdisk_size */
#define BP_EXT_CMD_LINE_PTR 0x0c8   /* u32: bits 63..32 of cmd_line_ptr */
#define BP_E820_ENTRIES 0x1e8       /* u8 */
#define BP_SETUP_SECTS 0x1f1        /* u8: setup size in 512-byte sectors, 0 means 4 */
#define BP_SYSSIZE 0x1f4            /* u32: protected-mode code size in 16-byte units */
#define BP_VID_MODE 0x1fa           /* u16 */
#define BP_BOOT_FLAG 0x1fe          /* u16: 0xaa55 */
#define BP_JUMP 0x200               /* 2-byte short jump; the header ends at 0x202 + byte 0x201 */
#define BP_HEADER 0x202             /* u32: "HdrS" */
#define BP_VERSION 0x206            /* u16: boot protocol version */
#define BP_TYPE_OF_LOADER 0x210     /* u8 */
#define BP_LOADFLAGS 0x211          /* u8 */
#define BP_RAMDISK_IMAGE 0x218      /* u32 */
#define BP_RAMDISK_SIZE 0x21c       /* u32 */
#define BP_HEAP_END_PTR 0x224       /* u16 */
#define BP_CMD_LINE_PTR 0x228       /* u32 */
#define BP_INITRD_ADDR_MAX 0x22c    /* u32 */
#define BP_KERNEL_ALIGNMENT 0x230   /* u32 */
#define BP_RELOCATABLE_KERNEL 0x234 /* u8 */
#define BP_XLOADFLAGS 0x236         /* u16 */
#define BP_CMDLINE_SIZE 0x238       /* u32 */
#define BP_SETUP_DATA 0x250         /* u64: linked list of struct setup_data (2.09+) */
#define BP_PREF_ADDRESS 0x258       /* u64 */
#define BP_INIT_SIZE 0x260          /* u32 */
#define BP_SETUP_HEADER_LIMIT 0x290 /* first boot_params field after the setup header */
#define BP_E820_TABLE 0x2d0         /* struct boot_e820_entry[BP_E820_MAX] */
#define BP_E820_MAX 128
#define BP_E820_ENTRY_SIZE 20
#define BP_SIZE 4096

#define BP_BOOT_FLAG_MAGIC 0xaa55
#define BP_HEADER_MAGIC 0x53726448u /* "HdrS" little-endian */
#define BP_LOADED_HIGH 0x01
#define BP_CAN_USE_HEAP 0x80
#define BP_XLF_KERNEL_64 0x0001
#define BP_XLF_CAN_BE_LOADED_ABOVE_4G 0x0002

/* Fill the caller's error buffer and hand back `ret`, so a failure is one statement. */
__attribute__((format(printf, 4, 5))) static inline int boot_fail(char *err, size_t errlen, int ret,
	const char *fmt, ...)
{
	if (err && errlen) {
		va_list ap;

		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return ret;
}

#endif
