/* Unit tests for the device bus: placement, overlap refusal, dispatch. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "ember/bus.h"

struct fake {
	uint64_t last_off;
	uint8_t last_val;
	int reads, writes;
};

static void fake_read(void *opaque, uint64_t off, uint8_t *data, uint32_t len)
{
	struct fake *f = opaque;

	f->reads++;
	f->last_off = off;
	memset(data, 0x5a, len);
}

static void fake_write(void *opaque, uint64_t off, const uint8_t *data, uint32_t len)
{
	struct fake *f = opaque;

	(void)len;
	f->writes++;
	f->last_off = off;
	f->last_val = data[0];
}

static struct bus_device dev(uint64_t base, uint64_t len, struct fake *f)
{
	return (struct bus_device){ .name = "fake",
		.base = base,
		.len = len,
		.read = fake_read,
		.write = fake_write,
		.opaque = f };
}

static void test_bus_dispatches_to_the_device_at_the_offset(void **state)
{
	struct bus b = { .name = "pio" };
	struct fake a = { 0 }, c = { 0 };
	struct bus_device da = dev(0x3f8, 8, &a), dc = dev(0x60, 5, &c);
	uint8_t v = 0x41;

	(void)state;
	assert_int_equal(bus_register(&b, &da), 0);
	assert_int_equal(bus_register(&b, &dc), 0);
	assert_true(bus_access(&b, 0x3fd, &v, 1, true));
	assert_int_equal(a.writes, 1);
	assert_int_equal(a.last_off, 5);
	assert_int_equal(a.last_val, 0x41);
	assert_true(bus_access(&b, 0x64, &v, 1, false));
	assert_int_equal(c.reads, 1);
	assert_int_equal(c.last_off, 4);
	assert_int_equal(v, 0x5a);
}

static void test_bus_unclaimed_read_sees_all_ones(void **state)
{
	struct bus b = { .name = "mmio" };
	uint8_t v[4] = { 0 };

	(void)state;
	assert_false(bus_access(&b, 0x1000, v, 4, false));
	assert_int_equal(v[0] & v[1] & v[2] & v[3], 0xff);
}

static void test_bus_rejects_overlap_and_empty_ranges(void **state)
{
	struct bus b = { .name = "pio" };
	struct fake f = { 0 };
	struct bus_device d1 = dev(0x100, 0x10, &f), d2 = dev(0x108, 0x10, &f),
			  d3 = dev(0xf8, 0x10, &f), d4 = dev(0x200, 0, &f),
			  d5 = dev(UINT64_MAX - 1, 4, &f), d6 = dev(0x110, 0x10, &f);

	(void)state;
	assert_int_equal(bus_register(&b, &d1), 0);
	assert_int_equal(bus_register(&b, &d2), -EEXIST);
	assert_int_equal(bus_register(&b, &d3), -EEXIST);
	assert_int_equal(bus_register(&b, &d4), -EINVAL);
	assert_int_equal(bus_register(&b, &d5), -EINVAL);
	assert_int_equal(bus_register(&b, &d6), 0); /* adjacent is fine */
	assert_int_equal(b.count, 2);
}

static void test_bus_access_straddling_the_end_is_not_claimed(void **state)
{
	struct bus b = { .name = "mmio" };
	struct fake f = { 0 };
	struct bus_device d = dev(0x1000, 8, &f);
	uint8_t v[8];

	(void)state;
	assert_int_equal(bus_register(&b, &d), 0);
	assert_null(bus_find(&b, 0x1006, 4));
	assert_non_null(bus_find(&b, 0x1004, 4));
	assert_false(bus_access(&b, 0x1006, v, 4, false));
	assert_int_equal(f.reads, 0);
}

static void test_bus_keeps_devices_sorted(void **state)
{
	struct bus b = { .name = "pio" };
	struct fake f = { 0 };
	uint64_t bases[] = { 0x500, 0x100, 0x300, 0x200, 0x400 };

	(void)state;
	for (unsigned i = 0; i < 5; i++) {
		struct bus_device d = dev(bases[i], 0x10, &f);
		assert_int_equal(bus_register(&b, &d), 0);
	}
	for (unsigned i = 1; i < b.count; i++)
		assert_true(b.devices[i - 1].base < b.devices[i].base);
	for (unsigned i = 0; i < 5; i++)
		assert_non_null(bus_find(&b, bases[i] + 0xf, 1));
	assert_null(bus_find(&b, 0x250, 1));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bus_dispatches_to_the_device_at_the_offset),
		cmocka_unit_test(test_bus_unclaimed_read_sees_all_ones),
		cmocka_unit_test(test_bus_rejects_overlap_and_empty_ranges),
		cmocka_unit_test(test_bus_access_straddling_the_end_is_not_claimed),
		cmocka_unit_test(test_bus_keeps_devices_sorted),
	};
	return cmocka_run_group_tests_name("bus", tests, NULL, NULL);
}
