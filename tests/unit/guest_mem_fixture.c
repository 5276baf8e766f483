/* Guest RAM for unit tests: heap regions laid out as a test asks. */
#include "guest_mem_fixture.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define PAGE 4096

int guest_mem_fixture_init(struct guest_mem *gm, uint64_t size)
{
	*gm = (struct guest_mem){ .backing = GUEST_MEM_ANON, .page_size = PAGE, .fd = -1 };
	return guest_mem_fixture_add(gm, 0, size);
}

int guest_mem_fixture_add(struct guest_mem *gm, uint64_t gpa, uint64_t size)
{
	/* Whole pages, as guest_mem_map gives (aligned_alloc wants a multiple, too). */
	size_t bytes = (size + PAGE - 1) & ~(size_t)(PAGE - 1);
	uint8_t *host;

	if (gm->nr_regions == GUEST_MEM_MAX_REGIONS)
		return -ENOSPC;
	host = aligned_alloc(PAGE, bytes);
	if (!host)
		return -ENOMEM;
	memset(host, 0, bytes);
	gm->regions[gm->nr_regions++] = (struct guest_mem_region){ .gpa = gpa,
		.size = size,
		.host = host };
	gm->total += size;
	return 0;
}

void guest_mem_fixture_deinit(struct guest_mem *gm)
{
	for (unsigned i = 0; i < GUEST_MEM_MAX_REGIONS; i++) {
		if (i < gm->nr_regions)
			free(gm->regions[i].host);
		free((void *)gm->dirty[i]);
	}
	*gm = (struct guest_mem){ .fd = -1 };
}

void *mapped_fixture_new(size_t fixture_size, uint64_t mem_size)
{
	struct guest_mem *gm = calloc(1, fixture_size);
	char err[256];

	if (!gm)
		return NULL;
	if (guest_mem_map(gm, mem_size, GUEST_MEM_ANON, NULL, err, sizeof(err))) {
		free(gm);
		return NULL;
	}
	return gm;
}

void mapped_fixture_free(void *fixture)
{
	guest_mem_unmap(fixture);
	free(fixture);
}
