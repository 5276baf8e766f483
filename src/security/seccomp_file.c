/* Reading and checking a filter file in Firecracker's seccompiler JSON format:
 * {"thread": {"default_action": A, "filter_action": A, "filter": [{"syscall": "name",
 * "comment": "...", "args": [{"index": 0-5, "type": "dword"|"qword", "op": OP, "val": N,
 * "comment": "..."}]}]}}. Every key is checked, so a typo is an error and not a rule
 * silently missing. This file: the whole file and its threads; seccomp_file_check.c: one
 * thread's filter. */
#include "ember/seccomp_file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "seccomp_file_internal.h"

static bool good_name(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > SF_NAME_MAX)
		return false;
	return strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.") == n;
}

static int get_threads(struct sf_parse *p, const cJSON *root, struct seccomp_file *f)
{
	const cJSON *o;
	char name[48];

	if (!cJSON_IsObject(root))
		return sf_fail(p, "the file is not a JSON object mapping thread names to filters");
	if (!root->child)
		return sf_fail(p, "the file names no thread");
	f->threads = calloc((size_t)cJSON_GetArraySize(root), sizeof(*f->threads));
	if (!f->threads)
		return sf_fail(p, "out of memory");
	cJSON_ArrayForEach (o, root) {
		struct sf_thread *t = &f->threads[f->nthreads];

		if (!good_name(o->string))
			return sf_fail(p,
				"thread name '%s' is not 1 to %d letters, digits, '_', '-' "
				"or '.'",
				sf_shown(o->string, name, sizeof(name)), SF_NAME_MAX);
		for (size_t i = 0; i < f->nthreads; i++)
			if (!strcmp(f->threads[i].name, o->string))
				return sf_fail(p, "thread '%s' appears twice", o->string);
		memcpy(t->name, o->string, strlen(o->string) + 1);
		f->nthreads++;
		p->thread = t->name;
		if (sf_get_thread(p, o, t))
			return -EINVAL;
	}
	return 0;
}

static struct seccomp_file *parse_labelled(const char *json, size_t len, const char *label,
	char *err, size_t errlen)
{
	struct sf_parse p = { .label = label, .err = err, .errlen = errlen };
	struct seccomp_file *f = calloc(1, sizeof(*f));
	struct sf_numbers nums = { 0 };
	cJSON *root = NULL;

	if (!f) {
		snprintf(err, errlen, "%s: out of memory", label);
		return NULL;
	}
	p.nums = &nums;
	if (sf_json_parse(json, len, &root, &nums, label, err, errlen) ||
		get_threads(&p, root, f)) {
		seccomp_file_free(f);
		f = NULL;
	}
	cJSON_Delete(root);
	sf_numbers_free(&nums);
	return f;
}

struct seccomp_file *seccomp_file_parse(const char *json, size_t len, char *err, size_t errlen)
{
	return parse_labelled(json, len, "seccomp filter", err, errlen);
}

struct seccomp_file *seccomp_file_load(const char *path, char *err, size_t errlen)
{
	struct seccomp_file *f = NULL;
	char label[300], *buf;
	size_t len = 0;
	ssize_t n = 1;
	int fd;

	snprintf(label, sizeof(label), "seccomp filter file %s", path);
	/* One byte more than allowed, to tell a file at the limit from one beyond it. */
	buf = malloc(SECCOMP_FILE_MAX + 1);
	if (!buf) {
		snprintf(err, errlen, "%s: out of memory", label);
		return NULL;
	}
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		snprintf(err, errlen, "%s: cannot open: %s", label, strerror(errno));
		goto out_free_buf;
	}
	while (len <= SECCOMP_FILE_MAX && n > 0) {
		n = read(fd, buf + len, SECCOMP_FILE_MAX + 1 - len);
		if (n < 0 && errno == EINTR)
			n = 1;
		else if (n > 0)
			len += (size_t)n;
	}
	if (n < 0)
		snprintf(err, errlen, "%s: cannot read: %s", label, strerror(errno));
	else if (len > SECCOMP_FILE_MAX)
		snprintf(err, errlen, "%s: larger than %u bytes", label, SECCOMP_FILE_MAX);
	else
		f = parse_labelled(buf, len, label, err, errlen);
	close(fd);
out_free_buf:
	free(buf);
	return f;
}

void seccomp_file_free(struct seccomp_file *f)
{
	if (!f)
		return;
	for (size_t i = 0; i < f->nthreads; i++)
		free(f->threads[i].rules);
	free(f->threads);
	free(f);
}
