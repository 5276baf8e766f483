/* Unit tests for rate-limited log lines: a burst per second, the rest counted and named
 * by the next line let through. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "ember/log_ratelimit.h"

#define SEC LOG_RATELIMIT_INTERVAL_US

static void test_log_ratelimit_lets_a_burst_through_then_holds_back(void **state)
{
	struct log_ratelimit rl = { 0 };
	uint64_t held = 99;

	(void)state;
	for (unsigned i = 0; i < LOG_RATELIMIT_BURST; i++) {
		assert_true(log_ratelimit_allow(&rl, 1000 + i, &held));
		assert_int_equal(held, 0);
	}
	for (unsigned i = 0; i < 1000; i++)
		assert_false(log_ratelimit_allow(&rl, 2000 + i, &held));
	assert_int_equal(rl.suppressed, 1000);
}

static void test_log_ratelimit_next_interval_reports_the_held_back_count(void **state)
{
	struct log_ratelimit rl = { 0 };
	uint64_t held = 0;

	(void)state;
	for (unsigned i = 0; i < LOG_RATELIMIT_BURST + 7; i++)
		(void)log_ratelimit_allow(&rl, 5, &held);
	/* Still the same second: nothing. */
	assert_false(log_ratelimit_allow(&rl, 5 + SEC - 1, &held));
	/* The next one: let through, carrying the 8 held back. */
	assert_true(log_ratelimit_allow(&rl, 5 + SEC, &held));
	assert_int_equal(held, 8);
	assert_true(log_ratelimit_allow(&rl, 6 + SEC, &held));
	assert_int_equal(held, 0);
}

static void test_log_ratelimit_works_from_time_zero(void **state)
{
	struct log_ratelimit rl = { 0 };
	uint64_t held = 0;
	unsigned allowed = 0;

	(void)state;
	for (unsigned i = 0; i < 3 * LOG_RATELIMIT_BURST; i++)
		allowed += log_ratelimit_allow(&rl, 0, &held);
	assert_int_equal(allowed, LOG_RATELIMIT_BURST);
}

static void read_log(const char *path, char *buf, size_t len)
{
	FILE *f = fopen(path, "r");
	size_t n;

	assert_non_null(f);
	n = fread(buf, 1, len - 1, f);
	buf[n] = '\0';
	fclose(f);
}

static unsigned count(const char *text, const char *needle)
{
	unsigned n = 0;

	for (const char *p = text; (p = strstr(p, needle)); p++)
		n++;
	return n;
}

static void warn_n(int from, int n)
{
	for (int i = from; i < from + n; i++)
		log_warn_ratelimited("bad descriptor %d", i); /* one call site */
}

/* A loop at one call site, as a guest would cause: BURST lines out of 1000, and the line
 * in the next second names the rest. */
static void test_log_ratelimit_call_site_macro_limits_a_flood(void **state)
{
	char path[] = "/tmp/ember-test-ratelimit-XXXXXX", text[8192];
	int fd = mkstemp(path);

	(void)state;
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(log_set_file(path), 0);
	warn_n(0, 1000);
	usleep(SEC + 10000);
	warn_n(1000, 2);
	read_log(path, text, sizeof(text));
	unlink(path);
	assert_int_equal(count(text, "bad descriptor"), LOG_RATELIMIT_BURST + 2);
	assert_non_null(strstr(text, "bad descriptor 1000 (995 like it not logged)\n"));
	assert_non_null(strstr(text, "bad descriptor 1001\n"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_log_ratelimit_lets_a_burst_through_then_holds_back),
		cmocka_unit_test(test_log_ratelimit_next_interval_reports_the_held_back_count),
		cmocka_unit_test(test_log_ratelimit_works_from_time_zero),
		cmocka_unit_test(test_log_ratelimit_call_site_macro_limits_a_flood),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
