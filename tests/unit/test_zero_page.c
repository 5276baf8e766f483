/* Unit tests for zero_page.c: e820 map, zero page fields and command line. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ember/byteorder.h"
#include "ember/guest_mem.h"
#include "ember/layout.h"
#include "ember/x86_boot.h"
#include "guest_mem_fixture.h"

#define MIB (1ULL << 20)
#define GIB (1ULL << 30)

/* struct boot_params offsets, from Documentation/arch/x86/zero-page.rst and boot.rst,
 * written out here independently of the code under test. */
#define O_ACPI_RSDP_ADDR 0x070
#define O_EXT_RAMDISK_IMAGE 0x0c0
#define O_EXT_RAMDISK_SIZE 0x0c4
#define O_EXT_CMD_LINE_PTR 0x0c8
#define O_E820_ENTRIES 0x1e8
#define O_SETUP_SECTS 0x1f1
#define O_VID_MODE 0x1fa
#define O_BOOT_FLAG 0x1fe
#define O_HEADER 0x202
#define O_VERSION 0x206
#define O_TYPE_OF_LOADER 0x210
#define O_LOADFLAGS 0x211
#define O_RAMDISK_IMAGE 0x218
#define O_RAMDISK_SIZE 0x21c
#define O_HEAP_END_PTR 0x224
#define O_CMD_LINE_PTR 0x228
#define O_INITRD_ADDR_MAX 0x22c
#define O_XLOADFLAGS 0x236
#define O_CMDLINE_SIZE 0x238
#define O_E820_TABLE 0x2d0

struct fixture {
	struct guest_mem gm;
	struct x86_kernel k;
	char err[256];
};

/* A bzImage kernel as x86_kernel_load would describe it. */
static void bzimage_kernel(struct x86_kernel *k)
{
	uint8_t h[0x290]; /* the first bytes of a bzImage, indexed by boot_params offset */

	memset(k, 0, sizeof(*k));
	memset(h, 0, sizeof(h));
	k->kind = X86_KERNEL_BZIMAGE;
	k->entry = 0x100200;
	k->load_start = 0x100000;
	k->load_end = 24 * MIB;
	k->setup_header_len = 0x268 - O_SETUP_SECTS;
	h[O_SETUP_SECTS] = 0x1b;
	put_le16(h + O_BOOT_FLAG, 0xaa55);
	h[0x200] = 0xeb;
	h[0x201] = 0x66;
	memcpy(h + O_HEADER, "HdrS", 4);
	put_le16(h + O_VERSION, 0x020f);
	h[O_LOADFLAGS] = 0x01; /* LOADED_HIGH */
	put_le32(h + O_INITRD_ADDR_MAX, 0x7fffffff);
	put_le16(h + O_XLOADFLAGS, 0x1); /* KERNEL_64 only: the initrd must stay below 2 GiB */
	put_le32(h + O_CMDLINE_SIZE, 2047);
	h[0x260] = 0x42; /* init_size, a field we do not touch */
	memcpy(k->setup_header, h + O_SETUP_SECTS, k->setup_header_len);
	k->boot_protocol = 0x020f;
	k->initrd_addr_max = 0x7fffffff;
}

static void elf_kernel(struct x86_kernel *k)
{
	memset(k, 0, sizeof(*k));
	k->kind = X86_KERNEL_ELF;
	k->entry = 16 * MIB;
	k->load_start = 16 * MIB;
	k->load_end = 20 * MIB;
	k->initrd_addr_max = UINT32_MAX;
}

static int setup(void **state)
{
	*state = mapped_fixture_new(sizeof(struct fixture), 128 * MIB);
	return *state ? 0 : -1;
}

static int teardown(void **state)
{
	mapped_fixture_free(*state);
	return 0;
}

static const uint8_t *zero_page(struct guest_mem *gm)
{
	const uint8_t *p = guest_mem_ptr(gm, LAYOUT_ZERO_PAGE, 4096);

	assert_non_null(p);
	return p;
}

/* A guest_mem with the regions of `size` bytes of RAM, not mapped: e820 only reads them. */
static void layout_only(struct guest_mem *gm, uint64_t size)
{
	memset(gm, 0, sizeof(*gm));
	gm->nr_regions = guest_mem_layout(size, gm->regions);
	gm->total = size;
	gm->fd = -1;
}

static void expect_e820(const struct x86_e820_entry *e, uint64_t addr, uint64_t size, uint32_t type)
{
	assert_int_equal(e->addr, addr);
	assert_int_equal(e->size, size);
	assert_int_equal(e->type, type);
}

