/* libFuzzer harness for the kernel image loader (ELF vmlinux, bzImage), then initrd and zero page.
 *
 * Build and run (from the repository root), or `make fuzz`:
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -std=c11 -D_GNU_SOURCE -Iinclude \
 *     tests/fuzz/fuzz_kernel_loader.c src/arch/x86_64/kernel_loader.c \
 *     src/arch/x86_64/zero_page.c src/kvm/guest_mem.c -o fuzz_kernel_loader
 *   ./fuzz_kernel_loader -max_total_time=60 tests/fuzz/corpus/kernel_loader
 * Regenerate the seeds: python3 tests/fuzz/kernel_loader_seeds.py tests/fuzz/corpus/kernel_loader
 *
 * Input: 2 bytes (LE) of initrd length in 16-byte units, 2 bytes (LE) of command-line
 * length, then the kernel image, which ends where the input ends (ASan sees any read past
 * it). Guest RAM is two heap blocks of exactly their size: 1.5 MiB at 0 and 128 KiB at
 * 4 GiB, so ELF segments land in either and most bzImages fit.
 *
 * A shadow copy of RAM follows what the harness expects to be written, derived from the
 * image by the rules of boot.rst and the ELF spec, not by the loader's code: each accepted
 * PT_LOAD copied and its bss zeroed, a bzImage's protected-mode code at 1 MiB, the initrd
 * at the top of low RAM under initrd_addr_max, the command line and zero page. After each
 * step RAM must equal the shadow, so a refused image writes nothing and an accepted one
 * writes only what it should. Accepted images must obey the loader's contract (segments
 * inside the file and above 1 MiB, entry inside a segment, protocol >= 2.06 with
 * XLF_KERNEL_64 and LOADED_HIGH, init_size inside RAM, ...); refusals must say
 * "kernel: ..." with -ENOEXEC, -EINVAL or -EFAULT. Any violation traps. */
#include "ember/x86_boot.h"

#include <elf.h>
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "ember/guest_mem.h"
#include "ember/layout.h"

#include "fuzz.h"

#define LOW_SIZE 0x180000ULL
#define HIGH_GPA 0x100000000ULL
#define HIGH_SIZE 0x20000ULL
#define HIMEM 0x100000ULL
#define PATTERN 0xa5
#define HEADER 4

static struct guest_mem gm;
static uint8_t *low, *high, *shadow_low, *shadow_high;

static void setup(void)
{
	if (low)
		return;
	low = malloc(LOW_SIZE);
	high = malloc(HIGH_SIZE);
	shadow_low = malloc(LOW_SIZE);
	shadow_high = malloc(HIGH_SIZE);
	CHECK(low && high && shadow_low && shadow_high);
	memset(low, PATTERN, LOW_SIZE);
	memset(high, PATTERN, HIGH_SIZE);
	memset(shadow_low, PATTERN, LOW_SIZE);
	memset(shadow_high, PATTERN, HIGH_SIZE);
	gm.nr_regions = 2;
	gm.regions[0] = (struct guest_mem_region){ .gpa = 0, .size = LOW_SIZE, .host = low };
	gm.regions[1] = (struct guest_mem_region){ .gpa = HIGH_GPA,
		.size = HIGH_SIZE,
		.file_offset = LOW_SIZE,
		.host = high };
	gm.backing = GUEST_MEM_ANON;
	gm.total = LOW_SIZE + HIGH_SIZE;
	gm.page_size = 4096;
	gm.fd = -1;
}

/* The shadow byte range for [gpa, gpa + len), or NULL if RAM does not hold it whole. */
static uint8_t *shadow(uint64_t gpa, uint64_t len)
{
	if (gpa < LOW_SIZE && len <= LOW_SIZE - gpa)
		return shadow_low + gpa;
	if (gpa >= HIGH_GPA && gpa - HIGH_GPA < HIGH_SIZE && len <= HIGH_SIZE - (gpa - HIGH_GPA))
		return shadow_high + (gpa - HIGH_GPA);
	return NULL;
}

static void same_as_shadow(void)
{
	CHECK(memcmp(low, shadow_low, LOW_SIZE) == 0);
	CHECK(memcmp(high, shadow_high, HIGH_SIZE) == 0);
}

