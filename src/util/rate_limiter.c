/* Token buckets for device rate limits: refill by elapsed time, one-time burst, debt. */
#include "ember/rate_limiter.h"

#include <errno.h>
#include <stdio.h>

#define NS_PER_MS 1000000ull
/* Keeps every product below in 128 bits and budgets inside int64_t. */
#define MAX_TOKENS (1ull << 53)
#define MAX_REFILL_MS (1ull << 40)

static int check_bucket(const char *name, const struct token_bucket_config *c, char *err,
	size_t errlen)
{
	if (c->size == 0)
		return 0;
	if (c->refill_time_ms == 0) {
		snprintf(err, errlen, "%s: refill_time_ms must be > 0 when size is set", name);
		return -EINVAL;
	}
	if (c->size > MAX_TOKENS || c->one_time_burst > MAX_TOKENS ||
		c->refill_time_ms > MAX_REFILL_MS) {
		snprintf(err, errlen, "%s: size, one_time_burst or refill_time_ms is too large",
			name);
		return -EINVAL;
	}
	return 0;
}

int rate_limit_check(const struct rate_limit *limit, char *err, size_t errlen)
{
	int ret = check_bucket("bandwidth", &limit->bandwidth, err, errlen);

	return ret ? ret : check_bucket("ops", &limit->ops, err, errlen);
}

static void bucket_init(struct token_bucket *b, const struct token_bucket_config *c,
	uint64_t now_ns)
{
	b->cfg = *c;
	b->budget = (int64_t)c->size;
	b->burst = c->one_time_burst;
	b->last_ns = now_ns;
}

int rate_limiter_init(struct rate_limiter *rl, const struct rate_limit *limit, uint64_t now_ns,
	char *err, size_t errlen)
{
	static const struct rate_limit none;
	int ret;

	if (!limit)
		limit = &none;
	ret = rate_limit_check(limit, err, errlen);
	if (ret)
		return ret;
	bucket_init(&rl->bandwidth, &limit->bandwidth, now_ns);
	bucket_init(&rl->ops, &limit->ops, now_ns);
	return 0;
}

int rate_limiter_update(struct rate_limiter *rl, const struct rate_limit_update *u, uint64_t now_ns,
	char *err, size_t errlen)
{
	static const struct token_bucket_config none;
	/* A removed bucket becomes the empty configuration: unlimited, nothing left over. */
	const struct token_bucket_config *bw = u->limit.bandwidth.size ? &u->limit.bandwidth
								       : &none;
	const struct token_bucket_config *ops = u->limit.ops.size ? &u->limit.ops : &none;
	int ret = u->bandwidth_set ? check_bucket("bandwidth", bw, err, errlen) : 0;

	if (!ret && u->ops_set)
		ret = check_bucket("ops", ops, err, errlen);
	if (ret)
		return ret;
	if (u->bandwidth_set)
		bucket_init(&rl->bandwidth, bw, now_ns);
	if (u->ops_set)
		bucket_init(&rl->ops, ops, now_ns);
	return 0;
}

bool rate_limiter_active(const struct rate_limiter *rl)
{
	return rl->bandwidth.cfg.size || rl->ops.cfg.size;
}

/* Add the tokens earned since last_ns. Time is only "spent" for whole tokens, so calling
 * often loses nothing to rounding. */
static void refill(struct token_bucket *b, uint64_t now_ns)
{
	uint64_t size = b->cfg.size, period = b->cfg.refill_time_ms * NS_PER_MS;
	unsigned __int128 tokens;

	if (now_ns <= b->last_ns)
		return; /* a clock that went backwards earns nothing */
	tokens = (unsigned __int128)(now_ns - b->last_ns) * size / period;
	if (tokens >= (unsigned __int128)((int64_t)size - b->budget)) {
		b->budget = (int64_t)size;
		b->last_ns = now_ns;
		return;
	}
	b->budget += (int64_t)tokens;
	b->last_ns += (uint64_t)(tokens * period / size);
}

/* Nanoseconds until `n` tokens are available (0 if they are now). */
static uint64_t bucket_wait(struct token_bucket *b, uint64_t n, uint64_t now_ns)
{
	uint64_t size = b->cfg.size, period = b->cfg.refill_time_ms * NS_PER_MS;
	unsigned __int128 need, ns, elapsed;
	int64_t target;

	if (size == 0 || n == 0)
		return 0;
	refill(b, now_ns);
	if (n <= b->burst || (b->budget > 0 && n - b->burst <= (uint64_t)b->budget))
		return 0;
	if (n - b->burst > size) {
		/* Oversized: it passes with a full bucket (and leaves a debt), so wait for full. */
		if (b->budget == (int64_t)size)
			return 0;
		target = (int64_t)size;
	} else {
		target = (int64_t)(n - b->burst);
	}
	need = (unsigned __int128)(target - b->budget);
	ns = (need * period + size - 1) / size; /* round up: never wake too early */
	/* The tokens come from the last whole-token instant, not from now. */
	elapsed = now_ns > b->last_ns ? now_ns - b->last_ns : 0;
	ns -= elapsed < ns ? elapsed : ns - 1;
	return ns > UINT64_MAX ? UINT64_MAX : (uint64_t)ns;
}

static void bucket_take(struct token_bucket *b, uint64_t n)
{
	uint64_t from_burst;

	if (b->cfg.size == 0)
		return;
	from_burst = n < b->burst ? n : b->burst;
	b->burst -= from_burst;
	b->budget -= (int64_t)(n - from_burst);
}

uint64_t rate_limiter_consume(struct rate_limiter *rl, uint64_t bytes, uint64_t ops,
	uint64_t now_ns)
{
	uint64_t wb, wo;

	if (bytes > MAX_TOKENS)
		bytes = MAX_TOKENS;
	if (ops > MAX_TOKENS)
		ops = MAX_TOKENS;
	wb = bucket_wait(&rl->bandwidth, bytes, now_ns);
	wo = bucket_wait(&rl->ops, ops, now_ns);
	if (wb || wo)
		return wb > wo ? wb : wo;
	bucket_take(&rl->bandwidth, bytes);
	bucket_take(&rl->ops, ops);
	return 0;
}

void rate_limiter_save(const struct rate_limiter *rl, struct rate_limiter_state *st)
{
	st->bandwidth_budget = rl->bandwidth.budget;
	st->bandwidth_burst = rl->bandwidth.burst;
	st->ops_budget = rl->ops.budget;
	st->ops_burst = rl->ops.burst;
}

static void bucket_restore(struct token_bucket *b, int64_t budget, uint64_t burst, uint64_t now_ns)
{
	int64_t size = (int64_t)b->cfg.size;

	/* A debt is at most one oversized request: never more than MAX_TOKENS. */
	if (budget > size)
		budget = size;
	if (budget < -(int64_t)MAX_TOKENS)
		budget = -(int64_t)MAX_TOKENS;
	b->budget = size ? budget : 0;
	b->burst = burst < b->cfg.one_time_burst ? burst : b->cfg.one_time_burst;
	b->last_ns = now_ns;
}

void rate_limiter_restore(struct rate_limiter *rl, const struct rate_limiter_state *st,
	uint64_t now_ns)
{
	bucket_restore(&rl->bandwidth, st->bandwidth_budget, st->bandwidth_burst, now_ns);
	bucket_restore(&rl->ops, st->ops_budget, st->ops_burst, now_ns);
}
