/* x86_64 kernel loading: ELF64 vmlinux or bzImage (64-bit boot protocol), and the initrd. */
#include "ember/x86_boot.h"

#include <elf.h>
#include <errno.h>
#include <string.h>

#include "boot_params.h"
#include "ember/guest_mem.h"
#include "ember/layout.h"

#define PAGE_SIZE 4096ULL
#define SECTOR_SIZE 512
#define MIN_PROTOCOL 0x0206
/* The 64-bit entry point (startup_64) sits 0x200 bytes into the protected-mode code. */
#define ENTRY64_OFFSET 0x200
/* The header must reach init_size (protocol 2.10) to tell how much RAM the kernel needs. */
#define HDR_NEEDED_END (BP_INIT_SIZE + 4)
/* ELF kernels carry no initrd limit; the kernel reads ext_ramdisk_image as well. */
#define ELF_INITRD_ADDR_MAX UINT32_MAX

/* Copying into guest memory goes through size_t. */
_Static_assert(sizeof(size_t) >= sizeof(uint64_t), "64-bit host required");

/* Check one PT_LOAD header against the file and guest memory. */
static int check_segment(const struct guest_mem *gm, const Elf64_Phdr *ph, unsigned i, size_t len,
	char *err, size_t errlen)
{
	if (ph->p_filesz > ph->p_memsz)
		return boot_fail(err, errlen, -EINVAL,
			"kernel: ELF segment %u has p_filesz 0x%llx larger than p_memsz 0x%llx", i,
			(unsigned long long)ph->p_filesz, (unsigned long long)ph->p_memsz);
	if (ph->p_offset > len || ph->p_filesz > len - ph->p_offset)
		return boot_fail(err, errlen, -EINVAL,
			"kernel: ELF segment %u (offset 0x%llx, 0x%llx bytes) extends past the end "
			"of the %zu-byte file",
			i, (unsigned long long)ph->p_offset, (unsigned long long)ph->p_filesz, len);
	if (ph->p_paddr < LAYOUT_HIMEM)
		return boot_fail(err, errlen, -EINVAL,
			"kernel: ELF segment %u at 0x%llx lies below 1 MiB, where the boot "
			"structures live",
			i, (unsigned long long)ph->p_paddr);
	if (!guest_mem_ptr(gm, ph->p_paddr, ph->p_memsz))
		return boot_fail(err, errlen, -EFAULT,
			"kernel: ELF segment %u lies outside guest memory (0x%llx bytes at 0x%llx)",
			i, (unsigned long long)ph->p_memsz, (unsigned long long)ph->p_paddr);
	return 0;
}

/* The image is known to start with the ELF magic. The host is x86_64, so the
 * little-endian ELF structures are read with memcpy. */
