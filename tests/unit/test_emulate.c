/* Unit tests for the emulating-host support: instruction decoding and command-line words. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "ember/emulate.h"

static void decode(const uint8_t *b, size_t n, enum emulate_kind kind, unsigned len)
{
	struct emulate_insn insn;

	emulate_decode(b, n, &insn);
	assert_int_equal(insn.kind, kind);
	assert_int_equal(insn.len, len);
}

static void test_emulate_decode_serves_the_known_instructions(void **state)
{
	(void)state;
	decode((const uint8_t[]){ 0xcc, 0x90 }, 2, EMULATE_INT3, 1);
	decode((const uint8_t[]){ 0x9b }, 1, EMULATE_FWAIT, 1);
	decode((const uint8_t[]){ 0x0f, 0x01, 0xca, 0xff }, 4, EMULATE_CLAC, 3);
	decode((const uint8_t[]){ 0x0f, 0x01, 0xcb }, 3, EMULATE_STAC, 3);
	assert_string_equal(emulate_kind_name(EMULATE_STAC), "stac");
	assert_string_equal(emulate_kind_name(EMULATE_UNKNOWN), "unknown");
}

static void mem_operand(const uint8_t *b, size_t n, enum emulate_kind kind, unsigned len, int base,
	int index, unsigned scale, int64_t disp, bool rip, enum emulate_seg seg)
{
	struct emulate_insn insn;

	emulate_decode(b, n, &insn);
	assert_int_equal(insn.kind, kind);
	assert_int_equal(insn.len, len);
	assert_int_equal(insn.mem.base, base);
	assert_int_equal(insn.mem.index, index);
	assert_int_equal(insn.mem.scale, scale);
	assert_int_equal(insn.mem.disp, disp);
	assert_int_equal(insn.mem.rip_relative, rip);
	assert_int_equal(insn.mem.seg, seg);
}

/* The operands worked out by hand from the ModRM/SIB tables (Intel SDM vol. 2, 2.1-2.2). */
static void test_emulate_decode_mxcsr_memory_operands(void **state)
{
	(void)state;
	/* What Debian's cloud kernel ran: ldmxcsr 0x4(%rsp) */
	mem_operand((const uint8_t[]){ 0x0f, 0xae, 0x54, 0x24, 0x04, 0x83 }, 6, EMULATE_LDMXCSR, 5,
		4, -1, 1, 4, false, EMULATE_SEG_DEFAULT);
	/* stmxcsr -0x4(%rsp) */
	mem_operand((const uint8_t[]){ 0x0f, 0xae, 0x5c, 0x24, 0xfc }, 5, EMULATE_STMXCSR, 5, 4, -1,
		1, -4, false, EMULATE_SEG_DEFAULT);
	/* ldmxcsr 0x0(%r13): REX.B, mod 01 because rm 101 needs a displacement */
	mem_operand((const uint8_t[]){ 0x41, 0x0f, 0xae, 0x55, 0x00 }, 5, EMULATE_LDMXCSR, 5, 13,
		-1, 1, 0, false, EMULATE_SEG_DEFAULT);
	/* ldmxcsr 0x10(%rip) */
	mem_operand((const uint8_t[]){ 0x0f, 0xae, 0x15, 0x10, 0x00, 0x00, 0x00 }, 7,
		EMULATE_LDMXCSR, 7, -1, -1, 1, 16, true, EMULATE_SEG_DEFAULT);
	/* ldmxcsr %gs:0x1000: SIB with no base and no index */
	mem_operand((const uint8_t[]){ 0x65, 0x0f, 0xae, 0x14, 0x25, 0x00, 0x10, 0x00, 0x00 }, 9,
		EMULATE_LDMXCSR, 9, -1, -1, 1, 0x1000, false, EMULATE_SEG_GS);
	/* stmxcsr (%rax,%rcx,4) */
	mem_operand((const uint8_t[]){ 0x0f, 0xae, 0x1c, 0x88 }, 4, EMULATE_STMXCSR, 4, 0, 1, 4, 0,
		false, EMULATE_SEG_DEFAULT);
	/* ldmxcsr -0x80(%r9,%r10,8): REX.X and REX.B, disp8 */
	mem_operand((const uint8_t[]){ 0x43, 0x0f, 0xae, 0x54, 0xd1, 0x80 }, 6, EMULATE_LDMXCSR, 6,
		9, 10, 8, -128, false, EMULATE_SEG_DEFAULT);
	/* ldmxcsr 0x12345678(%rbx): disp32 */
	mem_operand((const uint8_t[]){ 0x0f, 0xae, 0x93, 0x78, 0x56, 0x34, 0x12 }, 7,
		EMULATE_LDMXCSR, 7, 3, -1, 1, 0x12345678, false, EMULATE_SEG_DEFAULT);
	assert_string_equal(emulate_kind_name(EMULATE_LDMXCSR), "ldmxcsr");
}

