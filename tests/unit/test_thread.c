/* Unit tests for thread_spawn: the stack size and signal mask a new thread starts with,
 * and the caller's own mask left alone. */
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "ember/thread.h"

struct seen {
	size_t stack;
	sigset_t mask;
};

static void *look(void *arg)
{
	struct seen *s = arg;
	pthread_attr_t attr;

	if (!pthread_getattr_np(pthread_self(), &attr)) {
		pthread_attr_getstacksize(&attr, &s->stack);
		pthread_attr_destroy(&attr);
	}
	pthread_sigmask(SIG_SETMASK, NULL, &s->mask);
	return NULL;
}

static struct seen spawn(const sigset_t *mask)
{
	struct seen s = { 0 };
	sigset_t before, after;
	pthread_t t;

	pthread_sigmask(SIG_SETMASK, NULL, &before);
	assert_int_equal(thread_spawn(&t, look, &s, mask), 0);
	assert_int_equal(pthread_join(t, NULL), 0);
	pthread_sigmask(SIG_SETMASK, NULL, &after);
	for (int sig = 1; sig < SIGRTMIN; sig++)
		assert_int_equal(sigismember(&before, sig), sigismember(&after, sig));
	return s;
}

/* No stack can hold an aligned 2 MiB range (a transparent huge page). */
static void test_thread_spawn_small_stack(void **state)
{
	struct seen s;

	(void)state;
	s = spawn(NULL);
	assert_int_equal(s.stack, THREAD_STACK_SIZE);
	assert_true(s.stack < (2u << 20));
}

static void test_thread_spawn_blocks_every_signal_without_a_mask(void **state)
{
	struct seen s;

	(void)state;
	s = spawn(NULL);
	assert_true(sigismember(&s.mask, SIGINT));
	assert_true(sigismember(&s.mask, SIGTERM));
	assert_true(sigismember(&s.mask, SIGUSR1));
}

static void test_thread_spawn_takes_the_given_mask(void **state)
{
	sigset_t mask;
	struct seen s;

	(void)state;
	sigfillset(&mask);
	sigdelset(&mask, SIGUSR1);
	sigdelset(&mask, SIGSEGV);
	s = spawn(&mask);
	assert_false(sigismember(&s.mask, SIGUSR1));
	assert_false(sigismember(&s.mask, SIGSEGV));
	assert_true(sigismember(&s.mask, SIGINT));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_thread_spawn_small_stack),
		cmocka_unit_test(test_thread_spawn_blocks_every_signal_without_a_mask),
		cmocka_unit_test(test_thread_spawn_takes_the_given_mask),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
