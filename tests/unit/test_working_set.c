/* Unit tests for ember-uffd's working set file: its form, every refusal, save and load. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "working_set.h"

#define MIB (1ULL << 20)

static int parse(const char *text, struct working_set *ws, char *err)
{
	return working_set_parse(text, strlen(text), 128 * MIB, ws, err, 256);
}

static void test_working_set_parses_pages_in_order(void **state)
{
	struct working_set ws;
	char err[256];

	(void)state;
	assert_int_equal(parse("ember-uffd working set 1\n1a2000\n0\n7fff000\n", &ws, err), 0);
	assert_int_equal(ws.n, 3);
	assert_int_equal(ws.pages[0], 0x1a2000);
	assert_int_equal(ws.pages[1], 0);
	assert_int_equal(ws.pages[2], 0x7fff000);
	working_set_free(&ws);
	/* No pages, no final newline: fine. */
	assert_int_equal(parse("ember-uffd working set 1", &ws, err), 0);
	assert_int_equal(ws.n, 0);
	working_set_free(&ws);
}

static void test_working_set_refuses_what_it_cannot_trust(void **state)
{
	static const struct {
		const char *text, *err;
	} bad[] = {
		{ "", "empty, not \"ember-uffd working set 1\"" },
		{ "ember-uffd working set 2\n", "line 1: not \"ember-uffd working set 1\"" },
		{ "ember-uffd working set 1\n12x\n", "line 2: '12x' is not a hex offset" },
		{ "ember-uffd working set 1\n1000\n\n", "line 3: '' is not a hex offset" },
		{ "ember-uffd working set 1\n0x1000\n", "line 2: '0x1000' is not a hex offset" },
		{ "ember-uffd working set 1\nABC000\n", "line 2: 'ABC000' is not a hex offset" },
		{ "ember-uffd working set 1\n10000000000000000\n",
			"line 2: '10000000000000000' is not a hex offset" },
		{ "ember-uffd working set 1\n1001\n", "line 2: 0x1001 is not page aligned" },
		{ "ember-uffd working set 1\n8000000\n",
			"line 2: 0x8000000 is past the memory file (128 MiB)" },
		{ "ember-uffd working set 1\nfffffffffffff000\n",
			"line 2: 0xfffffffffffff000 is past the memory file (128 MiB)" },
	};
	struct working_set ws;
	char err[256];

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(parse(bad[i].text, &ws, err), -EINVAL);
		assert_string_equal(err, bad[i].err);
		assert_null(ws.pages);
		assert_int_equal(ws.n, 0);
	}
}

static void test_working_set_saves_what_it_loads(void **state)
{
	char dir[] = "/tmp/ember-ws-XXXXXX", path[64], err[256];
	struct working_set ws = { 0 }, again;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/vm.ws", dir);
	assert_int_equal(working_set_load(path, 128 * MIB, &again, err, sizeof(err)), -ENOENT);
	for (uint64_t p = 0; p < 3000; p++)
		assert_int_equal(working_set_add(&ws, (p * 7919 % 32768) * 4096), 0);
	assert_int_equal(working_set_save(path, &ws, err, sizeof(err)), 0);
	assert_int_equal(working_set_load(path, 128 * MIB, &again, err, sizeof(err)), 0);
	assert_int_equal(again.n, ws.n);
	assert_memory_equal(again.pages, ws.pages, ws.n * sizeof(uint64_t));
	working_set_free(&again);
	/* A smaller memory file than the set was made for: refused, naming the file. */
	assert_int_equal(working_set_load(path, MIB, &again, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "vm.ws: line "));
	assert_non_null(strstr(err, "is past the memory file (1 MiB)"));
	working_set_free(&ws);
	unlink(path);
	rmdir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_working_set_parses_pages_in_order),
		cmocka_unit_test(test_working_set_refuses_what_it_cannot_trust),
		cmocka_unit_test(test_working_set_saves_what_it_loads),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
