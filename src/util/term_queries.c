/* Dropping the terminal queries of a guest's output (see term_queries.h). */
#include "ember/term_queries.h"

#include <stdbool.h>
#include <string.h>

#define ESC 0x1b

/* A complete CSI sequence in held[0..n): whether the terminal would answer it. */
static bool is_query(const uint8_t *s, size_t n)
{
	uint8_t final = s[n - 1];
	const uint8_t *p = s + 2, *end = s + n - 1; /* the parameters */

	if (final == 'n')
		return end - p == 1 && (p[0] == '5' || p[0] == '6');
	if (final == 'c') {
		if (p < end && (*p == '>' || *p == '='))
			p++;
		while (p < end && *p == '0')
			p++;
		return p == end;
	}
	return false;
}

static size_t emit(uint8_t *out, size_t at, const uint8_t *s, size_t n)
{
	memcpy(out + at, s, n);
	return at + n;
}

size_t term_queries_filter(struct term_queries *t, const uint8_t *in, size_t len, uint8_t *out)
{
	size_t o = 0;

	for (size_t i = 0; i < len; i++) {
		uint8_t c = in[i];

		if (!t->nheld) {
			if (c == ESC)
				t->held[t->nheld++] = c;
			else
				out[o++] = c;
			continue;
		}
		if ((t->nheld == 1 && c != '[') || (t->nheld > 1 && (c < 0x20 || c > 0x7e))) {
			/* Not a CSI sequence after all: let it through; an ESC may start one. */
			o = emit(out, o, t->held, t->nheld);
			t->nheld = 0;
			i--; /* this byte again, from the start */
			continue;
		}
		t->held[t->nheld++] = c;
		if (t->nheld > 2 && c >= 0x40) { /* the final byte */
			if (is_query(t->held, t->nheld))
				t->dropped++;
			else
				o = emit(out, o, t->held, t->nheld);
			t->nheld = 0;
		} else if (t->nheld == TERM_QUERY_MAX) { /* too long to be a query */
			o = emit(out, o, t->held, t->nheld);
			t->nheld = 0;
		}
	}
	return o;
}
