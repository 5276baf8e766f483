/* Unit tests for ember-jailer's cgroup v2 names: settings, controllers, parents, the mount. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "jailer.h"

static void test_jailer_cgroup_settings_are_one_file_and_a_value(void **state)
{
	char err[256];

	(void)state;
	assert_int_equal(cgroup_setting_check("memory.max=268435456", err, sizeof(err)), 0);
	assert_int_equal(cgroup_setting_check("cpu.max=50000 100000", err, sizeof(err)), 0);
	assert_int_equal(cgroup_setting_check("memory.swap.max=0", err, sizeof(err)), 0);
	assert_int_equal(cgroup_setting_check("memory.max", err, sizeof(err)), -EINVAL);
	assert_int_equal(cgroup_setting_check("=1", err, sizeof(err)), -EINVAL);
	assert_int_equal(cgroup_setting_check("memory=1", err, sizeof(err)), -EINVAL);
	assert_int_equal(cgroup_setting_check(".max=1", err, sizeof(err)), -EINVAL);
	assert_int_equal(cgroup_setting_check("a/memory.max=1", err, sizeof(err)), -EINVAL);
	assert_int_equal(cgroup_setting_check("Memory.max=1", err, sizeof(err)), -EINVAL);
	assert_int_equal(cgroup_setting_check("memory.max=", err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "--cgroup: memory.max has an empty value");
}

static void test_jailer_cgroup_controller_of_a_file(void **state)
{
	char c[16];

	(void)state;
	assert_int_equal(cgroup_controller("memory.max=1", c, sizeof(c)), 0);
	assert_string_equal(c, "memory");
	assert_int_equal(cgroup_controller("cpuset.cpus=0-1", c, sizeof(c)), 0);
	assert_string_equal(c, "cpuset");
	/* Core files need no controller enabled. */
	assert_int_equal(cgroup_controller("cgroup.max.depth=2", c, sizeof(c)), 0);
	assert_string_equal(c, "");
	assert_int_equal(cgroup_controller("averyveryverylongname.max=1", c, sizeof(c)),
		-ENAMETOOLONG);
}

static void test_jailer_cgroup_parent_is_relative_and_plain(void **state)
{
	(void)state;
	assert_true(cgroup_parent_valid("ember"));
	assert_true(cgroup_parent_valid("fc/vms/a-1"));
	assert_false(cgroup_parent_valid(""));
	assert_false(cgroup_parent_valid("/ember"));
	assert_false(cgroup_parent_valid("ember/"));
	assert_false(cgroup_parent_valid("a//b"));
	assert_false(cgroup_parent_valid("."));
	assert_false(cgroup_parent_valid("a/.."));
	assert_true(cgroup_parent_valid("a/...")); /* a name, not a step up */
}

static void test_jailer_cgroup_mount_found_in_proc_mounts(void **state)
{
	static const char hybrid[] = "proc /proc proc rw,nosuid 0 0\n"
				     "tmpfs /sys/fs/cgroup tmpfs rw,relatime,mode=755 0 0\n"
				     "cgroup /sys/fs/cgroup/memory cgroup rw,relatime,memory 0 0\n"
				     "cgroup2 /sys/fs/cgroup/unified cgroup2 rw,relatime 0 0\n";
	static const char escaped[] = "none /mnt/my\\040cgroups cgroup2 rw 0 0";
	static const char v1_only[] = "cgroup /sys/fs/cgroup/cpu cgroup rw,cpu 0 0\n";
	char out[64], tiny[8];

	(void)state;
	assert_int_equal(cgroup_mount_find(hybrid, out, sizeof(out)), 0);
	assert_string_equal(out, "/sys/fs/cgroup/unified");
	assert_int_equal(cgroup_mount_find(escaped, out, sizeof(out)), 0);
	assert_string_equal(out, "/mnt/my cgroups");
	assert_int_equal(cgroup_mount_find(v1_only, out, sizeof(out)), -ENOENT);
	assert_int_equal(cgroup_mount_find("", out, sizeof(out)), -ENOENT);
	assert_int_equal(cgroup_mount_find(hybrid, tiny, sizeof(tiny)), -ENAMETOOLONG);
}

static void test_jailer_cgroup_list_has_whole_words(void **state)
{
	(void)state;
	assert_true(cgroup_list_has("cpuset cpu io memory pids\n", "memory"));
	assert_true(cgroup_list_has("cpuset cpu io memory pids\n", "cpu"));
	assert_true(cgroup_list_has("memory", "memory"));
	assert_false(cgroup_list_has("cpuset io\n", "cpu"));
	assert_false(cgroup_list_has("", "memory"));
	assert_false(cgroup_list_has("memory", ""));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_jailer_cgroup_settings_are_one_file_and_a_value),
		cmocka_unit_test(test_jailer_cgroup_controller_of_a_file),
		cmocka_unit_test(test_jailer_cgroup_parent_is_relative_and_plain),
		cmocka_unit_test(test_jailer_cgroup_mount_found_in_proc_mounts),
		cmocka_unit_test(test_jailer_cgroup_list_has_whole_words),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
