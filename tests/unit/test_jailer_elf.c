/* Unit tests for ember-jailer's ELF reader: the interpreter and libraries a program needs. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "jailer.h"

static bool needs(const struct elf_deps *d, const char *prefix)
{
	for (unsigned i = 0; i < d->nr_needed; i++)
		if (!strncmp(d->needed[i], prefix, strlen(prefix)))
			return true;
	return false;
}

/* This test program is linked with cmocka and libc: its own file says so. */
static void test_jailer_elf_reads_its_own_needs(void **state)
{
	struct elf_deps d;
	char err[256];

	(void)state;
	assert_int_equal(elf_deps_read("/proc/self/exe", &d, err, sizeof(err)), 0);
	assert_true(d.interp[0] == '/');
	assert_true(needs(&d, "libcmocka.so"));
	assert_true(needs(&d, "libc.so"));
	assert_int_not_equal(d.machine, 0);
}

/* A file that is not an ELF file, or is cut short, is named in the error. */
static void check_refused(const void *bytes, size_t len)
{
	char path[] = "/tmp/test_jailer_elf.XXXXXX", err[256];
	struct elf_deps d;
	int fd = mkstemp(path);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, bytes, len), (ssize_t)len);
	close(fd);
	assert_int_equal(elf_deps_read(path, &d, err, sizeof(err)), -ENOEXEC);
	assert_non_null(strstr(err, path));
	assert_non_null(strstr(err, "not a 64-bit little-endian ELF file"));
	unlink(path);
}

static void test_jailer_elf_refuses_what_is_not_elf(void **state)
{
	static const char script[] = "#!/bin/sh\necho hello\n";
	static const char cut[] = "\x7f"
				  "ELF\x02\x01\x01";
	char elf32[64] = "\x7f"
			 "ELF\x01\x01\x01";

	(void)state;
	check_refused(script, sizeof(script) - 1);
	check_refused(cut, sizeof(cut) - 1);
	check_refused(elf32, sizeof(elf32));
}

static void test_jailer_elf_missing_file_is_named(void **state)
{
	struct elf_deps d;
	char err[256];

	(void)state;
	assert_int_equal(elf_deps_read("/nonexistent/ember", &d, err, sizeof(err)), -ENOENT);
	assert_string_equal(err, "/nonexistent/ember: No such file or directory");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_jailer_elf_reads_its_own_needs),
		cmocka_unit_test(test_jailer_elf_refuses_what_is_not_elf),
		cmocka_unit_test(test_jailer_elf_missing_file_is_named),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
