/* Token-bucket rate limiting (bandwidth and operations), as Firecracker's device limits.
 *
 * Pure logic: the caller passes the time (monotonic nanoseconds), so tests drive the
 * clock. A device that is told to wait arms a timer for that long and tries again; it
 * never spins. Any one limiter is used by one thread (the control thread). */
#ifndef EMBER_RATE_LIMITER_H
#define EMBER_RATE_LIMITER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* One bucket, Firecracker's TokenBucket config: `size` tokens (bytes or operations) that
 * refill from empty to full in `refill_time_ms`, plus `one_time_burst` tokens available
 * once at start and never refilled. size 0 means unlimited. */
struct token_bucket_config {
	uint64_t size;
	uint64_t one_time_burst;
	uint64_t refill_time_ms;
};

/* A device's limit: bytes per refill time, and operations (requests) per refill time.
 * Also the machine configuration's own form (config.h), as the API and Lua give it. */
struct rate_limit {
	struct token_bucket_config bandwidth;
	struct token_bucket_config ops;
};

struct token_bucket {
	struct token_bucket_config cfg;
	int64_t budget;   /* tokens in the bucket; negative after an oversized request */
	uint64_t burst;   /* one-time burst tokens left */
	uint64_t last_ns; /* time the budget was last brought up to date */
};

struct rate_limiter {
	struct token_bucket bandwidth, ops;
};

/* Check a limit (size and refill time both set, or size 0; values that cannot overflow
 * the arithmetic). 0, or -EINVAL with err ("bandwidth: refill_time_ms must be > 0 when
 * size is set"). */
__attribute__((warn_unused_result)) int rate_limit_check(const struct rate_limit *limit, char *err,
	size_t errlen);

/* Start full at `now_ns`. `limit` NULL means unlimited. -EINVAL with err as above. */
__attribute__((warn_unused_result)) int rate_limiter_init(struct rate_limiter *rl,
	const struct rate_limit *limit, uint64_t now_ns, char *err, size_t errlen);

/* Is either bucket limited? */
bool rate_limiter_active(const struct rate_limiter *rl);

/* Take `bytes` bandwidth tokens and `ops` operation tokens at `now_ns`. Returns 0 if they
 * were taken, or else the nanoseconds to wait before trying again (nothing taken). A
 * request larger than a whole bucket passes when that bucket is full and leaves it in
 * debt, so it is paid for before the next one (it is never refused forever). */
uint64_t rate_limiter_consume(struct rate_limiter *rl, uint64_t bytes, uint64_t ops,
	uint64_t now_ns);

/* A run-time change of a limit, with Firecracker's per-bucket meaning: a bucket that is
 * not `set` stays as it is (budget, burst and all); a set bucket of size 0 is removed; any
 * other set bucket starts afresh from its new configuration, full, with its new one-time
 * burst. */
struct rate_limit_update {
	bool bandwidth_set, ops_set;
	struct rate_limit limit; /* the new buckets, where set */
};

/* Apply `u` at `now_ns`. The new buckets are checked first (as rate_limit_check): on
 * -EINVAL, with err, nothing changed. */
__attribute__((warn_unused_result)) int rate_limiter_update(struct rate_limiter *rl,
	const struct rate_limit_update *u, uint64_t now_ns, char *err, size_t errlen);

/* Persisted state, version 1: what is left in each bucket. The configuration itself comes
 * from the device's definition; restore clamps to it and restarts refilling at now_ns. */
struct rate_limiter_state {
	int64_t bandwidth_budget;
	uint64_t bandwidth_burst;
	int64_t ops_budget;
	uint64_t ops_burst;
};
void rate_limiter_save(const struct rate_limiter *rl, struct rate_limiter_state *st);
void rate_limiter_restore(struct rate_limiter *rl, const struct rate_limiter_state *st,
	uint64_t now_ns);

#endif