static int load_elf(struct guest_mem *gm, const uint8_t *img, size_t len, struct x86_kernel *out,
	char *err, size_t errlen)
{
	Elf64_Ehdr eh;
	Elf64_Phdr ph;
	uint64_t lo = UINT64_MAX, hi = 0;
	unsigned nload = 0;
	int entry_found = 0;

	if (len < EI_NIDENT)
		return boot_fail(err, errlen, -EINVAL, "kernel: ELF header truncated (%zu bytes)",
			len);
	if (img[EI_CLASS] == ELFCLASS32)
		return boot_fail(err, errlen, -ENOEXEC,
			"kernel: 32-bit ELF image; an ELF64 x86_64 vmlinux is required");
	if (img[EI_CLASS] != ELFCLASS64)
		return boot_fail(err, errlen, -ENOEXEC, "kernel: ELF class %u is not ELF64",
			img[EI_CLASS]);
	if (len < sizeof(eh))
		return boot_fail(err, errlen, -EINVAL,
			"kernel: ELF header truncated (%zu bytes, need %zu)", len, sizeof(eh));
	memcpy(&eh, img, sizeof(eh));
	if (eh.e_ident[EI_DATA] != ELFDATA2LSB)
		return boot_fail(err, errlen, -ENOEXEC, "kernel: ELF image is not little-endian");
	if (eh.e_machine != EM_X86_64)
		return boot_fail(err, errlen, -ENOEXEC, "kernel: ELF machine %u is not x86_64 (%u)",
			eh.e_machine, EM_X86_64);
	if (eh.e_type != ET_EXEC)
		return boot_fail(err, errlen, -ENOEXEC,
			"kernel: ELF type %u is not ET_EXEC (a vmlinux is an executable)",
			eh.e_type);
	if (eh.e_phentsize != sizeof(Elf64_Phdr))
		return boot_fail(err, errlen, -EINVAL,
			"kernel: ELF program header size %u, expected %zu", eh.e_phentsize,
			sizeof(Elf64_Phdr));
	if (eh.e_phnum == 0 || eh.e_phnum == PN_XNUM)
		return boot_fail(err, errlen, -EINVAL,
			eh.e_phnum
				? "kernel: ELF extended program header numbering is not supported"
				: "kernel: ELF has no program headers");
	/* e_phnum is 16-bit, so the product cannot overflow. */
	if (eh.e_phoff > len || (uint64_t)eh.e_phnum * sizeof(ph) > len - eh.e_phoff)
		return boot_fail(err, errlen, -EINVAL,
			"kernel: ELF program headers (offset 0x%llx, %u entries) lie outside the "
			"%zu-byte file",
			(unsigned long long)eh.e_phoff, eh.e_phnum, len);

	/* Check every segment before writing any, so a refused image leaves memory alone. */
	for (unsigned i = 0; i < eh.e_phnum; i++) {
		int ret;

		memcpy(&ph, img + eh.e_phoff + (size_t)i * sizeof(ph), sizeof(ph));
		if (ph.p_type != PT_LOAD || ph.p_memsz == 0)
			continue;
		ret = check_segment(gm, &ph, i, len, err, errlen);
		if (ret)
			return ret;
		/* check_segment proved p_paddr + p_memsz lies in guest memory: no overflow. */
		if (eh.e_entry >= ph.p_paddr && eh.e_entry - ph.p_paddr < ph.p_memsz)
			entry_found = 1;
		if (ph.p_paddr < lo)
			lo = ph.p_paddr;
		if (ph.p_paddr + ph.p_memsz > hi)
			hi = ph.p_paddr + ph.p_memsz;
		nload++;
	}
	if (nload == 0)
		return boot_fail(err, errlen, -EINVAL, "kernel: ELF has no loadable segment");
	if (!entry_found)
		return boot_fail(err, errlen, -EINVAL,
			"kernel: ELF entry point 0x%llx lies outside the loaded segments",
			(unsigned long long)eh.e_entry);

	for (unsigned i = 0; i < eh.e_phnum; i++) {
		uint8_t *dst;

		memcpy(&ph, img + eh.e_phoff + (size_t)i * sizeof(ph), sizeof(ph));
		if (ph.p_type != PT_LOAD || ph.p_memsz == 0)
			continue;
		dst = guest_mem_ptr_mut(gm, ph.p_paddr, ph.p_memsz);
		if (!dst) /* checked above; kept so that no path writes through NULL */
			return boot_fail(err, errlen, -EFAULT,
				"kernel: ELF segment %u lies outside guest memory", i);
		memcpy(dst, img + ph.p_offset, (size_t)ph.p_filesz);
		memset(dst + ph.p_filesz, 0, (size_t)(ph.p_memsz - ph.p_filesz));
	}

	out->kind = X86_KERNEL_ELF;
	out->entry = eh.e_entry;
	out->load_start = lo;
	out->load_end = hi;
	out->boot_protocol = 0;
	out->initrd_addr_max = ELF_INITRD_ADDR_MAX;
	return 0;
}

