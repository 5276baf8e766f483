/* Unit tests for --seccomp-filter FILE: a good file is read, each kind of bad input is
 * refused with a message naming the place, dword checks compare exactly the low 32 bits,
 * and a filter built from a file, loaded in a forked child, lets its calls through and
 * stops the others. Filters go on only in children, never in the test process. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "../../src/security/seccomp_file_internal.h"
#include "ember/seccomp_file.h"

/* The example: a trap-by-default thread with every kind of check, and an errno thread. */
static const char good[] =
	"{\n"
	"  \"vcpu\": {\n"
	"    \"default_action\": \"trap\",\n"
	"    \"filter_action\": \"allow\",\n"
	"    \"filter\": [\n"
	"      { \"syscall\": \"exit_group\", \"comment\": \"the child's exit\" },\n"
	"      { \"syscall\": \"getpid\" },\n"
	"      { \"syscall\": \"fcntl\", \"args\": [\n"
	"        { \"index\": 1, \"type\": \"dword\", \"op\": \"eq\", \"val\": 1,\n"
	"          \"comment\": \"F_GETFD\" } ] },\n"
	"      { \"syscall\": \"getpriority\", \"args\": [\n"
	"        { \"index\": 0, \"type\": \"dword\", \"op\": \"gt\", \"val\": 100 },\n"
	"        { \"index\": 1, \"type\": \"qword\", \"op\": \"lt\", \"val\": 50 } ] },\n"
	"      { \"syscall\": \"getsid\", \"args\": [\n"
	"        { \"index\": 0, \"type\": \"qword\",\n"
	"          \"op\": { \"masked_eq\": 18374686479671623680 },\n"
	"          \"val\": 1297036692682702848, \"comment\": \"top byte 0x12\" } ] }\n"
	"    ]\n"
	"  },\n"
	"  \"block_io\": {\n"
	"    \"default_action\": \"allow\",\n"
	"    \"filter_action\": { \"errno\": 1 },\n"
	"    \"filter\": [ { \"syscall\": \"getppid\" } ]\n"
	"  },\n"
	"  \"uffd_watch\": {\n"
	"    \"default_action\": \"kill_process\",\n"
	"    \"filter_action\": \"log\",\n"
	"    \"filter\": []\n"
	"  },\n"
	"  \"devices\": {\n"
	"    \"default_action\": \"kill_thread\",\n"
	"    \"filter_action\": { \"trace\": 7 },\n"
	"    \"filter\": [ { \"syscall\": \"read\", \"args\": [\n"
	"      { \"index\": 2, \"type\": \"qword\", \"op\": \"ge\", \"val\": 0 },\n"
	"      { \"index\": 0, \"type\": \"dword\", \"op\": \"ne\", \"val\": 3 } ] } ]\n"
	"  }\n"
	"}\n";

static void test_seccomp_file_builds_each_thread_of_a_good_file(void **state)
{
	static const char *const threads[] = { "vcpu", "block_io", "uffd_watch", "devices" };
	struct seccomp_file *f;
	scmp_filter_ctx ctx;
	char err[256] = "";

	(void)state;
	f = seccomp_file_parse(good, strlen(good), err, sizeof(err));
	assert_non_null(f);
	for (unsigned i = 0; i < 4; i++) {
		ctx = seccomp_file_filter(f, threads[i], err, sizeof(err));
		assert_non_null(ctx);
		seccomp_release(ctx);
	}
	assert_null(seccomp_file_filter(f, "api", err, sizeof(err)));
	assert_string_equal(err, "seccomp filter: the file has no filter for thread 'api'");
	seccomp_file_free(f);
	seccomp_file_free(NULL);
}

#define THREAD(rules) \
	"{\"vcpu\": {\"default_action\": \"trap\", \"filter_action\": \"allow\", " \
	"\"filter\": [" rules "]}}"
