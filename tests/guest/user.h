/* ember test guest, user part: what the boot, work-area and string modules offer main.c. */
#ifndef GUEST_USER_H
#define GUEST_USER_H

#include <stddef.h>
#include <stdint.h>

/* What the guest learned at boot (boot.c). */
struct boot_info {
	uint32_t cpus;       /* CPUID 1 EBX[23:16] */
	uint32_t apic;       /* CPUID 1 EBX[31:24] */
	uint64_t mem;        /* bytes of e820 RAM (type 1), all entries */
	uint32_t e820_count; /* entries in the zero page */
	char hv[13];         /* CPUID 0x40000000 signature, non-printable bytes dropped */
	const char *cmdline; /* copy, control characters turned into spaces */
	uint64_t work_start; /* work area [work_start, work_end): 2 MiB-aligned start */
	uint64_t work_end;
};

/* Fill `bi` from the zero page (e820, command line), boot_cpuid and the image's end. */
void boot_info_read(struct boot_info *bi, const uint8_t *zero_page);

/*
 * Work-area pattern (work.c), word i at start + 8 * i: xorshift64* with the state starting
 * at `seed` (0x9e3779b97f4a7c15 if seed is 0): per word, x ^= x >> 12; x ^= x << 25;
 * x ^= x >> 27; word = x * 0x2545f4914f6cdd1d. The checksum is FNV-1a 64 taken per
 * 64-bit word: h = 0xcbf29ce484222325, then per word in address order h = (h ^ word) *
 * 0x100000001b3.
 */
uint64_t work_fill(uint64_t start, uint64_t bytes, uint64_t seed); /* returns the sum */
uint64_t work_sum(uint64_t start, uint64_t bytes);
/* Address of the first byte that differs from the pattern, or 0 if all match. */
uint64_t work_check(uint64_t start, uint64_t bytes, uint64_t seed);
/* Dirty each of `pages` 4 KiB pages without changing them; returns TSC cycles taken. */
uint64_t work_touch(uint64_t start, uint64_t pages);

/* A command line split into words (main.c), as command handlers receive it. */
#define MAX_ARGS 5
struct args {
	int n;
	char *v[MAX_ARGS];
};

/* Parses a->v[i] into *out; answers the error line itself and returns -1 if it is not a
 * number (main.c). */
int arg_u64(const struct args *a, int i, uint64_t *out);

/* virtio-blk commands (cmd_block.c): blk info | use | read | write | flush | evil. */
void cmd_blk(const struct args *a);
void cmd_net(const struct args *a);     /* cmd_net.c */
void cmd_vsock(const struct args *a);   /* cmd_vsock.c */
void cmd_balloon(const struct args *a); /* cmd_balloon.c */

/* String helpers (lib.c). */
size_t str_len(const char *s);
int str_eq(const char *a, const char *b);
/* Decimal or 0x-hex, whole string, no overflow; returns 0 on success, -1 otherwise. */
int parse_u64(const char *s, uint64_t *out);

#endif
