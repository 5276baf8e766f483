/* 8250/16550A UART: divisor latch, FIFOs, line status and interrupt identification. */
#include "ember/devices.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ember/bus.h"
#include "ember/snapshot_file.h"

#define RX_FIFO 64

/* Register offsets (DLAB selects the divisor latch at 0 and 1). */
enum { R_DATA, R_IER, R_IIR_FCR, R_LCR, R_MCR, R_LSR, R_MSR, R_SCR };

#define IER_RDA 0x01  /* received data available */
#define IER_THRE 0x02 /* transmitter holding register empty */
#define IIR_NONE 0x01
#define IIR_THRE 0x02
#define IIR_RDA 0x04
#define IIR_FIFO 0xc0
#define LCR_DLAB 0x80
#define LSR_DR 0x01
#define LSR_THRE 0x20
#define LSR_TEMT 0x40
#define MCR_LOOP 0x10
#define MSR_DEFAULT 0xb0 /* DCD, DSR, CTS asserted: a modem that is always ready */

struct serial {
	pthread_mutex_t lock;
	int irq_fd;
	serial_out_fn out;
	void *opaque;
	uint8_t ier, lcr, mcr, lsr, msr, scr, fcr;
	uint16_t divisor;
	bool thre_pending; /* THRE interrupt not yet acknowledged */
	uint8_t rx[RX_FIFO];
	unsigned rx_head, rx_len;
};

static void raise_irq(struct serial *s)
{
	uint64_t one = 1;

	if (s->irq_fd >= 0 && write(s->irq_fd, &one, sizeof(one)) < 0)
		return; /* the counter cannot overflow in practice */
}

static uint8_t iir(const struct serial *s)
{
	uint8_t fifo = (s->fcr & 1) ? IIR_FIFO : 0;

	if ((s->ier & IER_RDA) && s->rx_len)
		return IIR_RDA | fifo;
	if ((s->ier & IER_THRE) && s->thre_pending)
		return IIR_THRE | fifo;
	return IIR_NONE | fifo;
}

/* Edge-triggered line: signal whenever an interrupt condition is (re)asserted. */
static void update_irq(struct serial *s)
{
	if ((iir(s) & IIR_NONE) == 0)
		raise_irq(s);
}

static void serial_read(void *opaque, uint64_t off, uint8_t *data, uint32_t len)
{
	struct serial *s = opaque;
	uint8_t v = 0xff;

	switch (off) {
	case R_DATA:
		if (s->lcr & LCR_DLAB) {
			v = (uint8_t)s->divisor;
		} else if (s->rx_len) {
			v = s->rx[s->rx_head];
			s->rx_head = (s->rx_head + 1) % RX_FIFO;
			s->rx_len--;
			update_irq(s);
		} else {
			v = 0;
		}
		break;
	case R_IER:
		v = (s->lcr & LCR_DLAB) ? (uint8_t)(s->divisor >> 8) : s->ier;
		break;
	case R_IIR_FCR:
		v = iir(s);
		/* Reading IIR while it reports THRE acknowledges that interrupt. */
		if ((v & 0x0f) == IIR_THRE)
			s->thre_pending = false;
		break;
	case R_LCR:
		v = s->lcr;
		break;
	case R_MCR:
		v = s->mcr;
		break;
	case R_LSR:
		v = LSR_THRE | LSR_TEMT | (s->rx_len ? LSR_DR : 0);
		break;
	case R_MSR:
		/* In loopback the modem inputs follow the outputs (DTR, RTS, OUT1, OUT2). */
		v = (s->mcr & MCR_LOOP) ? (uint8_t)(((s->mcr & 0x0c) << 4) |
						  ((s->mcr & 0x01) << 5) | ((s->mcr & 0x02) << 3))
					: MSR_DEFAULT;
		break;
	case R_SCR:
		v = s->scr;
		break;
	}
	memset(data, 0, len);
	data[0] = v;
}

static void rx_put(struct serial *s, uint8_t b)
{
	if (s->rx_len == RX_FIFO)
		return;
	s->rx[(s->rx_head + s->rx_len) % RX_FIFO] = b;
	s->rx_len++;
}

