/* Unit tests for machine configuration checks: each refusal names its key or file. */
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "ember/config.h"

static struct vm_config good(void)
{
	struct vm_config c;

	vm_config_init(&c);
	c.kernel = (char *)"/proc/self/exe";
	return c;
}

static void expect_refusal(const struct vm_config *c, const char *needle)
{
	char err[256] = "";

	assert_int_not_equal(vm_config_check(c, err, sizeof(err)), 0);
	if (!strstr(err, needle))
		fail_msg("message '%s' does not contain '%s'", err, needle);
}

static void test_config_defaults_pass(void **state)
{
	struct vm_config c = good();
	char err[256];

	(void)state;
	assert_int_equal(c.vcpus, 1);
	assert_int_equal(c.mem_mib, 128);
	assert_int_equal(vm_config_check(&c, err, sizeof(err)), 0);
}

static void test_config_rejects_vcpus_out_of_range(void **state)
{
	struct vm_config c = good();

	(void)state;
	c.vcpus = 0;
	expect_refusal(&c, "vcpus: 0 is out of range 1..32");
	c.vcpus = 33;
	expect_refusal(&c, "vcpus: 33 is out of range");
	c.vcpus = 32;
	assert_int_equal(vm_config_check(&c, (char[64]){ 0 }, 64), 0);
}

static void test_config_rejects_memory_beyond_host(void **state)
{
	struct vm_config c = good();

	(void)state;
	c.mem_mib = vm_config_host_mem_mib() + 1;
	expect_refusal(&c, "more than this host has");
	c.mem_mib = 8;
	expect_refusal(&c, "less than the minimum");
	c.mem_mib = 129;
	c.mem_backing = GUEST_MEM_HUGETLB;
	expect_refusal(&c, "not a multiple of 2 MiB");
}

static void test_config_names_missing_files(void **state)
{
	struct vm_config c = good();

	(void)state;
	c.kernel = NULL;
	expect_refusal(&c, "kernel: missing");
	c.kernel = (char *)"/nonexistent/bzImage";
	expect_refusal(&c, "kernel /nonexistent/bzImage: No such file or directory");
	c.kernel = (char *)"/proc/self/exe";
	c.initrd = (char *)"/nonexistent/initrd";
	expect_refusal(&c, "initrd /nonexistent/initrd");
}

/* A drive must be a regular file or a block device; the check only stats, so a FIFO with
 * no writer is refused at once (the alarm turns a hang into a failure). */
static void test_config_rejects_a_drive_that_is_not_a_file(void **state)
{
	char dir[] = "/tmp/ember-cfg-XXXXXX", fifo[64], want[160];
	struct vm_config c = good();

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(fifo, sizeof(fifo), "%s/pipe", dir);
	assert_int_equal(mkfifo(fifo, 0600), 0);
	alarm(10);
	c.nr_drives = 1;
	c.drives[0].id = (char *)"data";
	c.drives[0].read_only = true;
	c.drives[0].path = fifo;
	snprintf(want, sizeof(want),
		"drive 'data': the block device backing file %s is not a "
		"regular file or a block device",
		fifo);
	expect_refusal(&c, want);
	c.drives[0].path = (char *)"/dev/null";
	expect_refusal(&c, "/dev/null is not a regular file or a block device");
	c.drives[0].path = dir;
	expect_refusal(&c, "is not a regular file or a block device");
	c.drives[0].path = (char *)"/proc/self/exe";
	assert_int_equal(vm_config_check(&c, (char[64]){ 0 }, 64), 0);
	alarm(0);
	unlink(fifo);
	rmdir(dir);
}

