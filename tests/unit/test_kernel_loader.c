/* Unit tests for kernel_loader.c: ELF vmlinux and bzImage loading, initrd placement. */
#include <elf.h>
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
#define GUEST_SIZE (64 * MIB)

/* Synthetic vmlinux: header, three program headers (load, note, load with bss), data. */
#define ELF_LEN 0x1200
#define SEG0_OFF 0x1000
#define SEG0_SIZE 0x100
#define SEG0_PADDR (16 * MIB)
#define SEG2_OFF 0x1100
#define SEG2_FILESZ 0x80
#define SEG2_MEMSZ 0x3000
#define SEG2_PADDR (18 * MIB)
#define ELF_ENTRY (SEG0_PADDR + 0x40)

/* Synthetic bzImage: setup sectors, then the protected-mode code. Offsets are those of
 * Documentation/arch/x86/boot.rst, written out here on purpose. */
#define BZ_SETUP_SECTS 3
#define BZ_PM_LEN 0x3000
#define BZ_HDR_END 0x268
#define BZ_PREF (16 * MIB)
#define BZ_INIT_SIZE (8 * MIB)
#define BZ_INITRD_MAX 0x7fffffffu

struct fixture {
	struct guest_mem gm;
	struct x86_kernel k;
	char err[256];
	uint8_t img[0x10000];
	size_t len;
};

struct elf_model {
	Elf64_Ehdr eh;
	Elf64_Phdr ph[3];
};

static int setup(void **state)
{
	*state = mapped_fixture_new(sizeof(struct fixture), GUEST_SIZE);
	return *state ? 0 : -1;
}

static int teardown(void **state)
{
	mapped_fixture_free(*state);
	return 0;
}

static uint8_t seg0_byte(size_t i)
{
	return (uint8_t)(i ^ 0x5a);
}

static uint8_t seg2_byte(size_t i)
{
	return (uint8_t)(i + 1);
}

static void elf_model_init(struct elf_model *m)
{
	memset(m, 0, sizeof(*m));
	memcpy(m->eh.e_ident, ELFMAG, SELFMAG);
	m->eh.e_ident[EI_CLASS] = ELFCLASS64;
	m->eh.e_ident[EI_DATA] = ELFDATA2LSB;
	m->eh.e_ident[EI_VERSION] = EV_CURRENT;
	m->eh.e_type = ET_EXEC;
	m->eh.e_machine = EM_X86_64;
	m->eh.e_version = EV_CURRENT;
	m->eh.e_entry = ELF_ENTRY;
	m->eh.e_phoff = sizeof(Elf64_Ehdr);
	m->eh.e_ehsize = sizeof(Elf64_Ehdr);
	m->eh.e_phentsize = sizeof(Elf64_Phdr);
	m->eh.e_phnum = 3;
	m->ph[0] = (Elf64_Phdr){ .p_type = PT_LOAD,
		.p_flags = PF_R | PF_X,
		.p_offset = SEG0_OFF,
		.p_vaddr = 0xffffffff81000000ULL,
		.p_paddr = SEG0_PADDR,
		.p_filesz = SEG0_SIZE,
		.p_memsz = SEG0_SIZE,
		.p_align = 0x200000 };
	m->ph[1] = (Elf64_Phdr){ .p_type = PT_NOTE,
		.p_offset = 0x40,
		.p_filesz = 0x10,
		.p_memsz = 0x10 };
	m->ph[2] = (Elf64_Phdr){ .p_type = PT_LOAD,
		.p_flags = PF_R | PF_W,
		.p_offset = SEG2_OFF,
		.p_vaddr = 0xffffffff81200000ULL,
		.p_paddr = SEG2_PADDR,
		.p_filesz = SEG2_FILESZ,
		.p_memsz = SEG2_MEMSZ,
		.p_align = 0x200000 };
}

static void elf_build(struct fixture *f, const struct elf_model *m)
{
	memset(f->img, 0, sizeof(f->img));
	memcpy(f->img, &m->eh, sizeof(m->eh));
	memcpy(f->img + sizeof(m->eh), m->ph, sizeof(m->ph));
	for (size_t i = 0; i < SEG0_SIZE; i++)
		f->img[SEG0_OFF + i] = seg0_byte(i);
	for (size_t i = 0; i < SEG2_FILESZ; i++)
		f->img[SEG2_OFF + i] = seg2_byte(i);
	f->len = ELF_LEN;
}

static uint8_t pm_byte(size_t i)
{
	return (uint8_t)(i * 7 + 3);
}