static uint64_t get(const uint8_t *p, unsigned n)
{
	uint64_t v = 0;

	for (unsigned i = 0; i < n; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

/* An accepted ELF: check it by the spec and write the expected segments into the shadow. */
static void expect_elf(const uint8_t *img, size_t len, const struct x86_kernel *k)
{
	uint64_t entry = get(img + 24, 8), phoff = get(img + 32, 8), lo = UINT64_MAX, hi = 0;
	unsigned phnum = (unsigned)get(img + 56, 2);
	bool entry_in = false;

	CHECK(len >= sizeof(Elf64_Ehdr) && img[EI_CLASS] == ELFCLASS64 &&
		img[EI_DATA] == ELFDATA2LSB);
	CHECK(get(img + 16, 2) == ET_EXEC && get(img + 18, 2) == EM_X86_64);
	CHECK(get(img + 54, 2) == sizeof(Elf64_Phdr) && phnum > 0);
	CHECK(phoff <= len && (uint64_t)phnum * sizeof(Elf64_Phdr) <= len - phoff);
	for (unsigned i = 0; i < phnum; i++) {
		const uint8_t *ph = img + phoff + (uint64_t)i * sizeof(Elf64_Phdr);
		uint64_t off = get(ph + 8, 8), paddr = get(ph + 24, 8);
		uint64_t filesz = get(ph + 32, 8), memsz = get(ph + 40, 8);
		uint8_t *dst;

		if (get(ph, 4) != PT_LOAD || memsz == 0)
			continue;
		CHECK(filesz <= memsz && off <= len && filesz <= len - off);
		CHECK(paddr >= HIMEM);
		dst = shadow(paddr, memsz);
		CHECK(dst != NULL);
		memcpy(dst, img + off, filesz);
		memset(dst + filesz, 0, memsz - filesz);
		entry_in |= entry >= paddr && entry - paddr < memsz;
		lo = paddr < lo ? paddr : lo;
		hi = paddr + memsz > hi ? paddr + memsz : hi;
	}
	CHECK(entry_in && k->entry == entry);
	CHECK(k->load_start == lo && k->load_end == hi);
	CHECK(k->boot_protocol == 0 && k->initrd_addr_max == UINT32_MAX);
}

/* An accepted bzImage, likewise (boot.rst). */
static void expect_bzimage(const uint8_t *img, size_t len, const struct x86_kernel *k)
{
	unsigned sects = img[0x1f1] ? img[0x1f1] : 4;
	size_t setup = ((size_t)sects + 1) * 512, hdr_end = 0x202 + (size_t)img[0x201];
	uint64_t pref, align, start, end;
	uint32_t init_size;
	uint8_t *dst;

	if (hdr_end > 0x290)
		hdr_end = 0x290;
	CHECK(get(img + 0x206, 2) >= 0x0206 && k->boot_protocol == get(img + 0x206, 2));
	CHECK(hdr_end <= len && hdr_end >= 0x264); /* up to init_size at least */
	CHECK(get(img + 0x236, 2) & 1);            /* XLF_KERNEL_64 */
	CHECK(img[0x211] & 1);                     /* LOADED_HIGH */
	CHECK(setup < len && get(img + 0x1f4, 4) * 16 <= len - setup);
	CHECK(k->entry == HIMEM + 0x200 && k->load_start == HIMEM);
	CHECK(k->setup_header_len == hdr_end - 0x1f1 &&
		memcmp(k->setup_header, img + 0x1f1, k->setup_header_len) == 0);
	CHECK(k->initrd_addr_max == get(img + 0x22c, 4));

	pref = get(img + 0x258, 8);
	align = get(img + 0x230, 4);
	init_size = (uint32_t)get(img + 0x260, 4);
	if (img[0x234]) { /* relocatable: at pref_address or 1 MiB, aligned up */
		CHECK(align && !(align & (align - 1)));
		start = pref > HIMEM ? pref : HIMEM;
		CHECK(start <= UINT64_MAX - align);
		start = (start + align - 1) & ~(align - 1);
	} else {
		start = pref;
	}
	CHECK(start >= HIMEM);
	CHECK(init_size != 0 && shadow(start, init_size));
	end = HIMEM + (len - setup);
	if (start + init_size > end)
		end = start + init_size;
	CHECK(k->load_end == end);

	dst = shadow(HIMEM, len - setup);
	CHECK(dst != NULL);
	memcpy(dst, img + setup, len - setup);
}

/* The initrd goes page-aligned as high as it can below min(low RAM end, initrd_addr_max
 * + 1), and not below the kernel. */
static void try_initrd(const struct x86_kernel *k, size_t ilen, uint64_t *gpa)
{
	uint64_t top = LOW_SIZE, floor = k->load_end > HIMEM ? k->load_end : HIMEM, at = 0;
	uint8_t *initrd = malloc(ilen ? ilen : 1);
	bool fits;
	char err[256];
	int ret;

	CHECK(initrd != NULL);
	memset(initrd, 0xc3, ilen);
	if (top > (uint64_t)k->initrd_addr_max + 1)
		top = (uint64_t)k->initrd_addr_max + 1;
	fits = ilen && ilen <= top && ((top - ilen) & ~4095ULL) >= floor;
	err[0] = '\0';
	ret = x86_initrd_load(&gm, k, initrd, ilen, &at, err, sizeof(err));
	if (!fits) {
		CHECK(ret == (ilen ? -ENOMEM : -EINVAL));
		CHECK(strncmp(err, "initrd: ", 8) == 0);
		*gpa = 0;
	} else {
		CHECK(ret == 0 && at == ((top - ilen) & ~4095ULL));
		memcpy(shadow(at, ilen), initrd, ilen);
		*gpa = at;
	}
	free(initrd);
	same_as_shadow();
}

static void try_zero_page(const struct x86_kernel *k, size_t clen, uint64_t initrd_gpa, size_t ilen)
{
	struct x86_boot_info info = { .initrd_gpa = initrd_gpa,
		.initrd_size = initrd_gpa ? ilen : 0,
		.acpi_rsdp = LAYOUT_ACPI_START };
	char *cmdline = malloc(clen + 1), err[256];
	bool too_long = clen >= LAYOUT_CMDLINE_MAX;
	uint8_t *bp = shadow(LAYOUT_ZERO_PAGE, 4096);
	int ret;

	CHECK(cmdline != NULL);
	for (size_t i = 0; i < clen; i++)
		cmdline[i] = (char)('a' + i % 26);
	cmdline[clen] = '\0';
	info.cmdline = cmdline;
	if (k->kind == X86_KERNEL_BZIMAGE)
		too_long |= clen > get(k->setup_header + (0x238 - 0x1f1), 4);
	err[0] = '\0';
	ret = x86_zero_page_setup(&gm, k, &info, err, sizeof(err));
	if (too_long) {
		CHECK(ret == -E2BIG && err[0]);
	} else {
		CHECK(ret == 0);
		memcpy(shadow(LAYOUT_CMDLINE, clen + 1), cmdline, clen + 1);
		/* The zero page: what the kernel reads of it must be right; take the rest as is. */
		CHECK(guest_mem_read(&gm, LAYOUT_ZERO_PAGE, bp, 4096) == 0);
		CHECK(get(bp + 0x202, 4) == 0x53726448u); /* "HdrS" */
		CHECK(get(bp + 0x228, 4) == LAYOUT_CMDLINE);
		CHECK(get(bp + 0x218, 4) == (uint32_t)info.initrd_gpa &&
			get(bp + 0x21c, 4) == (uint32_t)info.initrd_size);
		CHECK(get(bp + 0x250, 8) == 0); /* setup_data: none, whatever the image said */
		CHECK(get(bp + 0x70, 8) == LAYOUT_ACPI_START);
		CHECK(bp[0x1e8] >= 3 && bp[0x1e8] <= 128);
		if (k->kind == X86_KERNEL_BZIMAGE)
			CHECK(get(bp + 0x1f4, 4) == get(k->setup_header + 3, 4)); /* syssize */
	}
	free(cmdline);
	same_as_shadow();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *img = data + HEADER;
	size_t len, ilen, clen;
	struct x86_kernel k;
	uint64_t initrd_gpa = 0;
	char err[256];
	int ret;

	setup();
	if (size < HEADER)
		return 0;
	ilen = (size_t)get(data, 2) * 16;
	clen = (size_t)get(data + 2, 2);
	len = size - HEADER;

	memset(err, 0, sizeof(err));
	ret = x86_kernel_load(&gm, img, len, &k, err, sizeof(err));
	if (ret) {
		CHECK(ret == -ENOEXEC || ret == -EINVAL || ret == -EFAULT);
		CHECK(strncmp(err, "kernel: ", 8) == 0);
		same_as_shadow();
		return 0;
	}
	CHECK(len >= SELFMAG);
	if (memcmp(img, ELFMAG, SELFMAG) == 0) {
		CHECK(k.kind == X86_KERNEL_ELF);
		expect_elf(img, len, &k);
	} else {
		CHECK(k.kind == X86_KERNEL_BZIMAGE && len > 0x206 &&
			get(img + 0x202, 4) == 0x53726448u);
		expect_bzimage(img, len, &k);
	}
	same_as_shadow();
	try_initrd(&k, ilen, &initrd_gpa);
	try_zero_page(&k, clen, initrd_gpa, ilen);

	/* Back to the pattern for the next input. */
	memset(low, PATTERN, LOW_SIZE);
	memset(high, PATTERN, HIGH_SIZE);
	memset(shadow_low, PATTERN, LOW_SIZE);
	memset(shadow_high, PATTERN, HIGH_SIZE);
	return 0;
}
