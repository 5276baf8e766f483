/* Logging: one line per event, with a level, to stderr or a file. Thread-safe. */
#ifndef EMBER_LOG_H
#define EMBER_LOG_H

#include <stdbool.h>
#include <stdint.h>

enum log_level { LOG_ERROR, LOG_WARN, LOG_INFO, LOG_DEBUG };

/* Record the process start time; main() calls it first. */
void log_mark_start(void);
/* Count uptime from `mono_us` (mono_ns / 1000, ember/clock.h) instead: a jailer's start
 * time (--start-time-us). A time in the future is ignored. */
void log_mark_start_at(uint64_t mono_us);
/* Microseconds since log_mark_start(). */
uint64_t log_uptime_us(void);

void log_set_level(enum log_level level);
enum log_level log_get_level(void);
/* Parse "error", "warn", "info", "debug"; -EINVAL if unknown. */
int log_level_parse(const char *name, enum log_level *out);
/* Firecracker's level filter, any case: Off, Error, Warning (or warn), Info, Debug, Trace
 * (ember's debug). *off is set for Off. -EINVAL if unknown. */
int log_filter_parse(const char *name, enum log_level *out, bool *off);
/* Only lines from source files under src/MODULE (a folder or file stem: "api",
 * "devices/virtio", "vmm/snapshot"), as Firecracker's logger `module`; NULL: every line.
 * -EINVAL if empty or longer than 63 characters. */
int log_set_module(const char *module);
/* Send logs to `path` (append) instead of stderr; -errno on failure. */
int log_set_file(const char *path);

/* What a line shows besides time and message: the level (on by default) and the source
 * file and line of the call (off by default). Set by the API's PUT /logger. */
void log_set_format(bool show_level, bool show_origin);
/* Level "off": no line is written until logging is enabled again. */
void log_set_enabled(bool enabled);

void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* log_msg with the origin of the call, which the macros below pass. */
void log_msg_at(enum log_level level, const char *file, int line, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

#define log_err(...) log_msg_at(LOG_ERROR, __FILE__, __LINE__, __VA_ARGS__)
#define log_warn(...) log_msg_at(LOG_WARN, __FILE__, __LINE__, __VA_ARGS__)
#define log_info(...) log_msg_at(LOG_INFO, __FILE__, __LINE__, __VA_ARGS__)
#define log_debug(...) log_msg_at(LOG_DEBUG, __FILE__, __LINE__, __VA_ARGS__)

#endif