/* A bzImage with `sects` in setup_sects (0 meaning 4) and BZ_PM_LEN bytes of kernel. */
static void bz_build(struct fixture *f, uint8_t sects)
{
	size_t setup_size = ((size_t)(sects ? sects : 4) + 1) * 512;

	memset(f->img, 0, sizeof(f->img));
	f->img[0x1f1] = sects;
	put_le32(f->img + 0x1f4, BZ_PM_LEN / 16); /* syssize */
	put_le16(f->img + 0x1fe, 0xaa55);         /* boot_flag */
	f->img[0x200] = 0xeb;                     /* jmp short */
	f->img[0x201] = BZ_HDR_END - 0x202;       /* header ends where the jump lands */
	memcpy(f->img + 0x202, "HdrS", 4);
	put_le16(f->img + 0x206, 0x020f);        /* version 2.15 */
	f->img[0x211] = 0x01;                    /* loadflags: LOADED_HIGH */
	put_le32(f->img + 0x214, 0x100000);      /* code32_start */
	put_le32(f->img + 0x22c, BZ_INITRD_MAX); /* initrd_addr_max */
	put_le32(f->img + 0x230, 0x200000);      /* kernel_alignment */
	f->img[0x234] = 1;                       /* relocatable_kernel */
	put_le16(f->img + 0x236, 0x3);          /* xloadflags: KERNEL_64 | CAN_BE_LOADED_ABOVE_4G */
	put_le32(f->img + 0x238, 2047);         /* cmdline_size */
	put_le64(f->img + 0x258, BZ_PREF);      /* pref_address */
	put_le32(f->img + 0x260, BZ_INIT_SIZE); /* init_size */
	for (size_t i = 0; i < BZ_PM_LEN; i++)
		f->img[setup_size + i] = pm_byte(i);
	f->len = setup_size + BZ_PM_LEN;
}

static int load(struct fixture *f)
{
	return x86_kernel_load(&f->gm, f->img, f->len, &f->k, f->err, sizeof(f->err));
}

static void expect_refusal(struct fixture *f, int ret, const char *msg)
{
	f->err[0] = 0;
	assert_int_equal(load(f), ret);
	if (!strstr(f->err, msg))
		fail_msg("error \"%s\" does not contain \"%s\"", f->err, msg);
}

static void expect_elf_refusal(struct fixture *f, const struct elf_model *m, int ret,
	const char *msg)
{
	elf_build(f, m);
	expect_refusal(f, ret, msg);
}

static uint8_t *gp(struct fixture *f, uint64_t gpa, uint64_t len)
{
	uint8_t *p = guest_mem_ptr_mut(&f->gm, gpa, len);

	assert_non_null(p);
	return p;
}

static int all_bytes(const uint8_t *p, size_t len, uint8_t v)
{
	for (size_t i = 0; i < len; i++)
		if (p[i] != v)
			return 0;
	return 1;
}

/* --- ELF --- */

static void test_kernel_loader_elf_places_segments_and_entry(void **state)
{
	struct fixture *f = *state;
	struct elf_model m;
	const uint8_t *p;

	elf_model_init(&m);
	elf_build(f, &m);
	assert_int_equal(load(f), 0);
	assert_int_equal(f->k.kind, X86_KERNEL_ELF);
	assert_int_equal(f->k.entry, ELF_ENTRY);
	assert_int_equal(f->k.load_start, SEG0_PADDR);
	assert_int_equal(f->k.load_end, SEG2_PADDR + SEG2_MEMSZ);
	assert_int_equal(f->k.boot_protocol, 0);
	assert_int_equal(f->k.setup_header_len, 0);
	p = gp(f, SEG0_PADDR, SEG0_SIZE);
	for (size_t i = 0; i < SEG0_SIZE; i++)
		assert_int_equal(p[i], seg0_byte(i));
	p = gp(f, SEG2_PADDR, SEG2_FILESZ);
	for (size_t i = 0; i < SEG2_FILESZ; i++)
		assert_int_equal(p[i], seg2_byte(i));
	/* The note segment is not loaded anywhere: the byte after segment 0 is untouched. */
	assert_int_equal(*gp(f, SEG0_PADDR + SEG0_SIZE, 1), 0);
}

