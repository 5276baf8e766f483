/* Emulating-host support: what ember does on a KVM that emulates guest kernel mode.
 *
 * Some hosts serve /dev/kvm without VMX/SVM (the kvm_pvm module; see
 * docs/HOST-KVM.md): guest kernel-mode code runs through KVM's instruction
 * emulator, which cannot execute a few instructions Linux uses. On such a host
 * ember (1) appends command-line words that keep the guest away from the
 * instructions it can avoid (and from a paravirtual loop), and (2) serves the
 * others itself when KVM_RUN stops with KVM_EXIT_INTERNAL_ERROR /
 * KVM_INTERNAL_ERROR_EMULATION:
 *
 *   int3        0xcc      inject #BP (vector 3), RIP past the instruction
 *   clac        0f 01 ca  clear RFLAGS.AC, skip 3 bytes
 *   stac        0f 01 cb  set RFLAGS.AC, skip 3 bytes
 *   fwait       0x9b      skip 1 byte (no x87 exception is ever pending here)
 *   ldmxcsr m32 0f ae /2  load MXCSR from guest memory (KVM_SET_XSAVE); #GP(0) if a
 *                         reserved bit is set, as the CPU would. Stock kernels run it in
 *                         kernel_fpu_begin() (Debian's cloud kernel, initramfs unpack)
 *   stmxcsr m32 0f ae /3  store MXCSR to guest memory (its twin)
 *                         (both in 64-bit code only: the operand decoder knows no other).
 *                         On kvm_pvm a load is sometimes lost (about 4 in 10 in a test
 *                         that reads the value back): the XSAVE state ember sets does not
 *                         always reach the guest. Linux loads the default MXCSR there,
 *                         which it normally has already, so its boot is not affected.
 *
 * Anything else ends the VM with a message naming the instruction bytes and the
 * address. On hardware KVM none of this is active: the host is not detected, no
 * words are added, and KVM never reports these instructions as failures. */
#ifndef EMBER_EMULATE_H
#define EMBER_EMULATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct guest_mem;
struct vcpu;

/* Guest command-line words for an emulating host, in this order. Measured on kvm_pvm with
 * Linux 6.1 (the microVM kernel, third_party/guest/README.md has the runs):
 *   noxsave            required: xrstor (48 0f ae 2f) in FPU set-up stops the emulator
 *   clearcpuid=cx16    required: lock cmpxchg16b (f0 48 0f c7 ..) in SLUB
 *   clearcpuid=popcnt  required: popcnt (f3 48 0f b8 ..) in bitmap helpers
 *   clearcpuid=smap    no SMAP, so no clac/stac at all: without it every interrupt and
 *                      exception entry runs a clac that ember must serve (33,674 in one
 *                      boot). ("nosmap" no longer exists in 6.1: the kernel ignores it.)
 *   clearcpuid=ssse3   required by stock kernels: their SIMD BLAKE2s (random.c) runs SSE
 *                      (movd %ecx,%xmm15: 66 44 0f 6e f9), which the emulator cannot, and
 *                      is chosen by SSSE3; without it the generic C code runs
 *   nopv               required: with KVM's paravirtual features the guest spins in
 *                      kvm_hypercall2 and makes no progress for minutes
 *   mitigations=off    not required by the microVM kernel (same boot time with or without);
 *                      kept for stock kernels, whose mitigations (e.g. "safe RET" return
 *                      thunks on every ret) make their emulated boot slower still
 *   earlyprintk=serial,ttyS0  not required with ember's 8250: kernel messages from the
 *                      first second instead of ~30 s later; no "keep" (it prints all twice)
 *   nofsgsbase         required for NMIs: with FSGSBASE the kernel's paranoid entry (NMI,
 *                      #DB, #MC) reads the CPU number with lsl (48 0f 03 c0), which stops
 *                      the emulator; without it, an RDMSR of GS_BASE. Seen when a restore
 *                      long after the snapshot made RCU report a stall and send an NMI
 * and, when the vCPU's TSC frequency is known (KVM_GET_TSC_KHZ):
 *   tsc_early_khz=N    required with ACPI on: emulated, the kernel's PIT calibration of
 *                      the TSC times out ("Unable to calibrate against PIT"), and with
 *                      nopv there is no kvmclock to ask, so the TSC is marked unstable;
 *                      a hardware-reduced ACPI machine has no PIT tick either, and the
 *                      kernel waits for jiffies in calibrate_delay() for ever. */
