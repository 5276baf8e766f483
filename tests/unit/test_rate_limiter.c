/* Unit tests for the token-bucket rate limiter, on a clock the tests move by hand. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "ember/rate_limiter.h"

#define MS 1000000ull
#define S (1000 * MS)

static struct rate_limiter make(uint64_t bw_size, uint64_t bw_burst, uint64_t bw_ms,
	uint64_t ops_size, uint64_t ops_ms)
{
	struct rate_limit l = {
		.bandwidth = { .size = bw_size,
			.one_time_burst = bw_burst,
			.refill_time_ms = bw_ms },
		.ops = { .size = ops_size, .refill_time_ms = ops_ms },
	};
	struct rate_limiter rl;
	char err[128];

	assert_int_equal(rate_limiter_init(&rl, &l, 0, err, sizeof(err)), 0);
	return rl;
}

static void test_rate_limiter_unlimited_never_waits(void **state)
{
	struct rate_limiter rl;
	char err[128];

	(void)state;
	assert_int_equal(rate_limiter_init(&rl, NULL, 0, err, sizeof(err)), 0);
	assert_false(rate_limiter_active(&rl));
	for (int i = 0; i < 1000; i++)
		assert_int_equal(rate_limiter_consume(&rl, 1u << 30, 1000, 0), 0);
}

static void test_rate_limiter_rejects_bad_config(void **state)
{
	struct rate_limit l = { .bandwidth = { .size = 100 } };
	struct rate_limiter rl;
	char err[128];

	(void)state;
	assert_int_equal(rate_limiter_init(&rl, &l, 0, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "bandwidth: refill_time_ms must be > 0 when size is set");
	l = (struct rate_limit){ .ops = { .size = 1ull << 60, .refill_time_ms = 1 } };
	assert_int_equal(rate_limit_check(&l, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "ops: size, one_time_burst or refill_time_ms is too large");
}

static void test_rate_limiter_bucket_empties_then_refills(void **state)
{
	struct rate_limiter rl = make(1000, 0, 1000, 0, 0); /* 1000 bytes/s */

	(void)state;
	assert_true(rate_limiter_active(&rl));
	assert_int_equal(rate_limiter_consume(&rl, 600, 1, 0), 0);
	assert_int_equal(rate_limiter_consume(&rl, 400, 1, 0), 0);
	/* Empty: 100 bytes take 100 ms. Nothing was taken by the refusal. */
	assert_int_equal(rate_limiter_consume(&rl, 100, 1, 0), 100 * MS);
	assert_int_equal(rate_limiter_consume(&rl, 100, 1, 40 * MS), 60 * MS);
	assert_int_equal(rate_limiter_consume(&rl, 100, 1, 100 * MS), 0);
	/* A long pause refills only up to the size. */
	assert_int_equal(rate_limiter_consume(&rl, 1000, 1, 100 * S), 0);
	assert_int_not_equal(rate_limiter_consume(&rl, 1, 1, 100 * S), 0);
}

static void test_rate_limiter_frequent_calls_lose_no_tokens(void **state)
{
	struct rate_limiter rl = make(1000, 0, 1000, 0, 0);
	uint64_t got = 0;

	(void)state;
	assert_int_equal(rate_limiter_consume(&rl, 1000, 0, 0), 0);
	/* One byte every 0.3 ms of asking for more than there is: 1 s earns exactly 1000. */
	for (uint64_t t = 0; t <= S; t += 300000)
		if (rate_limiter_consume(&rl, 1, 0, t) == 0)
			got++;
	assert_in_range(got, 999, 1000);
}

static void test_rate_limiter_one_time_burst_is_used_first_and_once(void **state)
{
	struct rate_limiter rl = make(100, 500, 1000, 0, 0);

	(void)state;
	assert_int_equal(rate_limiter_consume(&rl, 550, 0, 0), 0); /* burst 500 + 50 */
	assert_int_equal(rate_limiter_consume(&rl, 50, 0, 0), 0);
	assert_int_equal(rate_limiter_consume(&rl, 10, 0, 0), 100 * MS);
	/* After a full refill, only the bucket size is there: the burst never comes back. */
	assert_int_equal(rate_limiter_consume(&rl, 100, 0, 10 * S), 0);
	assert_int_not_equal(rate_limiter_consume(&rl, 1, 0, 10 * S), 0);
}