static void test_emulate_decode_refuses_others_and_truncated_bytes(void **state)
{
	(void)state;
	decode(NULL, 0, EMULATE_UNKNOWN, 0);
	decode((const uint8_t[]){ 0x0f, 0x01, 0xca }, 2, EMULATE_UNKNOWN, 0);
	decode((const uint8_t[]){ 0x0f, 0x01, 0xd0 }, 3, EMULATE_UNKNOWN, 0); /* xgetbv */
	decode((const uint8_t[]){ 0xf0, 0x48, 0x0f, 0xc7, 0x0e }, 5, EMULATE_UNKNOWN, 0);
	decode((const uint8_t[]){ 0xcd, 0x03 }, 2, EMULATE_UNKNOWN, 0); /* int 3, two bytes */
	decode((const uint8_t[]){ 0x0f, 0xae, 0x64, 0x24, 0x04 }, 5, EMULATE_UNKNOWN,
		0);                                                           /* xsave */
	decode((const uint8_t[]){ 0x0f, 0xae, 0xd0 }, 3, EMULATE_UNKNOWN, 0); /* register form */
	decode((const uint8_t[]){ 0x0f, 0xae, 0x54, 0x24 }, 4, EMULATE_UNKNOWN, 0); /* no disp8 */
	decode((const uint8_t[]){ 0x0f, 0xae, 0x14 }, 3, EMULATE_UNKNOWN, 0);       /* no SIB */
	decode((const uint8_t[]){ 0x0f, 0xae, 0x15, 0x10, 0x00 }, 5, EMULATE_UNKNOWN, 0);
	decode((const uint8_t[]){ 0x67, 0x0f, 0xae, 0x10 }, 4, EMULATE_UNKNOWN, 0); /* addr32 */
	decode((const uint8_t[]){ 0x41 }, 1, EMULATE_UNKNOWN, 0);
}

static void test_emulate_cmdline_adds_nothing_on_hardware_kvm(void **state)
{
	char out[64], err[128];

	(void)state;
	assert_int_equal(emulate_cmdline("console=ttyS0", false, 0, out, sizeof(out), err,
				 sizeof(err)),
		0);
	assert_string_equal(out, "console=ttyS0");
	assert_int_equal(emulate_cmdline(NULL, false, 0, out, sizeof(out), err, sizeof(err)), 0);
	assert_string_equal(out, "");
}

static void test_emulate_cmdline_appends_the_words_once(void **state)
{
	char out[512], err[128];

	(void)state;
	assert_int_equal(emulate_cmdline("console=ttyS0", true, 0, out, sizeof(out), err,
				 sizeof(err)),
		0);
	assert_string_equal(out, "console=ttyS0 " EMULATE_CMDLINE_WORDS);
	assert_int_equal(emulate_cmdline("", true, 0, out, sizeof(out), err, sizeof(err)), 0);
	assert_string_equal(out, EMULATE_CMDLINE_WORDS);
}

static void test_emulate_cmdline_keeps_words_the_definition_sets(void **state)
{
	char out[512], err[128];

	(void)state;
	assert_int_equal(emulate_cmdline("mitigations=auto earlyprintk=vga nopvx", true, 0, out,
				 sizeof(out), err, sizeof(err)),
		0);
	assert_string_equal(out,
		"mitigations=auto earlyprintk=vga nopvx noxsave "
		"clearcpuid=cx16,popcnt,smap,ssse3 nopv nofsgsbase");
}

static void test_emulate_cmdline_adds_the_tsc_frequency_unless_set(void **state)
{
	char out[512], err[128];

	(void)state;
	assert_int_equal(emulate_cmdline("console=ttyS0", true, 2445426, out, sizeof(out), err,
				 sizeof(err)),
		0);
	assert_string_equal(out, "console=ttyS0 " EMULATE_CMDLINE_WORDS " tsc_early_khz=2445426");
	assert_int_equal(emulate_cmdline("tsc_early_khz=1000", true, 2445426, out, sizeof(out), err,
				 sizeof(err)),
		0);
	assert_string_equal(out, "tsc_early_khz=1000 " EMULATE_CMDLINE_WORDS);
	assert_int_equal(emulate_cmdline("console=ttyS0", false, 2445426, out, sizeof(out), err,
				 sizeof(err)),
		0);
	assert_string_equal(out, "console=ttyS0");
}

static void test_emulate_cmdline_refuses_what_does_not_fit(void **state)
{
	char out[32], err[128];

	(void)state;
	assert_int_equal(emulate_cmdline("console=ttyS0", true, 0, out, sizeof(out), err,
				 sizeof(err)),
		-ENAMETOOLONG);
	assert_non_null(strstr(err, "command line too long (31 bytes at most"));
	assert_int_equal(emulate_cmdline("0123456789012345678901234567890123", false, 0, out,
				 sizeof(out), err, sizeof(err)),
		-ENAMETOOLONG);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_emulate_decode_serves_the_known_instructions),
		cmocka_unit_test(test_emulate_decode_mxcsr_memory_operands),
		cmocka_unit_test(test_emulate_decode_refuses_others_and_truncated_bytes),
		cmocka_unit_test(test_emulate_cmdline_adds_nothing_on_hardware_kvm),
		cmocka_unit_test(test_emulate_cmdline_appends_the_words_once),
		cmocka_unit_test(test_emulate_cmdline_keeps_words_the_definition_sets),
		cmocka_unit_test(test_emulate_cmdline_adds_the_tsc_frequency_unless_set),
		cmocka_unit_test(test_emulate_cmdline_refuses_what_does_not_fit),
	};
	return cmocka_run_group_tests_name("emulate", tests, NULL, NULL);
}