/* --- e820 --- */

static void test_zero_page_e820_128mib(void **state)
{
	struct x86_e820_entry e[8];
	struct guest_mem gm;

	(void)state;
	layout_only(&gm, 128 * MIB);
	assert_int_equal(x86_e820_build(&gm, e, 8), 3);
	expect_e820(&e[0], 0, 0x9fc00, 1);
	expect_e820(&e[1], 0x9fc00, 0x100000 - 0x9fc00, 2);
	expect_e820(&e[2], 0x100000, 127 * MIB, 1);
}

/* Device memory (virtio-mem, pmem) starts above both 4 GiB and RAM, 1 GiB aligned. */
static void test_device_memory_starts_above_ram_and_the_gap(void **state)
{
	struct guest_mem gm;

	(void)state;
	layout_only(&gm, 128 * MIB);
	assert_int_equal(guest_mem_device_base(&gm), 4096 * MIB);
	layout_only(&gm, 3072 * MIB);
	assert_int_equal(guest_mem_device_base(&gm), 4096 * MIB);
	layout_only(&gm, 4096 * MIB); /* 3 GiB low, 1 GiB from 4 GiB: ends at 5 GiB */
	assert_int_equal(guest_mem_device_base(&gm), 5120 * MIB);
	layout_only(&gm, 4097 * MIB);
	assert_int_equal(guest_mem_device_base(&gm), 6144 * MIB);
	assert_int_equal(guest_mem_free_base(&gm), 6144 * MIB);
	assert_null(guest_mem_device_region(&gm));
}

/* pmem goes above virtio-mem's hotplug area, at the next 1 GiB boundary after it. */
static void test_free_base_is_above_the_device_region(void **state)
{
	struct guest_mem gm;

	(void)state;
	layout_only(&gm, 128 * MIB);
	gm.regions[gm.nr_regions++] = (struct guest_mem_region){ .gpa = 4096 * MIB,
		.size = 1536 * MIB };
	gm.nr_device = 1;
	assert_int_equal(guest_mem_device_base(&gm), 4096 * MIB);
	assert_int_equal(guest_mem_free_base(&gm), 6144 * MIB);
	assert_ptr_equal(guest_mem_device_region(&gm), &gm.regions[gm.nr_regions - 1]);
}

static void test_zero_page_e820_3gib_ends_at_gap(void **state)
{
	struct x86_e820_entry e[8];
	struct guest_mem gm;

	(void)state;
	layout_only(&gm, 3 * GIB);
	assert_int_equal(gm.nr_regions, 1);
	assert_int_equal(x86_e820_build(&gm, e, 8), 3);
	expect_e820(&e[0], 0, 0x9fc00, 1);
	expect_e820(&e[1], 0x9fc00, 0x60400, 2);
	expect_e820(&e[2], 0x100000, 0xc0000000 - 0x100000, 1);
	assert_int_equal(e[2].addr + e[2].size, LAYOUT_MMIO_GAP_START);
}

static void test_zero_page_e820_4gib_splits_around_gap(void **state)
{
	struct x86_e820_entry e[8];
	struct guest_mem gm;

	(void)state;
	layout_only(&gm, 4 * GIB);
	assert_int_equal(x86_e820_build(&gm, e, 8), 4);
	expect_e820(&e[0], 0, 0x9fc00, 1);
	expect_e820(&e[1], 0x9fc00, 0x60400, 2);
	expect_e820(&e[2], 0x100000, 0xc0000000 - 0x100000, 1);
	expect_e820(&e[3], 0x100000000ULL, 1 * GIB, 1);
}

static void test_zero_page_e820_respects_max(void **state)
{
	struct x86_e820_entry e[4];
	struct guest_mem gm;

	(void)state;
	memset(e, 0xee, sizeof(e));
	layout_only(&gm, 4 * GIB);
	assert_int_equal(x86_e820_build(&gm, e, 2), 2);
	expect_e820(&e[1], 0x9fc00, 0x60400, 2);
	assert_int_equal(e[2].type, 0xeeeeeeee);
	assert_int_equal(x86_e820_build(&gm, e, 0), 0);
	gm.nr_regions = 0;
	assert_int_equal(x86_e820_build(&gm, e, 4), 0);
}

