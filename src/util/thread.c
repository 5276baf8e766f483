/* Starting ember's threads: a small stack and the signal mask they start with. */
#include "ember/thread.h"

int thread_spawn(pthread_t *t, void *(*fn)(void *), void *arg, const sigset_t *mask)
{
	pthread_attr_t attr;
	sigset_t all, old;
	int ret;

	sigfillset(&all);
	ret = pthread_attr_init(&attr);
	if (ret)
		return ret;
	ret = pthread_attr_setstacksize(&attr, THREAD_STACK_SIZE);
	/* The new thread inherits the mask in force at pthread_create. */
	if (!ret)
		ret = pthread_sigmask(SIG_SETMASK, mask ? mask : &all, &old);
	if (!ret) {
		ret = pthread_create(t, &attr, fn, arg);
		pthread_sigmask(SIG_SETMASK, &old, NULL);
	}
	pthread_attr_destroy(&attr);
	return ret;
}