static void test_config_checks_pmem_devices(void **state)
{
	char empty[] = "/tmp/ember-cfg-pmem-XXXXXX";
	struct vm_config c = good(), d;
	int fd = mkstemp(empty);

	(void)state;
	assert_true(fd >= 0);
	close(fd);
	c.nr_pmem = 2;
	c.pmem[0] = (struct pmem_config){ .id = (char *)"a",
		.path = (char *)"/proc/self/exe",
		.read_only = true };
	c.pmem[1] = c.pmem[0];
	expect_refusal(&c, "pmem 'a': duplicate id");
	c.pmem[1].id = (char *)"b";
	assert_int_equal(vm_config_check(&c, (char[64]){ 0 }, 64), 0);
	assert_int_equal(vm_config_copy(&d, &c), 0);
	assert_string_equal(d.pmem[1].id, "b");
	assert_ptr_not_equal(d.pmem[1].path, c.pmem[1].path);
	vm_config_deinit(&d);
	c.pmem[0].root = c.pmem[1].root = true;
	expect_refusal(&c, "pmem 'b': A root pmem device already exist");
	c.pmem[1].root = false;
	c.nr_drives = 1;
	c.drives[0] = (struct drive_config){ .id = (char *)"d",
		.path = (char *)"/proc/self/exe",
		.read_only = true,
		.root = true };
	expect_refusal(&c,
		"pmem 'a': Attempt to add pmem as a root device while the root "
		"device defined as a block device");
	c.nr_drives = 0;
	c.pmem[1].path = empty;
	c.pmem[1].read_only = false;
	expect_refusal(&c, "pmem 'b': Error backing file size is 0");
	c.pmem[1].path = (char *)"/dev/null";
	expect_refusal(&c, "pmem 'b': /dev/null is not a regular file or a block device");
	c.pmem[1].path = NULL;
	expect_refusal(&c, "pmem 'b': no path");
	c.nr_pmem = VM_MAX_PMEM + 1;
	expect_refusal(&c, "pmem: at most 8 devices");
	unlink(empty);
}

static void test_config_rejects_oversized_cmdline(void **state)
{
	struct vm_config c = good();
	static char big[5000];

	(void)state;
	memset(big, 'a', sizeof(big) - 1);
	c.cmdline = big;
	expect_refusal(&c, "cmdline: 4999 bytes");
}

static void test_config_copy_is_deep(void **state)
{
	struct vm_config c = good(), d;
	char kernel[] = "/proc/self/exe";

	(void)state;
	c.kernel = kernel;
	c.cmdline = (char *)"console=ttyS0";
	assert_int_equal(vm_config_copy(&d, &c), 0);
	kernel[1] = 'X';
	assert_string_equal(d.kernel, "/proc/self/exe");
	assert_string_equal(d.cmdline, "console=ttyS0");
	vm_config_deinit(&d);
	assert_null(d.kernel);
}

/* A tap opened at PUT: each copy holds its own descriptor of it, deinit closes it. */
static void test_config_copy_duplicates_a_tap_descriptor(void **state)
{
	struct vm_config src, dst;
	int p[2];

	(void)state;
	vm_config_init(&src);
	assert_int_equal(pipe(p), 0);
	src.nr_nets = 1;
	src.nets[0].has_fd = true;
	src.nets[0].tap_fd = p[0];
	assert_int_equal(vm_config_copy(&dst, &src), 0);
	assert_true(dst.nets[0].has_fd);
	assert_int_not_equal(dst.nets[0].tap_fd, p[0]);
	assert_true(fcntl(dst.nets[0].tap_fd, F_GETFD) & FD_CLOEXEC);
	vm_config_deinit(&src);
	assert_int_equal(fcntl(p[0], F_GETFD), -1); /* closed with its configuration */
	assert_int_equal(write(p[1], "x", 1), 1);   /* the copy's still reads the pipe */
	assert_int_equal(read(dst.nets[0].tap_fd, (char[1]){ 0 }, 1), 1);
	vm_config_deinit(&dst);
	close(p[1]);
}

static void test_config_parses_backing_names(void **state)
{
	enum guest_mem_backing b;

	(void)state;
	assert_int_equal(vm_config_parse_backing("memfd", &b), 0);
	assert_int_equal(b, GUEST_MEM_MEMFD);
	assert_int_equal(vm_config_parse_backing("2M", &b), 0);
	assert_int_equal(b, GUEST_MEM_HUGETLB);
	assert_int_not_equal(vm_config_parse_backing("file", &b), 0);
	assert_int_not_equal(vm_config_parse_backing("", &b), 0);
	assert_string_equal(vm_config_backing_name(GUEST_MEM_ANON), "anon");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_config_defaults_pass),
		cmocka_unit_test(test_config_rejects_vcpus_out_of_range),
		cmocka_unit_test(test_config_rejects_memory_beyond_host),
		cmocka_unit_test(test_config_names_missing_files),
		cmocka_unit_test(test_config_rejects_a_drive_that_is_not_a_file),
		cmocka_unit_test(test_config_checks_pmem_devices),
		cmocka_unit_test(test_config_rejects_oversized_cmdline),
		cmocka_unit_test(test_config_copy_is_deep),
		cmocka_unit_test(test_config_copy_duplicates_a_tap_descriptor),
		cmocka_unit_test(test_config_parses_backing_names),
	};
	return cmocka_run_group_tests_name("config", tests, NULL, NULL);
}
