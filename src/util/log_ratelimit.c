/* Rate-limited log lines: a burst per second per limiter, the rest counted. */
#include "ember/log_ratelimit.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>

#include "ember/clock.h"

/* One lock for every limiter: these lines are rare by construction, and a static limiter
 * at a call site then needs no initialiser. */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

bool log_ratelimit_allow(struct log_ratelimit *rl, uint64_t now_us, uint64_t *held_back)
{
	if (!rl->started || now_us - rl->window_us >= LOG_RATELIMIT_INTERVAL_US) {
		rl->started = true;
		rl->window_us = now_us;
		rl->logged = 0;
	}
	if (rl->logged >= LOG_RATELIMIT_BURST) {
		rl->suppressed++;
		return false;
	}
	rl->logged++;
	*held_back = rl->suppressed;
	rl->suppressed = 0;
	return true;
}

void log_ratelimited_at(struct log_ratelimit *rl, enum log_level level, const char *file, int line,
	const char *fmt, ...)
{
	uint64_t held_back = 0;
	char msg[512];
	va_list ap;
	bool allow;

	pthread_mutex_lock(&lock);
	allow = log_ratelimit_allow(rl, mono_ns() / 1000, &held_back);
	pthread_mutex_unlock(&lock);
	if (!allow)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (held_back)
		log_msg_at(level, file, line, "%s (%llu like it not logged)", msg,
			(unsigned long long)held_back);
	else
		log_msg_at(level, file, line, "%s", msg);
}