static void test_kernel_loader_elf_zeroes_bss(void **state)
{
	struct fixture *f = *state;
	struct elf_model m;
	uint8_t *p = gp(f, SEG2_PADDR, SEG2_MEMSZ + 0x1000);

	memset(p, 0xcc, SEG2_MEMSZ + 0x1000);
	elf_model_init(&m);
	elf_build(f, &m);
	assert_int_equal(load(f), 0);
	assert_int_equal(p[SEG2_FILESZ - 1], seg2_byte(SEG2_FILESZ - 1));
	assert_true(all_bytes(p + SEG2_FILESZ, SEG2_MEMSZ - SEG2_FILESZ, 0));
	/* Only p_memsz bytes are touched. */
	assert_true(all_bytes(p + SEG2_MEMSZ, 0x1000, 0xcc));
}

static void test_kernel_loader_elf_rejects_truncated_header(void **state)
{
	struct fixture *f = *state;
	struct elf_model m;

	elf_model_init(&m);
	elf_build(f, &m);
	f->len = sizeof(Elf64_Ehdr) - 1;
	expect_refusal(f, -EINVAL, "kernel: ELF header truncated");
	f->len = 8;
	expect_refusal(f, -EINVAL, "kernel: ELF header truncated");
}

static void test_kernel_loader_elf_rejects_phdrs_outside_file(void **state)
{
	struct fixture *f = *state;
	struct elf_model m;

	elf_model_init(&m);
	m.eh.e_phoff = ELF_LEN - 10;
	expect_elf_refusal(f, &m, -EINVAL, "kernel: ELF program headers (offset 0x11f6");
	m.eh.e_phoff = UINT64_MAX - 8; /* offset + size would wrap */
	expect_elf_refusal(f, &m, -EINVAL, "lie outside the 4608-byte file");

	elf_model_init(&m);
	m.eh.e_phnum = 100; /* 0x40 + 100 * 56 > 0x1200 */
	expect_elf_refusal(f, &m, -EINVAL, "100 entries) lie outside");

	elf_model_init(&m);
	m.eh.e_phnum = 0;
	expect_elf_refusal(f, &m, -EINVAL, "kernel: ELF has no program headers");
	m.eh.e_phnum = PN_XNUM;
	expect_elf_refusal(f, &m, -EINVAL, "extended program header numbering");

	elf_model_init(&m);
	m.eh.e_phentsize = 32;
	expect_elf_refusal(f, &m, -EINVAL, "kernel: ELF program header size 32");
}

static void test_kernel_loader_elf_rejects_segment_past_file_end(void **state)
{
	struct fixture *f = *state;
	struct elf_model m;

	elf_model_init(&m);
	m.ph[2].p_filesz = 0x101; /* 0x1100 + 0x101 > 0x1200 */
	expect_elf_refusal(f, &m, -EINVAL,
		"kernel: ELF segment 2 (offset 0x1100, 0x101 bytes) extends past the end");
	m.ph[2].p_filesz = 0x100; /* exactly to the end is fine */
	elf_build(f, &m);
	assert_int_equal(load(f), 0);

	elf_model_init(&m);
	m.ph[0].p_offset = UINT64_MAX - 0x10; /* offset + size would wrap */
	expect_elf_refusal(f, &m, -EINVAL, "kernel: ELF segment 0");
	assert_non_null(strstr(f->err, "extends past the end"));

	elf_model_init(&m);
	m.ph[0].p_offset = ELF_LEN + 1;
	m.ph[0].p_filesz = 0;
	expect_elf_refusal(f, &m, -EINVAL, "kernel: ELF segment 0");
}

static void test_kernel_loader_elf_rejects_segment_outside_guest_memory(void **state)
{
	struct fixture *f = *state;
	struct elf_model m;

	elf_model_init(&m);
	m.ph[2].p_paddr = GUEST_SIZE - 0x1000; /* bss runs past the end of RAM */
	expect_elf_refusal(f, &m, -EFAULT, "kernel: ELF segment 2 lies outside guest memory");

	m.ph[2].p_paddr = UINT64_MAX - 0x100; /* paddr + memsz would wrap */
	expect_elf_refusal(f, &m, -EFAULT, "kernel: ELF segment 2 lies outside guest memory");

	m.ph[2].p_paddr = 18 * MIB;
	m.ph[2].p_memsz = UINT64_MAX; /* a huge bss */
	expect_elf_refusal(f, &m, -EFAULT, "kernel: ELF segment 2 lies outside guest memory");

	elf_model_init(&m);
	m.ph[0].p_paddr = 0x8000; /* would land on the zero page */
	expect_elf_refusal(f, &m, -EINVAL, "kernel: ELF segment 0 at 0x8000 lies below 1 MiB");
}

