/* --config-file: a Firecracker JSON configuration applied through the same handlers as
 * the API's PUT requests, in Firecracker's order, then InstanceStart. */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "json.h"

#define CONFIG_MAX (1u << 20)

static const struct jfield top_fields[] = {
	{ .name = "balloon", .kind = JK_ANY, .presence = J_OPTIONAL },
	{ .name = "drives", .kind = JK_ANY, .presence = J_OPTIONAL },
	{ .name = "boot-source", .kind = JK_ANY, .presence = J_REQUIRED },
	{ .name = "cpu-config", .kind = JK_ANY, .presence = J_OPTIONAL },
	{ .name = "logger", .kind = JK_ANY, .presence = J_OPTIONAL },
	{ .name = "machine-config", .kind = JK_ANY, .presence = J_OPTIONAL },
	{ .name = "metrics", .kind = JK_ANY, .presence = J_OPTIONAL },
	{ .name = "mmds-config", .kind = JK_ANY, .presence = J_OPTIONAL },
	{ .name = "network-interfaces", .kind = JK_ANY, .presence = J_OPTIONAL },
	{ .name = "vsock", .kind = JK_ANY, .presence = J_OPTIONAL },
	{ .name = "entropy", .kind = JK_ANY, .presence = J_OPTIONAL },
	{ .name = "serial", .kind = JK_ANY, .presence = J_OPTIONAL },
	{ .name = "pmem", .kind = JK_ANY, .presence = J_OPTIONAL },
	{ .name = "memory-hotplug", .kind = JK_ANY, .presence = J_OPTIONAL },
	JF_END,
};
static const struct jschema top = { "VmmConfig", top_fields };

/* Sections applied one at a time, in the order Firecracker applies them. */
static const struct section {
	const char *key;
	api_handler_fn *fn;
	bool list;          /* an array of device objects */
	const char *id_key; /* list: the field that names the device */
} sections[] = {
	{ "logger", api_put_logger, false, NULL },
	{ "metrics", api_put_metrics, false, NULL },
	{ "machine-config", api_put_machine_config, false, NULL },
	{ "cpu-config", api_put_cpu_config, false, NULL },
	{ "boot-source", api_put_boot_source, false, NULL },
	{ "drives", api_put_drive, true, "drive_id" },
	{ "network-interfaces", api_put_net, true, "iface_id" },
	{ "vsock", api_put_vsock, false, NULL },
	{ "balloon", api_put_balloon, false, NULL },
	{ "mmds-config", api_put_mmds_config, false, NULL },
	{ "entropy", api_put_entropy, false, NULL },
	{ "pmem", api_put_pmem, true, "id" },
	{ "serial", api_put_serial, false, NULL },
	{ "memory-hotplug", api_put_hotplug_memory, false, NULL },
};

static char *read_file(const char *path, char *err, size_t errlen, size_t *len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	char *buf = NULL;
	ssize_t n;

	if (fd < 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return NULL;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size > CONFIG_MAX) {
		snprintf(err, errlen, "%s: not a regular file of at most %u bytes", path,
			CONFIG_MAX);
		goto out;
	}
	buf = malloc((size_t)st.st_size + 1);
	if (!buf) {
		snprintf(err, errlen, "%s: out of memory", path);
		goto out;
	}
	n = read(fd, buf, (size_t)st.st_size);
	if (n != st.st_size) {
		snprintf(err, errlen, "%s: %s", path, n < 0 ? strerror(errno) : "short read");
		free(buf);
		buf = NULL;
		goto out;
	}
	buf[n] = '\0';
	*len = (size_t)n;
out:
	close(fd);
	return buf;
}

/* Run one handler on one section; false with err set if it failed. */
static bool apply(struct api *api, const char *file, const char *key, api_handler_fn *fn,
	const cJSON *body, const char *id, char *err, size_t errlen)
{
	struct api_resp *r = calloc(1, sizeof(*r));
	struct api_call call = { .body = body, .id = id };
	bool ok;

	if (!r) {
		snprintf(err, errlen, "%s: out of memory", file);
		return false;
	}
	fn(api, &call, r);
	ok = !resp_failed(r);
	if (!ok)
		snprintf(err, errlen, "%s: %s: %s", file, key, r->fault);
	free(r->body);
	free(r);
	return ok;
}

static int apply_all(struct api *api, const char *file, const cJSON *cfg, char *err, size_t errlen)
{
	const cJSON *v;

	for (size_t i = 0; i < sizeof(sections) / sizeof(sections[0]); i++) {
		const struct section *s = &sections[i];
		const cJSON *e;

		v = json_get(cfg, s->key);
		if (!v)
			continue;
		if (!s->list) {
			if (!apply(api, file, s->key, s->fn, v, NULL, err, errlen))
				return -EINVAL;
			continue;
		}
		if (!cJSON_IsArray(v)) {
			snprintf(err, errlen, "%s: %s: expected a list", file, s->key);
			return -EINVAL;
		}
		cJSON_ArrayForEach (e, v) {
			const char *id = json_get_str(e, s->id_key);
			if (!apply(api, file, s->key, s->fn, e, id ? id : "", err, errlen))
				return -EINVAL;
		}
	}
	return 0;
}

int api_load_config_file(struct api *api, const char *path, char *err, size_t errlen)
{
	struct api_resp *r;
	char msg[512];
	size_t len = 0;
	char *text = read_file(path, err, errlen, &len);
	cJSON *cfg;
	int ret;

	if (!text)
		return -EINVAL;
	cfg = json_parse(text, len, msg, sizeof(msg));
	free(text);
	if (!cfg) {
		snprintf(err, errlen, "%s: %s", path, msg);
		return -EINVAL;
	}
	if (json_check(cfg, &top, msg, sizeof(msg))) {
		snprintf(err, errlen, "%s: %s", path, msg);
		cJSON_Delete(cfg);
		return -EINVAL;
	}
	ret = apply_all(api, path, cfg, err, errlen);
	cJSON_Delete(cfg);
	if (ret)
		return ret;
	r = calloc(1, sizeof(*r));
	if (!r) {
		snprintf(err, errlen, "%s: out of memory", path);
		return -ENOMEM;
	}
	api_start_vm(api, r);
	ret = resp_failed(r) ? -EIO : 0;
	if (ret)
		snprintf(err, errlen, "%s: %s", path, r->fault);
	free(r->body);
	free(r);
	return ret;
}
