/* The source text behind a parsed body. cJSON keeps numbers as doubles and forgets where
 * things were; Firecracker's answers need both (u64 fields exact beyond 2^53, serde's
 * " at line L column C"). So json_parse walks the text once more beside the tree: each
 * number node gets its token in valuestring (unused by cJSON for numbers, freed by
 * cJSON_Delete), and the root object gets the whole text there, for json_source_pos. */
#include "json.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct walk {
	const char *s;
	size_t i, len;
	const cJSON *target; /* json_source_pos: the node sought */
	size_t key_end, value_start, value_end;
	bool found, annotate;
};

static void skip_ws(struct walk *w)
{
	/* cJSON skips every byte up to the space as whitespace. */
	while (w->i < w->len && (unsigned char)w->s[w->i] <= ' ')
		w->i++;
}

static void skip_string(struct walk *w)
{
	w->i++; /* opening quote */
	while (w->i < w->len && w->s[w->i] != '"')
		w->i += w->s[w->i] == '\\' ? 2 : 1;
	w->i++; /* closing quote */
}

static int walk_value(struct walk *w, cJSON *n);

/* Object members or array elements, in text order as cJSON keeps them. */
static int walk_children(struct walk *w, cJSON *n, bool keys, char close)
{
	w->i++; /* '{' or '[' */
	for (cJSON *c = n->child; c; c = c->next) {
		skip_ws(w);
		if (keys) {
			skip_string(w);
			if (c == w->target) {
				w->key_end = w->i;
			}
			skip_ws(w);
			w->i++; /* ':' */
		}
		if (walk_value(w, c))
			return -1;
		skip_ws(w);
		if (w->i < w->len && w->s[w->i] == ',')
			w->i++;
	}
	skip_ws(w);
	if (w->i >= w->len || w->s[w->i] != close)
		return -1; /* the text and the tree disagree: give up, never read past */
	w->i++;
	return 0;
}

static int walk_value(struct walk *w, cJSON *n)
{
	size_t start;

	skip_ws(w);
	if (w->i >= w->len)
		return -1;
	start = w->i;
	if (cJSON_IsObject(n) || cJSON_IsArray(n)) {
		if (walk_children(w, n, cJSON_IsObject(n), cJSON_IsObject(n) ? '}' : ']'))
			return -1;
	} else if (cJSON_IsString(n)) {
		skip_string(w);
	} else {
		while (w->i < w->len && strchr("+-.0123456789eEtruefalsn", w->s[w->i]))
			w->i++;
		if (w->annotate && cJSON_IsNumber(n) && !n->valuestring) {
			n->valuestring = strndup(w->s + start, w->i - start);
			if (!n->valuestring)
				return -1;
		}
	}
	if (n == w->target) {
		w->value_start = start;
		w->value_end = w->i;
		w->found = true;
	}
	return w->i <= w->len ? 0 : -1;
}

static size_t bom(const char *s, size_t len)
{
	return len >= 3 && memcmp(s, "\xEF\xBB\xBF", 3) == 0 ? 3 : 0;
}

int json_source_annotate(cJSON *root, const char *body, size_t len)
{
	struct walk w = { .s = body, .len = len, .i = bom(body, len), .annotate = true };

	if (walk_value(&w, root))
		return -1;
	if (cJSON_IsObject(root)) {
		root->valuestring = strndup(body, len);
		if (!root->valuestring)
			return -1;
	}
	return 0;
}

void json_source_forget(cJSON *root)
{
	if (cJSON_IsObject(root)) {
		free(root->valuestring);
		root->valuestring = NULL;
	}
}

void json_source_exact_numbers(cJSON *v)
{
	const char *t;
	double d;

	for (cJSON *c = v ? v->child : NULL; c; c = c->next)
		json_source_exact_numbers(c);
	t = json_source_raw(v);
	if (!t || strpbrk(t, ".eE"))
		return;
	errno = 0;
	if (t[0] == '-')
		(void)strtoll(t, NULL, 10);
	else
		(void)strtoull(t, NULL, 10);
	if (errno)
		return; /* beyond 64 bits serde_json holds a double too */
	/* cJSON prints 15 significant digits, then an exponent: 1e15 would come out as
	 * "1e+15", 2^53 + 1 rounded. */
	d = strtod(t, NULL);
	if (d >= 1e15 || d <= -1e15)
		v->type = cJSON_Raw | (v->type & ~0xff); /* valuestring already holds the token */
}

const char *json_source_raw(const cJSON *v)
{
	return cJSON_IsNumber(v) ? v->valuestring : NULL;
}

bool json_source_pos(const cJSON *root, const cJSON *node, enum jsource_at at, int *line, int *col)
{
	const char *s = cJSON_IsObject(root) ? root->valuestring : NULL;
	struct walk w = { .s = s, .target = node };
	size_t end, nl = 0;

	if (!s)
		return false;
	w.len = strlen(s);
	w.i = bom(s, w.len);
	if (walk_value(&w, (cJSON *)root) || !w.found)
		return false;
	if (at == JSOURCE_VALUE_FIRST)
		end = w.value_start + 1; /* the byte serde peeked at, counted as read */
	else
		end = at == JSOURCE_KEY_END && w.key_end ? w.key_end : w.value_end;
	/* serde_json: the line of the last byte read, and how many bytes of it were read. */
	*line = 1;
	for (size_t i = 0; i < end; i++) {
		if (s[i] == '\n') {
			(*line)++;
			nl = i + 1;
		}
	}
	*col = (int)(end - nl);
	return true;
}
