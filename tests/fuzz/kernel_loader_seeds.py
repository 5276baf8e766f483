#!/usr/bin/env python3
"""Seeds for fuzz_kernel_loader: small ELF vmlinux and bzImage images, good and hostile.

usage: tests/fuzz/kernel_loader_seeds.py DIR
Each seed is the harness's 4-byte prefix (initrd length / 16, command-line length, both
16-bit little-endian) followed by the image. Offsets are boot.rst's and the ELF spec's."""
import os
import struct
import sys

MIB = 1 << 20


def prefix(initrd=4096, cmdline=20):
    return struct.pack("<HH", initrd // 16, cmdline)


def elf(phdrs, entry, data_len=0x200, cls=2):
    """ELF64 header, program headers right after it, then data_len bytes of 'code'."""
    phoff = 64
    eh = b"\x7fELF" + bytes([cls, 1, 1]) + bytes(9)
    eh += struct.pack("<HHIQQQIHHHHHH", 2, 62, 1, entry, phoff, 0, 0, 64, 56, len(phdrs),
                      0, 0, 0)
    body = b"".join(struct.pack("<IIQQQQQQ", *p) for p in phdrs)
    img = eh + body
    return img + bytes((i * 7 + 1) & 0xff for i in range(data_len))


def bzimage(sects=1, pm_len=0x400, version=0x020F, xload=3, loadflags=1, reloc=1,
            align=MIB, pref=MIB, init_size=0x40000, hdr_end=0x268, cmdline_size=255,
            initrd_max=0x37FFFFFF):
    setup = ((sects or 4) + 1) * 512
    img = bytearray(setup + pm_len)
    img[0x1F1] = sects
    struct.pack_into("<I", img, 0x1F4, pm_len // 16)
    struct.pack_into("<H", img, 0x1FE, 0xAA55)
    img[0x200] = 0xEB
    img[0x201] = hdr_end - 0x202
    img[0x202:0x206] = b"HdrS"
    struct.pack_into("<H", img, 0x206, version)
    img[0x211] = loadflags
    struct.pack_into("<I", img, 0x214, MIB)
    struct.pack_into("<I", img, 0x22C, initrd_max)
    struct.pack_into("<I", img, 0x230, align)
    img[0x234] = reloc
    struct.pack_into("<H", img, 0x236, xload)
    struct.pack_into("<I", img, 0x238, cmdline_size)
    struct.pack_into("<Q", img, 0x258, pref)
    struct.pack_into("<I", img, 0x260, init_size)
    for i in range(pm_len):
        img[setup + i] = (i * 3 + 5) & 0xFF
    return bytes(img)


PT_LOAD, PT_NOTE = 1, 4
# p_type, p_flags, p_offset, p_vaddr, p_paddr, p_filesz, p_memsz, p_align
LOAD_LOW = (PT_LOAD, 5, 0x100, 0xFFFFFFFF81000000, MIB, 0x80, 0x1000, 0x1000)
NOTE = (PT_NOTE, 4, 0x40, 0, 0, 0x10, 0x10, 4)
LOAD_HIGH = (PT_LOAD, 6, 0x180, 0xFFFFFFFF82000000, 1 << 32, 0x40, 0x2000, 0x1000)
ELF_BASIC = elf([LOAD_LOW, NOTE, LOAD_HIGH], MIB + 0x10)
BZ_BASIC = bzimage()

SEEDS = {
    "elf_basic": prefix() + ELF_BASIC,
    "elf_bss_only": prefix(0x1000, 0) + elf([(PT_LOAD, 6, 0, 0, 0x170000, 0, 0x3000, 0)],
                                           0x170008, 0),
    "elf_truncated_header": prefix() + ELF_BASIC[:40],
    "elf_phdrs_past_end": prefix() + ELF_BASIC[:64 + 56 + 20],
    "elf32": prefix() + elf([LOAD_LOW], MIB, cls=1),
    "elf_below_1mib": prefix() + elf([(PT_LOAD, 5, 0x100, 0, 0x9F000, 0x80, 0x80, 0)],
                                     0x9F000),
    "bz_basic": prefix() + BZ_BASIC,
    "bz_fixed_address": prefix(0x10000, 100) + bzimage(reloc=0, pref=0x120000),
    "bz_sects_zero": prefix() + bzimage(sects=0),
    "bz_truncated_header": prefix() + BZ_BASIC[:0x240],
    "bz_zero_init_size": prefix() + bzimage(init_size=0, pref=64 << 30),
    "bz_old_protocol": prefix() + bzimage(version=0x0205),
    "bz_no_64bit_entry": prefix() + bzimage(xload=0),
    "bz_cmdline_too_long": prefix(0, 300) + BZ_BASIC,
    "bz_initrd_max_low": prefix(0x20000, 0) + bzimage(initrd_max=0x140000 - 1),
}


def main():
    if len(sys.argv) != 2:
        sys.exit(f"usage: {sys.argv[0]} DIR")
    os.makedirs(sys.argv[1], exist_ok=True)
    for name, data in SEEDS.items():
        with open(os.path.join(sys.argv[1], name), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    main()