static void serial_write(void *opaque, uint64_t off, const uint8_t *data, uint32_t len)
{
	struct serial *s = opaque;
	uint8_t v = data[0];

	(void)len;
	switch (off) {
	case R_DATA:
		if (s->lcr & LCR_DLAB) {
			s->divisor = (uint16_t)((s->divisor & 0xff00) | v);
			return;
		}
		if (s->mcr & MCR_LOOP)
			rx_put(s, v);
		else if (s->out)
			s->out(s->opaque, &v, 1);
		s->thre_pending = true;
		update_irq(s);
		break;
	case R_IER:
		if (s->lcr & LCR_DLAB) {
			s->divisor = (uint16_t)((s->divisor & 0x00ff) | (v << 8));
			return;
		}
		/* Enabling THRE with an empty transmitter raises it at once, as on hardware:
		 * Linux's 8250 driver relies on that to start transmitting. */
		if ((v & IER_THRE) && !(s->ier & IER_THRE))
			s->thre_pending = true;
		s->ier = v & 0x0f;
		update_irq(s);
		break;
	case R_IIR_FCR:
		if (v & 0x02) { /* clear receive FIFO */
			s->rx_len = 0;
			s->rx_head = 0;
		}
		s->fcr = v & 0xc9;
		break;
	case R_LCR:
		s->lcr = v;
		break;
	case R_MCR:
		s->mcr = v & 0x1f;
		break;
	case R_SCR:
		s->scr = v;
		break;
	default:
		break; /* LSR and MSR are read-only */
	}
}

struct serial *serial_new(int irq_fd, serial_out_fn out, void *opaque)
{
	struct serial *s = calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	pthread_mutex_init(&s->lock, NULL);
	s->irq_fd = irq_fd;
	s->out = out;
	s->opaque = opaque;
	s->divisor = 12; /* 9600 baud */
	s->lcr = 0x03;   /* 8N1 */
	s->mcr = 0x08;   /* OUT2 */
	return s;
}

void serial_free(struct serial *s)
{
	if (!s)
		return;
	pthread_mutex_destroy(&s->lock);
	free(s);
}

int serial_attach(struct serial *s, struct bus *pio, uint16_t base)
{
	struct bus_device d = {
		.name = "serial",
		.base = base,
		.len = 8,
		.read = serial_read,
		.write = serial_write,
		.opaque = s,
		.lock = &s->lock,
	};

	return bus_register(pio, &d);
}

size_t serial_rx_push(struct serial *s, const uint8_t *buf, size_t len)
{
	size_t n = 0;

	pthread_mutex_lock(&s->lock);
	while (n < len && s->rx_len < RX_FIFO)
		rx_put(s, buf[n++]);
	if (n)
		update_irq(s);
	pthread_mutex_unlock(&s->lock);
	return n;
}

size_t serial_rx_room(struct serial *s)
{
	size_t room;

	pthread_mutex_lock(&s->lock);
	room = RX_FIFO - s->rx_len;
	pthread_mutex_unlock(&s->lock);
	return room;
}

/* Saved state, version 1: a plain fixed-width struct. */
struct serial_state {
	uint8_t ier, lcr, mcr, lsr, msr, scr, fcr, thre_pending;
	uint16_t divisor;
	uint8_t rx_len, pad;
	uint8_t rx[RX_FIFO];
};

int serial_save(struct serial *s, struct snap_writer *w)
{
	struct serial_state st = { 0 };

	pthread_mutex_lock(&s->lock);
	st.ier = s->ier;
	st.lcr = s->lcr;
	st.mcr = s->mcr;
	st.lsr = s->lsr;
	st.msr = s->msr;
	st.scr = s->scr;
	st.fcr = s->fcr;
	st.thre_pending = s->thre_pending;
	st.divisor = s->divisor;
	st.rx_len = (uint8_t)s->rx_len;
	for (unsigned i = 0; i < s->rx_len; i++)
		st.rx[i] = s->rx[(s->rx_head + i) % RX_FIFO];
	pthread_mutex_unlock(&s->lock);
	return snap_put(w, &st, sizeof(st));
}

int serial_restore(struct serial *s, struct snap_cursor *c, char *err, size_t errlen)
{
	struct serial_state st;

	if (snap_get(c, &st, sizeof(st)) || st.rx_len > RX_FIFO) {
		snprintf(err, errlen, "serial: saved state is %s",
			c->bad ? "truncated" : "malformed (receive FIFO overfull)");
		return -EINVAL;
	}
	pthread_mutex_lock(&s->lock);
	s->ier = st.ier & 0x0f;
	s->lcr = st.lcr;
	s->mcr = st.mcr & 0x1f;
	s->lsr = st.lsr;
	s->msr = st.msr;
	s->scr = st.scr;
	s->fcr = st.fcr;
	s->thre_pending = st.thre_pending != 0;
	s->divisor = st.divisor;
	s->rx_head = 0;
	s->rx_len = st.rx_len;
	memcpy(s->rx, st.rx, RX_FIFO);
	pthread_mutex_unlock(&s->lock);
	return 0;
}
