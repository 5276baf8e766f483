/* Logging: one line per event, with a level, to stderr or a file. Thread-safe. */
#ifndef EMBER_LOG_H
#define EMBER_LOG_H

#include <stdint.h>

enum log_level { LOG_ERROR, LOG_WARN, LOG_INFO, LOG_DEBUG };

/* Record the process start time; main() calls it first. */
void log_mark_start(void);
/* Microseconds since log_mark_start(). */
uint64_t log_uptime_us(void);
/* Monotonic clock in microseconds. */
uint64_t log_now_us(void);

void log_set_level(enum log_level level);
enum log_level log_get_level(void);
/* Parse "error", "warn", "info", "debug"; -EINVAL if unknown. */
int log_level_parse(const char *name, enum log_level *out);
/* Send logs to `path` (append) instead of stderr; -errno on failure. */
int log_set_file(const char *path);

void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_err(...) log_msg(LOG_ERROR, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_WARN, __VA_ARGS__)
#define log_info(...) log_msg(LOG_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)

#endif
