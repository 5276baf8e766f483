/* ember test guest, kernel part: report an exception on the serial port and power off. */
#include "guest.h"

/* Runs at CPL0, where each instruction is emulated (~1.5 us here): print and stop. */
void fault_report(const struct fault_frame *f)
{
	uint64_t cr2;

	__asm__ volatile("mov %%cr2, %0" : "=r"(cr2));
	if (!put_at_line_start())
		put_char('\n');
	put_str("FAULT vec=");
	put_dec(f->vec);
	put_str(" err=");
	put_hex(f->err);
	put_str(" rip=");
	put_hex(f->rip);
	put_str(" cr2=");
	put_hex(cr2);
	put_char('\n');
	power_off();
}
