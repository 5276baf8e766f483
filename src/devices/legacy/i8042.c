/* i8042 keyboard controller: enough for Linux's probe, the reset line and Ctrl-Alt-Del. */
#include "ember/devices.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ember/bus.h"
#include "ember/layout.h"
#include "ember/snapshot_file.h"

#define STATUS_OBF 0x01      /* output buffer full */
#define STATUS_SYS 0x04      /* system flag: self-test passed */
#define STATUS_UNLOCKED 0x10 /* keyboard not inhibited (no "keylock") */
#define STATUS_CMD 0x08      /* last write was a command */
#define CMD_READ_CTR 0x20
#define CMD_WRITE_CTR 0x60
#define CMD_READ_OUTP 0xd0
#define CMD_WRITE_OUTP 0xd1
#define CMD_SELF_TEST 0xaa
#define CMD_AUX_DISABLE 0xa7
#define CMD_AUX_ENABLE 0xa8
#define CMD_AUX_TEST 0xa9
#define CTR_AUX_DISABLED 0x20
#define CTR_KBD_INT 0x01
#define OUTBUF 16

struct i8042 {
	pthread_mutex_t lock;
	int irq_fd;
	i8042_reset_fn reset;
	void *opaque;
	uint8_t status, ctr, cmd, outp;
	uint8_t out[OUTBUF];
	unsigned out_head, out_len;
};

/* IRQ 1 for the byte now in the output buffer. */
static void raise_irq(struct i8042 *k)
{
	uint64_t one = 1;
	ssize_t n;

	if (!(k->ctr & CTR_KBD_INT) || k->irq_fd < 0)
		return;
	/* An irqfd write fails only when its counter is full: an interrupt is pending then. */
	n = write(k->irq_fd, &one, sizeof(one));
	(void)n;
}

static void push(struct i8042 *k, uint8_t b)
{
	if (k->out_len == OUTBUF)
		return;
	k->out[(k->out_head + k->out_len) % OUTBUF] = b;
	k->out_len++;
	k->status |= STATUS_OBF;
	raise_irq(k);
}

static void i8042_read(void *opaque, uint64_t off, uint8_t *data, uint32_t len)
{
	struct i8042 *k = opaque;
	uint8_t v;

	if (off == LAYOUT_PORT_I8042_CMD - LAYOUT_PORT_I8042_DATA) {
		v = k->status;
	} else if (k->out_len) {
		v = k->out[k->out_head];
		k->out_head = (k->out_head + 1) % OUTBUF;
		/* Linux reads one byte per interrupt, and bytes pushed back to back raised
		 * one edge between them (the irqfd's injections coalesce): like the
		 * controller, raise IRQ 1 again for each byte that moves up. */
		if (--k->out_len == 0)
			k->status &= (uint8_t)~STATUS_OBF;
		else
			raise_irq(k);
	} else {
		v = 0;
	}
	memset(data, 0, len);
	data[0] = v;
}

static void command(struct i8042 *k, uint8_t cmd)
{
	switch (cmd) {
	case CMD_READ_CTR:
		push(k, k->ctr);
		break;
	case CMD_READ_OUTP:
		push(k, k->outp);
		break;
	case CMD_AUX_DISABLE:
		/* Linux checks that the AUX port really turned off and on (CTR bit 5). */
		k->ctr |= CTR_AUX_DISABLED;
		break;
	case CMD_AUX_ENABLE:
		k->ctr &= (uint8_t)~CTR_AUX_DISABLED;
		break;
	case CMD_AUX_TEST:
		push(k, 0x00); /* the port answers "no error" */
		break;
	case CMD_SELF_TEST:
		push(k, 0x55);
		break;
	case LAYOUT_I8042_CMD_RESET:
		k->reset(k->opaque);
		break;
	case CMD_WRITE_CTR:
	case CMD_WRITE_OUTP:
		k->cmd = cmd; /* the next data byte is the argument */
		break;
	default:
		break;
	}
}

