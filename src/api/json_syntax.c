/* serde_json's syntax rules and its words for breaking them, so a malformed body gets the
 * message Firecracker gives ("expected `,` or `}` at line 1 column 9"). cJSON is more
 * lenient (leading zeros, any byte below the space as whitespace, deeper nesting), so a
 * body is checked here first and cJSON only builds the tree of one that passes. */
#include "json.h"

#include <stdio.h>
#include <string.h>

#define SERDE_DEPTH 128 /* serde_json's recursion limit */

struct scan {
	const char *s;
	size_t i, len;
	const char *msg;
	size_t at; /* bytes read when the error was found, serde's place */
};

/* serde_json places an error either on the byte it peeked at (counted as read) or, at the
 * end of the text, on the last byte. */
static int bad(struct scan *c, const char *msg)
{
	c->msg = msg;
	c->at = c->i < c->len ? c->i + 1 : c->len;
	return -1;
}

static bool more(const struct scan *c)
{
	return c->i < c->len;
}

static void skip_ws(struct scan *c)
{
	while (more(c) && strchr(" \t\n\r", c->s[c->i]) && c->s[c->i])
		c->i++;
}

static bool is_digit(char ch)
{
	return ch >= '0' && ch <= '9';
}

static int scan_digits(struct scan *c)
{
	if (!more(c))
		return bad(c, "EOF while parsing a value");
	if (!is_digit(c->s[c->i]))
		return bad(c, "invalid number");
	while (more(c) && is_digit(c->s[c->i]))
		c->i++;
	return 0;
}

static int scan_number(struct scan *c)
{
	if (c->s[c->i] == '-')
		c->i++;
	if (more(c) && c->s[c->i] == '0') {
		c->i++;
		if (more(c) && is_digit(c->s[c->i]))
			return bad(c, "invalid number");
	} else if (scan_digits(c)) {
		return -1;
	}
	if (more(c) && c->s[c->i] == '.') {
		c->i++;
		if (scan_digits(c))
			return -1;
	}
	if (more(c) && (c->s[c->i] == 'e' || c->s[c->i] == 'E')) {
		c->i++;
		if (more(c) && (c->s[c->i] == '+' || c->s[c->i] == '-'))
			c->i++;
		if (scan_digits(c))
			return -1;
	}
	return 0;
}

static int scan_string(struct scan *c)
{
	c->i++; /* the opening quote */
	for (;;) {
		unsigned char ch;
		if (!more(c))
			return bad(c, "EOF while parsing a string");
		ch = (unsigned char)c->s[c->i];
		if (ch == '"') {
			c->i++;
			return 0;
		}
		if (ch < 0x20)
			return bad(c,
				"control character (\\u0000-\\u001F) found while parsing a "
				"string");
		c->i++;
		if (ch != '\\')
			continue;
		if (!more(c))
			return bad(c, "EOF while parsing a string");
		if (c->s[c->i] == 'u') {
			for (int k = 0; k < 4; k++) {
				c->i++;
				if (!more(c))
					return bad(c, "EOF while parsing a string");
				if (!strchr("0123456789abcdefABCDEF", c->s[c->i]) || !c->s[c->i])
					return bad(c, "invalid escape");
			}
		} else if (!strchr("\"\\/bfnrt", c->s[c->i]) || !c->s[c->i]) {
			return bad(c, "invalid escape");
		}
		c->i++;
	}
}

static int scan_ident(struct scan *c, const char *word)
{
	for (const char *w = word; *w; w++, c->i++) {
		if (!more(c))
			return bad(c, "EOF while parsing a value");
		if (c->s[c->i] != *w)
			return bad(c, "expected ident");
	}
	return 0;
}

static int scan_value(struct scan *c, int depth);

/* The members of an object or the elements of a list, after its opening bracket. */
static int scan_members(struct scan *c, bool object, int depth)
{
	const char *eof = object ? "EOF while parsing an object" : "EOF while parsing a list";
	const char *sep = object ? "expected `,` or `}`" : "expected `,` or `]`";
	char close = object ? '}' : ']';

	if (depth >= SERDE_DEPTH)
		return bad(c, "recursion limit exceeded");
	c->i++;
	skip_ws(c);
	if (more(c) && c->s[c->i] == close) {
		c->i++;
		return 0;
	}
	for (;;) {
		if (object) {
			skip_ws(c);
			if (!more(c))
				return bad(c, eof);
			if (c->s[c->i] != '"')
				return bad(c, "key must be a string");
			if (scan_string(c))
				return -1;
			skip_ws(c);
			if (!more(c))
				return bad(c, eof);
			if (c->s[c->i] != ':')
				return bad(c, "expected `:`");
			c->i++;
		}
		if (scan_value(c, depth + 1))
			return -1;
		skip_ws(c);
		if (!more(c))
			return bad(c, eof);
		if (c->s[c->i] == close) {
			c->i++;
			return 0;
		}
		if (c->s[c->i] != ',')
			return bad(c, sep);
		c->i++;
		skip_ws(c);
		if (more(c) && c->s[c->i] == close)
			return bad(c, "trailing comma");
		if (!object && !more(c))
			return bad(c, eof);
	}
}

static int scan_value(struct scan *c, int depth)
{
	skip_ws(c);
	if (!more(c))
		return bad(c, "EOF while parsing a value");
	switch (c->s[c->i]) {
	case 'n':
		return scan_ident(c, "null");
	case 't':
		return scan_ident(c, "true");
	case 'f':
		return scan_ident(c, "false");
	case '"':
		return scan_string(c);
	case '[':
		return scan_members(c, false, depth);
	case '{':
		return scan_members(c, true, depth);
	default:
		if (c->s[c->i] == '-' || is_digit(c->s[c->i]))
			return scan_number(c);
		return bad(c, "expected value");
	}
}

int json_syntax_check(const char *body, size_t len, char *err, size_t errlen)
{
	struct scan c = { .s = body, .len = len };
	size_t nl = 0;
	int line = 1;

	if (scan_value(&c, 0) == 0) {
		skip_ws(&c);
		if (!more(&c))
			return 0;
		bad(&c, "trailing characters");
	}
	for (size_t k = 0; k < c.at; k++) {
		if (body[k] == '\n') {
			line++;
			nl = k + 1;
		}
	}
	snprintf(err, errlen, "%s at line %d column %zu", c.msg, line, c.at - nl);
	return -1;
}
