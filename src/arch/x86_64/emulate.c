/* Emulating-host support (kvm_pvm): guest command-line words, and the few instructions
 * KVM's emulator cannot run, served by ember. The whole story is in include/ember/emulate.h
 * and docs/HOST-KVM.md. */
#include "ember/emulate.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <linux/kvm.h>

#include "ember/guest_mem.h"
#include "ember/log.h"
#include "ember/vcpu.h"

#define RFLAGS_AC (1ULL << 18)
#define EFER_LMA (1ULL << 10)
#define VECTOR_BP 3
#define VECTOR_UD 6
#define VECTOR_NM 7
#define VECTOR_GP 13
#define CR0_EM (1ULL << 2)
#define CR0_TS (1ULL << 3)
#define CR4_OSFXSR (1ULL << 9)
#define XSAVE_MXCSR 6 /* u32 index of MXCSR in the XSAVE legacy area */
#define XSAVE_MXCSR_MASK 7
#define MXCSR_MASK_DEFAULT 0xffbfu /* what a zero MXCSR_MASK field means (SDM 11.6.6) */
#define INSN_MAX 15                /* longest x86 instruction */
#define GUEST_PAGE 4096ULL

static const char *const kind_names[EMULATE_KINDS] = {
	"int3",
	"clac",
	"stac",
	"fwait",
	"ldmxcsr",
	"stmxcsr",
};

static _Atomic uint64_t served[EMULATE_KINDS];
static atomic_bool logged[EMULATE_KINDS];
static atomic_bool cmdline_logged;
static atomic_int detected = -1; /* -1: not decided yet, 0: hardware KVM, 1: emulating */

const char *emulate_kind_name(enum emulate_kind kind)
{
	return (unsigned)kind < EMULATE_KINDS ? kind_names[kind] : "unknown";
}

bool emulate_host_detect(void)
{
	int d = atomic_load(&detected), expected = -1;
	const char *force;

	if (d >= 0)
		return d == 1;
	force = getenv("EMBER_EMULATING_HOST");
	if (force && (!strcmp(force, "0") || !strcmp(force, "1")))
		d = force[0] == '1';
	else
		d = access("/sys/module/kvm_pvm", F_OK) == 0;
	if (!atomic_compare_exchange_strong(&detected, &expected, d))
		d = expected;
	return d == 1;
}

/* Does the space-separated command line hold a word with this key ("nopv", or
 * "clearcpuid" for "clearcpuid=...")? */
static bool has_key(const char *cmdline, const char *key, size_t keylen)
{
	const char *p = cmdline;

	while (*p) {
		size_t n;

		while (*p == ' ')
			p++;
		n = strcspn(p, " ");
		if (n >= keylen && !strncmp(p, key, keylen) && (n == keylen || p[keylen] == '='))
			return true;
		p += n;
	}
	return false;
}

int emulate_cmdline(const char *cmdline, bool emulating, unsigned tsc_khz, char *out, size_t outlen,
	char *err, size_t errlen)
{
	char words[sizeof(EMULATE_CMDLINE_WORDS) + sizeof(" tsc_early_khz=4294967295")];
	char added[sizeof(words) + 1] = ""; /* each word + a space */
	const char *w = words;
	size_t used;

	snprintf(words, sizeof(words), tsc_khz ? "%s tsc_early_khz=%u" : "%s",
		EMULATE_CMDLINE_WORDS, tsc_khz);
	if (!cmdline)
		cmdline = "";
	used = strlen(cmdline);
	if (used >= outlen)
		goto err_long;
	memcpy(out, cmdline, used + 1);
	while (emulating && *w) {
		size_t n = strcspn(w, " "), keylen = strcspn(w, "= ");

		if (!has_key(cmdline, w, keylen)) {
			if (used + (used ? 1 : 0) + n >= outlen)
				goto err_long;
			if (used)
				out[used++] = ' ';
			memcpy(out + used, w, n);
			used += n;
			out[used] = 0;
			strncat(added, w, n);
			strcat(added, " ");
		}
		w += n;
		while (*w == ' ')
			w++;
	}
	if (added[0] && !atomic_exchange(&cmdline_logged, true))
		log_info("emulating host (kvm_pvm): guest command line += %.*s",
			(int)strlen(added) - 1, added);
	return 0;
err_long:
	snprintf(err, errlen, "command line too long (%zu bytes at most%s)", outlen - 1,
		emulating ? ", with the emulating host's additions" : "");
	return -ENAMETOOLONG;
}

