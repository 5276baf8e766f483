/* libFuzzer harness for the --seccomp-filter FILE parser (seccompiler JSON) and the
 * libseccomp filters built from what it accepts.
 *
 * Build and run (from the repository root), or `make fuzz`:
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -std=c11 -D_GNU_SOURCE -Iinclude \
 *     tests/fuzz/fuzz_seccomp_file.c src/security/seccomp_file*.c -lcjson -lseccomp \
 *     -o fuzz_seccomp_file
 *   ./fuzz_seccomp_file -max_total_time=60 -dict=tests/fuzz/seccomp_file.dict \
 *     tests/fuzz/corpus/seccomp_file
 *
 * Each input is parsed as it is. A refusal must leave a NUL-terminated message, never the
 * one that says the number scanner and cJSON disagree. An acceptance must hold what the
 * parser promises (known calls, arguments 0-5 checked once each, dword values within 32
 * bits, distinct actions), and every thread it names must build into a libseccomp filter:
 * all that libseccomp could refuse is refused by the parser. Any violation traps. */
#include "ember/seccomp_file.h"

#include <stdlib.h>
#include <string.h>

#include "../../src/security/seccomp_file_internal.h"
#include "fuzz.h"

static void check_thread(const struct sf_thread *t)
{
	CHECK(t->default_action != t->filter_action);
	for (size_t i = 0; i < t->nrules; i++) {
		const struct sf_rule *r = &t->rules[i];
		unsigned seen = 0;

		CHECK(r->nr >= 0 && r->ncond <= SF_MAX_CONDS);
		for (unsigned k = 0; k < r->ncond; k++) {
			const struct sf_cond *c = &r->cond[k];

			CHECK(c->index <= 5 && !(seen & (1u << c->index)));
			seen |= 1u << c->index;
			CHECK(!c->dword || (c->val <= 0xffffffffu && c->mask <= 0xffffffffu));
		}
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *json = (const char *)data;
	char err[256], tiny[8];
	struct seccomp_file *f, *g;

	memset(err, 'x', sizeof(err));
	f = seccomp_file_parse(json, size, err, sizeof(err));
	if (!f) {
		CHECK(memchr(err, '\0', sizeof(err)) && err[0] != '\0');
		CHECK(strncmp(err, "seccomp filter: cannot match", 28) != 0);
	} else {
		for (size_t i = 0; i < f->nthreads; i++) {
			scmp_filter_ctx ctx;

			check_thread(&f->threads[i]);
			ctx = seccomp_file_filter(f, f->threads[i].name, err, sizeof(err));
			CHECK(ctx != NULL);
			seccomp_release(ctx);
		}
		CHECK(!seccomp_file_filter(f, "no such thread!", err, sizeof(err)));
	}
	/* The same answer with a message buffer too small for any message. */
	memset(tiny, 'x', sizeof(tiny));
	g = seccomp_file_parse(json, size, tiny, sizeof(tiny));
	CHECK(!g == !f);
	CHECK(g || memchr(tiny, '\0', sizeof(tiny)));
	seccomp_file_free(g);
	seccomp_file_free(f);
	return 0;
}
