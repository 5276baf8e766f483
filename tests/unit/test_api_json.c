/* Unit tests for the API's JSON bodies: parse errors and schema checks, with messages that
 * name the field as serde's would. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../../src/api/json.h"

static const char *const states[] = { "Paused", "Resumed", NULL };
static const char *const sizes[] = { "None", "Transparent", "2M", NULL };

static const struct jfield bucket_fields[] = {
	JF_U64("size", J_REQUIRED),
	JF_U64("one_time_burst", J_OPTIONAL),
	JF_END,
};
static const struct jschema bucket = { "TokenBucket", bucket_fields };

static const struct jfield fields[] = {
	JF_U8("vcpu_count", J_REQUIRED),
	JF_UINT("mem_size_mib", J_DEFAULT, "usize", UINT64_MAX),
	JF_BOOL("smt", J_DEFAULT),
	JF_STR("path", J_OPTIONAL),
	JF_ENUM("state", J_OPTIONAL, states),
	JF_ENUM("huge_pages", J_DEFAULT, sizes),
	JF_OBJ("bandwidth", J_OPTIONAL, &bucket),
	JF_ARR("list", J_DEFAULT, NULL),
	JF_ARR("buckets", J_DEFAULT, &bucket),
	JF_MAP("props", J_OPTIONAL),
	JF_END,
};
static const struct jschema schema = { "MachineConfig", fields };

/* The message json_check gives for `text`, or "" if it passes. */
static const char *check(const char *text)
{
	static char err[512];
	cJSON *v = json_parse(text, strlen(text), err, sizeof(err));

	assert_non_null(v);
	if (!json_check(v, &schema, err, sizeof(err)))
		err[0] = '\0';
	cJSON_Delete(v);
	return err;
}

static void test_api_json_check_accepts_good_bodies(void **state)
{
	(void)state;
	assert_string_equal(check("{\"vcpu_count\": 2}"), "");
	assert_string_equal(
		check("{\"vcpu_count\": 255, \"mem_size_mib\": 18446744073709549568, "
		      "\"smt\": false, \"path\": null, \"state\": \"Paused\", \"huge_pages\": \"2M\", "
		      "\"bandwidth\": {\"size\": 1, \"one_time_burst\": null}, \"list\": [\"a\", \"b\"], "
		      "\"buckets\": [{\"size\": 0}], \"props\": {\"k\": \"v\"}}"),
		"");
}

