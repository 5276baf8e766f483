/* ACPI hardware-reduced sleep control and status registers: S5 powers the machine off. */
#include "ember/devices.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "ember/bus.h"
#include "ember/layout.h"

#define SLP_EN 0x20
#define SLP_TYP(v) (((v) >> 2) & 7)
#define S5 5

struct sleep_ctl {
	pthread_mutex_t lock;
	sleep_ctl_fn fn;
	void *opaque;
};

static void sleep_read(void *opaque, uint64_t off, uint8_t *data, uint32_t len)
{
	(void)opaque;
	(void)off;
	memset(data, 0, len); /* nothing pending; wake status clear */
}

static void sleep_write(void *opaque, uint64_t off, const uint8_t *data, uint32_t len)
{
	struct sleep_ctl *c = opaque;

	(void)len;
	if (off == 0 && (data[0] & SLP_EN) && SLP_TYP(data[0]) == S5)
		c->fn(c->opaque, VM_EXIT_POWEROFF);
}

struct sleep_ctl *sleep_ctl_new(sleep_ctl_fn fn, void *opaque)
{
	struct sleep_ctl *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	pthread_mutex_init(&c->lock, NULL);
	c->fn = fn;
	c->opaque = opaque;
	return c;
}

void sleep_ctl_free(struct sleep_ctl *c)
{
	if (!c)
		return;
	pthread_mutex_destroy(&c->lock);
	free(c);
}

int sleep_ctl_attach(struct sleep_ctl *c, struct bus *pio)
{
	struct bus_device d = {
		.name = "acpi-sleep",
		.base = LAYOUT_PORT_SLEEP_CTL,
		.len = 2,
		.read = sleep_read,
		.write = sleep_write,
		.opaque = c,
		.lock = &c->lock,
	};

	return bus_register(pio, &d);
}
