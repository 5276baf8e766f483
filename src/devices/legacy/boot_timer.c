/* Boot timer: an MMIO byte the guest writes when it has booted (Firecracker's convention). */
#include "ember/devices.h"

#include <pthread.h>
#include <stdlib.h>

#include "ember/bus.h"
#include "ember/layout.h"

struct boot_timer {
	pthread_mutex_t lock;
	boot_timer_fn booted;
	void *opaque;
};

static void boot_timer_write(void *opaque, uint64_t off, const uint8_t *data, uint32_t len)
{
	struct boot_timer *t = opaque;

	(void)len;
	if (off == 0 && data[0] == LAYOUT_BOOT_TIMER_MAGIC)
		t->booted(t->opaque);
}

struct boot_timer *boot_timer_new(boot_timer_fn booted, void *opaque)
{
	struct boot_timer *t = calloc(1, sizeof(*t));

	if (!t)
		return NULL;
	pthread_mutex_init(&t->lock, NULL);
	t->booted = booted;
	t->opaque = opaque;
	return t;
}

void boot_timer_free(struct boot_timer *t)
{
	if (!t)
		return;
	pthread_mutex_destroy(&t->lock);
	free(t);
}

int boot_timer_attach(struct boot_timer *t, struct bus *mmio)
{
	struct bus_device d = {
		.name = "boot-timer",
		.base = LAYOUT_BOOT_TIMER,
		.len = LAYOUT_BOOT_TIMER_SIZE,
		.write = boot_timer_write,
		.opaque = t,
		.lock = &t->lock,
	};

	return bus_register(mmio, &d);
}