#define CHECK1(check) THREAD("{\"syscall\": \"ioctl\", \"args\": [" check "]}")
#define ARG(i, type, op, val) \
	"{\"index\": " #i ", \"type\": \"" type "\", \"op\": " op ", \"val\": " val "}"

static void test_seccomp_file_refuses_each_bad_input_with_its_place(void **state)
{
	static const struct {
		const char *json, *want;
	} cases[] = {
		{ "{\"vcpu\": ", "seccomp filter: not valid JSON (at byte 9)" },
		{ "[]", "seccomp filter: the file is not a JSON object mapping thread names" },
		{ "{}", "seccomp filter: the file names no thread" },
		{ "{\"vc pu\": {}}", "thread name 'vc pu' is not 1 to 64 letters" },
		{ "{\"vcpu\": {\"default_action\": \"trap\", \"filter_action\": \"allow\", "
		  "\"filter\": []}, \"vcpu\": {}}",
			"thread 'vcpu' appears twice" },
		{ "{\"vcpu\": []}", "thread 'vcpu': the thread's filter is not an object" },
		{ "{\"vcpu\": {\"default_action\": \"trap\", \"filter_action\": \"allow\", "
		  "\"filter\": [], \"extra\": 1}}",
			"seccomp filter: thread 'vcpu': unknown key 'extra' in the thread's filter" },
		{ "{\"vcpu\": {\"default_action\": \"trap\", \"filter\": []}}",
			"thread 'vcpu': the thread's filter has no 'filter_action'" },
		{ "{\"vcpu\": {\"default_action\": \"alow\", \"filter_action\": \"allow\", "
		  "\"filter\": []}}",
			"thread 'vcpu': default_action: unknown action 'alow' (" },
		{ "{\"vcpu\": {\"default_action\": {\"errno\": 4096}, \"filter_action\": "
		  "\"allow\", \"filter\": []}}",
			"thread 'vcpu': default_action errno is not an integer from 0 to 4095" },
		{ "{\"vcpu\": {\"default_action\": {\"errno\": 1, \"trace\": 1}, "
		  "\"filter_action\": \"allow\", \"filter\": []}}",
			"default_action: unknown action" },
		{ "{\"vcpu\": {\"default_action\": \"trap\", \"filter_action\": \"trap\", "
		  "\"filter\": []}}",
			"thread 'vcpu': filter_action is the same as default_action" },
		{ "{\"vcpu\": {\"default_action\": \"trap\", \"filter_action\": \"allow\", "
		  "\"filter\": {}}}",
			"thread 'vcpu': filter is not an array" },
		{ THREAD("{\"syscall\": \"read\"}, {\"syscall\": \"fooo\"}"),
			"seccomp filter: thread 'vcpu', rule 2: unknown system call 'fooo' on this "
			"architecture" },
		{ THREAD("{\"syscall\": \"socketcall\"}"),
			"rule 1: unknown system call 'socketcall'" },
		{ THREAD("{\"sycall\": \"read\"}"), "rule 1: unknown key 'sycall' in the rule" },
		{ THREAD("{\"comment\": \"x\"}"), "rule 1: the rule has no 'syscall'" },
		{ THREAD("{\"syscall\": \"read\", \"syscall\": \"write\"}"),
			"rule 1: key 'syscall' given twice in the rule" },
		{ THREAD("{\"syscall\": \"read\", \"comment\": 5}"),
			"rule 1 (read): comment is not" },
		{ THREAD("{\"syscall\": \"read\", \"args\": {}}"),
			"rule 1 (read): args is not an array" },
		{ CHECK1(ARG(6, "dword", "\"eq\"", "1")),
			"seccomp filter: thread 'vcpu', rule 1 (ioctl), check 1: index is not an integer "
			"from 0 to 5" },
		{ CHECK1(ARG(1, "word", "\"eq\"", "1")),
			"check 1: type is not \"dword\" or \"qword\"" },
		{ CHECK1(ARG(1, "dword", "\"eqq\"", "1")), "check 1: unknown op (eq, ne, lt" },
		{ CHECK1(ARG(1, "dword", "{\"masked_eq\": 1, \"x\": 1}", "1")), "unknown op" },
		{ CHECK1(ARG(1, "dword", "{\"masked_eq\": 4294967296}", "1")),
			"check 1: masked_eq mask is not an integer from 0 to 4294967295" },
		{ CHECK1(ARG(1, "dword", "\"eq\"", "4294967296")),
			"check 1: dword val is not an integer from 0 to 4294967295" },
		{ CHECK1(ARG(1, "qword", "\"eq\"", "18446744073709551616")),
			"check 1: val is not an integer from 0 to 18446744073709551615" },
		{ CHECK1(ARG(1, "qword", "\"eq\"", "-1")), "check 1: val is not an integer" },
		{ CHECK1(ARG(1, "qword", "\"eq\"", "1.0")), "check 1: val is not an integer" },
		{ CHECK1(ARG(1, "qword", "\"eq\"", "1e3")), "check 1: val is not an integer" },
		{ CHECK1(ARG(1, "qword", "\"eq\"", "\"1\"")), "check 1: val is not an integer" },
		{ CHECK1("{\"index\": 1, \"type\": \"qword\", \"op\": \"eq\"}"),
			"check 1: the check has no 'val'" },
		{ CHECK1("{\"index\": 1, \"type\": \"qword\", \"op\": \"eq\", \"val\": 1, "
			 "\"coment\": \"x\"}"),
			"check 1: unknown key 'coment' in the check" },
		{ CHECK1(ARG(1, "qword", "\"eq\"", "1") "," ARG(1, "qword", "\"ne\"", "2")),
			"rule 1 (ioctl), check 2: argument 1 is checked twice" },
		{ CHECK1(ARG(0, "qword", "\"eq\"", "1") "," ARG(1, "qword", "\"eq\"",
			  "1") "," ARG(2, "qword", "\"eq\"", "1") "," ARG(3, "qword", "\"eq\"",
			  "1") "," ARG(4, "qword", "\"eq\"", "1") "," ARG(5, "qword", "\"eq\"",
			  "1") "," ARG(0, "qword", "\"eq\"", "1")),
			"rule 1 (ioctl), check 7: more than 6 checks" },
		{ CHECK1(ARG(0, "dword", "\"ne\"", "1") "," ARG(1, "dword", "\"ne\"", "1")),
			"check 2: its dword checks need more than 256 libseccomp rules" },
	};
	char err[320];

	(void)state;
	for (unsigned i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		memset(err, 0, sizeof(err));
		assert_null(
			seccomp_file_parse(cases[i].json, strlen(cases[i].json), err, sizeof(err)));
		if (!strstr(err, cases[i].want))
			fail_msg("case %u: got \"%s\", want \"%s\"", i, err, cases[i].want);
	}
	/* A NUL byte, and more than the limit, whatever the text. */
	assert_null(seccomp_file_parse("{}\0", 3, err, sizeof(err)));
	assert_string_equal(err, "seccomp filter: not JSON text (a NUL byte at 2)");
	assert_null(seccomp_file_parse(good, SECCOMP_FILE_MAX + 1, err, sizeof(err)));
	assert_string_equal(err, "seccomp filter: larger than 1048576 bytes");
	/* A message cut to the caller's buffer is still a string. */
	assert_null(seccomp_file_parse("[]", 2, err, 8));
	assert_string_equal(err, "seccomp");
}