static void test_zero_page_e820_small_memory(void **state)
{
	struct x86_e820_entry e[4];
	struct guest_mem gm;

	(void)state;
	layout_only(&gm, 0x80000); /* 512 KiB: below the EBDA, no reserved hole to report */
	assert_int_equal(x86_e820_build(&gm, e, 4), 1);
	expect_e820(&e[0], 0, 0x80000, 1);
	layout_only(&gm, 1 * MIB); /* up to 1 MiB: RAM and the reserved EBDA/BIOS area */
	assert_int_equal(x86_e820_build(&gm, e, 4), 2);
	expect_e820(&e[1], 0x9fc00, 0x60400, 2);
}

/* --- zero page --- */

static void test_zero_page_bzimage_fields(void **state)
{
	struct fixture *f = *state;
	struct x86_boot_info info = { .cmdline = "console=ttyS0 reboot=k panic=1",
		.initrd_gpa = 100 * MIB,
		.initrd_size = 0x123456 };
	const uint8_t *bp;
	uint8_t hdr[0x268 - O_SETUP_SECTS];

	bzimage_kernel(&f->k);
	memcpy(hdr, f->k.setup_header, sizeof(hdr));
	assert_int_equal(x86_zero_page_setup(&f->gm, &f->k, &info, f->err, sizeof(f->err)), 0);
	bp = zero_page(&f->gm);

	/* The kernel's setup header is there, except the fields the loader fills. */
	assert_int_equal(bp[O_SETUP_SECTS], 0x1b);
	assert_int_equal(get_le16(bp + O_BOOT_FLAG), 0xaa55);
	assert_memory_equal(bp + O_HEADER, "HdrS", 4);
	assert_int_equal(get_le16(bp + O_VERSION), 0x020f);
	assert_int_equal(get_le32(bp + O_INITRD_ADDR_MAX), 0x7fffffff);
	assert_int_equal(get_le32(bp + O_CMDLINE_SIZE), 2047);
	assert_int_equal(bp[0x260], 0x42);
	assert_memory_equal(bp + O_HEADER, hdr + (O_HEADER - O_SETUP_SECTS), 0x0e);
	assert_memory_equal(bp + 0x22c, hdr + (0x22c - O_SETUP_SECTS), 0x268 - 0x22c);

	assert_int_equal(bp[O_TYPE_OF_LOADER], 0xff);
	assert_int_equal(bp[O_LOADFLAGS], 0x81); /* LOADED_HIGH kept, CAN_USE_HEAP added */
	assert_int_equal(get_le16(bp + O_HEAP_END_PTR), 0xfe00);
	assert_int_equal(get_le16(bp + O_VID_MODE), 0xffff);
	assert_int_equal(get_le32(bp + O_CMD_LINE_PTR), LAYOUT_CMDLINE);
	assert_int_equal(get_le32(bp + O_EXT_CMD_LINE_PTR), 0);
	assert_int_equal(get_le32(bp + O_RAMDISK_IMAGE), 100 * MIB);
	assert_int_equal(get_le32(bp + O_RAMDISK_SIZE), 0x123456);
	assert_int_equal(get_le32(bp + O_EXT_RAMDISK_IMAGE), 0);
	assert_int_equal(get_le32(bp + O_EXT_RAMDISK_SIZE), 0);

	/* Nothing past the setup header except the e820 table. */
	assert_int_equal(bp[0x268], 0);
	assert_int_equal(bp[0x2cf], 0);

	assert_string_equal((const char *)guest_mem_ptr(&f->gm, LAYOUT_CMDLINE, 1),
		"console=ttyS0 reboot=k panic=1");
}

/* Found by fuzz_kernel_loader: booted without an initrd, a bzImage whose header carried
 * ramdisk_image / ramdisk_size (or setup_data) got them back in the zero page, and the
 * kernel would have looked for an initrd (or a setup_data list) where they point. They are
 * fields the boot loader writes. */