static void test_kernel_loader_elf_failure_writes_nothing(void **state)
{
	struct fixture *f = *state;
	struct elf_model m;

	elf_model_init(&m);
	m.ph[2].p_paddr = GUEST_SIZE;
	expect_elf_refusal(f, &m, -EFAULT, "segment 2");
	/* Segment 0 was valid, but nothing is written until every segment passed. */
	assert_true(all_bytes(gp(f, SEG0_PADDR, SEG0_SIZE), SEG0_SIZE, 0));
}

static void test_kernel_loader_elf_rejects_filesz_above_memsz(void **state)
{
	struct fixture *f = *state;
	struct elf_model m;

	elf_model_init(&m);
	m.ph[0].p_memsz = SEG0_SIZE - 1;
	expect_elf_refusal(f, &m, -EINVAL,
		"kernel: ELF segment 0 has p_filesz 0x100 larger than p_memsz 0xff");
}

static void test_kernel_loader_elf_rejects_32bit(void **state)
{
	struct fixture *f = *state;
	struct elf_model m;

	elf_model_init(&m);
	m.eh.e_ident[EI_CLASS] = ELFCLASS32;
	elf_build(f, &m);
	f->len = sizeof(Elf32_Ehdr); /* a 32-bit header is shorter than ours */
	expect_refusal(f, -ENOEXEC, "kernel: 32-bit ELF image");

	m.eh.e_ident[EI_CLASS] = 7;
	expect_elf_refusal(f, &m, -ENOEXEC, "kernel: ELF class 7 is not ELF64");
}

static void test_kernel_loader_elf_rejects_wrong_machine(void **state)
{
	struct fixture *f = *state;
	struct elf_model m;

	elf_model_init(&m);
	m.eh.e_machine = EM_AARCH64;
	expect_elf_refusal(f, &m, -ENOEXEC, "kernel: ELF machine 183 is not x86_64");
	m.eh.e_machine = EM_386;
	expect_elf_refusal(f, &m, -ENOEXEC, "kernel: ELF machine 3 is not x86_64");
}

static void test_kernel_loader_elf_rejects_big_endian_and_non_exec(void **state)
{
	struct fixture *f = *state;
	struct elf_model m;

	elf_model_init(&m);
	m.eh.e_ident[EI_DATA] = ELFDATA2MSB;
	expect_elf_refusal(f, &m, -ENOEXEC, "not little-endian");

	elf_model_init(&m);
	m.eh.e_type = ET_DYN;
	expect_elf_refusal(f, &m, -ENOEXEC, "kernel: ELF type 3 is not ET_EXEC");
}

static void test_kernel_loader_elf_rejects_entry_outside_segments(void **state)
{
	struct fixture *f = *state;
	struct elf_model m;

	elf_model_init(&m);
	m.eh.e_entry = 32 * MIB;
	expect_elf_refusal(f, &m, -EINVAL,
		"kernel: ELF entry point 0x2000000 lies outside the loaded segments");
	m.eh.e_entry = SEG0_PADDR + SEG0_SIZE; /* one past the end of segment 0 */
	expect_elf_refusal(f, &m, -EINVAL, "entry point");
	m.eh.e_entry = SEG2_PADDR + SEG2_MEMSZ - 1; /* in the bss: still loaded memory */
	elf_build(f, &m);
	assert_int_equal(load(f), 0);
}

static void test_kernel_loader_elf_rejects_no_load_segment(void **state)
{
	struct fixture *f = *state;
	struct elf_model m;

	elf_model_init(&m);
	m.ph[0].p_type = PT_NULL;
	m.ph[2].p_type = PT_GNU_STACK;
	expect_elf_refusal(f, &m, -EINVAL, "kernel: ELF has no loadable segment");
}

static void test_kernel_loader_rejects_unknown_format(void **state)
{
	struct fixture *f = *state;

	memset(f->img, 0x11, 0x1000);
	f->len = 0x1000;
	expect_refusal(f, -ENOEXEC, "kernel: not an ELF64 x86_64 vmlinux or bzImage");
	f->len = 3; /* shorter than the ELF magic */
	memcpy(f->img, ELFMAG, 3);
	expect_refusal(f, -ENOEXEC, "kernel: not an ELF64 x86_64 vmlinux or bzImage");
	f->len = 0;
	expect_refusal(f, -ENOEXEC, "kernel: the image is empty");
	assert_int_equal(x86_kernel_load(&f->gm, NULL, 10, &f->k, f->err, sizeof(f->err)),
		-ENOEXEC);
}

