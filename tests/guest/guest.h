/* ember test guest: declarations shared by its kernel and user parts (hardware, output). */
#ifndef GUEST_H
#define GUEST_H

#include <stddef.h>
#include <stdint.h>

#include "ember/layout.h"

#define SERIAL_RBR (LAYOUT_PORT_SERIAL + 0) /* receive buffer (read) / transmit (write) */
#define SERIAL_IIR (LAYOUT_PORT_SERIAL + 2) /* interrupt identification (read) */
#define SERIAL_FCR (LAYOUT_PORT_SERIAL + 2) /* FIFO control (write) */
#define SERIAL_LSR (LAYOUT_PORT_SERIAL + 5) /* line status */
#define LSR_DATA_READY 0x01
#define LSR_THR_EMPTY 0x20

#define MIB (1024ULL * 1024)
#define PAGE_SIZE 4096ULL

static inline void outb(uint16_t port, uint8_t v)
{
	__asm__ volatile("outb %0, %1" : : "a"(v), "Nd"(port));
}

static inline uint8_t inb(uint16_t port)
{
	uint8_t v;
	__asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(port));
	return v;
}

/* One turn of a loop that waits for the VMM (a used ring, an event): a pause, and every
 * 1024th turn a port read, which exits to the VMM. Where KVM itself runs emulated (the
 * KVM sandbox: QEMU's TCG emulating SVM), a guest that never exits can keep its host CPU
 * from the host's own interrupts, and a host that waits on that CPU stalls for as long
 * as the guest polls (measured: whole test runs hung). On hardware KVM it costs an exit
 * per ~100 microseconds of waiting. */
static inline void wait_turn(void)
{
	static unsigned turns;

	__asm__ volatile("pause");
	if (!(++turns & 1023))
		(void)inb(SERIAL_LSR);
}

static inline uint64_t rdtsc(void)
{
	uint32_t lo, hi;
	__asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
	return ((uint64_t)hi << 32) | lo;
}

/* CPUID as the kernel part read it at CPL0: leaf 1 EBX, leaf 0x40000000 EBX, ECX, EDX.
 * (CPUID executed in user mode is not virtualized on kvm_pvm: it reports the host.) */
extern uint32_t boot_cpuid[4];
/* MXCSR as the kernel part saw it at entry, and its probe value read back (entry.S). */
extern uint32_t boot_mxcsr[2];

/* Serial output (polled 16550), usable at CPL0 and CPL3 (ports opened by the TSS). */
void serial_init(void); /* enables the FIFOs: one LSR read per 16 bytes instead of per byte */
void put_char(char c);
void put_str(const char *s);
void put_dec(uint64_t v);
void put_hex(uint64_t v);   /* "0x" and no leading zeros */
void put_hex16(uint64_t v); /* exactly 16 digits, no prefix */
int put_at_line_start(void);

/* Ends the VM (ACPI sleep control); never returns. */
__attribute__((noreturn)) void power_off(void);
/* Asks for a reset through the i8042 (ember exits); never returns. */
__attribute__((noreturn)) void reset(void);

/* Kernel part: called by the exception stubs in entry.S with the frame they built. */
struct fault_frame {
	uint64_t vec, err, rip, cs, rflags, rsp, ss;
};
__attribute__((noreturn)) void fault_report(const struct fault_frame *f);

/* User part entry (entry.S iretq's to user_entry, which calls this). */
__attribute__((noreturn)) void user_main(const uint8_t *zero_page);

#endif