static void i8042_write(void *opaque, uint64_t off, const uint8_t *data, uint32_t len)
{
	struct i8042 *k = opaque;

	(void)len;
	if (off == LAYOUT_PORT_I8042_CMD - LAYOUT_PORT_I8042_DATA) {
		k->status |= STATUS_CMD;
		command(k, data[0]);
		return;
	}
	k->status &= (uint8_t)~STATUS_CMD;
	if (k->cmd == CMD_WRITE_CTR)
		k->ctr = data[0];
	else if (k->cmd == CMD_WRITE_OUTP)
		k->outp = data[0];
	else
		push(k, 0xfa); /* ACK any keyboard command */
	k->cmd = 0;
}

struct i8042 *i8042_new(int irq_fd, i8042_reset_fn reset, void *opaque)
{
	struct i8042 *k = calloc(1, sizeof(*k));

	if (!k)
		return NULL;
	pthread_mutex_init(&k->lock, NULL);
	k->irq_fd = irq_fd;
	k->reset = reset;
	k->opaque = opaque;
	k->status = STATUS_SYS | STATUS_UNLOCKED;
	k->ctr = CTR_KBD_INT;
	k->outp = 0x01; /* A20 and no reset */
	return k;
}

void i8042_free(struct i8042 *k)
{
	if (!k)
		return;
	pthread_mutex_destroy(&k->lock);
	free(k);
}

int i8042_attach(struct i8042 *k, struct bus *pio)
{
	/* One range covers 0x60..0x64; ports 0x61..0x63 (the PC speaker) read as zero. */
	struct bus_device d = {
		.name = "i8042",
		.base = LAYOUT_PORT_I8042_DATA,
		.len = LAYOUT_PORT_I8042_CMD - LAYOUT_PORT_I8042_DATA + 1,
		.read = i8042_read,
		.write = i8042_write,
		.opaque = k,
		.lock = &k->lock,
	};

	return bus_register(pio, &d);
}

void i8042_send_ctrl_alt_del(struct i8042 *k)
{
	/* Set-2 scan codes: Ctrl down, Alt down, Del down, then the three releases. */
	static const uint8_t seq[] = { 0x14, 0x11, 0xe0, 0x71, 0xe0, 0xf0, 0x71, 0xf0, 0x11, 0xf0,
		0x14 };

	pthread_mutex_lock(&k->lock);
	for (size_t i = 0; i < sizeof(seq); i++)
		push(k, seq[i]);
	pthread_mutex_unlock(&k->lock);
}

/* Saved state, version 1. */
struct i8042_state {
	uint8_t status, ctr, cmd, outp, out_len, pad[3];
	uint8_t out[OUTBUF];
};

int i8042_save(struct i8042 *k, struct snap_writer *w)
{
	struct i8042_state st = { 0 };

	pthread_mutex_lock(&k->lock);
	st.status = k->status;
	st.ctr = k->ctr;
	st.cmd = k->cmd;
	st.outp = k->outp;
	st.out_len = (uint8_t)k->out_len;
	for (unsigned i = 0; i < k->out_len; i++)
		st.out[i] = k->out[(k->out_head + i) % OUTBUF];
	pthread_mutex_unlock(&k->lock);
	return snap_put(w, &st, sizeof(st));
}

int i8042_restore(struct i8042 *k, struct snap_cursor *c, char *err, size_t errlen)
{
	struct i8042_state st;

	if (snap_get(c, &st, sizeof(st)) || st.out_len > OUTBUF) {
		snprintf(err, errlen, "i8042: saved state is %s",
			c->bad ? "truncated" : "malformed (output buffer overfull)");
		return -EINVAL;
	}
	pthread_mutex_lock(&k->lock);
	k->status = st.status;
	k->ctr = st.ctr;
	k->cmd = st.cmd;
	k->outp = st.outp;
	k->out_head = 0;
	k->out_len = st.out_len;
	memcpy(k->out, st.out, OUTBUF);
	pthread_mutex_unlock(&k->lock);
	return 0;
}
