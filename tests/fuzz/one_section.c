/* A state file of one section around the fuzzer's bytes, and seeds cut from real sections. */
#include "one_section.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ember/snapshot_file.h"

#include "fuzz.h"

struct snap_reader *fuzz_one_section(uint32_t id, uint32_t version, const uint8_t *data,
	size_t size)
{
	struct snap_writer *w = snap_writer_new();
	struct snap_reader *r = NULL;
	const uint8_t *img;
	size_t len;
	char err[256];

	if (!w)
		return NULL;
	if (snap_section_begin(w, id, version) == 0 && snap_put(w, data, size) == 0 &&
		snap_section_end(w) == 0 && snap_writer_image(w, &img, &len) == 0)
		CHECK(snap_reader_parse(&r, img, len, err, sizeof(err)) == 0);
	snap_writer_free(w);
	return r;
}

int fuzz_seed_section(const char *dir, const char *name, const void *prefix, size_t prefix_len,
	fuzz_save_fn *save, const void *obj)
{
	struct snap_writer *w = snap_writer_new();
	const size_t skip = SNAP_HEADER_SIZE + SNAP_SECTION_HEADER_SIZE;
	const uint8_t *img;
	uint8_t *seed = NULL;
	size_t len, n;
	char path[4096];
	FILE *f = NULL;
	int ret = -1;

	if (!w || save(obj, w) != 0 || snap_writer_image(w, &img, &len) != 0 || len < skip + 8)
		goto out;
	n = prefix_len + len - skip - 8; /* the payload: no headers, no CRC */
	seed = malloc(n ? n : 1);
	if (!seed)
		goto out;
	memcpy(seed, prefix, prefix_len);
	memcpy(seed + prefix_len, img + skip, len - skip - 8);
	LLVMFuzzerTestOneInput(seed, n);
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "wb");
	if (f && fwrite(seed, 1, n, f) == n)
		ret = 0;
	if (f && fclose(f) != 0)
		ret = -1;
out:
	if (ret)
		fprintf(stderr, "seed %s/%s: cannot write it\n", dir, name);
	free(seed);
	snap_writer_free(w);
	return ret;
}
