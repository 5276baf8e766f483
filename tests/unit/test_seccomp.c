/* Unit tests for the seccomp allowlists: each kind lets its own calls through, and a call
 * outside it ends the process with 148 and a line naming the call and the thread kind.
 * Every filter goes on in a forked child, never in the test process. */
#include <errno.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "ember/seccomp.h"

/* Child exit codes for the steps before the forbidden call. */
enum { STEP_SETUP = 10, STEP_INSTALL, STEP_ALLOWED, STEP_SURVIVED };

/* What the forked child passes to seccomp_setup (--no-seccomp or not). */
static struct seccomp_opts child_opts;

typedef int (*allowed_fn)(int fd);

/* Run in a child: install `kind`, make the allowed calls, then getppid (on no list).
 * Returns the child's exit status; *out gets what it wrote to stderr. */
static int run_child(enum seccomp_kind kind, allowed_fn allowed, char *out, size_t len)
{
	int errp[2], data[2], status = 0;
	ssize_t n, got = 0;
	pid_t pid;

	assert_int_equal(pipe(errp), 0);
	assert_int_equal(pipe(data), 0);
	assert_int_equal(write(data[1], "sector", 6), 6);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		char err[160];

		dup2(errp[1], STDERR_FILENO);
		if (seccomp_setup(&child_opts, err, sizeof(err)))
			_exit(STEP_SETUP);
		if (seccomp_install(kind, err, sizeof(err)))
			_exit(STEP_INSTALL);
		if (allowed(data[0]))
			_exit(STEP_ALLOWED);
		syscall(SYS_getppid); /* raw: glibc may not make the call at all */
		_exit(STEP_SURVIVED);
	}
	close(errp[1]);
	while (got < (ssize_t)len - 1 && (n = read(errp[0], out + got, len - 1 - (size_t)got)) > 0)
		got += n;
	out[got] = '\0';
	close(errp[0]);
	close(data[0]);
	close(data[1]);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	return WEXITSTATUS(status);
}

/* The report for getppid on `thread`. */
static const char *forbidden(const char *thread)
{
	static char want[128];

	snprintf(want, sizeof(want), "ember: forbidden system call %d on %s\n", SYS_getppid,
		thread);
	return want;
}

static int block_io_calls(int fd)
{
	char buf[6];
	struct iovec v = { .iov_base = buf, .iov_len = sizeof(buf) };

	/* preadv on a pipe fails (ESPIPE) but is made, which is what the filter sees. */
	return syscall(SYS_preadv, fd, &v, 1, 0, 0) < 0 && errno != ESPIPE;
}

static int uffd_watch_calls(int fd)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	char buf[6];

	return syscall(SYS_poll, &p, 1, 0) != 1 ||
		syscall(SYS_recvfrom, fd, buf, sizeof(buf), 0, NULL, NULL) >= 0 ||
		errno != ENOTSOCK;
}

/* Each kind makes its own calls and dies on getppid; the block worker may not poll. */
static void test_seccomp_each_kind_allows_its_calls_and_ends_on_others(void **state)
{
	static const struct {
		enum seccomp_kind kind;
		allowed_fn calls;
		const char *thread;
	} cases[] = {
		{ SECCOMP_BLOCK_IO, block_io_calls, "the block I/O thread" },
		{ SECCOMP_UFFD_WATCH, uffd_watch_calls, "the uffd watch thread" },
		{ SECCOMP_BLOCK_IO, uffd_watch_calls, "the block I/O thread" },
	};
	char out[256];

	(void)state;
	child_opts.disabled = false;
	for (unsigned i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int status = run_child(cases[i].kind, cases[i].calls, out, sizeof(out));

		assert_int_equal(status, 148);
		if (i < 2)
			assert_non_null(strstr(out, forbidden(cases[i].thread)));
		else /* stopped at poll, before getppid */
			assert_non_null(strstr(out, cases[i].thread));
	}
}

static void test_seccomp_debug_switch_skips_the_filter(void **state)
{
	char out[256];

	(void)state;
	child_opts.disabled = true;
	assert_int_equal(run_child(SECCOMP_BLOCK_IO, block_io_calls, out, sizeof(out)),
		STEP_SURVIVED);
	assert_non_null(strstr(out, "WITHOUT system call filters"));
	child_opts.disabled = false;
}

static void test_seccomp_unknown_kind_is_refused(void **state)
{
	char err[160] = "";

	(void)state;
	assert_int_equal(seccomp_install((enum seccomp_kind)99, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "seccomp: unknown thread kind 99");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_seccomp_each_kind_allows_its_calls_and_ends_on_others),
		cmocka_unit_test(test_seccomp_debug_switch_skips_the_filter),
		cmocka_unit_test(test_seccomp_unknown_kind_is_refused),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
