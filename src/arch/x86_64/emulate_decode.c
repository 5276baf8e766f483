/* Decoding the instructions ember serves for an emulating host (include/ember/emulate.h):
 * one-byte int3 and fwait, clac/stac, and ldmxcsr/stmxcsr with their 64-bit-mode memory
 * operand (ModRM, SIB, displacement, REX, an fs/gs override). Pure: no KVM here. */
#include "ember/emulate.h"

#include <string.h>

#include "ember/byteorder.h"

#define PREFIX_FS 0x64
#define PREFIX_GS 0x65
#define OPSIZE_LDMXCSR 2 /* 0f ae /2 */
#define OPSIZE_STMXCSR 3 /* 0f ae /3 */

/* The memory operand of ModRM byte b[0] (not register form), with REX bits rex:
 * fills m and returns the bytes it took (ModRM, SIB, displacement), 0 if truncated. */
static size_t decode_mem(const uint8_t *b, size_t n, unsigned rex, struct emulate_mem *m)
{
	unsigned mod = b[0] >> 6, rm = b[0] & 7;
	size_t used = 1, disp_len = mod == 1 ? 1 : mod == 2 ? 4 : 0;

	m->base = m->index = -1;
	m->scale = 1;
	m->disp = 0;
	m->rip_relative = false;
	if (rm == 4) { /* SIB */
		unsigned sib, index, base;

		if (n < 2)
			return 0;
		sib = b[1];
		used = 2;
		index = ((sib >> 3) & 7) | ((rex & 2) << 2);
		base = (sib & 7) | ((rex & 1) << 3);
		m->scale = 1u << (sib >> 6);
		if (index != 4) /* 100 without REX.X: no index */
			m->index = (int)index;
		if ((sib & 7) == 5 && mod == 0)
			disp_len = 4; /* no base, disp32 */
		else
			m->base = (int)base;
	} else if (rm == 5 && mod == 0) {
		m->rip_relative = true;
		disp_len = 4;
	} else {
		m->base = (int)(rm | ((rex & 1) << 3));
	}
	if (n < used + disp_len)
		return 0;
	if (disp_len == 1)
		m->disp = (int8_t)b[used];
	else if (disp_len == 4)
		m->disp = (int32_t)get_le32(b + used); /* disp32 is signed */
	return used + disp_len;
}

/* ldmxcsr / stmxcsr m32 after optional segment and REX prefixes. */
static void decode_mxcsr(const uint8_t *b, size_t n, struct emulate_insn *out)
{
	size_t i = 0, taken;
	unsigned rex = 0, reg;

	out->mem.seg = EMULATE_SEG_DEFAULT;
	for (; i < n; i++) {
		if (b[i] == PREFIX_FS || b[i] == PREFIX_GS)
			out->mem.seg = b[i] == PREFIX_FS ? EMULATE_SEG_FS : EMULATE_SEG_GS;
		else if (b[i] != 0x2e && b[i] != 0x36 && b[i] != 0x3e && b[i] != 0x26)
			break; /* cs/ss/ds/es overrides mean nothing in 64-bit mode */
	}
	if (i < n && (b[i] & 0xf0) == 0x40)
		rex = b[i++] & 0xf;
	if (n < i + 3 || b[i] != 0x0f || b[i + 1] != 0xae || b[i + 2] >> 6 == 3)
		return;
	reg = (b[i + 2] >> 3) & 7;
	if (reg != OPSIZE_LDMXCSR && reg != OPSIZE_STMXCSR)
		return;
	taken = decode_mem(b + i + 2, n - i - 2, rex, &out->mem);
	if (!taken)
		return;
	out->kind = reg == OPSIZE_LDMXCSR ? EMULATE_LDMXCSR : EMULATE_STMXCSR;
	out->len = (unsigned)(i + 2 + taken);
}

void emulate_decode(const uint8_t *b, size_t n, struct emulate_insn *out)
{
	memset(out, 0, sizeof(*out));
	out->kind = EMULATE_UNKNOWN;
	if (n >= 1 && b[0] == 0xcc) {
		out->kind = EMULATE_INT3;
		out->len = 1;
	} else if (n >= 1 && b[0] == 0x9b) {
		out->kind = EMULATE_FWAIT;
		out->len = 1;
	} else if (n >= 3 && b[0] == 0x0f && b[1] == 0x01 && (b[2] == 0xca || b[2] == 0xcb)) {
		out->kind = b[2] == 0xca ? EMULATE_CLAC : EMULATE_STAC;
		out->len = 3;
	} else {
		decode_mxcsr(b, n, out);
	}
}
