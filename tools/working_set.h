/* ember-uffd's working set: the pages a restored VM faulted in, in the order it did, kept
 * in a file so that the next restore of the same snapshot can copy them in before the VM
 * asks (issue 17: prefault what the guest touched first last time).
 *
 * The file is text: the line "ember-uffd working set 1", then one page per line as its
 * offset in the memory file in lowercase hex without 0x ("1a2000"). */
#ifndef EMBER_WORKING_SET_H
#define EMBER_WORKING_SET_H

#include <stddef.h>
#include <stdint.h>

#define WORKING_SET_MAX (1u << 20) /* pages: 4 GiB of 4 KiB pages */
#define WORKING_SET_FILE_MAX (WORKING_SET_MAX * 17ull + 64)

struct working_set {
	uint64_t *pages; /* offsets in the memory file, each a multiple of 4 KiB */
	size_t n, cap;
};

/* Parse a working set's text for a memory file of mem_size bytes into ws (empty before;
 * working_set_free frees it). 0; or -EINVAL with err naming the line ("line 3: '12x' is
 * not a hex offset", "line 2: 0x9000000 is past the memory file (128 MiB)", "line 4:
 * 0x1001 is not page aligned", "more than 1048576 pages"), ws then empty. */
int working_set_parse(const char *text, size_t len, uint64_t mem_size, struct working_set *ws,
	char *err, size_t errlen);

/* Read and parse the file at path: 0, -ENOENT if there is none (err says so), or another
 * -errno / -EINVAL with err naming the file. */
int working_set_load(const char *path, uint64_t mem_size, struct working_set *ws, char *err,
	size_t errlen);

/* Append one page; nothing past WORKING_SET_MAX pages. 0, or -ENOMEM. */
int working_set_add(struct working_set *ws, uint64_t offset);

/* Write ws to path: a temporary file beside it, then renamed over it, so a reader never
 * sees half a file. 0, or -errno with err. */
int working_set_save(const char *path, const struct working_set *ws, char *err, size_t errlen);

void working_set_free(struct working_set *ws);

#endif
