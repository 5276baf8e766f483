/* What the harnesses of single state file sections share: a reader over one section made
 * of the fuzzer's bytes, and (for the seed programs) a section's payload written out. */
#ifndef EMBER_FUZZ_ONE_SECTION_H
#define EMBER_FUZZ_ONE_SECTION_H

#include <stddef.h>
#include <stdint.h>

struct snap_reader;
struct snap_writer;

/* A parsed state file whose only section is (id, version) with `data` as its payload, the
 * CRC right; NULL if the writer refuses it (larger than a state file may be). */
struct snap_reader *fuzz_one_section(uint32_t id, uint32_t version, const uint8_t *data,
	size_t size);

/* Seed programs: `save` writes one section of `obj` (a real save function behind a cast);
 * its payload, after `prefix` (prefix_len bytes, for harnesses that read a few parameters
 * first), goes to DIR/NAME, and the harness runs on it too. 0, or -1 after saying why. */
typedef int fuzz_save_fn(const void *obj, struct snap_writer *w);
int fuzz_seed_section(const char *dir, const char *name, const void *prefix, size_t prefix_len,
	fuzz_save_fn *save, const void *obj);

#endif