/* Where the kernel decompresses itself (boot.rst, "kernel runtime start address"). */
static int runtime_start(const uint8_t *img, uint64_t *start, char *err, size_t errlen)
{
	uint64_t pref = get_le64(img + BP_PREF_ADDRESS);
	uint32_t align = get_le32(img + BP_KERNEL_ALIGNMENT);
	uint64_t addr;

	if (!img[BP_RELOCATABLE_KERNEL]) {
		addr = pref;
	} else {
		if (align == 0 || (align & (align - 1)))
			return boot_fail(err, errlen, -EINVAL,
				"kernel: bzImage kernel_alignment 0x%x is not a power of two",
				align);
		addr = LAYOUT_HIMEM < pref ? pref : LAYOUT_HIMEM;
		if (addr > UINT64_MAX - (align - 1))
			return boot_fail(err, errlen, -EINVAL,
				"kernel: bzImage pref_address 0x%llx is out of range",
				(unsigned long long)pref);
		addr = (addr + align - 1) & ~(uint64_t)(align - 1);
	}
	if (addr < LAYOUT_HIMEM)
		return boot_fail(err, errlen, -EINVAL,
			"kernel: bzImage wants to run at 0x%llx, below 1 MiB",
			(unsigned long long)addr);
	*start = addr;
	return 0;
}

/* The image is known to carry "HdrS" at 0x202 (so len > 0x206). */
static int load_bzimage(struct guest_mem *gm, const uint8_t *img, size_t len,
	struct x86_kernel *out, char *err, size_t errlen)
{
	uint16_t version = get_le16(img + BP_VERSION);
	size_t hdr_end = BP_HEADER + (size_t)img[BP_JUMP + 1];
	size_t setup_size, pm_len;
	unsigned setup_sects;
	uint64_t start = 0, end, syssize;
	uint32_t init_size;
	uint8_t *dst;
	int ret;

	if (version < MIN_PROTOCOL)
		return boot_fail(err, errlen, -ENOEXEC,
			"kernel: bzImage boot protocol %u.%02x is too old (2.06 or later required)",
			version >> 8, version & 0xff);
	if (hdr_end > BP_SETUP_HEADER_LIMIT)
		hdr_end = BP_SETUP_HEADER_LIMIT;
	if (hdr_end > len || hdr_end < BP_CMDLINE_SIZE + 4)
		return boot_fail(err, errlen, -EINVAL,
			"kernel: bzImage setup header is truncated (ends at 0x%zx, file is %zu bytes)",
			hdr_end, len);
	if (!(get_le16(img + BP_XLOADFLAGS) & BP_XLF_KERNEL_64))
		return boot_fail(err, errlen, -ENOEXEC,
			"kernel: bzImage has no 64-bit entry point (XLF_KERNEL_64 not set in "
			"xloadflags)");
	if (hdr_end < HDR_NEEDED_END)
		return boot_fail(err, errlen, -EINVAL,
			"kernel: bzImage setup header is truncated (ends at 0x%zx before init_size)",
			hdr_end);
	if (!(img[BP_LOADFLAGS] & BP_LOADED_HIGH))
		return boot_fail(err, errlen, -ENOEXEC,
			"kernel: zImage (LOADED_HIGH clear) is not supported; use a bzImage");

	setup_sects = img[BP_SETUP_SECTS] ? img[BP_SETUP_SECTS] : 4;
	setup_size = ((size_t)setup_sects + 1) * SECTOR_SIZE;
	if (setup_size >= len)
		return boot_fail(err, errlen, -EINVAL,
			"kernel: bzImage setup_sects %u puts the kernel at 0x%zx, past the end of the "
			"%zu-byte file",
			setup_sects, setup_size, len);
	pm_len = len - setup_size;
	syssize = (uint64_t)get_le32(img + BP_SYSSIZE) * 16;
	if (syssize > pm_len)
		return boot_fail(err, errlen, -EINVAL,
			"kernel: bzImage is truncated (syssize says 0x%llx bytes of kernel, the file "
			"has 0x%zx)",
			(unsigned long long)syssize, pm_len);

