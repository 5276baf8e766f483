/* Legacy platform devices: 8250 serial, i8042, boot timer, ACPI sleep control.
 *
 * Each device registers its registers on a bus; its handlers run on vCPU threads under
 * the device's lock. Callbacks into the VM (`*_fn`) are called from those handlers and
 * must not block. */
#ifndef EMBER_DEVICES_H
#define EMBER_DEVICES_H

#include <stddef.h>
#include <stdint.h>

#include "ember/vm_exit.h"

struct bus;
struct snap_cursor;
struct snap_writer;

/* ---- 8250/16550A UART ---- */
struct serial;
/* Bytes the guest transmitted. vCPU thread, serial lock held. */
typedef void (*serial_out_fn)(void *opaque, const uint8_t *buf, size_t len);

/* `irq_fd` is an eventfd wired to the guest interrupt line (KVM_IRQFD), or -1. */
struct serial *serial_new(int irq_fd, serial_out_fn out, void *opaque);
void serial_free(struct serial *s);
__attribute__((warn_unused_result)) int serial_attach(struct serial *s, struct bus *pio,
	uint16_t base);
/* Queue input for the guest (control thread). Returns how many bytes fit in the FIFO. */
size_t serial_rx_push(struct serial *s, const uint8_t *buf, size_t len);
/* Room left in the receive FIFO. */
size_t serial_rx_room(struct serial *s);
/* Persist pair: registers and the receive FIFO. Control thread, vCPUs parked. */
__attribute__((warn_unused_result)) int serial_save(struct serial *s, struct snap_writer *w);
__attribute__((warn_unused_result)) int serial_restore(struct serial *s, struct snap_cursor *c,
	char *err, size_t errlen);

/* ---- i8042 keyboard controller: reset line and Ctrl-Alt-Del ---- */
struct i8042;
typedef void (*i8042_reset_fn)(void *opaque);
struct i8042 *i8042_new(int irq_fd, i8042_reset_fn reset, void *opaque);
void i8042_free(struct i8042 *k);
__attribute__((warn_unused_result)) int i8042_attach(struct i8042 *k, struct bus *pio);
/* Queue the Ctrl-Alt-Del key sequence for the guest (control thread). */
void i8042_send_ctrl_alt_del(struct i8042 *k);
/* Persist pair: status, command byte, output port and buffer. */
__attribute__((warn_unused_result)) int i8042_save(struct i8042 *k, struct snap_writer *w);
__attribute__((warn_unused_result)) int i8042_restore(struct i8042 *k, struct snap_cursor *c,
	char *err, size_t errlen);

/* ---- boot timer: the guest writes LAYOUT_BOOT_TIMER_MAGIC when it has booted ---- */
struct boot_timer;
typedef void (*boot_timer_fn)(void *opaque);
struct boot_timer *boot_timer_new(boot_timer_fn booted, void *opaque);
void boot_timer_free(struct boot_timer *t);
__attribute__((warn_unused_result)) int boot_timer_attach(struct boot_timer *t, struct bus *mmio);

/* ---- ACPI sleep control/status registers (hardware-reduced power off) ---- */
struct sleep_ctl;
typedef void (*sleep_ctl_fn)(void *opaque, enum vm_exit_reason reason);
struct sleep_ctl *sleep_ctl_new(sleep_ctl_fn fn, void *opaque);
void sleep_ctl_free(struct sleep_ctl *c);
__attribute__((warn_unused_result)) int sleep_ctl_attach(struct sleep_ctl *c, struct bus *pio);

#endif
