/* Terminal queries in a guest's output, dropped while the REPL owns the terminal: a query
 * such as the cursor-position request (ESC [ 6 n) that busybox's line editor sends with
 * each prompt makes the terminal type its answer ("ESC [ 24 ; 1 R") into stdin, where the
 * REPL, not the guest, would read it as keys. */
#ifndef EMBER_TERM_QUERIES_H
#define EMBER_TERM_QUERIES_H

#include <stddef.h>
#include <stdint.h>

#define TERM_QUERY_MAX 16 /* longest escape sequence held back across chunks */

struct term_queries {
	uint8_t held[TERM_QUERY_MAX]; /* the start of an escape sequence seen so far */
	size_t nheld;
	uint64_t dropped; /* queries dropped */
};

/* Copy `len` bytes of output from `in` to `out` (room for len + TERM_QUERY_MAX bytes)
 * without the device status and attribute queries (CSI 5n, CSI 6n, CSI c, CSI > c,
 * CSI = c: those the terminal answers on stdin); returns the bytes written. An escape
 * sequence split across calls is held back until its end arrives; any other sequence
 * passes unchanged. */
size_t term_queries_filter(struct term_queries *t, const uint8_t *in, size_t len, uint8_t *out);

#endif
