/* Unit tests for the userfaultfd handshake: Firecracker's exact bytes, and every refusal. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "ember/uffd.h"

#define MIB (1ULL << 20)

/* Two regions as ember lays out a 4 GiB guest: 3 GiB below the MMIO gap, 1 GiB above. */
static const struct uffd_region TWO[] = {
	{ 0x7f0000000000, 3072 * MIB, 0, 4096, 4096 },
	{ 0x7f00c0000000, 1024 * MIB, 3072 * MIB, 4096, 4096 },
};

static const char TWO_JSON[] =
	"[{\"base_host_virt_addr\":139637976727552,\"size\":3221225472,\"offset\":0,"
	"\"page_size\":4096,\"page_size_kib\":4096},"
	"{\"base_host_virt_addr\":139641197953024,\"size\":1073741824,\"offset\":3221225472,"
	"\"page_size\":4096,\"page_size_kib\":4096}]";

static void test_uffd_encode_writes_firecracker_bytes(void **state)
{
	char buf[UFFD_HANDSHAKE_MAX];

	(void)state;
	assert_int_equal(uffd_handshake_encode(TWO, 2, buf, sizeof(buf)), strlen(TWO_JSON));
	assert_string_equal(buf, TWO_JSON);
}

static void test_uffd_encode_one_huge_page_region(void **state)
{
	const struct uffd_region r = { 0x7f5a00000000, 128 * MIB, 0, 2 * MIB, 2 * MIB };
	char buf[256];

	(void)state;
	assert_int_equal(uffd_handshake_encode(&r, 1, buf, sizeof(buf)), 113);
	assert_string_equal(buf,
		"[{\"base_host_virt_addr\":140024523784192,\"size\":134217728,"
		"\"offset\":0,\"page_size\":2097152,\"page_size_kib\":2097152}]");
}

static void test_uffd_encode_refuses_a_short_buffer(void **state)
{
	char buf[sizeof(TWO_JSON)];

	(void)state;
	for (size_t len = 0; len < sizeof(TWO_JSON); len++)
		assert_int_equal(uffd_handshake_encode(TWO, 2, buf, len), -ENOSPC);
	assert_int_equal(uffd_handshake_encode(TWO, 2, buf, sizeof(buf)), sizeof(TWO_JSON) - 1);
	assert_int_equal(uffd_handshake_encode(TWO, 0, buf, 3), 2);
	assert_string_equal(buf, "[]");
}

static void test_uffd_parse_reads_back_what_encode_wrote(void **state)
{
	struct uffd_region out[UFFD_MAX_REGIONS];
	char err[256] = "";
	unsigned n = 99;

	(void)state;
	assert_int_equal(uffd_handshake_parse(TWO_JSON, strlen(TWO_JSON), out, UFFD_MAX_REGIONS, &n,
				 err, sizeof(err)),
		0);
	assert_int_equal(n, 2);
	assert_memory_equal(out, TWO, sizeof(TWO));
	assert_int_equal(uffd_handshake_check_file(out, n, 4096 * MIB, err, sizeof(err)), 0);
}

static void test_uffd_parse_takes_spaces_unknown_fields_and_any_order(void **state)
{
	static const char json[] =
		" [ {\"page_size_kib\": 4096, \"future\": [1, {\"x\": null}], \"offset\": 0,\n"
		"\"size\": 8192, \"page_size\": 4096, \"base_host_virt_addr\": 4096} ]\n";
	struct uffd_region out[4];
	char err[256] = "", buf[sizeof(json) + 3];
	unsigned n = 0;

	(void)state;
	assert_int_equal(uffd_handshake_parse(json, strlen(json), out, 4, &n, err, sizeof(err)), 0);
	assert_int_equal(n, 1);
	assert_int_equal(out[0].base_host_virt_addr, 4096);
	assert_int_equal(out[0].size, 8192);
	/* Input need not be NUL-terminated: only len bytes are read. */
	memcpy(buf, json, strlen(json));
	memcpy(buf + strlen(json), "}}}", 3);
	assert_int_equal(uffd_handshake_parse(buf, strlen(json), out, 4, &n, err, sizeof(err)), 0);
}