/* Copy up to `want` instruction bytes at guest-linear `linear`, a page at a time
 * (an instruction may straddle two pages with unrelated physical frames). Stops at
 * the first page that is unmapped or outside guest RAM. Returns the bytes read. */
static size_t fetch(int vcpu_fd, const struct guest_mem *gm, uint64_t linear, uint8_t *buf,
	size_t want)
{
	size_t got = 0;

	while (got < want) {
		struct kvm_translation tr = { .linear_address = linear + got };
		size_t chunk = GUEST_PAGE - ((linear + got) & (GUEST_PAGE - 1));
		const uint8_t *p;

		if (ioctl(vcpu_fd, KVM_TRANSLATE, &tr) < 0 || !tr.valid)
			break;
		if (chunk > want - got)
			chunk = want - got;
		p = guest_mem_ptr(gm, tr.physical_address, chunk);
		if (!p)
			break;
		memcpy(buf + got, p, chunk);
		got += chunk;
	}
	return got;
}

/* Raise an exception as the instruction would have: #BP is a trap (the caller has
 * already moved RIP past the int3), #GP a fault (RIP stays on the instruction). */
static int inject_exception(int vcpu_fd, unsigned vector, bool has_error_code)
{
	struct kvm_vcpu_events ev;

	if (ioctl(vcpu_fd, KVM_GET_VCPU_EVENTS, &ev) < 0)
		return -errno;
	ev.exception.injected = 1;
	ev.exception.nr = (uint8_t)vector;
	ev.exception.has_error_code = has_error_code;
	ev.exception.error_code = 0;
	ev.exception.pending = 0;
	if (ioctl(vcpu_fd, KVM_SET_VCPU_EVENTS, &ev) < 0)
		return -errno;
	return 0;
}

/* General register `n` in the encoding's numbering (rax, rcx, rdx, rbx, rsp, ...). */
static uint64_t gpr(const struct kvm_regs *r, int n)
{
	const uint64_t by_number[16] = { r->rax, r->rcx, r->rdx, r->rbx, r->rsp, r->rbp, r->rsi,
		r->rdi, r->r8, r->r9, r->r10, r->r11, r->r12, r->r13, r->r14, r->r15 };

	return n >= 0 && n < 16 ? by_number[n] : 0;
}

static uint64_t effective_address(const struct emulate_insn *in, const struct kvm_regs *r,
	const struct kvm_sregs *s)
{
	const struct emulate_mem *m = &in->mem;
	uint64_t ea = (uint64_t)m->disp;

	if (m->rip_relative)
		ea += r->rip + in->len;
	ea += gpr(r, m->base);
	if (m->index >= 0)
		ea += gpr(r, m->index) * m->scale;
	if (m->seg == EMULATE_SEG_FS)
		ea += s->fs.base;
	else if (m->seg == EMULATE_SEG_GS)
		ea += s->gs.base;
	return ea;
}

/* Write `len` bytes at guest-linear `linear`, a page at a time, marking the pages dirty
 * for diff snapshots. -EFAULT if a page is unmapped or outside guest RAM. */
static int store(int vcpu_fd, const struct guest_mem *gm, uint64_t linear, const void *src,
	size_t len)
{
	for (size_t done = 0; done < len;) {
		struct kvm_translation tr = { .linear_address = linear + done };
		size_t chunk = GUEST_PAGE - (tr.linear_address & (GUEST_PAGE - 1));
		void *p;

		if (ioctl(vcpu_fd, KVM_TRANSLATE, &tr) < 0 || !tr.valid)
			return -EFAULT;
		if (chunk > len - done)
			chunk = len - done;
		p = guest_mem_ptr_mut(gm, tr.physical_address, chunk);
		if (!p)
			return -EFAULT;
		memcpy(p, (const uint8_t *)src + done, chunk);
		done += chunk;
	}
	return 0;
}

/* A fault instead of the instruction: 1 (RIP stays on it), or -errno. */
static int fault(int vcpu_fd, unsigned vector, bool has_error_code)
{
	int ret = inject_exception(vcpu_fd, vector, has_error_code);

	return ret ? ret : 1;
}