/* A file at `path` with `len` bytes of `text` (repeated spaces past its end). */
static void write_file(const char *path, const char *text, size_t len)
{
	FILE *fp = fopen(path, "w");

	assert_non_null(fp);
	for (size_t i = 0; i < len; i++)
		assert_int_not_equal(fputc(i < strlen(text) ? text[i] : ' ', fp), EOF);
	assert_int_equal(fclose(fp), 0);
}

static void test_seccomp_file_load_reads_the_file_and_names_it_in_errors(void **state)
{
	char path[] = "/tmp/ember-seccomp-file-XXXXXX", err[512], want[512];
	struct seccomp_file *f;
	int fd = mkstemp(path);

	(void)state;
	assert_true(fd >= 0);
	close(fd);
	write_file(path, good, strlen(good));
	f = seccomp_file_load(path, err, sizeof(err));
	assert_non_null(f);
	seccomp_file_free(f);

	write_file(path, THREAD("{\"syscall\": \"fooo\"}"),
		strlen(THREAD("{\"syscall\": \"fooo\"}")));
	assert_null(seccomp_file_load(path, err, sizeof(err)));
	snprintf(want, sizeof(want),
		"seccomp filter file %s: thread 'vcpu', rule 1: unknown "
		"system call 'fooo' on this architecture",
		path);
	assert_string_equal(err, want);

	/* At the limit it is read (and parsed); one byte more is refused unread. */
	write_file(path, good, SECCOMP_FILE_MAX);
	f = seccomp_file_load(path, err, sizeof(err));
	assert_non_null(f);
	seccomp_file_free(f);
	write_file(path, good, SECCOMP_FILE_MAX + 1);
	assert_null(seccomp_file_load(path, err, sizeof(err)));
	snprintf(want, sizeof(want), "seccomp filter file %s: larger than 1048576 bytes", path);
	assert_string_equal(err, want);

	assert_int_equal(unlink(path), 0);
	assert_null(seccomp_file_load(path, err, sizeof(err)));
	snprintf(want, sizeof(want),
		"seccomp filter file %s: cannot open: No such file or "
		"directory",
		path);
	assert_string_equal(err, want);
}