#define R(base, size, off, ps) \
	"{\"base_host_virt_addr\":" #base ",\"size\":" #size ",\"offset\":" #off \
	",\"page_size\":" #ps ",\"page_size_kib\":" #ps "}"

static const struct {
	const char *json;
	const char *want;
} BAD[] = {
	{ "", "empty handshake" },
	{ "[{\"base_host_virt_addr\":4096", "not valid JSON" },
	{ "garbage", "not valid JSON (near byte 0)" },
	{ "[" R(4096, 4096, 0, 4096) "]x", "trailing bytes after the JSON (byte" },
	{ "[" R(4096, 4096, 0, 4096) "][]", "trailing bytes" },
	{ "{\"base_host_virt_addr\":4096}", "not a JSON array" },
	{ "[]", "no regions" },
	{ "[7]", "region 0 is not a JSON object" },
	{ "[" R(4096, 4096, 0, 4096) ",null]", "region 1 is not a JSON object" },
	{ "[{\"size\":4096,\"offset\":0,\"page_size\":4096,\"page_size_kib\":4096}]",
		"region 0: missing field 'base_host_virt_addr'" },
	{ "[{\"base_host_virt_addr\":4096,\"size\":4096,\"offset\":0,\"page_size\":4096}]",
		"region 0: missing field 'page_size_kib'" },
	{ "[{\"Base_host_virt_addr\":4096,\"size\":4096,\"offset\":0,\"page_size\":4096,"
	  "\"page_size_kib\":4096}]",
		"missing field 'base_host_virt_addr'" },
	{ "[" R("4096", 4096, 0, 4096) "]", "'base_host_virt_addr' is not a number" },
	{ "[" R(4096, true, 0, 4096) "]", "region 0: 'size' is not a number" },
	{ "[" R(4096, 4096, -4096, 4096) "]", "'offset' is not a non-negative integer" },
	{ "[" R(4096, 4096.5, 0, 4096) "]", "'size' is not a non-negative integer" },
	{ "[" R(9007199254740992, 4096, 0, 4096) "]", "below 2^53" },
	{ "[" R(4096, 4096, 1e400, 4096) "]", "'offset' is not a non-negative integer" },
	{ "[" R(4096, 4096, 0, 6144) "]", "page_size 6144 is not a power of two" },
	{ "[" R(4096, 4096, 0, 0) "]", "page_size 0 is not a power of two" },
	{ "[" R(4096, 4096, 0, 2048) "]", "page_size 2048 is not a power of two >= 4096" },
	{ "[" R(4096, 0, 0, 4096) "]", "region 0: size is 0" },
	{ "[" R(4097, 4096, 0, 4096) "]", "not a multiple of page_size 4096" },
	{ "[" R(4096, 4095, 0, 4096) "]", "not a multiple of page_size" },
	{ "[" R(0, 4194304, 0, 2097152) "," R(2097152, 2097152, 4194304, 2097152) "]",
		"regions 0 and 1 overlap in memory" },
	{ "[" R(0, 8192, 0, 4096) "," R(8192, 8192, 4096, 4096) "]",
		"regions 0 and 1 overlap in the memory file" },
	{ "[" R(9007199254736896, 8192, 0, 4096) "]", "end of range is out of bounds" },
	{ "[{\"base_host_virt_addr\":4096,\"size\":4096,\"offset\":0,\"page_size\":4096,"
	  "\"page_size_kib\":4096,\"size\":8192}]",
		"region 0: duplicate field 'size'" },
	{ "[" R(4096, 4096, 0, 4096) "," R(8192, 4096, 4096, 4096) "," R(12288, 4096, 8192,
		  4096) "]",
		"more than 2 regions" },
};

