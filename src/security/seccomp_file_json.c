/* The filter file's JSON: cJSON for the structure, and the exact text of each number kept
 * beside it, since a 64-bit seccomp value does not survive a double. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "ember/seccomp_file.h"
#include "seccomp_file_internal.h"

static int in_number(char c)
{
	return c && strchr("0123456789+-.eE", c);
}

/* Record the number tokens outside strings, in document order (`nums->num` NULL: only
 * count them). In a document cJSON accepted, a '-' or digit outside a string starts a
 * number, and the number ends where these characters do: anything else after it would
 * have been a syntax error. */
static size_t scan_numbers(const char *s, struct sf_numbers *nums)
{
	size_t n = 0;

	for (size_t i = 0; s[i]; i++) {
		if (s[i] == '"') {
			for (i++; s[i] && s[i] != '"'; i++)
				if (s[i] == '\\' && s[i + 1])
					i++;
			if (!s[i])
				break;
			continue;
		}
		if (s[i] != '-' && (s[i] < '0' || s[i] > '9'))
			continue;
		if (nums->num) {
			nums->num[n] = s + i;
			nums->len[n] = 1;
		}
		while (in_number(s[i + 1])) {
			i++;
			if (nums->num)
				nums->len[n]++;
		}
		n++;
	}
	return n;
}

/* Number the number items in document order (cJSON keeps children in order). */
static void number_items(cJSON *item, size_t *next)
{
	for (; item; item = item->next) {
		if (cJSON_IsNumber(item))
			item->valueint = (int)(*next)++;
		number_items(item->child, next);
	}
}

int sf_json_parse(const char *json, size_t len, struct cJSON **root, struct sf_numbers *nums,
	const char *label, char *err, size_t errlen)
{
	const char *end = NULL;
	size_t count = 0;

	*root = NULL;
	if (len > SECCOMP_FILE_MAX) {
		snprintf(err, errlen, "%s: larger than %u bytes", label, SECCOMP_FILE_MAX);
		return -EINVAL;
	}
	if (memchr(json, '\0', len)) {
		snprintf(err, errlen, "%s: not JSON text (a NUL byte at %zu)", label,
			(size_t)((const char *)memchr(json, '\0', len) - json));
		return -EINVAL;
	}
	nums->text = malloc(len + 1);
	if (!nums->text)
		goto err_nomem;
	memcpy(nums->text, json, len);
	nums->text[len] = '\0';
	*root = cJSON_ParseWithOpts(nums->text, &end, 1);
	if (!*root) {
		snprintf(err, errlen, "%s: not valid JSON (at byte %zu)", label,
			end ? (size_t)(end - nums->text) : (size_t)0);
		return -EINVAL;
	}
	nums->n = scan_numbers(nums->text, nums);
	nums->num = calloc(nums->n + 1, sizeof(*nums->num));
	nums->len = calloc(nums->n + 1, sizeof(*nums->len));
	if (!nums->num || !nums->len)
		goto err_nomem;
	scan_numbers(nums->text, nums);
	number_items(*root, &count);
	if (count != nums->n) { /* a bug here, never the file's fault */
		snprintf(err, errlen, "%s: cannot match %zu numbers to %zu number texts", label,
			count, nums->n);
		return -EINVAL;
	}
	return 0;

err_nomem:
	snprintf(err, errlen, "%s: out of memory", label);
	return -ENOMEM;
}

void sf_numbers_free(struct sf_numbers *nums)
{
	free(nums->text);
	free(nums->num);
	free(nums->len);
	*nums = (struct sf_numbers){ 0 };
}

int sf_number(const struct sf_numbers *nums, const struct cJSON *item, uint64_t *out)
{
	const char *s;
	uint64_t v = 0;

	if (item->valueint < 0 || (size_t)item->valueint >= nums->n)
		return -EINVAL;
	s = nums->num[item->valueint];
	for (size_t i = 0; i < nums->len[item->valueint]; i++) {
		unsigned d = (unsigned)(s[i] - '0');

		/* Only digits: "-1", "1.0" and "1e3" are not what seccompiler reads either. */
		if (s[i] < '0' || s[i] > '9' || v > (UINT64_MAX - d) / 10)
			return -EINVAL;
		v = v * 10 + d;
	}
	*out = v;
	return 0;
}

const char *sf_shown(const char *s, char *buf, size_t len)
{
	size_t i = 0;

	for (; s[i] && i < 40 && i + 1 < len; i++)
		buf[i] = s[i] >= 0x20 && s[i] < 0x7f ? s[i] : '?';
	buf[i] = '\0';
	return buf;
}
