/* Unit tests for page_scan: which pages of guest RAM a full snapshot must write. */
#include <errno.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cmocka.h>

#include "ember/guest_mem.h"
#include "ember/page_scan.h"

#define PAGE 4096
#define PAGES 16
#define BITS_PER_LONG (sizeof(unsigned long) * CHAR_BIT)

/* ---- the pagemap entry (pure) ---- */

static void test_page_scan_pagemap_present_or_swapped_holds_data(void **state)
{
	(void)state;
	assert_true(page_scan_pagemap_has_data(PAGEMAP_PRESENT));
	assert_true(page_scan_pagemap_has_data(PAGEMAP_PRESENT | 0x1234)); /* with a PFN */
	/* In swap: not resident, but written; mincore called this a hole. Bits 0-4 are the
	 * swap type, 5-54 the offset. */
	assert_true(page_scan_pagemap_has_data(PAGEMAP_SWAPPED));
	assert_true(page_scan_pagemap_has_data(PAGEMAP_SWAPPED | (77ULL << 5) | 1));
}

static void test_page_scan_pagemap_untouched_is_a_hole(void **state)
{
	(void)state;
	assert_false(page_scan_pagemap_has_data(0));
	/* Soft-dirty (55), exclusively mapped (56), uffd-wp (57), file/shared (61) alone say
	 * nothing about data. */
	assert_false(page_scan_pagemap_has_data(1ULL << 55));
	assert_false(page_scan_pagemap_has_data(1ULL << 56));
	assert_false(page_scan_pagemap_has_data(1ULL << 57));
	assert_false(page_scan_pagemap_has_data(1ULL << 61));
	assert_false(page_scan_pagemap_has_data(~(PAGEMAP_PRESENT | PAGEMAP_SWAPPED)));
}

/* ---- real memory of this process ---- */

static bool bit(const unsigned long *map, unsigned page)
{
	return map[page / BITS_PER_LONG] >> (page % BITS_PER_LONG) & 1;
}

static void assert_bits(const unsigned long *map, const bool *want)
{
	for (unsigned p = 0; p < PAGES; p++)
		if (bit(map, p) != want[p])
			fail_msg("page %u: bit %d, want %d", p, bit(map, p), want[p]);
}

static void test_page_scan_anonymous_memory_by_pagemap(void **state)
{
	struct guest_mem gm = { .nr_regions = 1, .backing = GUEST_MEM_ANON, .fd = -1 };
	unsigned long map[1] = { 0 };
	bool want[PAGES] = { [0] = true, [3] = true, [15] = true };
	uint8_t *mem = mmap(NULL, PAGES * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
		-1, 0);

	(void)state;
	assert_true(mem != MAP_FAILED);
	/* No huge page: a touch must fault in that page alone. */
	madvise(mem, PAGES * PAGE, MADV_NOHUGEPAGE);
	for (unsigned p = 0; p < PAGES; p++)
		if (want[p])
			mem[p * PAGE] = 1;
	gm.regions[0] = (struct guest_mem_region){ .size = PAGES * PAGE, .host = mem };
	assert_int_equal(page_scan_region(&gm, 0, map), 0);
	assert_bits(map, want);
	munmap(mem, PAGES * PAGE);
}

static void test_page_scan_memfd_by_its_data_extents(void **state)
{
	struct guest_mem gm = { .nr_regions = 2, .backing = GUEST_MEM_MEMFD };
	unsigned long map[2][1] = { { 0 } };
	bool want0[PAGES] = { [1] = true, [2] = true }, want1[PAGES] = { [0] = true, [9] = true };
	const uint8_t one = 1;

	(void)state;
	gm.fd = memfd_create("test_page_scan", MFD_CLOEXEC);
	assert_true(gm.fd >= 0);
	assert_int_equal(ftruncate(gm.fd, 2 * PAGES * PAGE), 0);
	gm.regions[0] = (struct guest_mem_region){ .size = PAGES * PAGE };
	gm.regions[1] = (struct guest_mem_region){ .size = PAGES * PAGE,
		.file_offset = PAGES * PAGE };
	/* A write that ends inside a page makes that whole page data. */
	assert_int_equal(pwrite(gm.fd, &one, 1, PAGE + 100), 1);
	assert_int_equal(pwrite(gm.fd, &one, 1, 2 * PAGE), 1);
	assert_int_equal(pwrite(gm.fd, &one, 1, PAGES * PAGE), 1);
	assert_int_equal(pwrite(gm.fd, &one, 1, (PAGES + 9) * PAGE + PAGE - 1), 1);
	assert_int_equal(page_scan_region(&gm, 0, map[0]), 0);
	assert_int_equal(page_scan_region(&gm, 1, map[1]), 0);
	assert_bits(map[0], want0);
	assert_bits(map[1], want1);
	close(gm.fd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_page_scan_pagemap_present_or_swapped_holds_data),
		cmocka_unit_test(test_page_scan_pagemap_untouched_is_a_hole),
		cmocka_unit_test(test_page_scan_anonymous_memory_by_pagemap),
		cmocka_unit_test(test_page_scan_memfd_by_its_data_extents),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
