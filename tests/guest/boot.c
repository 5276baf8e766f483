/* ember test guest, user part: what the machine looks like (zero page, CPUID, work area). */
#include "guest.h"
#include "user.h"

/* Linux boot protocol: struct boot_params offsets. */
#define ZP_EXT_CMD_LINE_PTR 0x0c8 /* u32, high half of the command line address */
#define ZP_E820_ENTRIES 0x1e8     /* u8 */
#define ZP_CMD_LINE_PTR 0x228     /* u32 */
#define ZP_E820_TABLE 0x2d0       /* 20-byte entries: u64 addr, u64 size, u32 type */
#define ZP_E820_MAX 128
#define E820_RAM 1

#define MAPPED_END 0x100000000ULL /* entry.S maps the first 4 GiB */
#define WORK_ALIGN (2 * MIB)

extern char __guest_end[]; /* guest.ld: end of the image, bss included */

static char cmdline_copy[LAYOUT_CMDLINE_MAX];

static uint64_t rd64(const uint8_t *p)
{
	uint64_t v;

	__builtin_memcpy(&v, p, sizeof(v));
	return v;
}

static uint32_t rd32(const uint8_t *p)
{
	uint32_t v;

	__builtin_memcpy(&v, p, sizeof(v));
	return v;
}

static void read_cmdline(struct boot_info *bi, const uint8_t *zp)
{
	uint64_t gpa = rd32(zp + ZP_CMD_LINE_PTR) | (uint64_t)rd32(zp + ZP_EXT_CMD_LINE_PTR) << 32;
	size_t n = 0;

	if (gpa && gpa < MAPPED_END - LAYOUT_CMDLINE_MAX) {
		const char *s = (const char *)gpa;

		for (; n < sizeof(cmdline_copy) - 1 && s[n]; n++)
			cmdline_copy[n] = (unsigned char)s[n] < 0x20 || s[n] == 0x7f ? ' ' : s[n];
	}
	cmdline_copy[n] = '\0';
	bi->cmdline = cmdline_copy;
}

/* Total RAM, and the work area: from the first 2 MiB boundary above the image to the end
 * of the largest RAM entry (clipped to the mapped 4 GiB). */
static void read_e820(struct boot_info *bi, const uint8_t *zp)
{
	uint64_t best_start = 0, best_end = 0;
	unsigned n = zp[ZP_E820_ENTRIES];

	if (n > ZP_E820_MAX)
		n = ZP_E820_MAX;
	bi->e820_count = n;
	bi->mem = 0;
	for (unsigned i = 0; i < n; i++) {
		const uint8_t *e = zp + ZP_E820_TABLE + 20 * i;
		uint64_t start = rd64(e), size = rd64(e + 8), end;

		if (rd32(e + 16) != E820_RAM)
			continue;
		bi->mem += size;
		if (start >= MAPPED_END)
			continue;
		end = size > MAPPED_END - start ? MAPPED_END : start + size;
		if (end - start > best_end - best_start) {
			best_start = start;
			best_end = end;
		}
	}
	bi->work_start = ((uint64_t)__guest_end + WORK_ALIGN - 1) & ~(WORK_ALIGN - 1);
	if (bi->work_start < best_start)
		bi->work_start = (best_start + WORK_ALIGN - 1) & ~(WORK_ALIGN - 1);
	bi->work_end = best_end > bi->work_start ? best_end : bi->work_start;
}

static void read_cpuid(struct boot_info *bi)
{
	size_t n = 0;

	bi->cpus = (boot_cpuid[0] >> 16) & 0xff;
	bi->apic = boot_cpuid[0] >> 24;
	for (int reg = 1; reg <= 3; reg++) {
		for (int b = 0; b < 4; b++) {
			char c = (char)(boot_cpuid[reg] >> (8 * b));

			if (c >= 0x20 && c < 0x7f)
				bi->hv[n++] = c;
		}
	}
	bi->hv[n] = '\0';
}

void boot_info_read(struct boot_info *bi, const uint8_t *zero_page)
{
	read_cpuid(bi);
	read_e820(bi, zero_page);
	read_cmdline(bi, zero_page);
}
