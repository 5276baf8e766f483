/* ember test guest, user part: work-area pattern fill, checksum, check and page touching. */
#include "guest.h"
#include "user.h"

#define FNV_OFFSET 0xcbf29ce484222325ULL
#define FNV_PRIME 0x100000001b3ULL

static uint64_t xorshift64s(uint64_t *state)
{
	uint64_t x = *state;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*state = x;
	return x * 0x2545f4914f6cdd1dULL;
}

static uint64_t seed_state(uint64_t seed)
{
	return seed ? seed : 0x9e3779b97f4a7c15ULL; /* xorshift state must not be 0 */
}

uint64_t work_fill(uint64_t start, uint64_t bytes, uint64_t seed)
{
	uint64_t *w = (uint64_t *)start, n = bytes / 8, state = seed_state(seed), h = FNV_OFFSET;

	for (uint64_t i = 0; i < n; i++) {
		uint64_t v = xorshift64s(&state);

		w[i] = v;
		h = (h ^ v) * FNV_PRIME;
	}
	return h;
}

uint64_t work_sum(uint64_t start, uint64_t bytes)
{
	const uint64_t *w = (const uint64_t *)start;
	uint64_t n = bytes / 8, h = FNV_OFFSET;

	for (uint64_t i = 0; i < n; i++)
		h = (h ^ w[i]) * FNV_PRIME;
	return h;
}

uint64_t work_check(uint64_t start, uint64_t bytes, uint64_t seed)
{
	const uint64_t *w = (const uint64_t *)start;
	uint64_t n = bytes / 8, state = seed_state(seed);

	for (uint64_t i = 0; i < n; i++) {
		uint64_t diff = w[i] ^ xorshift64s(&state);

		if (diff) /* little endian: the lowest set bit is in the first differing byte */
			return (uint64_t)&w[i] + (uint64_t)__builtin_ctzll(diff) / 8;
	}
	return 0;
}

uint64_t work_touch(uint64_t start, uint64_t pages)
{
	uint64_t t0 = rdtsc();

	/* A locked OR of 0 is one write access (a single write fault on a fresh page, where
	 * a load and a store could fault twice) that leaves the data alone, so the page is
	 * dirtied while sum and check still hold. */
	for (uint64_t i = 0; i < pages; i++)
		__asm__ volatile("lock orb $0, %0" : "+m"(*(uint8_t *)(start + i * PAGE_SIZE)));
	return rdtsc() - t0;
}
