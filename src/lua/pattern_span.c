/* The longest match a Lua pattern can make, read off its items (lstrlib.c's grammar). */
#include "ember/lua_pattern.h"

#include <ctype.h>

/* One past the end of the [set] starting at p ('['), or NULL if it does not end. */
static const char *set_end(const char *p)
{
	p++;
	if (*p == '^')
		p++;
	do { /* the first ']' of a set is a member, not its end */
		if (*p == '\0')
			return NULL;
		if (*p++ == '%' && *p++ == '\0')
			return NULL;
	} while (*p != ']');
	return p + 1;
}

size_t lua_pattern_span(const char *p, bool *anchored)
{
	size_t span = 0;

	*anchored = *p == '^';
	if (*anchored)
		p++;
	while (*p) {
		const char *next;

		switch (*p) {
		case '(':
		case ')':
			p++; /* a capture, or with "()" a position: no width */
			continue;
		case '$':
			if (p[1] == '\0')
				return span; /* the end anchor */
			next = p + 1;
			break;
		case '[':
			next = set_end(p);
			if (!next)
				return LUA_PATTERN_UNBOUNDED;
			break;
		case '%':
			if (p[1] == '\0' || p[1] == 'b' || isdigit((unsigned char)p[1]))
				return LUA_PATTERN_UNBOUNDED; /* malformed, balance, back-reference */
			if (p[1] == 'f') {                    /* frontier: no width */
				if (p[2] != '[' || !(p = set_end(p + 2)))
					return LUA_PATTERN_UNBOUNDED;
				continue;
			}
			next = p + 2;
			break;
		default:
			next = p + 1;
			break;
		}
		if (*next == '*' || *next == '+' || *next == '-')
			return LUA_PATTERN_UNBOUNDED;
		if (*next == '?')
			next++;
		span++;
		p = next;
	}
	return span;
}