static void test_zero_page_bzimage_loader_fields_override_the_image(void **state)
{
	struct fixture *f = *state;
	struct x86_boot_info info = { .cmdline = "" };
	uint8_t *h = f->k.setup_header; /* starts at boot_params offset O_SETUP_SECTS */
	const uint8_t *bp;

	bzimage_kernel(&f->k);
	put_le32(h + O_RAMDISK_IMAGE - O_SETUP_SECTS, 0x3000000);
	put_le32(h + O_RAMDISK_SIZE - O_SETUP_SECTS, 0x1234);
	put_le32(h + 0x250 - O_SETUP_SECTS, 0xdead000);
	put_le32(h + 0x254 - O_SETUP_SECTS, 0x1);
	assert_int_equal(x86_zero_page_setup(&f->gm, &f->k, &info, f->err, sizeof(f->err)), 0);
	bp = zero_page(&f->gm);
	assert_int_equal(get_le32(bp + O_RAMDISK_IMAGE), 0);
	assert_int_equal(get_le32(bp + O_RAMDISK_SIZE), 0);
	assert_int_equal(get_le32(bp + O_EXT_RAMDISK_IMAGE), 0);
	assert_int_equal(get_le32(bp + O_EXT_RAMDISK_SIZE), 0);
	assert_int_equal(get_le64(bp + 0x250), 0); /* setup_data */
	assert_int_equal(bp[0x260], 0x42);         /* other kernel fields still there */
}

static void test_zero_page_e820_table_at_its_offset(void **state)
{
	struct fixture *f = *state;
	struct x86_boot_info info = { .cmdline = "" };
	const uint8_t *bp, *e;

	bzimage_kernel(&f->k);
	assert_int_equal(x86_zero_page_setup(&f->gm, &f->k, &info, f->err, sizeof(f->err)), 0);
	bp = zero_page(&f->gm);
	assert_int_equal(bp[O_E820_ENTRIES], 3);
	e = bp + O_E820_TABLE; /* 20-byte entries: addr, size, type */
	assert_int_equal(get_le64(e), 0);
	assert_int_equal(get_le64(e + 8), 0x9fc00);
	assert_int_equal(get_le32(e + 16), 1);
	assert_int_equal(get_le64(e + 20), 0x9fc00);
	assert_int_equal(get_le64(e + 28), 0x60400);
	assert_int_equal(get_le32(e + 36), 2);
	assert_int_equal(get_le64(e + 40), 0x100000);
	assert_int_equal(get_le64(e + 48), 127 * MIB);
	assert_int_equal(get_le32(e + 56), 1);
	assert_int_equal(get_le32(e + 60), 0); /* no fourth entry */
}

static void test_zero_page_elf_minimal_header(void **state)
{
	struct fixture *f = *state;
	struct x86_boot_info info = { .cmdline = "quiet" };
	const uint8_t *bp;

	elf_kernel(&f->k);
	/* Leftovers from an earlier boot must not survive. */
	memset(guest_mem_ptr_mut(&f->gm, LAYOUT_ZERO_PAGE, 4096), 0x5a, 4096);
	assert_int_equal(x86_zero_page_setup(&f->gm, &f->k, &info, f->err, sizeof(f->err)), 0);
	bp = zero_page(&f->gm);
	assert_int_equal(get_le16(bp + O_BOOT_FLAG), 0xaa55);
	assert_memory_equal(bp + O_HEADER, "HdrS", 4);
	assert_int_equal(get_le16(bp + O_VERSION), 0x020f);
	assert_int_equal(get_le32(bp + O_CMDLINE_SIZE), LAYOUT_CMDLINE_MAX - 1);
	assert_int_equal(bp[O_TYPE_OF_LOADER], 0xff);
	assert_int_equal(bp[O_LOADFLAGS], 0x80);
	assert_int_equal(get_le16(bp + O_HEAP_END_PTR), 0xfe00);
	assert_int_equal(get_le16(bp + O_VID_MODE), 0xffff);
	assert_int_equal(get_le32(bp + O_CMD_LINE_PTR), LAYOUT_CMDLINE);
	assert_int_equal(bp[O_SETUP_SECTS], 0);
	assert_int_equal(get_le32(bp + O_RAMDISK_IMAGE), 0);
	assert_int_equal(get_le32(bp + O_RAMDISK_SIZE), 0);
	assert_int_equal(bp[O_E820_ENTRIES], 3);
	assert_int_equal(bp[0], 0);
	assert_int_equal(bp[4095], 0);
	assert_string_equal((const char *)guest_mem_ptr(&f->gm, LAYOUT_CMDLINE, 1), "quiet");
}

static void test_zero_page_null_cmdline_is_empty(void **state)
{
	struct fixture *f = *state;
	struct x86_boot_info info = { .cmdline = NULL };
	uint8_t *cl = guest_mem_ptr_mut(&f->gm, LAYOUT_CMDLINE, 1);

	elf_kernel(&f->k);
	*cl = 'x';
	assert_int_equal(x86_zero_page_setup(&f->gm, &f->k, &info, f->err, sizeof(f->err)), 0);
	assert_int_equal(*cl, 0);
}

