/* Logging: levels, one line per event, to stderr or a file. */
#include "ember/log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "ember/clock.h"

static enum log_level current = LOG_WARN;
static int log_fd = STDERR_FILENO;
static uint64_t start_us;
static bool fmt_level = true, fmt_origin;
static bool log_enabled = true;
static char module_filter[64]; /* "": every line */

static const char *const level_names[] = { "error", "warn", "info", "debug" };

void log_mark_start(void)
{
	start_us = mono_ns() / 1000;
}

void log_mark_start_at(uint64_t mono_us)
{
	if (mono_us <= mono_ns() / 1000)
		start_us = mono_us;
}

uint64_t log_uptime_us(void)
{
	return mono_ns() / 1000 - start_us;
}

void log_set_level(enum log_level level)
{
	current = level;
}

enum log_level log_get_level(void)
{
	return current;
}

int log_level_parse(const char *name, enum log_level *out)
{
	for (unsigned i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++) {
		if (strcasecmp(name, level_names[i]) == 0) {
			*out = (enum log_level)i;
			return 0;
		}
	}
	if (strcasecmp(name, "warning") == 0) {
		*out = LOG_WARN;
		return 0;
	}
	return -EINVAL;
}

int log_filter_parse(const char *name, enum log_level *out, bool *off)
{
	*off = strcasecmp(name, "off") == 0;
	if (*off)
		return 0;
	if (strcasecmp(name, "trace") == 0) {
		*out = LOG_DEBUG;
		return 0;
	}
	return log_level_parse(name, out);
}

int log_set_module(const char *module)
{
	if (!module) {
		module_filter[0] = 0;
		return 0;
	}
	if (!*module || strlen(module) >= sizeof(module_filter))
		return -EINVAL;
	snprintf(module_filter, sizeof(module_filter), "%s", module);
	return 0;
}

/* Whether a line from source file `file` ("src/api/conn.c") passes the module filter:
 * the path below src/ starts with the module ("api", "devices/virtio"). */
static bool module_passes(const char *file)
{
	size_t n = strlen(module_filter);

	if (!n)
		return true;
	if (!file)
		return false;
	if (!strncmp(file, "src/", 4))
		file += 4;
	return !strncmp(file, module_filter, n) &&
		(file[n] == '/' || file[n] == '.' || file[n] == 0 || module_filter[n - 1] == '/');
}

int log_set_file(const char *path)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);

	if (fd < 0)
		return -errno;
	if (log_fd != STDERR_FILENO)
		close(log_fd);
	log_fd = fd;
	return 0;
}

void log_set_format(bool show_level, bool show_origin)
{
	fmt_level = show_level;
	fmt_origin = show_origin;
}

void log_set_enabled(bool enabled)
{
	log_enabled = enabled;
}

__attribute__((format(printf, 4, 0))) static void vlog(enum log_level level, const char *file,
	int lineno, const char *fmt, va_list ap)
{
	char line[1024];
	uint64_t t;
	int n;

	if (!log_enabled || level > current || !module_passes(file))
		return;
	t = log_uptime_us();
	n = snprintf(line, sizeof(line), "[ember %llu.%06llu", (unsigned long long)(t / 1000000),
		(unsigned long long)(t % 1000000));
	if (fmt_level)
		n += snprintf(line + n, sizeof(line) - (size_t)n, " %s", level_names[level]);
	if (fmt_origin && file)
		n += snprintf(line + n, sizeof(line) - (size_t)n, " %s:%d", file, lineno);
	n += snprintf(line + n, sizeof(line) - (size_t)n, "] ");
	if (n > (int)sizeof(line) - 2)
		n = (int)sizeof(line) - 2;
	n += vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
	if (n > (int)sizeof(line) - 2)
		n = (int)sizeof(line) - 2;
	line[n++] = '\n';
	/* One write per line keeps lines whole when several threads log. */
	if (write(log_fd, line, (size_t)n) < 0)
		return;
}

void log_msg(enum log_level level, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog(level, NULL, 0, fmt, ap);
	va_end(ap);
}

void log_msg_at(enum log_level level, const char *file, int lineno, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog(level, file, lineno, fmt, ap);
	va_end(ap);
}
