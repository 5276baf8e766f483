/* libFuzzer harness for the decoder of the guest instructions ember serves on an emulating host.
 *
 * Build and run (from the repository root), or `make fuzz`:
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -std=c11 -D_GNU_SOURCE -Iinclude \
 *     tests/fuzz/fuzz_emulate_decode.c src/arch/x86_64/emulate_decode.c -o fuzz_emulate_decode
 *   ./fuzz_emulate_decode -max_total_time=60 tests/fuzz/corpus/emulate_decode
 *
 * The input is the instruction bytes at the guest's RIP, at most 15 as the VMM fetches
 * them, in a heap block of exactly their size (ASan sees any read past it). What must
 * hold: nothing served has length 0 or longer than the bytes; the decoder looks no further
 * than the instruction (decoding just its `len` bytes gives the same answer); a memory
 * operand names registers 0..15, never rsp as an index, scale 1/2/4/8, no registers when
 * RIP-relative; and the operand encoded again, canonically (segment prefix, REX, 0f ae,
 * ModRM + SIB + disp32, or ModRM + disp32 for RIP-relative), decodes to the same thing.
 * Any violation traps. */
#include "ember/emulate.h"

#include <stdlib.h>
#include <string.h>

#include "fuzz.h"

#define INSN_MAX 15

static bool same(const struct emulate_insn *a, const struct emulate_insn *b)
{
	if (a->kind != b->kind || a->len != b->len)
		return false;
	if (a->kind != EMULATE_LDMXCSR && a->kind != EMULATE_STMXCSR)
		return true;
	return a->mem.base == b->mem.base && a->mem.index == b->mem.index &&
		a->mem.scale == b->mem.scale && a->mem.disp == b->mem.disp &&
		a->mem.rip_relative == b->mem.rip_relative && a->mem.seg == b->mem.seg;
}

/* ldmxcsr / stmxcsr with operand m, written the long way. Returns the length. */
static size_t encode(const struct emulate_insn *in, uint8_t *b)
{
	const struct emulate_mem *m = &in->mem;
	unsigned reg = in->kind == EMULATE_LDMXCSR ? 2 : 3, rex = 0, sib_base, sib_index;
	uint32_t disp = (uint32_t)m->disp;
	size_t n = 0;

	if (m->seg != EMULATE_SEG_DEFAULT)
		b[n++] = m->seg == EMULATE_SEG_FS ? 0x64 : 0x65;
	sib_index = m->index < 0 ? 4 : (unsigned)m->index;
	sib_base = m->base < 0 ? 5 : (unsigned)m->base;
	rex = (sib_index >> 3) << 1 | (m->base < 0 ? 0 : sib_base >> 3);
	if (rex)
		b[n++] = (uint8_t)(0x40 | rex);
	b[n++] = 0x0f;
	b[n++] = 0xae;
	if (m->rip_relative) {
		b[n++] = (uint8_t)(reg << 3 | 5); /* mod 00, rm 101: disp32 from RIP */
	} else {
		/* mod 10 (disp32) with a base, mod 00 + base 101 without one */
		b[n++] = (uint8_t)((m->base < 0 ? 0x00 : 0x80) | reg << 3 | 4);
		b[n++] = (uint8_t)((__builtin_ctz(m->scale) << 6) | (sib_index & 7) << 3 |
			(sib_base & 7));
	}
	for (unsigned i = 0; i < 4; i++)
		b[n++] = (uint8_t)(disp >> (8 * i));
	return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t n = size < INSN_MAX ? size : INSN_MAX;
	uint8_t *b = malloc(n ? n : 1), again_bytes[INSN_MAX + 2];
	struct emulate_insn insn, again;

	if (!b)
		return 0;
	memcpy(b, data, n);
	emulate_decode(b, n, &insn);
	CHECK(insn.kind <= EMULATE_UNKNOWN);
	if (insn.kind == EMULATE_UNKNOWN) {
		CHECK(insn.len == 0);
		free(b);
		return 0;
	}
	CHECK(insn.len >= 1 && insn.len <= n);
	emulate_decode(b, insn.len, &again);
	CHECK(same(&insn, &again));
	if (insn.kind == EMULATE_LDMXCSR || insn.kind == EMULATE_STMXCSR) {
		const struct emulate_mem *m = &insn.mem;
		size_t len;

		CHECK(m->base >= -1 && m->base <= 15 && m->index >= -1 && m->index <= 15);
		CHECK(m->index != 4);
		CHECK(m->scale == 1 || m->scale == 2 || m->scale == 4 || m->scale == 8);
		CHECK(m->disp >= INT32_MIN && m->disp <= INT32_MAX);
		CHECK(!m->rip_relative || (m->base == -1 && m->index == -1));
		CHECK(m->seg <= EMULATE_SEG_GS);
		len = encode(&insn, again_bytes);
		emulate_decode(again_bytes, len, &again);
		CHECK(again.kind == insn.kind && again.len == len);
		CHECK(again.mem.base == m->base && again.mem.index == m->index &&
			again.mem.disp == m->disp && again.mem.rip_relative == m->rip_relative &&
			again.mem.seg == m->seg &&
			(again.mem.scale == m->scale || m->rip_relative));
	}
	free(b);
	return 0;
}
