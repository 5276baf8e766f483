/* The monotonic clock, read one way everywhere: rate limiters, MMDS tokens, log uptime,
 * latencies and timeouts all count from the same CLOCK_MONOTONIC nanoseconds. */
#ifndef EMBER_CLOCK_H
#define EMBER_CLOCK_H

#include <stdint.h>
#include <time.h>

/* Nanoseconds of CLOCK_MONOTONIC. Any thread; never fails on Linux. Inline so that every
 * binary (ember, the tools, each unit test) has it without linking another file. */
static inline uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

#endif