static void test_rate_limiter_oversized_request_passes_full_bucket_then_owes(void **state)
{
	struct rate_limiter rl = make(100, 0, 1000, 0, 0);

	(void)state;
	assert_int_equal(rate_limiter_consume(&rl, 50, 0, 0), 0);
	/* 300 > size: waits until the bucket is full (500 ms), then passes. */
	assert_int_equal(rate_limiter_consume(&rl, 300, 0, 0), 500 * MS);
	assert_int_equal(rate_limiter_consume(&rl, 300, 0, 500 * MS), 0);
	/* Debt of 200: the next byte waits 2 s + 10 ms. */
	assert_int_equal(rate_limiter_consume(&rl, 1, 0, 500 * MS), 2010 * MS);
}

static void test_rate_limiter_ops_bucket_and_both_must_agree(void **state)
{
	struct rate_limiter rl = make(1000, 0, 1000, 2, 100); /* 2 requests per 100 ms */

	(void)state;
	assert_int_equal(rate_limiter_consume(&rl, 10, 1, 0), 0);
	assert_int_equal(rate_limiter_consume(&rl, 10, 1, 0), 0);
	assert_int_equal(rate_limiter_consume(&rl, 10, 1, 0), 50 * MS);
	/* When both are short (20 ms of bytes, 50 ms of ops), the longer wait wins, and
	 * neither bucket is charged. */
	assert_int_equal(rate_limiter_consume(&rl, 1000, 1, 0), 50 * MS);
	assert_int_equal(rate_limiter_consume(&rl, 1000, 1, 50 * MS), 0);
}

static void test_rate_limiter_wait_is_never_early(void **state)
{
	struct rate_limiter rl = make(3, 0, 1000, 0, 0); /* 333.3 ms per token */
	uint64_t wait;

	(void)state;
	assert_int_equal(rate_limiter_consume(&rl, 3, 0, 0), 0);
	wait = rate_limiter_consume(&rl, 1, 0, 0);
	assert_int_equal(wait, 333333334);
	assert_int_not_equal(rate_limiter_consume(&rl, 1, 0, wait - 1), 0);
	assert_int_equal(rate_limiter_consume(&rl, 1, 0, wait), 0);
}

static void test_rate_limiter_clock_going_backwards_earns_nothing(void **state)
{
	struct rate_limiter rl = make(100, 0, 1000, 0, 0);

	(void)state;
	assert_int_equal(rate_limiter_consume(&rl, 100, 0, 5 * S), 0);
	assert_int_not_equal(rate_limiter_consume(&rl, 1, 0, 1 * S), 0);
}

static void test_rate_limiter_save_restore_keeps_budgets(void **state)
{
	struct rate_limiter rl = make(100, 50, 1000, 10, 1000),
			    copy = make(100, 50, 1000, 10, 1000);
	struct rate_limiter_state st;

	(void)state;
	assert_int_equal(rate_limiter_consume(&rl, 120, 4, 0), 0);
	rate_limiter_save(&rl, &st);
	assert_int_equal(st.bandwidth_budget, 30);
	assert_int_equal(st.bandwidth_burst, 0);
	assert_int_equal(st.ops_budget, 6);
	rate_limiter_restore(&copy, &st, 77 * S); /* another process, another clock */
	assert_int_equal(rate_limiter_consume(&copy, 30, 6, 77 * S), 0);
	assert_int_not_equal(rate_limiter_consume(&copy, 1, 0, 77 * S), 0);
	/* Saved values beyond the configuration are clamped. */
	st.bandwidth_budget = 1 << 30;
	st.bandwidth_burst = 1 << 30;
	rate_limiter_restore(&copy, &st, 0);
	assert_int_equal(copy.bandwidth.budget, 100);
	assert_int_equal(copy.bandwidth.burst, 50);
}