static void test_kernel_loader_tolerates_small_error_buffer(void **state)
{
	struct fixture *f = *state;
	char small[8];

	memset(f->img, 0x11, 0x100);
	assert_int_equal(x86_kernel_load(&f->gm, f->img, 0x100, &f->k, small, sizeof(small)),
		-ENOEXEC);
	assert_string_equal(small, "kernel:");
	assert_int_equal(x86_kernel_load(&f->gm, f->img, 0x100, &f->k, NULL, 0), -ENOEXEC);
}

/* --- bzImage --- */

static void test_kernel_loader_bzimage_loads_protected_mode_code_at_1mib(void **state)
{
	struct fixture *f = *state;
	const uint8_t *p;

	bz_build(f, BZ_SETUP_SECTS);
	assert_int_equal(load(f), 0);
	assert_int_equal(f->k.kind, X86_KERNEL_BZIMAGE);
	assert_int_equal(f->k.entry, 0x100000 + 0x200);
	assert_int_equal(f->k.load_start, 0x100000);
	/* Relocatable: it decompresses at pref_address (above 1 MiB, 2 MiB aligned) and
	 * needs init_size bytes there. */
	assert_int_equal(f->k.load_end, BZ_PREF + BZ_INIT_SIZE);
	assert_int_equal(f->k.boot_protocol, 0x020f);
	assert_int_equal(f->k.initrd_addr_max, BZ_INITRD_MAX);
	p = gp(f, 0x100000, BZ_PM_LEN);
	for (size_t i = 0; i < BZ_PM_LEN; i++)
		assert_int_equal(p[i], pm_byte(i));
	/* The setup sectors are not loaded. */
	assert_true(all_bytes(gp(f, 0x90000, 0x10000), 0x10000, 0));
}

static void test_kernel_loader_bzimage_keeps_setup_header(void **state)
{
	struct fixture *f = *state;

	bz_build(f, BZ_SETUP_SECTS);
	assert_int_equal(load(f), 0);
	assert_int_equal(f->k.setup_header_len, BZ_HDR_END - 0x1f1);
	assert_memory_equal(f->k.setup_header, f->img + 0x1f1, BZ_HDR_END - 0x1f1);
	assert_int_equal(f->k.setup_header[0x202 - 0x1f1], 'H');
	assert_int_equal(f->k.setup_header[0x236 - 0x1f1], 0x3);

	/* A jump that lands beyond the boot_params setup header area is cut at 0x290. */
	f->img[0x201] = 0xff;
	assert_int_equal(load(f), 0);
	assert_int_equal(f->k.setup_header_len, 0x290 - 0x1f1);
}

static void test_kernel_loader_bzimage_setup_sects_zero_means_four(void **state)
{
	struct fixture *f = *state;
	const uint8_t *p;

	bz_build(f, 0);
	assert_int_equal(f->len, 5 * 512 + BZ_PM_LEN);
	assert_int_equal(load(f), 0);
	p = gp(f, 0x100000, BZ_PM_LEN);
	assert_int_equal(p[0], pm_byte(0));
	assert_int_equal(p[BZ_PM_LEN - 1], pm_byte(BZ_PM_LEN - 1));
}

static void test_kernel_loader_bzimage_non_relocatable_runs_at_pref_address(void **state)
{
	struct fixture *f = *state;

	bz_build(f, BZ_SETUP_SECTS);
	f->img[0x234] = 0;
	put_le64(f->img + 0x258, 20 * MIB);
	assert_int_equal(load(f), 0);
	assert_int_equal(f->k.load_end, 20 * MIB + BZ_INIT_SIZE);

	/* Relocatable with a pref_address below 1 MiB: runs at 1 MiB rounded up to 2 MiB. */
	f->img[0x234] = 1;
	put_le64(f->img + 0x258, 0);
	assert_int_equal(load(f), 0);
	assert_int_equal(f->k.load_end, 2 * MIB + BZ_INIT_SIZE);

	f->img[0x234] = 0;
	expect_refusal(f, -EINVAL, "below 1 MiB");
}

static void test_kernel_loader_bzimage_rejects_old_protocol(void **state)
{
	struct fixture *f = *state;

	bz_build(f, BZ_SETUP_SECTS);
	put_le16(f->img + 0x206, 0x0205);
	expect_refusal(f, -ENOEXEC, "kernel: bzImage boot protocol 2.05 is too old");
}

