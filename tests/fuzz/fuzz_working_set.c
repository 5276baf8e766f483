/* libFuzzer harness for ember-uffd's working set parser (tools/working_set.c), which reads
 * a file a previous run wrote and anyone may have edited.
 *
 * Build and run (from the repository root), or `make fuzz`:
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -std=c11 -D_GNU_SOURCE -Iinclude \
 *     -Itools tests/fuzz/fuzz_working_set.c tools/working_set.c -o fuzz_working_set
 *   ./fuzz_working_set -max_total_time=60 tests/fuzz/corpus/working_set
 *
 * Each input is parsed for a 64 MiB memory file. A refusal leaves the set empty with a
 * message; an acceptance holds only page-aligned offsets inside the file, as many as the
 * input has lines after the header. Any violation traps. */
#include "working_set.h"

#include <errno.h>
#include <string.h>

#include "fuzz.h"

#define MEM (64ULL << 20)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct working_set ws;
	char err[128];
	size_t lines = 0;
	int ret;

	err[0] = 0;
	ret = working_set_parse((const char *)data, size, MEM, &ws, err, sizeof(err));
	if (ret) {
		CHECK(ret == -EINVAL || ret == -ENOMEM);
		CHECK(ws.n == 0 && ws.pages == NULL && err[0] && memchr(err, 0, sizeof(err)));
		return 0;
	}
	for (size_t i = 0; i < size; i++)
		lines += data[i] == '\n';
	lines += size && data[size - 1] != '\n';
	CHECK(ws.n + 1 == lines);
	for (size_t i = 0; i < ws.n; i++)
		CHECK(ws.pages[i] % 4096 == 0 && ws.pages[i] < MEM);
	working_set_free(&ws);
	return 0;
}