/* ldmxcsr / stmxcsr on the vCPU's FPU state, with the CPU's checks (#UD without
 * CR4.OSFXSR or with CR0.EM, #NM with CR0.TS, #GP for bits outside MXCSR_MASK). Through
 * KVM_GET/SET_XSAVE (legacy area: MXCSR at byte 24, MXCSR_MASK at 28): KVM_GET/SET_FPU
 * leave MXCSR out (it reads 0 and a write is dropped). Returns 0 when done (RIP may
 * advance), 1 when a fault was raised instead, -errno when the VM cannot go on. */
static int serve_mxcsr(struct vcpu *v, const struct guest_mem *gm, const struct emulate_insn *in,
	const struct kvm_regs *r, const struct kvm_sregs *s)
{
	uint64_t ea = effective_address(in, r, s);
	struct kvm_xsave xs;
	uint32_t mask, value; /* guest memory and the host are both little-endian x86 */

	if ((s->cr0 & CR0_EM) || !(s->cr4 & CR4_OSFXSR))
		return fault(v->fd, VECTOR_UD, false);
	if (s->cr0 & CR0_TS)
		return fault(v->fd, VECTOR_NM, false);
	if (ioctl(v->fd, KVM_GET_XSAVE, &xs) < 0)
		return -errno;
	if (in->kind == EMULATE_STMXCSR) {
		value = xs.region[XSAVE_MXCSR];
		return store(v->fd, gm, ea, &value, sizeof(value));
	}
	if (fetch(v->fd, gm, ea, (uint8_t *)&value, sizeof(value)) != sizeof(value))
		return -EFAULT;
	mask = xs.region[XSAVE_MXCSR_MASK] ? xs.region[XSAVE_MXCSR_MASK] : MXCSR_MASK_DEFAULT;
	if (value & ~mask)
		return fault(v->fd, VECTOR_GP, true);
	xs.region[XSAVE_MXCSR] = value;
	return ioctl(v->fd, KVM_SET_XSAVE, &xs) < 0 ? -errno : 0;
}

/* Name the instructions known to stop KVM's emulator that ember does not serve because a
 * guest command-line word avoids them, so the error says what to do. NULL otherwise. */
static const char *unserved_hint(const uint8_t *b, size_t n)
{
	size_t i = 0;
	bool rep = false;
	unsigned reg, mod;

	while (i < n && (b[i] == 0xf0 || b[i] == 0xf2 || b[i] == 0xf3 || b[i] == 0x66)) {
		rep |= b[i] == 0xf3;
		i++;
	}
	if (i < n && (b[i] & 0xf0) == 0x40) /* REX */
		i++;
	if (n < i + 3 || b[i] != 0x0f)
		return NULL;
	reg = (b[i + 2] >> 3) & 7;
	mod = b[i + 2] >> 6;
	if (b[i + 1] == 0xb8 && rep)
		return "popcnt, avoided by 'clearcpuid=popcnt' on the guest command line";
	if (b[i + 1] == 0xae && mod != 3 && reg >= 4 && reg <= 6)
		return "xsave/xrstor, avoided by 'noxsave' on the guest command line";
	if (b[i + 1] == 0xc7 && mod != 3 && reg == 1)
		return "cmpxchg16b, avoided by 'clearcpuid=cx16' on the guest command line";
	if (b[i + 1] == 0xc7 && mod != 3 && reg >= 3 && reg <= 5)
		return "xsaves/xsavec/xrstors, avoided by 'noxsave' on the guest command line";
	return NULL;
}

static void hex_bytes(const uint8_t *b, size_t n, char *out, size_t outlen)
{
	size_t at = 0;

	out[0] = 0;
	for (size_t i = 0; i < n && at + 4 <= outlen; i++)
		at += (size_t)snprintf(out + at, outlen - at, "%s%02x", i ? " " : "", b[i]);
	if (!n)
		snprintf(out, outlen, "(unreadable)");
}

static void note_served(struct vcpu *v, enum emulate_kind kind, uint64_t rip)
{
	atomic_fetch_add_explicit(&served[kind], 1, memory_order_relaxed);
	if (atomic_exchange(&logged[kind], true))
		return;
	/* A failure ember can serve is itself the sign of an emulating host. */
	if (atomic_exchange(&detected, 1) != 1)
		log_info("emulating host: detected at the first emulation failure");
	log_info("emulating host: serving '%s' for the guest (vcpu %u, first at rip 0x%llx)",
		kind_names[kind], v->index, (unsigned long long)rip);
}

