/* The answer to a guest GET: the value a path names in the store (a JSON pointer, RFC
 * 6901), shown as JSON or in the IMDS text format (keys of an object one per line, with a
 * '/' after those that hold objects; a string as it is; nothing else). */
#include "internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Component [p, p+n) of the path, ~1 and ~0 decoded, as a string of its own. */
static char *component(const char *p, size_t n)
{
	char *s = malloc(n + 1);
	size_t o = 0;

	if (!s)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		if (p[i] == '~' && i + 1 < n && (p[i + 1] == '0' || p[i + 1] == '1')) {
			s[o++] = p[i + 1] == '0' ? '~' : '/';
			i++;
		} else {
			s[o++] = p[i];
		}
	}
	s[o] = '\0';
	return s;
}

static const cJSON *child(const cJSON *v, const char *key)
{
	char *end;
	long i;

	if (cJSON_IsObject(v))
		return cJSON_GetObjectItemCaseSensitive(v, key);
	if (!cJSON_IsArray(v) || key[0] < '0' || key[0] > '9' || (key[0] == '0' && key[1]))
		return NULL;
	i = strtol(key, &end, 10);
	return *end || i > 1000000 ? NULL : cJSON_GetArrayItem(v, (int)i);
}

/* The value at path, or NULL (*oom set if memory ran out on the way). */
static const cJSON *lookup(const cJSON *root, const char *path, size_t len, bool *oom)
{
	const cJSON *v = root;
	size_t i = 0;

	*oom = false;
	while (v && i < len) {
		size_t j;
		char *key;
		if (path[i] == '/') {
			i++;
			continue;
		}
		for (j = i; j < len && path[j] != '/'; j++)
			;
		key = component(path + i, j - i);
		if (!key) {
			*oom = true;
			return NULL;
		}
		v = child(v, key);
		free(key);
		i = j;
	}
	return v;
}

static char *imds_text(const cJSON *v, int *status)
{
	const cJSON *e;
	size_t n = 1, o = 0;
	char *s;

	if (cJSON_IsString(v)) {
		*status = 200;
		return strdup(v->valuestring);
	}
	if (!cJSON_IsObject(v)) {
		*status = 501;
		return strdup("Cannot retrieve value. The value has an invalid format.");
	}
	cJSON_ArrayForEach (e, v)
		n += strlen(e->string) + 2;
	s = malloc(n);
	if (!s)
		return NULL;
	cJSON_ArrayForEach (e, v) {
		size_t k = strlen(e->string);
		if (o)
			s[o++] = '\n';
		memcpy(s + o, e->string, k);
		o += k;
		if (cJSON_IsObject(e))
			s[o++] = '/';
	}
	s[o] = '\0';
	*status = 200;
	return s;
}

int imds_render(const cJSON *root, const char *path, size_t path_len, bool json, char **body)
{
	const cJSON *v = NULL;
	bool oom = false;
	int status = 404;

	if (root)
		v = lookup(root, path, path_len, &oom);
	if (oom)
		return -ENOMEM;
	if (!v) {
		int n = snprintf(NULL, 0, "Resource not found: %.*s.", (int)path_len, path);
		*body = malloc((size_t)n + 1);
		if (!*body)
			return -ENOMEM;
		snprintf(*body, (size_t)n + 1, "Resource not found: %.*s.", (int)path_len, path);
		return 404;
	}
	if (json) {
		*body = cJSON_PrintUnformatted(v);
		status = 200;
	} else {
		*body = imds_text(v, &status);
	}
	return *body ? status : -ENOMEM;
}
