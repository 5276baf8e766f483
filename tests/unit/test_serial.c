/* Unit tests for the 8250 UART model: transmit, receive FIFO, line status, interrupts. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cmocka.h>

#include "ember/bus.h"
#include "ember/devices.h"

#define BASE 0x3f8

struct rig {
	struct bus pio;
	struct serial *s;
	int irq;
	char out[256];
	size_t out_len;
};

static void collect(void *opaque, const uint8_t *buf, size_t len)
{
	struct rig *r = opaque;

	memcpy(r->out + r->out_len, buf, len);
	r->out_len += len;
}

static int setup(void **state)
{
	static struct rig r;

	memset(&r, 0, sizeof(r));
	r.pio.name = "pio";
	r.irq = eventfd(0, EFD_NONBLOCK);
	r.s = serial_new(r.irq, collect, &r);
	assert_non_null(r.s);
	assert_int_equal(serial_attach(r.s, &r.pio, BASE), 0);
	*state = &r;
	return 0;
}

static int teardown(void **state)
{
	struct rig *r = *state;

	serial_free(r->s);
	close(r->irq);
	return 0;
}

static uint8_t rd(struct rig *r, unsigned reg)
{
	uint8_t v;

	bus_access(&r->pio, BASE + reg, &v, 1, false);
	return v;
}

static void wr(struct rig *r, unsigned reg, uint8_t v)
{
	bus_access(&r->pio, BASE + reg, &v, 1, true);
}

static uint64_t irqs(struct rig *r)
{
	uint64_t n = 0;

	if (read(r->irq, &n, sizeof(n)) != sizeof(n))
		return 0;
	return n;
}

static void test_serial_transmits_bytes_to_the_sink(void **state)
{
	struct rig *r = *state;

	wr(r, 0, 'h');
	wr(r, 0, 'i');
	assert_int_equal(r->out_len, 2);
	assert_memory_equal(r->out, "hi", 2);
	assert_true(rd(r, 5) & 0x60); /* THRE and TEMT: always ready */
}

static void test_serial_receive_fifo_and_data_ready(void **state)
{
	struct rig *r = *state;

	assert_false(rd(r, 5) & 1);
	assert_int_equal(serial_rx_push(r->s, (const uint8_t *)"ab", 2), 2);
	assert_true(rd(r, 5) & 1);
	assert_int_equal(rd(r, 0), 'a');
	assert_int_equal(rd(r, 0), 'b');
	assert_false(rd(r, 5) & 1);
}

static void test_serial_fifo_bounds_input(void **state)
{
	struct rig *r = *state;
	uint8_t buf[100];

	memset(buf, 'x', sizeof(buf));
	assert_int_equal(serial_rx_push(r->s, buf, sizeof(buf)), 64);
	assert_int_equal(serial_rx_room(r->s), 0);
	assert_int_equal(serial_rx_push(r->s, buf, 1), 0);
}

static void test_serial_divisor_latch_hides_data_registers(void **state)
{
	struct rig *r = *state;

	wr(r, 3, 0x80); /* DLAB */
	wr(r, 0, 0x01);
	wr(r, 1, 0x00);
	assert_int_equal(rd(r, 0), 0x01);
	assert_int_equal(r->out_len, 0); /* the divisor write did not transmit */
	wr(r, 3, 0x03);
	wr(r, 0, 'z');
	assert_int_equal(r->out_len, 1);
}

static void test_serial_interrupts_follow_ier_and_iir(void **state)
{
	struct rig *r = *state;

	assert_int_equal(rd(r, 2) & 0x0f, 0x01); /* nothing pending */
	irqs(r);
	wr(r, 1, 0x01); /* receive interrupts */
	serial_rx_push(r->s, (const uint8_t *)"k", 1);
	assert_true(irqs(r) > 0);
	assert_int_equal(rd(r, 2) & 0x0f, 0x04);
	rd(r, 0);
	assert_int_equal(rd(r, 2) & 0x0f, 0x01);
	wr(r, 1, 0x03); /* enabling THRE raises it at once */
	assert_true(irqs(r) > 0);
	assert_int_equal(rd(r, 2) & 0x0f, 0x02);
	assert_int_equal(rd(r, 2) & 0x0f, 0x01); /* reading IIR acknowledged it */
}

static void test_serial_loopback_returns_transmitted_bytes(void **state)
{
	struct rig *r = *state;

	wr(r, 4, 0x10);
	wr(r, 0, 'q');
	assert_int_equal(r->out_len, 0);
	assert_int_equal(rd(r, 0), 'q');
	wr(r, 7, 0x42);
	assert_int_equal(rd(r, 7), 0x42);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_serial_transmits_bytes_to_the_sink, setup,
			teardown),
		cmocka_unit_test_setup_teardown(test_serial_receive_fifo_and_data_ready, setup,
			teardown),
		cmocka_unit_test_setup_teardown(test_serial_fifo_bounds_input, setup, teardown),
		cmocka_unit_test_setup_teardown(test_serial_divisor_latch_hides_data_registers,
			setup, teardown),
		cmocka_unit_test_setup_teardown(test_serial_interrupts_follow_ier_and_iir, setup,
			teardown),
		cmocka_unit_test_setup_teardown(test_serial_loopback_returns_transmitted_bytes,
			setup, teardown),
	};
	return cmocka_run_group_tests_name("serial", tests, NULL, NULL);
}
