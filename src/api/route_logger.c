/* API routes for the VMM's own output: the logger (PUT /logger: path, level, module and
 * what each line shows) and metrics (PUT /metrics: the file the counters are written to). */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>

#include "ember/log.h"
#include "json.h"

/* ---- /logger ---- */

static const struct jfield logger_fields[] = {
	JF_STR("log_path", J_OPTIONAL),
	JF_STR("level", J_OPTIONAL),
	JF_BOOL("show_level", J_OPTIONAL),
	JF_BOOL("show_log_origin", J_OPTIONAL),
	JF_STR("module", J_OPTIONAL),
	JF_END,
};
static const struct jschema logger_schema = { "LoggerConfig", logger_fields };

/* Opening a FIFO that has no reader for writing would block the loop: refuse it. */
static int probe_path(const char *path)
{
	struct stat st;
	int fd;

	if (stat(path, &st) < 0 || !S_ISFIFO(st.st_mode))
		return 0;
	fd = open(path, O_WRONLY | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	close(fd);
	return 0;
}

void api_put_logger(struct api *api, const struct api_call *call, struct api_resp *r)
{
	static bool show_level = true, show_origin;
	const char *path, *level, *module;
	enum log_level lv = log_get_level();
	bool off = false;
	char err[512];
	int ret;

	if (json_check(call->body, &logger_schema, err, sizeof(err))) {
		resp_bad_body(r, err);
		return;
	}
	level = json_get_str(call->body, "level");
	if (level && log_filter_parse(level, &lv, &off)) {
		resp_bad_body(r, "Invalid LevelFilter");
		return;
	}
	if (api_booted(api)) {
		resp_fault(r, 400, MSG_POST_BOOT);
		return;
	}
	module = json_get_str(call->body, "module");
	if (module && log_set_module(module)) {
		resp_fault(r, 400,
			"Logger error: module '%s' is not a source folder or file of ember "
			"(at most 63 characters)",
			module);
		return;
	}
	path = json_get_str(call->body, "log_path");
	ret = path ? probe_path(path) : 0;
	if (!ret && path)
		ret = log_set_file(path);
	if (ret) {
		resp_fault(r, 400, "Logger error: %s: %s (os error %d)", path,
			ret == -ENXIO ? "a FIFO without a reader" : strerror(-ret), -ret);
		return;
	}
	show_level = json_get_bool(call->body, "show_level", show_level);
	show_origin = json_get_bool(call->body, "show_log_origin", show_origin);
	log_set_format(show_level, show_origin);
	if (level) {
		log_set_enabled(!off);
		if (!off)
			log_set_level(lv);
	}
	resp_ok(r);
}

/* ---- /metrics ---- */

static const struct jfield metrics_fields[] = {
	JF_STR("metrics_path", J_REQUIRED),
	JF_BOOL("emit_id", J_DEFAULT),
	JF_MAP("properties", J_OPTIONAL),
	JF_END,
};
static const struct jschema metrics_schema = { "MetricsConfig", metrics_fields };

void api_put_metrics(struct api *api, const struct api_call *call, struct api_resp *r)
{
	char err[512];

	if (json_check(call->body, &metrics_schema, err, sizeof(err))) {
		resp_bad_body(r, err);
		return;
	}
	if (api_booted(api)) {
		resp_fault(r, 400, MSG_POST_BOOT);
		return;
	}
	if (metrics_open(json_get_str(call->body, "metrics_path"), err, sizeof(err))) {
		resp_fault(r, 400,
			"Metrics error: Cannot initialize the metrics system due to bad "
			"user input: %s",
			err);
		return;
	}
	if (metrics_label(json_get_bool(call->body, "emit_id", false) ? api_instance_id() : NULL,
		    json_get(call->body, "properties"))) {
		resp_fault(r, 400, "Metrics error: out of memory");
		return;
	}
	api_metrics_timer_start(api);
	resp_ok(r);
}