bool emulate_vcpu_exit(struct vcpu *v, const struct guest_mem *gm, char *detail, size_t len)
{
	struct kvm_run *run = v->run;
	struct kvm_regs regs;
	struct kvm_sregs sregs;
	struct emulate_insn insn;
	uint8_t bytes[INSN_MAX];
	char hex[3 * INSN_MAX + 1];
	uint64_t linear;
	size_t n;
	int ret;

	if (run->exit_reason != KVM_EXIT_INTERNAL_ERROR)
		return false;
	if (run->internal.suberror != KVM_INTERNAL_ERROR_EMULATION) {
		snprintf(detail, len, "vcpu %u: KVM internal error, suberror %u", v->index,
			run->internal.suberror);
		return false;
	}
	if (ioctl(v->fd, KVM_GET_REGS, &regs) < 0 || ioctl(v->fd, KVM_GET_SREGS, &sregs) < 0) {
		snprintf(detail, len, "vcpu %u: emulation failure, and cannot read registers: %s",
			v->index, strerror(errno));
		return false;
	}
	linear = sregs.cs.base + regs.rip;
	if (!(sregs.efer & EFER_LMA) || !sregs.cs.l)
		linear &= 0xffffffffULL;
	n = fetch(v->fd, gm, linear, bytes, sizeof(bytes));
	/* Fall back on the bytes KVM fetched itself, when it says it did. */
	if (!n &&
		(run->emulation_failure.flags &
			KVM_INTERNAL_ERROR_EMULATION_FLAG_INSTRUCTION_BYTES)) {
		n = run->emulation_failure.insn_size;
		if (n > sizeof(bytes))
			n = sizeof(bytes);
		memcpy(bytes, run->emulation_failure.insn_bytes, n);
	}
	emulate_decode(bytes, n, &insn);
	/* The operand decoder knows 64-bit code only (REX, 64-bit ModRM addressing). */
	if ((insn.kind == EMULATE_LDMXCSR || insn.kind == EMULATE_STMXCSR) &&
		(!(sregs.efer & EFER_LMA) || !sregs.cs.l))
		insn.kind = EMULATE_UNKNOWN;
	if (insn.kind == EMULATE_UNKNOWN) {
		const char *hint = unserved_hint(bytes, n);

		hex_bytes(bytes, n, hex, sizeof(hex));
		snprintf(detail, len,
			"vcpu %u: KVM cannot emulate the instruction at rip 0x%llx (cpl %u), "
			"bytes %s%s%s%s; ember does not serve it",
			v->index, (unsigned long long)regs.rip, sregs.cs.dpl, hex, hint ? " (" : "",
			hint ? hint : "", hint ? ")" : "");
		return false;
	}
	note_served(v, insn.kind, regs.rip);
	ret = 0;
	if (insn.kind == EMULATE_LDMXCSR || insn.kind == EMULATE_STMXCSR)
		ret = serve_mxcsr(v, gm, &insn, &regs, &sregs);
	if (ret == 1) /* a fault was raised: the instruction did not complete */
		return true;
	if (!ret) {
		regs.rip += insn.len;
		if (insn.kind == EMULATE_CLAC)
			regs.rflags &= ~RFLAGS_AC;
		else if (insn.kind == EMULATE_STAC)
			regs.rflags |= RFLAGS_AC;
		ret = ioctl(v->fd, KVM_SET_REGS, &regs) < 0 ? -errno : 0;
		if (!ret && insn.kind == EMULATE_INT3)
			ret = inject_exception(v->fd, VECTOR_BP, false);
		regs.rip -= insn.len;
	}
	if (ret) {
		snprintf(detail, len, "vcpu %u: cannot serve '%s' at rip 0x%llx: %s", v->index,
			kind_names[insn.kind], (unsigned long long)regs.rip, strerror(-ret));
		return false;
	}
	return true;
}

void emulate_counts(uint64_t counts[EMULATE_KINDS])
{
	for (unsigned i = 0; i < EMULATE_KINDS; i++)
		counts[i] = atomic_load_explicit(&served[i], memory_order_relaxed);
}

void emulate_log_summary(void)
{
	uint64_t c[EMULATE_KINDS], total = 0;
	char line[256];
	size_t at = 0;

	emulate_counts(c);
	for (unsigned i = 0; i < EMULATE_KINDS; i++) {
		total += c[i];
		if (at < sizeof(line))
			at += (size_t)snprintf(line + at, sizeof(line) - at, "%s%s %llu",
				i ? ", " : "", kind_names[i], (unsigned long long)c[i]);
	}
	if (total)
		log_info("emulating host: served %s", line);
}