static void test_zero_page_rejects_cmdline_too_long(void **state)
{
	struct fixture *f = *state;
	char *cmdline = malloc(LAYOUT_CMDLINE_MAX + 1);
	struct x86_boot_info info = { .cmdline = cmdline };

	assert_non_null(cmdline);
	elf_kernel(&f->k);
	memset(cmdline, 'a', LAYOUT_CMDLINE_MAX);
	cmdline[LAYOUT_CMDLINE_MAX] = 0;
	assert_int_equal(x86_zero_page_setup(&f->gm, &f->k, &info, f->err, sizeof(f->err)), -E2BIG);
	assert_string_equal(f->err, "cmdline: longer than 4095 bytes");
	cmdline[LAYOUT_CMDLINE_MAX - 1] = 0; /* 4095 bytes + NUL: the most that fits */
	assert_int_equal(x86_zero_page_setup(&f->gm, &f->k, &info, f->err, sizeof(f->err)), 0);
	assert_int_equal(*(const uint8_t *)guest_mem_ptr(&f->gm, LAYOUT_CMDLINE + 4095, 1), 0);

	/* The bzImage's own limit (cmdline_size) counts too. */
	bzimage_kernel(&f->k);
	put_le32(f->k.setup_header + (O_CMDLINE_SIZE - O_SETUP_SECTS), 16);
	cmdline[17] = 0;
	assert_int_equal(x86_zero_page_setup(&f->gm, &f->k, &info, f->err, sizeof(f->err)), -E2BIG);
	assert_string_equal(f->err, "cmdline: 17 bytes exceed the kernel's limit of 16");
	cmdline[16] = 0;
	assert_int_equal(x86_zero_page_setup(&f->gm, &f->k, &info, f->err, sizeof(f->err)), 0);
	free(cmdline);
}

static void test_zero_page_rejects_initrd_outside_memory(void **state)
{
	struct fixture *f = *state;
	struct x86_boot_info info = { .cmdline = "",
		.initrd_gpa = 128 * MIB - 0x1000,
		.initrd_size = 0x2000 };

	elf_kernel(&f->k);
	assert_int_equal(x86_zero_page_setup(&f->gm, &f->k, &info, f->err, sizeof(f->err)),
		-EFAULT);
	assert_string_equal(f->err, "initrd: 0x2000 bytes at 0x7fff000 lie outside guest memory");
	info.initrd_gpa = UINT64_MAX - 0xfff; /* gpa + size would wrap */
	assert_int_equal(x86_zero_page_setup(&f->gm, &f->k, &info, f->err, sizeof(f->err)),
		-EFAULT);
}

static void test_zero_page_rejects_initrd_above_initrd_addr_max(void **state)
{
	struct fixture *f = *state;
	struct x86_boot_info info = { .cmdline = "",
		.initrd_gpa = 0x7ffff000,
		.initrd_size = 0x1000 };
	struct guest_mem gm;

	assert_int_equal(guest_mem_map(&gm, 3 * GIB, GUEST_MEM_ANON, NULL, f->err, sizeof(f->err)),
		0);
	bzimage_kernel(&f->k);
	/* Ends exactly at initrd_addr_max: accepted. */
	assert_int_equal(x86_zero_page_setup(&gm, &f->k, &info, f->err, sizeof(f->err)), 0);
	info.initrd_gpa += 1;
	assert_int_equal(x86_zero_page_setup(&gm, &f->k, &info, f->err, sizeof(f->err)), -EINVAL);
	assert_string_equal(f->err,
		"initrd: ends at 0x80000000, above the kernel's initrd_addr_max 0x7fffffff");
	/* XLF_CAN_BE_LOADED_ABOVE_4G lifts the limit. */
	put_le16(f->k.setup_header + (O_XLOADFLAGS - O_SETUP_SECTS), 0x3);
	assert_int_equal(x86_zero_page_setup(&gm, &f->k, &info, f->err, sizeof(f->err)), 0);
	guest_mem_unmap(&gm);
}

