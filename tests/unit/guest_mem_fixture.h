/* Guest RAM for unit tests: zeroed, page-aligned heap memory behind a struct guest_mem, in
 * place of guest_mem_map (no mmap, no memfd, nothing for the test to unmap). */
#ifndef TEST_GUEST_MEM_FIXTURE_H
#define TEST_GUEST_MEM_FIXTURE_H

#include <stddef.h>
#include <stdint.h>

#include "ember/guest_mem.h"

/* `size` bytes at guest-physical 0 (anonymous backing, 4 KiB pages, fd -1); whatever gm
 * held is forgotten. 0, or -ENOMEM with gm left empty. */
__attribute__((warn_unused_result)) int guest_mem_fixture_init(struct guest_mem *gm, uint64_t size);

/* Another region of `size` bytes at `gpa`, after the ones gm has. 0, -ENOMEM, or -ENOSPC
 * when gm has GUEST_MEM_MAX_REGIONS already. */
__attribute__((warn_unused_result)) int guest_mem_fixture_add(struct guest_mem *gm, uint64_t gpa,
	uint64_t size);

/* Free the regions and any dirty bitmaps guest_mem_track_dirty made; gm is left empty. */
void guest_mem_fixture_deinit(struct guest_mem *gm);

/* A test's fixture struct of `fixture_size` bytes, zeroed, whose first member is a struct
 * guest_mem mapped by guest_mem_map (anonymous, `mem_size` bytes): for tests that map or
 * unmap guest memory as the VMM does. NULL if either fails. */
void *mapped_fixture_new(size_t fixture_size, uint64_t mem_size);
/* Unmap the first member's guest memory and free the fixture. */
void mapped_fixture_free(void *fixture);

#endif
