/* Test helper: a reader on what a state file writer holds (for tests that save a device
 * and restore it from the image). Include after <cmocka.h>. */
#ifndef EMBER_TEST_SNAP_IMAGE_H
#define EMBER_TEST_SNAP_IMAGE_H

#include "ember/snapshot_file.h"

/* Every section of `w` must be ended. `w` is freed. */
static inline struct snap_reader *snap_image_reader(struct snap_writer *w)
{
	struct snap_reader *rd = NULL;
	const uint8_t *img;
	size_t len;
	char err[128];

	assert_int_equal(snap_writer_image(w, &img, &len), 0);
	assert_int_equal(snap_reader_parse(&rd, img, len, err, sizeof(err)), 0);
	snap_writer_free(w);
	return rd;
}

#endif
