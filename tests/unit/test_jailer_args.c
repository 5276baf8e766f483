/* Unit tests for ember-jailer's command line: Firecracker's options, both spellings, refusals. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "jailer.h"

#define REQUIRED "--id vm-1 --exec-file /usr/bin/ember --uid 1234 --gid 1235"

static char words[1024];
static char *argv_buf[64];
static char err[512];

/* "ember-jailer" + line split at spaces; returns jail_args_parse's answer. */
static int parse(struct jail_args *a, const char *line)
{
	int argc = 0;

	snprintf(words, sizeof(words), "ember-jailer %s", line);
	err[0] = 0;
	for (char *w = strtok(words, " "); w && argc < 63; w = strtok(NULL, " "))
		argv_buf[argc++] = w;
	argv_buf[argc] = NULL;
	return jail_args_parse(a, argc, argv_buf, err, sizeof(err));
}

/* The line is refused with a message holding want. */
static void refused(const char *line, const char *want)
{
	struct jail_args a;

	assert_int_equal(parse(&a, line), -EINVAL);
	if (!strstr(err, want))
		fail_msg("'%s': got '%s', want '%s'", line, err, want);
	assert_null(strchr(err, '\n'));
}

static void test_jailer_args_required_only_gets_the_defaults(void **state)
{
	struct jail_args a;

	(void)state;
	assert_int_equal(parse(&a, REQUIRED), 0);
	assert_string_equal(a.id, "vm-1");
	assert_string_equal(a.exec_file, "/usr/bin/ember");
	assert_string_equal(a.exec_name, "ember");
	assert_int_equal(a.uid, 1234);
	assert_int_equal(a.gid, 1235);
	assert_string_equal(a.chroot_base, "/srv/jailer");
	assert_int_equal(a.no_file, 2048);
	assert_false(a.has_fsize);
	assert_null(a.netns);
	assert_null(a.parent_cgroup);
	assert_int_equal(a.nr_cgroups, 0);
	assert_false(a.daemonize || a.new_pid_ns || a.help);
	assert_int_equal(a.vmm_argc, 0);
}

static void test_jailer_args_both_spellings_and_vmm_args(void **state)
{
	struct jail_args a;

	(void)state;
	assert_int_equal(parse(&a,
				 "--id=a --exec-file=ember --uid=0 --gid 4294967294 "
				 "--chroot-base-dir=/tmp/j --netns /var/run/netns/x "
				 "--cgroup memory.max=268435456 --cgroup=cpu.weight=50 "
				 "--cgroup-version=2 --parent-cgroup=fc/vms "
				 "--resource-limit fsize=1048576 --resource-limit=no-file=64 "
				 "--daemonize --new-pid-ns -- --api-sock /api.sock --id=x"),
		0);
	assert_string_equal(a.exec_name, "ember");
	assert_int_equal(a.uid, 0);
	assert_int_equal(a.gid, 4294967294u);
	assert_string_equal(a.chroot_base, "/tmp/j");
	assert_string_equal(a.netns, "/var/run/netns/x");
	assert_int_equal(a.nr_cgroups, 2);
	assert_string_equal(a.cgroups[0], "memory.max=268435456");
	assert_string_equal(a.cgroups[1], "cpu.weight=50");
	assert_string_equal(a.parent_cgroup, "fc/vms");
	assert_true(a.has_fsize);
	assert_int_equal(a.fsize, 1048576);
	assert_int_equal(a.no_file, 64);
	assert_true(a.daemonize && a.new_pid_ns);
	/* After --, everything is the VMM's, even what looks like the jailer's options. */
	assert_int_equal(a.vmm_argc, 3);
	assert_string_equal(a.vmm_argv[0], "--api-sock");
	assert_string_equal(a.vmm_argv[2], "--id=x");
}

static void test_jailer_args_help_stops_at_once(void **state)
{
	struct jail_args a;

	(void)state;
	assert_int_equal(parse(&a, "--help --bogus"), 0);
	assert_true(a.help);
	assert_int_equal(parse(&a, "-h"), 0);
	assert_true(a.help);
}

