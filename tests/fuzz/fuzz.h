/* What every libFuzzer harness here shares: the entry point's prototype and CHECK, which
 * stops the run (a crash libFuzzer reports with its input) when an invariant fails. */
#ifndef EMBER_FUZZ_H
#define EMBER_FUZZ_H

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond) \
	do { \
		if (!(cond)) \
			__builtin_trap(); \
	} while (0)

#endif