/* Whether the masked alternatives of `c` hold for argument `x`, as the kernel checks them. */
static int holds(const struct sf_cond *c, uint64_t x)
{
	struct scmp_arg_cmp alt[SF_MAX_ALTS];
	unsigned n = sf_cond_alternatives(c, alt);

	for (unsigned i = 0; i < n; i++) {
		assert_int_equal(alt[i].op, SCMP_CMP_MASKED_EQ);
		assert_true(alt[i].datum_a <= 0xffffffffu); /* the upper half is never looked at */
		if ((x & alt[i].datum_a) == alt[i].datum_b)
			return 1;
	}
	return 0;
}

static int reference(enum sf_op op, uint32_t x, uint32_t v, uint32_t mask)
{
	switch (op) {
	case SF_EQ:
		return x == v;
	case SF_NE:
		return x != v;
	case SF_LT:
		return x < v;
	case SF_LE:
		return x <= v;
	case SF_GT:
		return x > v;
	case SF_GE:
		return x >= v;
	case SF_MASKED_EQ:
		return (x & mask) == v;
	}
	return -1;
}

/* Every operator on edge values, with the upper half of the argument zero or not. */
static void test_seccomp_file_dword_checks_compare_the_low_32_bits(void **state)
{
	static const uint32_t vals[] = { 0, 1, 2, 5, 100, 0x7fffffff, 0x80000000, 0x80000001,
		0xaaaaaaaa, 0xfffffffe, 0xffffffff };
	static const uint64_t highs[] = { 0, 0xffffffff00000000ull, 0x1234567800000000ull };

	(void)state;
	for (int op = SF_EQ; op <= SF_MASKED_EQ; op++)
		for (unsigned i = 0; i < sizeof(vals) / sizeof(vals[0]); i++) {
			struct sf_cond c = { .index = 2,
				.dword = true,
				.op = (enum sf_op)op,
				.mask = 0xff00ff00u,
				.val = vals[i] };

			if (op == SF_MASKED_EQ)
				c.val &= c.mask;
			for (unsigned j = 0; j < sizeof(vals) / sizeof(vals[0]); j++)
				for (int d = -1; d <= 1; d++)
					for (unsigned h = 0; h < 3; h++) {
						uint32_t x = vals[j] + (uint32_t)d;

						if (holds(&c, highs[h] | x) !=
							reference(c.op, x, (uint32_t)c.val,
								0xff00ff00u))
							fail_msg("op %d val %#x arg %#llx", op,
								vals[i],
								(unsigned long long)(highs[h] | x));
					}
		}
}

