/* JSON bodies of the API: parsing, and schema checks with serde-like messages that name
 * the field (unknown fields are refused, as Firecracker's deny_unknown_fields). Not a
 * module interface: src/api/ and its tests only. */
#ifndef EMBER_API_JSON_H
#define EMBER_API_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cJSON.h>

enum jkind {
	JK_STRING,
	JK_BOOL,
	JK_UINT,       /* integer in 0..max */
	JK_ENUM,       /* one of `variants` (a string, case-sensitive) */
	JK_OBJECT,     /* checked against `sub` */
	JK_ARRAY,      /* elements: objects checked against `sub`, or strings if sub is NULL */
	JK_STRING_MAP, /* object whose values are strings */
	JK_ANY,
};

enum jpresence {
	J_OPTIONAL, /* Option<T>: may be absent or null */
	J_DEFAULT,  /* #[serde(default)]: may be absent, null is a type error */
	J_REQUIRED,
};

struct jschema;

struct jfield {
	const char *name;
	enum jkind kind;
	enum jpresence presence;
	const char *type;            /* the expected type, for messages: "u8", "a string" */
	uint64_t max;                /* JK_UINT */
	const char *const *variants; /* JK_ENUM: NULL-terminated */
	const struct jschema *sub;   /* JK_OBJECT, JK_ARRAY */
};

struct jschema {
	const char *name;            /* the struct, for messages: "MachineConfig" */
	const struct jfield *fields; /* ends with a field whose name is NULL */
};

#define JF_STR(n, p) \
	{ \
		.name = (n), .kind = JK_STRING, .presence = (p), .type = "a string" \
	}
#define JF_BOOL(n, p) \
	{ \
		.name = (n), .kind = JK_BOOL, .presence = (p), .type = "a boolean" \
	}
#define JF_UINT(n, p, t, m) \
	{ \
		.name = (n), .kind = JK_UINT, .presence = (p), .type = (t), .max = (m) \
	}
#define JF_U8(n, p) JF_UINT(n, p, "u8", UINT8_MAX)
#define JF_U16(n, p) JF_UINT(n, p, "u16", UINT16_MAX)
#define JF_U32(n, p) JF_UINT(n, p, "u32", UINT32_MAX)
#define JF_U64(n, p) JF_UINT(n, p, "u64", UINT64_MAX)
#define JF_ENUM(n, p, v) \
	{ \
		.name = (n), .kind = JK_ENUM, .presence = (p), .variants = (v) \
	}
#define JF_OBJ(n, p, s) \
	{ \
		.name = (n), .kind = JK_OBJECT, .presence = (p), .sub = (s) \
	}
#define JF_ARR(n, p, s) \
	{ \
		.name = (n), .kind = JK_ARRAY, .presence = (p), .sub = (s) \
	}
#define JF_MAP(n, p) \
	{ \
		.name = (n), .kind = JK_STRING_MAP, .presence = (p) \
	}
#define JF_END \
	{ \
		.name = NULL \
	}

/* Parse a request body (`len` bytes, NUL-terminated) by serde_json's rules. NULL with its
 * message: "expected value at line 1 column 7", "trailing characters at line 1 column 3". */
cJSON *json_parse(const char *body, size_t len, char *err, size_t errlen);
/* serde_json's syntax check alone (json_syntax.c): 0, or -1 with its message and place. */
int json_syntax_check(const char *body, size_t len, char *err, size_t errlen);

/* Check `v` against `schema`. 0, or -EINVAL with serde_json's message, as Firecracker
 * answers: "missing field `vcpu_count`",
 * "unknown field `vcpus`, expected one of `vcpu_count`, `mem_size_mib`, ...",
 * "invalid type: string \"yes\", expected a boolean",
 * "invalid value: integer `300`, expected u8",
 * "unknown variant `Stopped`, expected `Paused` or `Resumed`", each followed by
 * " at line L column C" when `v` came from json_parse (serde's place: after the key of an
 * unknown field, after the value of a bad one, after the object missing a field). */
int json_check(const cJSON *v, const struct jschema *schema, char *err, size_t errlen);

/* ---- the source text (json_source.c) ---- */

enum jsource_at { JSOURCE_KEY_END, JSOURCE_VALUE_FIRST, JSOURCE_VALUE_END };
/* Keep what cJSON drops (json_parse calls it): number tokens and the root's text. */
int json_source_annotate(cJSON *root, const char *body, size_t len);
/* Drop the text json_source_annotate gave `root` (a copy kept longer than the request). */
void json_source_forget(cJSON *root);
/* Integers cJSON would not print as sent (from 10^15: it writes 15 digits and an
 * exponent, rounding beyond 2^53) become cJSON raw values printing their token, so data
 * kept and printed back (MMDS) is exact as Firecracker's serde Value. */
void json_source_exact_numbers(cJSON *v);
/* The token of a number as sent ("18446744073709551615"), or NULL. */
const char *json_source_raw(const cJSON *v);
/* serde_json's line and column after `node`'s key or value in the text of `root`; false if
 * root keeps no text or node is not in it. */
bool json_source_pos(const cJSON *root, const cJSON *node, enum jsource_at at, int *line, int *col);

/* Field access after json_check. A null value counts as absent. */
const cJSON *json_get(const cJSON *obj, const char *name);
const char *json_get_str(const cJSON *obj, const char *name);
bool json_get_bool(const cJSON *obj, const char *name, bool dflt);
/* Exact for parsed bodies (from the token, not the double). */
uint64_t json_get_uint(const cJSON *obj, const char *name, uint64_t dflt);
/* Add a u64 that prints exactly, also from 10^15 (cJSON's "1e+15") and beyond 2^53;
 * false if memory ran out. */
bool json_add_u64(cJSON *obj, const char *name, uint64_t v);
/* Index of the variant, or dflt when absent. */
int json_get_enum(const cJSON *obj, const char *name, const char *const *variants, int dflt);

/* Describe a value as serde does: string "x", integer `5`, a map, null, ... */
void json_describe(const cJSON *v, char *out, size_t outlen);

#endif