	ret = runtime_start(img, &start, err, errlen);
	if (ret)
		return ret;
	init_size = get_le32(img + BP_INIT_SIZE);
	/* Without it nothing says where the kernel will write: load_end would be a guess, and
	 * an initrd placed above it could be overwritten while the kernel decompresses. */
	if (init_size == 0)
		return boot_fail(err, errlen, -EINVAL,
			"kernel: bzImage init_size is 0 (it must say how much RAM the kernel needs at "
			"0x%llx to decompress)",
			(unsigned long long)start);
	if (!guest_mem_ptr(gm, start, init_size))
		return boot_fail(err, errlen, -EFAULT,
			"kernel: bzImage needs 0x%x bytes of RAM at 0x%llx to decompress (init_size); "
			"guest memory is too small",
			init_size, (unsigned long long)start);
	dst = guest_mem_ptr_mut(gm, LAYOUT_HIMEM, pm_len);
	if (!dst)
		return boot_fail(err, errlen, -EFAULT,
			"kernel: bzImage protected-mode code (%zu bytes) does not fit in guest memory "
			"at 1 MiB",
			pm_len);
	memcpy(dst, img + setup_size, pm_len);

	end = LAYOUT_HIMEM + pm_len;
	if (start + init_size > end) /* in guest memory, checked above: no overflow */
		end = start + init_size;
	out->kind = X86_KERNEL_BZIMAGE;
	out->entry = LAYOUT_HIMEM + ENTRY64_OFFSET;
	out->load_start = LAYOUT_HIMEM;
	out->load_end = end;
	out->setup_header_len = hdr_end - BP_SETUP_SECTS;
	memcpy(out->setup_header, img + BP_SETUP_SECTS, out->setup_header_len);
	out->boot_protocol = version;
	out->initrd_addr_max = get_le32(img + BP_INITRD_ADDR_MAX);
	return 0;
}

int x86_kernel_load(struct guest_mem *gm, const void *image, size_t len, struct x86_kernel *out,
	char *err, size_t errlen)
{
	const uint8_t *img = image;

	_Static_assert(sizeof(out->setup_header) == BP_SETUP_HEADER_LIMIT - BP_SETUP_SECTS,
		"setup header buffer matches boot_params");
	memset(out, 0, sizeof(*out));
	if (!img || len == 0)
		return boot_fail(err, errlen, -ENOEXEC, "kernel: the image is empty");
	if (len >= SELFMAG && memcmp(img, ELFMAG, SELFMAG) == 0)
		return load_elf(gm, img, len, out, err, errlen);
	if (len >= BP_VERSION + 2 && get_le32(img + BP_HEADER) == BP_HEADER_MAGIC)
		return load_bzimage(gm, img, len, out, err, errlen);
	return boot_fail(err, errlen, -ENOEXEC, "kernel: not an ELF64 x86_64 vmlinux or bzImage");
}

int x86_initrd_load(struct guest_mem *gm, const struct x86_kernel *kernel, const void *initrd,
	size_t len, uint64_t *gpa, char *err, size_t errlen)
{
	uint64_t top = guest_mem_low_end(gm);
	uint64_t floor = kernel->load_end > LAYOUT_HIMEM ? kernel->load_end : LAYOUT_HIMEM;
	uint64_t addr;

	if (!initrd || len == 0)
		return boot_fail(err, errlen, -EINVAL, "initrd: the image is empty");
	if (top > (uint64_t)kernel->initrd_addr_max + 1)
		top = (uint64_t)kernel->initrd_addr_max + 1;
	/* Highest page-aligned start whose end stays below top, and not below the kernel. */
	if (len > top || ((top - len) & ~(PAGE_SIZE - 1)) < floor)
		return boot_fail(err, errlen, -ENOMEM,
			"initrd: %zu bytes do not fit in low RAM between the kernel end 0x%llx and "
			"0x%llx",
			len, (unsigned long long)floor, (unsigned long long)top);
	addr = (top - len) & ~(PAGE_SIZE - 1);
	if (guest_mem_write(gm, addr, initrd, len))
		return boot_fail(err, errlen, -EFAULT,
			"initrd: %zu bytes at 0x%llx lie outside guest memory", len,
			(unsigned long long)addr);
	*gpa = addr;
	return 0;
}