#define EMULATE_CMDLINE_WORDS \
	"noxsave clearcpuid=cx16,popcnt,smap,ssse3 nopv mitigations=off " \
	"earlyprintk=serial,ttyS0 " \
	"nofsgsbase"

enum emulate_kind {
	EMULATE_INT3,
	EMULATE_CLAC,
	EMULATE_STAC,
	EMULATE_FWAIT,
	EMULATE_LDMXCSR,
	EMULATE_STMXCSR,
	EMULATE_KINDS,
	EMULATE_UNKNOWN = EMULATE_KINDS,
};

enum emulate_seg { EMULATE_SEG_DEFAULT, EMULATE_SEG_FS, EMULATE_SEG_GS };

/* A 64-bit-mode memory operand: linear address = segment base (fs/gs only; the others
 * are 0 in 64-bit mode) + base + index * scale + disp, or RIP after the instruction +
 * disp when rip_relative. Registers are numbered as in the encoding: 0 rax, 1 rcx,
 * 2 rdx, 3 rbx, 4 rsp, 5 rbp, 6 rsi, 7 rdi, 8..15 r8..r15; -1 for none. */
struct emulate_mem {
	int base, index;
	unsigned scale;
	int64_t disp;
	bool rip_relative;
	enum emulate_seg seg;
};

/* A decoded instruction the VMM can serve. */
struct emulate_insn {
	enum emulate_kind kind;
	unsigned len;           /* bytes to skip */
	struct emulate_mem mem; /* ldmxcsr / stmxcsr only */
};

/* True if this host's KVM emulates guest kernel mode. Decided once per process:
 * $EMBER_EMULATING_HOST=1 or 0 forces the answer (tests, diagnosis); otherwise
 * /sys/module/kvm_pvm present; later also true once an emulation failure was
 * served (emulate_vcpu_exit). Any thread. */
bool emulate_host_detect(void);

/* Write `cmdline` (NULL = empty) into out[outlen], followed by the words of
 * EMULATE_CMDLINE_WORDS (and tsc_early_khz=tsc_khz unless tsc_khz is 0) when
 * `emulating` is true, leaving out any word whose
 * key (the part before '=') the command line already has, so a definition can
 * override one. Logs the added words once. -ENAMETOOLONG (and err filled) if
 * the result does not fit. Pure but for the log line. */
__attribute__((warn_unused_result)) int emulate_cmdline(const char *cmdline, bool emulating,
	unsigned tsc_khz, char *out, size_t outlen, char *err, size_t errlen);

/* Decode the instruction at the start of bytes[0..n). Returns EMULATE_UNKNOWN in
 * out->kind for anything not served. Pure (emulate_decode.c). */
void emulate_decode(const uint8_t *bytes, size_t n, struct emulate_insn *out);

/* Serve a KVM_EXIT_INTERNAL_ERROR of `v` (v->run describes it). Reads the
 * instruction at the guest RIP through KVM_TRANSLATE and guest_mem_ptr(), then
 * updates the vCPU registers / events. Returns true if the vCPU may carry on;
 * otherwise fills detail (bytes and address, or the suberror) for the VM's exit
 * message. Logs each served kind once. vCPU thread of `v`; `gm` is written only by
 * stmxcsr (its page marked dirty). */
bool emulate_vcpu_exit(struct vcpu *v, const struct guest_mem *gm, char *detail, size_t len);

/* How many instructions of each kind were served, process-wide. Any thread. */
void emulate_counts(uint64_t counts[EMULATE_KINDS]);

/* One info line with the counts, if anything was served (when a VM ends). Any thread. */
void emulate_log_summary(void);

/* Name of a kind ("int3", ...), "unknown" for EMULATE_UNKNOWN. */
const char *emulate_kind_name(enum emulate_kind kind);

#endif
