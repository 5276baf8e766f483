/* Rate-limited log lines, for events an outsider (a guest, a client) can repeat at will:
 * at most LOG_RATELIMIT_BURST lines per second per limiter, the rest counted, and the
 * next line let through says how many were held back. Thread-safe. */
#ifndef EMBER_LOG_RATELIMIT_H
#define EMBER_LOG_RATELIMIT_H

#include <stdbool.h>
#include <stdint.h>

#include "ember/log.h"

#define LOG_RATELIMIT_BURST 5
#define LOG_RATELIMIT_INTERVAL_US 1000000u

/* One limiter: zero-initialised is ready (a static, or a member of a device). */
struct log_ratelimit {
	bool started;        /* window_us holds a time */
	uint64_t window_us;  /* start of the current interval */
	unsigned logged;     /* lines let through in it */
	uint64_t suppressed; /* lines held back since the last one let through */
};

/* The decision alone, for a line at `now_us` (mono_ns / 1000): true if it may go out, with
 * *held_back set to the lines held back before it (then reset). The caller serialises. */
bool log_ratelimit_allow(struct log_ratelimit *rl, uint64_t now_us, uint64_t *held_back);

/* log_msg_at through `rl`; a line after held-back ones ends "(N like it not logged)". */
void log_ratelimited_at(struct log_ratelimit *rl, enum log_level level, const char *file, int line,
	const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* A limiter per call site. */
#define log_warn_ratelimited(...) \
	do { \
		static struct log_ratelimit rl_; \
		log_ratelimited_at(&rl_, LOG_WARN, __FILE__, __LINE__, __VA_ARGS__); \
	} while (0)

#endif
