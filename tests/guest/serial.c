/* ember test guest: polled serial output and the machine-ending ports, for both CPL0 and CPL3. */
#include "guest.h"

#define FCR_ENABLE_FIFO 0x01
#define IIR_FIFO_ENABLED 0xc0
#define TX_FIFO_SIZE 16

static unsigned column; /* bytes since the last '\n', so a FAULT line starts on its own line */
static unsigned tx_burst = 1; /* bytes THR takes after LSR says empty: 1, or 16 with a FIFO */
static unsigned tx_room;      /* bytes left in the current burst */

/* Every port access is a VM exit (40-60 us from user mode on kvm_pvm), so with a 16550A
 * FIFO the guest reads LSR once per 16 bytes written. A model without a FIFO leaves
 * IIR[7:6] clear and gets one byte per LSR check, as on a 16450. */
void serial_init(void)
{
	outb(SERIAL_FCR, FCR_ENABLE_FIFO);
	if ((inb(SERIAL_IIR) & IIR_FIFO_ENABLED) == IIR_FIFO_ENABLED)
		tx_burst = TX_FIFO_SIZE;
}

void put_char(char c)
{
	if (!tx_room) {
		while (!(inb(SERIAL_LSR) & LSR_THR_EMPTY))
			;
		tx_room = tx_burst;
	}
	outb(SERIAL_RBR, (uint8_t)c);
	tx_room--;
	column = c == '\n' ? 0 : column + 1;
}

int put_at_line_start(void)
{
	return column == 0;
}

void put_str(const char *s)
{
	while (*s)
		put_char(*s++);
}

void put_dec(uint64_t v)
{
	char buf[20];
	int n = 0;

	do {
		buf[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	while (n)
		put_char(buf[--n]);
}

static void put_hex_digits(uint64_t v, int digits)
{
	while (digits--)
		put_char("0123456789abcdef"[(v >> (4 * digits)) & 0xf]);
}

void put_hex(uint64_t v)
{
	int digits = 1;

	while (digits < 16 && (v >> (4 * digits)))
		digits++;
	put_str("0x");
	put_hex_digits(v, digits);
}

void put_hex16(uint64_t v)
{
	put_hex_digits(v, 16);
}

void power_off(void)
{
	outb(LAYOUT_PORT_SLEEP_CTL, LAYOUT_SLEEP_POWEROFF);
	for (;;)
		wait_turn(); /* until ember stops the vCPU: it must be able to (guest.h) */
}

void reset(void)
{
	outb(LAYOUT_PORT_I8042_CMD, LAYOUT_I8042_CMD_RESET);
	for (;;)
		wait_turn();
}