static void test_api_json_check_answers_as_serde_with_the_place(void **state)
{
	static const struct {
		const char *body, *want;
	} cases[] = {
		{ "{}", "missing field `vcpu_count` at line 1 column 2" },
		{ "{\"vcpu_count\": 1, \"vcpus\": 2}",
			"unknown field `vcpus`, expected one of `vcpu_count`, `mem_size_mib`, `smt`, "
			"`path`, `state`, `huge_pages`, `bandwidth`, `list`, `buckets`, `props` at line 1 "
			"column 25" },
		{ "{\"vcpu_count\": 1, \"vcpu_count\": 2}",
			"duplicate field `vcpu_count` at line 1 column 30" },
		{ "{\"vcpu_count\": \"2\"}",
			"invalid type: string \"2\", expected u8 at line 1 column 18" },
		{ "{\"vcpu_count\": 256}",
			"invalid value: integer `256`, expected u8 at line 1 column 18" },
		{ "{\"vcpu_count\": -1}",
			"invalid value: integer `-1`, expected u8 at line 1 column 17" },
		{ "{\"vcpu_count\": 1.5}",
			"invalid type: floating point `1.5`, expected u8 at line 1 column 18" },
		{ "{\"vcpu_count\": null}", "invalid type: null, expected u8 at line 1 column 19" },
		{ "{\"vcpu_count\": 1, \"mem_size_mib\": 1e30}",
			"invalid type: floating point `1e30`, expected usize at line 1 column 38" },
		{ "{\"vcpu_count\": 1, \"mem_size_mib\": 18446744073709551616}",
			"invalid type: floating point `1.8446744073709552e19`, expected usize at line 1 column 54" },
		{ "{\"vcpu_count\": 1, \"smt\": \"yes\"}",
			"invalid type: string \"yes\", expected a boolean at line 1 column 30" },
		{ "{\"vcpu_count\": 1, \"smt\": \"a\\\"b\\\\c\\td\\u001be\"}",
			"invalid type: string \"a\\\"b\\\\c\\td\\u{1b}e\", expected a boolean at line 1 "
			"column 44" },
		{ "{\"vcpu_count\": 1, \"smt\": null}",
			"invalid type: null, expected a boolean at line 1 column 29" },
		{ "{\"vcpu_count\": 1, \"path\": 5}",
			"invalid type: integer `5`, expected a string at line 1 column 27" },
		{ "{\"vcpu_count\": 1, \"state\": \"Stopped\"}",
			"unknown variant `Stopped`, expected `Paused` or `Resumed` at line 1 column 36" },
		{ "{\"vcpu_count\": 1, \"huge_pages\": \"1G\"}",
			"unknown variant `1G`, expected one of `None`, `Transparent`, `2M` at line 1 column 36" },
		{ "{\"vcpu_count\": 1, \"state\": true}", "expected value at line 1 column 28" },
		{ "{\"vcpu_count\": 1, \"huge_pages\": null}",
			"expected value at line 1 column 33" },
		{ "{\"vcpu_count\": 1, \"bandwidth\": {\"size\": \"x\"}}",
			"invalid type: string \"x\", expected u64 at line 1 column 43" },
		{ "{\"vcpu_count\": 1, \"bandwidth\": {\"refill\": 1}}",
			"unknown field `refill`, expected `size` or `one_time_burst` at line 1 column 40" },
		{ "{\"vcpu_count\": 1, \"bandwidth\": []}",
			"invalid type: sequence, expected struct TokenBucket at line 1 column 33" },
		{ "{\"vcpu_count\": 1, \"list\": [\"a\", 2]}",
			"invalid type: integer `2`, expected a string at line 1 column 33" },
		{ "{\"vcpu_count\": 1, \"buckets\": [{\"size\": 1}, {}]}",
			"missing field `size` at line 1 column 45" },
		{ "{\"vcpu_count\": 1, \"props\": {\"k\": 1}}",
			"invalid type: integer `1`, expected a string at line 1 column 34" },
		{ "{\"vcpu_count\": 1,\n  \"smt\": 3}",
			"invalid type: integer `3`, expected a boolean at line 2 column 10" },
		{ "[1, 2]", "invalid type: sequence, expected struct MachineConfig" },
		{ "\"x\"", "invalid type: string \"x\", expected struct MachineConfig" },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		assert_string_equal(check(cases[i].body), cases[i].want);
}

static void test_api_json_parse_says_where_it_went_wrong(void **state)
{
	/* serde_json's words and places (the byte it stopped at; at the end, the last). */
	static const struct {
		const char *body, *want;
	} cases[] = {
		{ "{\"a\": }", "expected value at line 1 column 7" },
		{ "{\"a\": 1", "EOF while parsing an object at line 1 column 7" },
		{ "{}\n{}", "trailing characters at line 2 column 1" },
		{ "{\n\n  x}", "key must be a string at line 3 column 3" },
		{ "{\"a\" 1}", "expected `:` at line 1 column 6" },
		{ "{\"a\": 1 \"b\"}", "expected `,` or `}` at line 1 column 9" },
		{ "[1 2]", "expected `,` or `]` at line 1 column 4" },
		{ "[1, 2,]", "trailing comma at line 1 column 7" },
		{ "{\"a\": 1,}", "trailing comma at line 1 column 9" },
		{ "[1", "EOF while parsing a list at line 1 column 2" },
		{ "{\"a\": \"x", "EOF while parsing a string at line 1 column 8" },
		{ "{\"a\": 01}", "invalid number at line 1 column 8" },
		{ "{\"a\": 1.}", "invalid number at line 1 column 9" },
		{ "{\"a\": -}", "invalid number at line 1 column 8" },
		{ "{\"a\": tru}", "expected ident at line 1 column 10" },
		{ "{\"a\": \"\\q\"}", "invalid escape at line 1 column 9" },
		{ "{\"a\": \"x\ny\"}",
			"control character (\\u0000-\\u001F) found while parsing "
			"a string at line 2 column 0" },
		{ "\xEF\xBB\xBF{}", "expected value at line 1 column 1" },
		{ "{}\0{}", "trailing characters at line 1 column 3" },
		{ "\f{}", "expected value at line 1 column 1" },
	};
	char err[256];

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		size_t len = strlen(cases[i].body);
		if (strcmp(cases[i].body, "{}") == 0)
			len = 5; /* the case with a NUL inside */
		assert_null(json_parse(cases[i].body, len, err, sizeof(err)));
		assert_string_equal(err, cases[i].want);
	}
	assert_null(json_parse("", 0, err, sizeof(err)));
	assert_string_equal(err, "EOF while parsing a value at line 1 column 0");
}