static void test_uffd_parse_refuses_bad_handshakes_by_name(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(BAD) / sizeof(BAD[0]); i++) {
		struct uffd_region out[2];
		char err[256] = "";
		unsigned n = 7;
		int ret = uffd_handshake_parse(BAD[i].json, strlen(BAD[i].json), out, 2, &n, err,
			sizeof(err));

		if (ret != -EINVAL || n != 0 || !strstr(err, BAD[i].want))
			fail_msg("case %zu %s: ret %d n %u err '%s', want '%s'", i, BAD[i].json,
				ret, n, err, BAD[i].want);
	}
}

static void test_uffd_parse_allows_one_trailing_nul_and_bounds_the_size(void **state)
{
	static const char one[] = "[" R(4096, 4096, 0, 4096) "] \n"; /* sizeof counts the NUL */
	static const char two[] = "[" R(4096, 4096, 0, 4096) "]\0";
	static char big[UFFD_HANDSHAKE_MAX + 1];
	struct uffd_region out[1];
	char err[256] = "";
	unsigned n = 0;

	(void)state;
	assert_int_equal(uffd_handshake_parse(one, sizeof(one), out, 1, &n, err, sizeof(err)), 0);
	assert_int_equal(n, 1);
	assert_int_equal(uffd_handshake_parse(two, sizeof(two), out, 1, &n, err, sizeof(err)),
		-EINVAL);
	assert_string_equal(err, "handshake has trailing bytes after the JSON (byte 91)");
	memset(big, ' ', sizeof(big));
	memcpy(big, one, sizeof(one) - 1);
	assert_int_equal(uffd_handshake_parse(big, sizeof(big) - 1, out, 1, &n, err, sizeof(err)),
		0);
	assert_int_equal(uffd_handshake_parse(big, sizeof(big), out, 1, &n, err, sizeof(err)),
		-EINVAL);
	assert_string_equal(err, "handshake is larger than 16384 bytes");
}

static void test_uffd_check_file_wants_regions_inside_and_adding_up(void **state)
{
	char err[256] = "";

	(void)state;
	assert_int_equal(uffd_handshake_check_file(TWO, 2, 4096 * MIB, err, sizeof(err)), 0);
	assert_int_equal(uffd_handshake_check_file(TWO, 2, 4095 * MIB, err, sizeof(err)), -EINVAL);
	assert_string_equal(err,
		"region 1 (offset 3221225472, size 1073741824) ends beyond the "
		"memory file (4293918720 bytes)");
	assert_int_equal(uffd_handshake_check_file(TWO, 2, 4097 * MIB, err, sizeof(err)), -EINVAL);
	assert_string_equal(err,
		"regions add up to 4294967296 bytes but the memory file has "
		"4296015872");
	assert_int_equal(uffd_handshake_check_file(TWO, 1, 4096 * MIB, err, sizeof(err)), -EINVAL);
	assert_int_equal(uffd_handshake_check_file(&TWO[1], 1, 1024 * MIB, err, sizeof(err)),
		-EINVAL);
	assert_non_null(strstr(err, "region 0 (offset 3221225472"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_uffd_encode_writes_firecracker_bytes),
		cmocka_unit_test(test_uffd_encode_one_huge_page_region),
		cmocka_unit_test(test_uffd_encode_refuses_a_short_buffer),
		cmocka_unit_test(test_uffd_parse_reads_back_what_encode_wrote),
		cmocka_unit_test(test_uffd_parse_takes_spaces_unknown_fields_and_any_order),
		cmocka_unit_test(test_uffd_parse_refuses_bad_handshakes_by_name),
		cmocka_unit_test(test_uffd_parse_allows_one_trailing_nul_and_bounds_the_size),
		cmocka_unit_test(test_uffd_check_file_wants_regions_inside_and_adding_up),
	};
	return cmocka_run_group_tests_name("uffd", tests, NULL, NULL);
}
