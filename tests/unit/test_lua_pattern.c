/* Unit tests for lua_pattern_span: how far a Lua pattern's match can reach. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "ember/lua_pattern.h"

#define UNB LUA_PATTERN_UNBOUNDED

static size_t span(const char *p, bool want_anchored)
{
	bool anchored = !want_anchored;
	size_t n = lua_pattern_span(p, &anchored);

	assert_int_equal(anchored, want_anchored);
	return n;
}

static void test_lua_pattern_plain_text_spans_its_length(void **state)
{
	(void)state;
	assert_int_equal(span("", false), 0);
	assert_int_equal(span("login:", false), 6);
	assert_int_equal(span("OK ready", false), 8);
	assert_int_equal(span("a$b", false), 3); /* '$' inside is a character */
	assert_int_equal(span("a^b", false), 3); /* so is '^' after the start */
}

static void test_lua_pattern_items_count_one_each(void **state)
{
	(void)state;
	assert_int_equal(span("%d%d%d", false), 3);
	assert_int_equal(span("a.b", false), 3);
	assert_int_equal(span("%%x", false), 2);
	assert_int_equal(span("[abc]x", false), 2);
	assert_int_equal(span("[^%]]", false), 1);
	assert_int_equal(span("[]]", false), 1);  /* the first ']' is a member */
	assert_int_equal(span("ab?c", false), 3); /* '?' still at most one */
	assert_int_equal(span("(OK) (%d)", false), 4);
	assert_int_equal(span("()x", false), 1);
	assert_int_equal(span("%f[%w]word", false), 4);
}

static void test_lua_pattern_anchors_take_no_room(void **state)
{
	(void)state;
	assert_int_equal(span("^boot$", true), 4);
	assert_int_equal(span("^", true), 0);
	assert_int_equal(span("done$", false), 4);
}

static void test_lua_pattern_repetition_and_balance_are_unbounded(void **state)
{
	(void)state;
	assert_int_equal(span("OK %d+", false), UNB);
	assert_int_equal(span("a*", false), UNB);
	assert_int_equal(span("x.-y", false), UNB);
	assert_int_equal(span("[ab]*", false), UNB);
	assert_int_equal(span("%s+", false), UNB);
	assert_int_equal(span("%b()", false), UNB);
	assert_int_equal(span("(a)%1", false), UNB);
}

static void test_lua_pattern_malformed_is_unbounded(void **state)
{
	(void)state;
	assert_int_equal(span("abc%", false), UNB);
	assert_int_equal(span("[abc", false), UNB);
	assert_int_equal(span("[%", false), UNB);
	assert_int_equal(span("%f", false), UNB);
	assert_int_equal(span("%fx", false), UNB);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_lua_pattern_plain_text_spans_its_length),
		cmocka_unit_test(test_lua_pattern_items_count_one_each),
		cmocka_unit_test(test_lua_pattern_anchors_take_no_room),
		cmocka_unit_test(test_lua_pattern_repetition_and_balance_are_unbounded),
		cmocka_unit_test(test_lua_pattern_malformed_is_unbounded),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