static void test_kernel_loader_bzimage_rejects_missing_xlf_kernel_64(void **state)
{
	struct fixture *f = *state;

	bz_build(f, BZ_SETUP_SECTS);
	put_le16(f->img + 0x236, 0x2);
	expect_refusal(f, -ENOEXEC, "XLF_KERNEL_64 not set");

	/* A 2.06 kernel: its header ends at 0x23c and has no xloadflags. */
	bz_build(f, BZ_SETUP_SECTS);
	put_le16(f->img + 0x206, 0x0206);
	f->img[0x201] = 0x23c - 0x202;
	put_le16(f->img + 0x236, 0);
	expect_refusal(f, -ENOEXEC, "XLF_KERNEL_64 not set");
}

static void test_kernel_loader_bzimage_rejects_setup_sects_past_end(void **state)
{
	struct fixture *f = *state;

	bz_build(f, BZ_SETUP_SECTS);
	f->img[0x1f1] = 64; /* (64 + 1) * 512 > 0x800 + 0x3000 */
	expect_refusal(f, -EINVAL, "kernel: bzImage setup_sects 64 puts the kernel at 0x8200");

	bz_build(f, BZ_SETUP_SECTS);
	f->len = 4 * 512; /* setup only, no kernel at all */
	expect_refusal(f, -EINVAL, "setup_sects 3");
}

static void test_kernel_loader_bzimage_rejects_truncated_header(void **state)
{
	struct fixture *f = *state;

	bz_build(f, BZ_SETUP_SECTS);
	f->len = 0x240; /* "HdrS" is there, the header (to 0x268) is not */
	expect_refusal(f, -EINVAL, "kernel: bzImage setup header is truncated");

	bz_build(f, BZ_SETUP_SECTS);
	f->img[0x201] = 0x10; /* a header that ends before cmdline_size */
	expect_refusal(f, -EINVAL, "kernel: bzImage setup header is truncated");

	bz_build(f, BZ_SETUP_SECTS);
	f->img[0x201] = 0x250 - 0x202; /* has xloadflags, ends before init_size */
	expect_refusal(f, -EINVAL, "before init_size");
}

static void test_kernel_loader_bzimage_rejects_truncated_kernel(void **state)
{
	struct fixture *f = *state;

	bz_build(f, BZ_SETUP_SECTS);
	f->len -= 16;
	expect_refusal(f, -EINVAL, "kernel: bzImage is truncated (syssize says 0x3000 bytes");
}

static void test_kernel_loader_bzimage_rejects_zimage(void **state)
{
	struct fixture *f = *state;

	bz_build(f, BZ_SETUP_SECTS);
	f->img[0x211] = 0;
	expect_refusal(f, -ENOEXEC, "LOADED_HIGH");
}

static void test_kernel_loader_bzimage_rejects_bad_alignment(void **state)
{
	struct fixture *f = *state;

	bz_build(f, BZ_SETUP_SECTS);
	put_le32(f->img + 0x230, 0x300000);
	expect_refusal(f, -EINVAL, "kernel_alignment 0x300000 is not a power of two");
	put_le32(f->img + 0x230, 0);
	expect_refusal(f, -EINVAL, "kernel_alignment 0x0");

	bz_build(f, BZ_SETUP_SECTS);
	put_le64(f->img + 0x258, UINT64_MAX - 0x1000); /* rounding up would wrap */
	expect_refusal(f, -EINVAL, "pref_address");
}

static void test_kernel_loader_bzimage_rejects_init_size_beyond_memory(void **state)
{
	struct fixture *f = *state;

	bz_build(f, BZ_SETUP_SECTS);
	put_le32(f->img + 0x260, 48 * MIB + 1); /* 16 MiB + 48 MiB + 1 > 64 MiB */
	expect_refusal(f, -EFAULT, "kernel: bzImage needs 0x3000001 bytes of RAM at 0x1000000");
	put_le32(f->img + 0x260, 48 * MIB); /* exactly to the end of RAM */
	assert_int_equal(load(f), 0);
	assert_int_equal(f->k.load_end, GUEST_SIZE);
}

/* Found by fuzz_kernel_loader: with init_size 0 a runtime start far outside RAM (here
 * pref_address 64 GiB, relocatable) was accepted unchecked and became load_end, so every
 * initrd was then refused as not fitting "between the kernel end 0x1000000000" and the
 * top of RAM. init_size is mandatory from protocol 2.10, which the header must reach. */