struct call {
	long nr;
	uint64_t a0, a1;
	int want; /* 0: returned; SIGSYS: trapped; EPERM: the errno action */
};

/* In a child: build `thread`'s filter from the example, load it, make the call, and exit
 * through the raw call (a sanitizer's exit hooks would make calls the filter forbids). */
static int run_filtered(const char *thread, const struct call *c)
{
	int status = 0;
	pid_t pid = fork();

	assert_true(pid >= 0);
	if (pid == 0) {
		struct rlimit no_core = { 0, 0 };
		struct seccomp_file *f;
		scmp_filter_ctx ctx;
		char err[256];
		long r;

		setrlimit(RLIMIT_CORE, &no_core);
		f = seccomp_file_parse(good, strlen(good), err, sizeof(err));
		ctx = f ? seccomp_file_filter(f, thread, err, sizeof(err)) : NULL;
		if (!ctx || seccomp_load(ctx))
			_exit(100);
		r = syscall(c->nr, c->a0, c->a1);
		syscall(SYS_exit_group, r == -1 && errno == EPERM ? EPERM : 0);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	if (WIFSIGNALED(status))
		return WTERMSIG(status) == SIGSYS ? SIGSYS : 200 + WTERMSIG(status);
	return WEXITSTATUS(status);
}

static void test_seccomp_file_filter_in_a_child_allows_and_traps(void **state)
{
	static const struct {
		const char *thread;
		struct call call;
	} cases[] = {
		{ "vcpu", { SYS_getpid, 0, 0, 0 } },
		{ "vcpu", { SYS_getppid, 0, 0, SIGSYS } },
		/* fcntl(0, F_GETFD) with junk in the upper half of cmd: a dword looks below it. */
		{ "vcpu", { SYS_fcntl, 0, 0xdead000000000001ull, 0 } },
		{ "vcpu", { SYS_fcntl, 0, 3 /* F_GETFL */, SIGSYS } },
		{ "vcpu", { SYS_getpriority, 101, 0, 0 } },
		{ "vcpu", { SYS_getpriority, 0x100000065ull, 49, 0 } },
		{ "vcpu", { SYS_getpriority, 100, 0, SIGSYS } },
		{ "vcpu", { SYS_getpriority, 0x100000005ull, 0, SIGSYS } },
		{ "vcpu", { SYS_getpriority, 101, 50, SIGSYS } },
		{ "vcpu", { SYS_getsid, 0x1200000000000042ull, 0, 0 } },
		{ "vcpu", { SYS_getsid, 0x1300000000000042ull, 0, SIGSYS } },
		{ "block_io", { SYS_getppid, 0, 0, EPERM } },
		{ "block_io", { SYS_getpid, 0, 0, 0 } },
	};

	(void)state;
	for (unsigned i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int got = run_filtered(cases[i].thread, &cases[i].call);

		if (got != cases[i].call.want)
			fail_msg("case %u: got %d, want %d", i, got, cases[i].call.want);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_seccomp_file_builds_each_thread_of_a_good_file),
		cmocka_unit_test(test_seccomp_file_refuses_each_bad_input_with_its_place),
		cmocka_unit_test(test_seccomp_file_load_reads_the_file_and_names_it_in_errors),
		cmocka_unit_test(test_seccomp_file_dword_checks_compare_the_low_32_bits),
		cmocka_unit_test(test_seccomp_file_filter_in_a_child_allows_and_traps),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