static void test_api_json_parse_nests_as_deep_as_serde(void **state)
{
	char deep[2 * 129 + 1], err[128];
	cJSON *v;

	(void)state;
	memset(deep, '[', 128);
	memset(deep + 128, ']', 128);
	deep[256] = '\0';
	v = json_parse(deep, 256, err, sizeof(err));
	assert_non_null(v); /* 128 levels: serde_json's limit, still taken */
	cJSON_Delete(v);
	memset(deep, '[', 129);
	memset(deep + 129, ']', 129);
	deep[258] = '\0';
	assert_null(json_parse(deep, 258, err, sizeof(err)));
	assert_string_equal(err, "recursion limit exceeded at line 1 column 129");
}

static void test_api_json_parse_refuses_deep_nesting_without_crashing(void **state)
{
	size_t n = 20000;
	char *deep = malloc(2 * n + 1), err[128];

	(void)state;
	memset(deep, '[', n);
	memset(deep + n, ']', n);
	deep[2 * n] = '\0';
	assert_null(json_parse(deep, 2 * n, err, sizeof(err)));
	free(deep);
}

static void test_api_json_getters_treat_null_as_absent(void **state)
{
	static const char body[] = "{\"a\": null, \"b\": true, \"n\": 7, "
				   "\"big\": 18446744073709551615, \"s\": \"x\", \"e\": \"2M\"}";
	char err[64];
	cJSON *v = json_parse(body, sizeof(body) - 1, err, sizeof(err));

	(void)state;
	assert_non_null(v);
	assert_null(json_get(v, "a"));
	assert_null(json_get(v, "zz"));
	assert_true(json_get_bool(v, "b", false));
	assert_true(json_get_bool(v, "a", true));
	assert_int_equal(json_get_uint(v, "n", 0), 7);
	assert_true(json_get_uint(v, "big", 0) == 18446744073709551615ull); /* not via a double */
	assert_int_equal(json_get_uint(v, "s", 9), 9);
	assert_string_equal(json_get_str(v, "s"), "x");
	assert_null(json_get_str(v, "n"));
	assert_int_equal(json_get_enum(v, "e", sizes, 0), 2);
	assert_int_equal(json_get_enum(v, "a", sizes, 1), 1);
	cJSON_Delete(v);
}

static void test_api_json_exact_numbers_print_as_sent(void **state)
{
	static const char body[] = "{\"a\":18446744073709551615,\"b\":5,\"c\":[-9007199254740993,"
				   "1.5,9007199254740992],\"d\":18446744073709551616}";
	char err[64], *out;
	cJSON *v = json_parse(body, sizeof(body) - 1, err, sizeof(err));

	(void)state;
	assert_non_null(v);
	json_source_exact_numbers(v);
	json_source_forget(v);
	out = cJSON_PrintUnformatted(v);
	/* Past 64 bits serde_json keeps a double, and so does this. */
	assert_string_equal(out,
		"{\"a\":18446744073709551615,\"b\":5,\"c\":[-9007199254740993,"
		"1.5,9007199254740992],\"d\":1.8446744073709552e+19}");
	json_source_forget(NULL);
	cJSON_free(out);
	cJSON_Delete(v);
}

static void test_api_json_empty_schema_has_no_fields(void **state)
{
	static const struct jfield none[] = { JF_END };
	static const struct jschema empty = { "Empty", none };
	char err[128];
	cJSON *v = json_parse("{\"x\": 1}", 8, err, sizeof(err));

	(void)state;
	assert_non_null(v);
	assert_int_not_equal(json_check(v, &empty, err, sizeof(err)), 0);
	assert_string_equal(err, "unknown field `x`, there are no fields at line 1 column 4");
	cJSON_Delete(v);
}

static void test_api_json_messages_are_cut_not_overrun(void **state)
{
	char err[24];
	cJSON *v = json_parse("{\"a_very_long_unknown_field_name\": 1}", 37, err, sizeof(err));

	(void)state;
	assert_int_not_equal(json_check(v, &schema, err, sizeof(err)), 0);
	assert_int_equal(strlen(err), sizeof(err) - 1);
	cJSON_Delete(v);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_api_json_check_accepts_good_bodies),
		cmocka_unit_test(test_api_json_check_answers_as_serde_with_the_place),
		cmocka_unit_test(test_api_json_parse_says_where_it_went_wrong),
		cmocka_unit_test(test_api_json_parse_refuses_deep_nesting_without_crashing),
		cmocka_unit_test(test_api_json_parse_nests_as_deep_as_serde),
		cmocka_unit_test(test_api_json_empty_schema_has_no_fields),
		cmocka_unit_test(test_api_json_exact_numbers_print_as_sent),
		cmocka_unit_test(test_api_json_getters_treat_null_as_absent),
		cmocka_unit_test(test_api_json_messages_are_cut_not_overrun),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