static void test_kernel_loader_bzimage_rejects_zero_init_size(void **state)
{
	struct fixture *f = *state;

	bz_build(f, BZ_SETUP_SECTS);
	put_le32(f->img + 0x260, 0);
	put_le64(f->img + 0x258, 64 * GIB);
	expect_refusal(f, -EINVAL, "kernel: bzImage init_size is 0");
	f->img[0x234] = 0; /* not relocatable: runs at pref_address itself */
	expect_refusal(f, -EINVAL, "init_size is 0");
	put_le64(f->img + 0x258, BZ_PREF); /* inside RAM makes no difference */
	expect_refusal(f, -EINVAL, "init_size is 0");
}

static void test_kernel_loader_bzimage_rejects_kernel_larger_than_memory(void **state)
{
	struct fixture *f = *state;
	struct guest_mem small;

	assert_int_equal(guest_mem_map(&small, 0x102000, GUEST_MEM_ANON, NULL, f->err,
				 sizeof(f->err)),
		0);
	bz_build(f, BZ_SETUP_SECTS);
	put_le32(f->img + 0x260, 0x1000); /* init_size fits; the code does not */
	f->img[0x234] = 0;
	put_le64(f->img + 0x258, 0x100000);
	assert_int_equal(x86_kernel_load(&small, f->img, f->len, &f->k, f->err, sizeof(f->err)),
		-EFAULT);
	assert_non_null(strstr(f->err, "protected-mode code (12288 bytes) does not fit"));
	guest_mem_unmap(&small);
}

/* --- initrd --- */

static void test_kernel_loader_initrd_goes_to_top_of_low_ram(void **state)
{
	struct fixture *f = *state;
	struct elf_model m;
	uint8_t initrd[0x1800];
	uint64_t gpa = 0;

	for (size_t i = 0; i < sizeof(initrd); i++)
		initrd[i] = (uint8_t)(i * 13);
	elf_model_init(&m);
	elf_build(f, &m);
	assert_int_equal(load(f), 0);
	assert_int_equal(x86_initrd_load(&f->gm, &f->k, initrd, sizeof(initrd), &gpa, f->err,
				 sizeof(f->err)),
		0);
	/* Page-aligned start, as high as possible: 64 MiB - 0x2000. */
	assert_int_equal(gpa, GUEST_SIZE - 0x2000);
	assert_memory_equal(gp(f, gpa, sizeof(initrd)), initrd, sizeof(initrd));
}

static void test_kernel_loader_initrd_respects_initrd_addr_max(void **state)
{
	struct fixture *f = *state;
	uint8_t initrd[0x1000] = { 1 };
	uint64_t gpa = 0;

	bz_build(f, BZ_SETUP_SECTS);
	put_le32(f->img + 0x22c, 32 * MIB - 1);
	assert_int_equal(load(f), 0);
	assert_int_equal(x86_initrd_load(&f->gm, &f->k, initrd, sizeof(initrd), &gpa, f->err,
				 sizeof(f->err)),
		0);
	assert_int_equal(gpa, 32 * MIB - 0x1000);

	/* initrd_addr_max below the decompressed kernel's end: nowhere to go. */
	put_le32(f->img + 0x22c, 20 * MIB);
	assert_int_equal(load(f), 0);
	assert_int_equal(x86_initrd_load(&f->gm, &f->k, initrd, sizeof(initrd), &gpa, f->err,
				 sizeof(f->err)),
		-ENOMEM);
	assert_non_null(strstr(f->err, "initrd: 4096 bytes do not fit"));
}

static void test_kernel_loader_initrd_fits_exactly_above_kernel(void **state)
{
	struct fixture *f = *state;
	struct x86_kernel k = { .kind = X86_KERNEL_ELF,
		.entry = 16 * MIB,
		.load_start = 16 * MIB,
		.load_end = 63 * MIB,
		.initrd_addr_max = UINT32_MAX };
	uint8_t *initrd = calloc(1, 1 * MIB + 1);
	uint64_t gpa = 0;

	assert_non_null(initrd);
	assert_int_equal(x86_initrd_load(&f->gm, &k, initrd, 1 * MIB, &gpa, f->err, sizeof(f->err)),
		0);
	assert_int_equal(gpa, 63 * MIB);
	assert_int_equal(x86_initrd_load(&f->gm, &k, initrd, 1 * MIB + 1, &gpa, f->err,
				 sizeof(f->err)),
		-ENOMEM);
	assert_non_null(strstr(f->err,
		"initrd: 1048577 bytes do not fit in low RAM between "
		"the kernel end 0x3f00000 and 0x4000000"));
	/* A kernel end inside a page keeps the initrd off that page. */
	k.load_end = 63 * MIB + 1;
	assert_int_equal(x86_initrd_load(&f->gm, &k, initrd, 0x1000, &gpa, f->err, sizeof(f->err)),
		0);
	assert_int_equal(gpa, 64 * MIB - 0x1000);
	assert_int_equal(x86_initrd_load(&f->gm, &k, initrd, 1 * MIB, &gpa, f->err, sizeof(f->err)),
		-ENOMEM);
	free(initrd);
}