static void test_zero_page_initrd_above_4gib_uses_ext_fields(void **state)
{
	struct fixture *f = *state;
	struct x86_boot_info info = { .cmdline = "",
		.initrd_gpa = 4 * GIB + 0x3000,
		.initrd_size = 0x2000 };
	struct guest_mem gm;
	const uint8_t *bp;

	assert_int_equal(guest_mem_map(&gm, 5 * GIB, GUEST_MEM_ANON, NULL, f->err, sizeof(f->err)),
		0);
	elf_kernel(&f->k);
	assert_int_equal(x86_zero_page_setup(&gm, &f->k, &info, f->err, sizeof(f->err)), 0);
	bp = zero_page(&gm);
	assert_int_equal(get_le32(bp + O_RAMDISK_IMAGE), 0x3000);
	assert_int_equal(get_le32(bp + O_EXT_RAMDISK_IMAGE), 1);
	assert_int_equal(get_le32(bp + O_RAMDISK_SIZE), 0x2000);
	assert_int_equal(get_le32(bp + O_EXT_RAMDISK_SIZE), 0);
	assert_int_equal(bp[O_E820_ENTRIES], 4);
	assert_int_equal(get_le64(bp + O_E820_TABLE + 3 * 20), 4 * GIB);
	assert_int_equal(get_le64(bp + O_E820_TABLE + 3 * 20 + 8), 2 * GIB);
	guest_mem_unmap(&gm);
}

static void test_zero_page_rejects_missing_setup_header(void **state)
{
	struct fixture *f = *state;
	struct x86_boot_info info = { .cmdline = "" };

	bzimage_kernel(&f->k);
	f->k.setup_header_len = 0;
	assert_int_equal(x86_zero_page_setup(&f->gm, &f->k, &info, f->err, sizeof(f->err)),
		-EINVAL);
	assert_non_null(strstr(f->err, "setup header"));
	f->k.setup_header_len = sizeof(f->k.setup_header) + 1;
	assert_int_equal(x86_zero_page_setup(&f->gm, &f->k, &info, f->err, sizeof(f->err)),
		-EINVAL);
}

static void test_zero_page_rejects_memory_without_zero_page(void **state)
{
	struct fixture *f = *state;
	struct x86_boot_info info = { .cmdline = "" };
	struct guest_mem gm;

	/* 64 KiB of RAM: the zero page fits, the command line at 128 KiB does not. */
	assert_int_equal(guest_mem_map(&gm, 0x10000, GUEST_MEM_ANON, NULL, f->err, sizeof(f->err)),
		0);
	elf_kernel(&f->k);
	assert_int_equal(x86_zero_page_setup(&gm, &f->k, &info, f->err, sizeof(f->err)), -EFAULT);
	assert_string_equal(f->err, "cmdline: 0x20000 lies outside guest memory");
	guest_mem_unmap(&gm);
}

static void test_zero_page_acpi_rsdp_addr(void **state)
{
	struct fixture *f = *state;
	struct x86_boot_info info = { .cmdline = "", .acpi_rsdp = 0xe0000 };

	bzimage_kernel(&f->k);
	assert_int_equal(x86_zero_page_setup(&f->gm, &f->k, &info, f->err, sizeof(f->err)), 0);
	assert_int_equal(get_le64(zero_page(&f->gm) + O_ACPI_RSDP_ADDR), 0xe0000);
	info.acpi_rsdp = 0;
	assert_int_equal(x86_zero_page_setup(&f->gm, &f->k, &info, f->err, sizeof(f->err)), 0);
	assert_int_equal(get_le64(zero_page(&f->gm) + O_ACPI_RSDP_ADDR), 0);
}

#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_zero_page_e820_128mib),
		cmocka_unit_test(test_zero_page_e820_3gib_ends_at_gap),
		cmocka_unit_test(test_device_memory_starts_above_ram_and_the_gap),
		cmocka_unit_test(test_free_base_is_above_the_device_region),
		cmocka_unit_test(test_zero_page_e820_4gib_splits_around_gap),
		cmocka_unit_test(test_zero_page_e820_respects_max),
		cmocka_unit_test(test_zero_page_e820_small_memory),
		T(test_zero_page_bzimage_fields),
		T(test_zero_page_bzimage_loader_fields_override_the_image),
		T(test_zero_page_e820_table_at_its_offset),
		T(test_zero_page_elf_minimal_header),
		T(test_zero_page_null_cmdline_is_empty),
		T(test_zero_page_rejects_cmdline_too_long),
		T(test_zero_page_rejects_initrd_outside_memory),
		T(test_zero_page_rejects_initrd_above_initrd_addr_max),
		T(test_zero_page_initrd_above_4gib_uses_ext_fields),
		T(test_zero_page_rejects_missing_setup_header),
		T(test_zero_page_rejects_memory_without_zero_page),
		T(test_zero_page_acpi_rsdp_addr),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
