/* Unit tests for dropping terminal queries from guest output: whole, split across chunks,
 * and everything else passed through unchanged. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "ember/term_queries.h"

/* Feed `text` in chunks of `step` bytes; return what came out (static buffer). */
static const char *feed(struct term_queries *t, const char *text, size_t step)
{
	static char got[512];
	size_t len = strlen(text), o = 0;

	for (size_t i = 0; i < len; i += step) {
		size_t n = len - i < step ? len - i : step;
		o += term_queries_filter(t, (const uint8_t *)text + i, n, (uint8_t *)got + o);
	}
	got[o] = 0;
	return got;
}

static void test_term_queries_dropped_whole_and_split(void **state)
{
	/* busybox's prompt: colours (kept) and the cursor-position query (dropped) */
	const char *prompt = "\033[1;32m~ #\033[0m \033[6n";

	(void)state;
	for (size_t step = 1; step <= strlen(prompt); step++) {
		struct term_queries t = { 0 };

		assert_string_equal(feed(&t, prompt, step), "\033[1;32m~ #\033[0m ");
		assert_int_equal(t.dropped, 1);
		assert_int_equal(t.nheld, 0);
	}
}

static void test_term_queries_every_answered_kind(void **state)
{
	struct term_queries t = { 0 };

	(void)state;
	assert_string_equal(feed(&t, "a\033[5nb\033[cc\033[0cd\033[>ce\033[=0cf", 64), "abcdef");
	assert_int_equal(t.dropped, 5);
}

static void test_term_queries_everything_else_passes(void **state)
{
	const char *keep[] = {
		"plain text\r\n",
		"\033[2J\033[H",
		"\033[6;1H",
		"\033[1c",
		"\033[66n",
		"\033]0;title\007",
		"\033(B",
		"a\033",
		"\033\033[6n",
		"\033[\n6n",
	};
	const char *want[] = {
		"plain text\r\n",
		"\033[2J\033[H",
		"\033[6;1H",
		"\033[1c",
		"\033[66n",
		"\033]0;title\007",
		"\033(B",
		"a",
		"\033",
		"\033[\n6n",
	};

	(void)state;
	for (size_t k = 0; k < sizeof(keep) / sizeof(keep[0]); k++) {
		struct term_queries t = { 0 };

		assert_string_equal(feed(&t, keep[k], 3), want[k]);
	}
}

static void test_term_queries_long_sequences_are_not_held(void **state)
{
	struct term_queries t = { 0 };
	char text[64];

	(void)state;
	memset(text, '1', sizeof(text));
	text[0] = '\033';
	text[1] = '[';
	text[sizeof(text) - 1] = 0;
	assert_string_equal(feed(&t, text, 5), text);
	assert_int_equal(t.nheld, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_term_queries_dropped_whole_and_split),
		cmocka_unit_test(test_term_queries_every_answered_kind),
		cmocka_unit_test(test_term_queries_everything_else_passes),
		cmocka_unit_test(test_term_queries_long_sequences_are_not_held),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