static void test_rate_limiter_update_replaces_only_the_named_buckets(void **state)
{
	struct rate_limiter rl = make(1000, 0, 1000, 10, 1000);
	struct rate_limit_update u = { .ops_set = true,
		.limit.ops = { .size = 2, .one_time_burst = 1, .refill_time_ms = 1000 } };
	char err[128];

	(void)state;
	assert_int_equal(rate_limiter_consume(&rl, 1000, 1, 0), 0); /* bandwidth now empty */
	assert_int_equal(rate_limiter_update(&rl, &u, 0, err, sizeof(err)), 0);
	/* The bandwidth bucket kept its state: still empty. */
	assert_int_not_equal(rate_limiter_consume(&rl, 1, 0, 0), 0);
	/* The new ops bucket starts full, burst first: 1 + 2 operations, then a wait. */
	assert_int_equal(rate_limiter_consume(&rl, 0, 3, 0), 0);
	assert_int_equal(rate_limiter_consume(&rl, 0, 1, 0), 500 * MS);
	assert_int_equal(rl.ops.cfg.size, 2);
	assert_int_equal(rl.bandwidth.cfg.size, 1000);
}

static void test_rate_limiter_update_size_zero_removes_a_bucket(void **state)
{
	struct rate_limiter rl = make(1000, 0, 1000, 10, 1000);
	struct rate_limit_update u = { .bandwidth_set = true,
		.ops_set = true,
		.limit.ops = { .size = 0, .one_time_burst = 7, .refill_time_ms = 99 } };
	char err[128];

	(void)state;
	assert_int_equal(rate_limiter_consume(&rl, 1000, 10, 0), 0);
	assert_int_equal(rate_limiter_update(&rl, &u, 0, err, sizeof(err)), 0);
	assert_false(rate_limiter_active(&rl));
	assert_int_equal(rl.ops.cfg.one_time_burst, 0);
	assert_int_equal(rate_limiter_consume(&rl, 1u << 30, 1000, 0), 0);
}

static void test_rate_limiter_update_refuses_bad_bucket_and_changes_nothing(void **state)
{
	struct rate_limiter rl = make(1000, 0, 1000, 10, 1000), before = rl;
	struct rate_limit_update u = { .bandwidth_set = true,
		.ops_set = true,
		.limit.bandwidth = { .size = 5, .refill_time_ms = 5 },
		.limit.ops = { .size = 1ull << 60, .refill_time_ms = 1 } };
	char err[128];

	(void)state;
	assert_int_equal(rate_limiter_update(&rl, &u, 0, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "ops: size, one_time_burst or refill_time_ms is too large");
	assert_memory_equal(&rl, &before, sizeof(rl));
	/* A bucket that is not named is not checked. */
	u.ops_set = false;
	assert_int_equal(rate_limiter_update(&rl, &u, 0, err, sizeof(err)), 0);
	assert_int_equal(rl.bandwidth.cfg.size, 5);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rate_limiter_unlimited_never_waits),
		cmocka_unit_test(test_rate_limiter_rejects_bad_config),
		cmocka_unit_test(test_rate_limiter_bucket_empties_then_refills),
		cmocka_unit_test(test_rate_limiter_frequent_calls_lose_no_tokens),
		cmocka_unit_test(test_rate_limiter_one_time_burst_is_used_first_and_once),
		cmocka_unit_test(test_rate_limiter_oversized_request_passes_full_bucket_then_owes),
		cmocka_unit_test(test_rate_limiter_ops_bucket_and_both_must_agree),
		cmocka_unit_test(test_rate_limiter_wait_is_never_early),
		cmocka_unit_test(test_rate_limiter_clock_going_backwards_earns_nothing),
		cmocka_unit_test(test_rate_limiter_save_restore_keeps_budgets),
		cmocka_unit_test(test_rate_limiter_update_replaces_only_the_named_buckets),
		cmocka_unit_test(test_rate_limiter_update_size_zero_removes_a_bucket),
		cmocka_unit_test(test_rate_limiter_update_refuses_bad_bucket_and_changes_nothing),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