static void test_kernel_loader_initrd_rejects_too_large_and_empty(void **state)
{
	struct fixture *f = *state;
	struct x86_kernel k = { .kind = X86_KERNEL_ELF,
		.load_end = 17 * MIB,
		.initrd_addr_max = UINT32_MAX };
	uint8_t byte = 0;
	uint64_t gpa = 0x1234;

	/* Larger than all of guest memory: len > top must not wrap. */
	assert_int_equal(x86_initrd_load(&f->gm, &k, &byte, (size_t)GIB, &gpa, f->err,
				 sizeof(f->err)),
		-ENOMEM);
	assert_int_equal(x86_initrd_load(&f->gm, &k, &byte, 0, &gpa, f->err, sizeof(f->err)),
		-EINVAL);
	assert_non_null(strstr(f->err, "initrd: the image is empty"));
	assert_int_equal(gpa, 0x1234);
}

static void test_kernel_loader_initrd_stays_below_mmio_gap(void **state)
{
	struct fixture *f = *state;
	struct guest_mem big;
	struct x86_kernel k = { .kind = X86_KERNEL_ELF,
		.load_end = 17 * MIB,
		.initrd_addr_max = UINT32_MAX };
	uint8_t initrd[0x100] = { 7 };
	uint64_t gpa = 0;

	assert_int_equal(guest_mem_map(&big, 4 * GIB, GUEST_MEM_ANON, NULL, f->err, sizeof(f->err)),
		0);
	assert_int_equal(x86_initrd_load(&big, &k, initrd, sizeof(initrd), &gpa, f->err,
				 sizeof(f->err)),
		0);
	assert_int_equal(gpa, 3 * GIB - 0x1000);
	guest_mem_unmap(&big);
}

#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_kernel_loader_elf_places_segments_and_entry),
		T(test_kernel_loader_elf_zeroes_bss),
		T(test_kernel_loader_elf_rejects_truncated_header),
		T(test_kernel_loader_elf_rejects_phdrs_outside_file),
		T(test_kernel_loader_elf_rejects_segment_past_file_end),
		T(test_kernel_loader_elf_rejects_segment_outside_guest_memory),
		T(test_kernel_loader_elf_failure_writes_nothing),
		T(test_kernel_loader_elf_rejects_filesz_above_memsz),
		T(test_kernel_loader_elf_rejects_32bit),
		T(test_kernel_loader_elf_rejects_wrong_machine),
		T(test_kernel_loader_elf_rejects_big_endian_and_non_exec),
		T(test_kernel_loader_elf_rejects_entry_outside_segments),
		T(test_kernel_loader_elf_rejects_no_load_segment),
		T(test_kernel_loader_rejects_unknown_format),
		T(test_kernel_loader_tolerates_small_error_buffer),
		T(test_kernel_loader_bzimage_loads_protected_mode_code_at_1mib),
		T(test_kernel_loader_bzimage_keeps_setup_header),
		T(test_kernel_loader_bzimage_setup_sects_zero_means_four),
		T(test_kernel_loader_bzimage_non_relocatable_runs_at_pref_address),
		T(test_kernel_loader_bzimage_rejects_old_protocol),
		T(test_kernel_loader_bzimage_rejects_missing_xlf_kernel_64),
		T(test_kernel_loader_bzimage_rejects_setup_sects_past_end),
		T(test_kernel_loader_bzimage_rejects_truncated_header),
		T(test_kernel_loader_bzimage_rejects_truncated_kernel),
		T(test_kernel_loader_bzimage_rejects_zimage),
		T(test_kernel_loader_bzimage_rejects_bad_alignment),
		T(test_kernel_loader_bzimage_rejects_init_size_beyond_memory),
		T(test_kernel_loader_bzimage_rejects_zero_init_size),
		T(test_kernel_loader_bzimage_rejects_kernel_larger_than_memory),
		T(test_kernel_loader_initrd_goes_to_top_of_low_ram),
		T(test_kernel_loader_initrd_respects_initrd_addr_max),
		T(test_kernel_loader_initrd_fits_exactly_above_kernel),
		T(test_kernel_loader_initrd_rejects_too_large_and_empty),
		T(test_kernel_loader_initrd_stays_below_mmio_gap),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