static void test_jailer_args_id_is_1_to_64_of_alnum_and_dash(void **state)
{
	char line[256];

	(void)state;
	assert_true(jail_id_valid("a"));
	assert_true(jail_id_valid("Vm-0-9"));
	assert_false(jail_id_valid(""));
	assert_false(jail_id_valid("a_b"));
	assert_false(jail_id_valid("../x"));
	snprintf(line, sizeof(line), "%064d", 0);
	assert_true(jail_id_valid(line));
	snprintf(line, sizeof(line), "%065d", 0);
	assert_false(jail_id_valid(line));
	refused("--id a/b --exec-file /e --uid 1 --gid 1",
		"--id: 'a/b' is not 1 to 64 characters of A-Z, a-z, 0-9 and -");
	refused("--id= --exec-file /e --uid 1 --gid 1", "--id: '' is not 1 to 64");
}

static void test_jailer_args_missing_and_malformed_are_refused(void **state)
{
	(void)state;
	refused("--exec-file /e --uid 1 --gid 1", "missing --id");
	refused("--id a --uid 1 --gid 1", "missing --exec-file");
	refused("--id a --exec-file /e --gid 1", "missing --uid");
	refused("--id a --exec-file /e --uid 1", "missing --gid");
	refused(REQUIRED " --bogus", "unknown option '--bogus' (VMM arguments go after --)");
	refused(REQUIRED " --api-sock=/x", "unknown option '--api-sock'");
	refused(REQUIRED " --netns", "--netns needs a value");
	refused(REQUIRED " --id b", "--id given twice");
	refused(REQUIRED " --daemonize=yes", "--daemonize takes no value");
	refused("--id a --exec-file /e --uid -1 --gid 1",
		"--uid: '-1' is not a number from 0 to "
		"4294967294");
	refused("--id a --exec-file /e --uid 1 --gid 4294967295", "--gid: '4294967295' is not");
	refused("--id a --exec-file /e --uid 12a --gid 1", "--uid: '12a' is not");
	refused("--id a --exec-file /e --uid +1 --gid 1", "--uid: '+1' is not");
	refused("--id a --exec-file /dir/ --uid 1 --gid 1", "--exec-file: '/dir/' does not name");
	refused(REQUIRED " --chroot-base-dir srv", "--chroot-base-dir: 'srv' is not an absolute");
	refused(REQUIRED " --netns x", "--netns: 'x' is not an absolute path");
}

static void test_jailer_args_cgroup_options_are_checked(void **state)
{
	(void)state;
	refused(REQUIRED " --cgroup-version 1",
		"--cgroup-version 1: cgroup v1 is not supported, use --cgroup-version 2");
	refused(REQUIRED " --cgroup-version 3", "--cgroup-version: '3' is not 2");
	refused(REQUIRED " --cgroup memory.max", "--cgroup: 'memory.max' is not FILE=VALUE");
	refused(REQUIRED " --cgroup ../x.max=1", "--cgroup: '../x.max' is not a cgroup file name");
	refused(REQUIRED " --cgroup memory.max=", "--cgroup: memory.max has an empty value");
	refused(REQUIRED " --parent-cgroup /abs", "--parent-cgroup: '/abs' is not a relative");
	refused(REQUIRED " --parent-cgroup a/../b", "--parent-cgroup: 'a/../b' is not");
}

static void test_jailer_args_resource_limits_are_checked(void **state)
{
	(void)state;
	refused(REQUIRED " --resource-limit nproc=5",
		"--resource-limit: unknown resource 'nproc' (fsize or no-file)");
	refused(REQUIRED " --resource-limit fsize",
		"--resource-limit: 'fsize' is not "
		"RESOURCE=VALUE");
	refused(REQUIRED " --resource-limit no-file=lots", "--resource-limit: 'lots' is not a");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_jailer_args_required_only_gets_the_defaults),
		cmocka_unit_test(test_jailer_args_both_spellings_and_vmm_args),
		cmocka_unit_test(test_jailer_args_help_stops_at_once),
		cmocka_unit_test(test_jailer_args_id_is_1_to_64_of_alnum_and_dash),
		cmocka_unit_test(test_jailer_args_missing_and_malformed_are_refused),
		cmocka_unit_test(test_jailer_args_cgroup_options_are_checked),
		cmocka_unit_test(test_jailer_args_resource_limits_are_checked),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
