/* Internals of the state file container shared by its writer (state_file.c) and its
 * reader (state_file_read.c): the byte layout of what snapshot_file.h describes. Not a
 * module interface: other modules use include/ember/snapshot_file.h. */
#ifndef EMBER_STATE_FILE_INTERNAL_H
#define EMBER_STATE_FILE_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "ember/byteorder.h"

#define TRAILER_SIZE 8       /* le64 CRC-64 */
#define STR_NULL 0xffffffffu /* the length that stands for a NULL string */

/* Header field offsets. */
#define OFF_MAGIC 0
#define OFF_MAJOR 8
#define OFF_MINOR 10
#define OFF_COUNT 16

/* "state file[ PATH]: <message>" into err (path may be NULL); returns ret. */
__attribute__((format(printf, 5, 6))) int snap_file_fail(char *err, size_t errlen, const char *path,
	int ret, const char *fmt, ...);

#endif
