/* Unit tests for the options before the command: Firecracker's names and refusals, both
 * value forms, flags, numbers, and where the command starts. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "../../src/cli/options.h"

#define ARGC(a) ((int)(sizeof(a) / sizeof((a)[0])))

static void test_cli_values_flags_and_the_command(void **state)
{
	char *argv[] = { "ember", "--api-sock", "/tmp/s", "--id=vm-1", "--show-level",
		"--mmds-size-limit", "4096", "--start-time-us=12", "--log-level", "warn",
		"--firecracker-version-compat=1.13.0-dev", "run", "x.lua", "--id" };
	struct cli_opts o;
	char err[256];

	(void)state;
	assert_int_equal(cli_parse(ARGC(argv), argv, &o, err, sizeof(err)), 0);
	assert_int_equal(o.action, CLI_RUN);
	assert_string_equal(o.api_sock, "/tmp/s");
	assert_string_equal(o.id, "vm-1");
	assert_true(o.show_level);
	assert_false(o.show_log_origin);
	assert_int_equal(o.mmds_size_limit, 4096);
	assert_true(o.has_start_us);
	assert_int_equal(o.start_us, 12);
	assert_false(o.has_start_cpu_us);
	assert_string_equal(o.level, "warn");
	assert_string_equal(o.fc_version, "1.13.0-dev");
	assert_int_equal(o.first_arg, 11); /* "run": what follows is the command's */
}

static void expect_refusal(char **argv, int argc, const char *want)
{
	struct cli_opts o;
	char err[256];

	assert_int_equal(cli_parse(argc, argv, &o, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, want);
}

static void test_cli_refusals_in_firecrackers_words(void **state)
{
	char *unknown[] = { "ember", "--frob" };
	char *twice[] = { "ember", "--level", "Info", "--level", "Debug" };
	char *no_value[] = { "ember", "--metrics-path", "--no-api" };
	char *no_api[] = { "ember", "--no-api" };
	char *flag_value[] = { "ember", "--boot-timer=1" };
	char *bad_level[] = { "ember", "--level", "loud" };
	char *bad_id[] = { "ember", "--id", "a_b" };
	char *bad_versions[][3] = { { "ember", "--firecracker-version-compat", "1.7" },
		{ "ember", "--firecracker-version-compat", "1.07.0" },
		{ "ember", "--firecracker-version-compat", "1.7.0-" },
		{ "ember", "--firecracker-version-compat", "v1.7.0" } };

	(void)state;
	expect_refusal(unknown, 2,
		"Arguments parsing error: Found argument 'frob' which wasn't "
		"expected, or isn't valid in this context.");
	expect_refusal(twice, 5,
		"Arguments parsing error: The argument 'level' was provided "
		"more than once.");
	expect_refusal(no_value, 3,
		"Arguments parsing error: The argument 'metrics-path' "
		"requires a value, but none was supplied.");
	expect_refusal(no_api, 2,
		"Arguments parsing error: Argument 'config-file' required, "
		"but not found.");
	expect_refusal(flag_value, 2,
		"Arguments parsing error: Found argument '--boot-timer=1' "
		"which wasn't expected, or isn't valid in this context.");
	expect_refusal(bad_level, 3,
		"--level: 'loud' is not a level (Off, Error, Warning, Info, "
		"Debug, Trace)");
	expect_refusal(bad_id, 3, "--id: 'a_b' is not 1 to 64 characters of A-Z, a-z, 0-9 and -");
	for (size_t i = 0; i < sizeof(bad_versions) / sizeof(bad_versions[0]); i++) {
		char want[128];
		snprintf(want, sizeof(want),
			"--firecracker-version-compat: '%s' is not a version "
			"MAJOR.MINOR.PATCH",
			bad_versions[i][2]);
		expect_refusal(bad_versions[i], 3, want);
	}
}

static void test_cli_answering_options(void **state)
{
	char *version[] = { "ember", "--frob", "--version" };
	char *snap[] = { "ember", "--snapshot-version" };
	char *describe[] = { "ember", "--describe-snapshot", "/x.state" };
	char *none[] = { "ember" };
	struct cli_opts o;
	char err[256];

	(void)state;
	/* As Firecracker: --version among the options wins, even over an unknown one. */
	assert_int_equal(cli_parse(3, version, &o, err, sizeof(err)), 0);
	assert_int_equal(o.action, CLI_VERSION);
	assert_int_equal(cli_parse(2, snap, &o, err, sizeof(err)), 0);
	assert_int_equal(o.action, CLI_SNAPSHOT_VERSION);
	assert_int_equal(cli_parse(3, describe, &o, err, sizeof(err)), 0);
	assert_int_equal(o.action, CLI_DESCRIBE_SNAPSHOT);
	assert_string_equal(o.describe, "/x.state");
	assert_int_equal(cli_parse(1, none, &o, err, sizeof(err)), 0);
	assert_int_equal(o.action, CLI_RUN);
	assert_int_equal(o.first_arg, 1);
	assert_null(o.api_sock);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cli_values_flags_and_the_command),
		cmocka_unit_test(test_cli_refusals_in_firecrackers_words),
		cmocka_unit_test(test_cli_answering_options),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
