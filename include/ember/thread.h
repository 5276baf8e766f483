/* ember's own threads (vCPUs, devices, I/O workers, uffd watch): src/util/thread.c. */
#ifndef EMBER_THREAD_H
#define EMBER_THREAD_H

#include <pthread.h>
#include <signal.h>

/* The stack of each: far more than the deepest call chain these threads run (the largest
 * frame in src/ is 33 KiB, on the control thread), and under 2 MiB, so that no stack can
 * hold an aligned 2 MiB range: with transparent huge pages "always" (Debian's default)
 * glibc's 8 MiB stacks could each take a 2 MiB huge page on their first touch. */
#define THREAD_STACK_SIZE (1u << 20)

/* Start fn(arg) on a new thread with THREAD_STACK_SIZE of stack and `mask` as its signal
 * mask (NULL: every signal blocked), leaving the caller's own mask as it was. 0, or the
 * positive errno pthread_create gave. */
int thread_spawn(pthread_t *t, void *(*fn)(void *), void *arg, const sigset_t *mask);

#endif
