/* What a Lua pattern (Lua 5.4 manual, 6.4.1) can reach, so that console matching can
 * search only new output plus an overlap instead of everything captured so far. */
#ifndef EMBER_LUA_PATTERN_H
#define EMBER_LUA_PATTERN_H

#include <stdbool.h>
#include <stddef.h>

#define LUA_PATTERN_UNBOUNDED ((size_t)-1)

/* The most bytes one match of `pattern` can cover: each single-character item (a
 * character, '.', a %class, a [set]) counts 1, also with '?'; anchors, captures and
 * frontiers count 0. LUA_PATTERN_UNBOUNDED if it has a repetition ('*', '+', '-'), a
 * %b balance or a back-reference, or is malformed (Lua will refuse it). *anchored: it
 * starts with '^'. Pure. */
size_t lua_pattern_span(const char *pattern, bool *anchored);

#endif
