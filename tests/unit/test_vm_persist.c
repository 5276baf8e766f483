/* Unit tests for the devices' persist table (src/vmm/vm_persist.c): what save writes, and
 * how restore matches each saved section to a device and reports a refusal. The legacy
 * devices are the real ones; the virtio devices are fakes of the transport's persist
 * pair (virtio_save / virtio_restore), so no KVM and no guest memory are needed. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cmocka.h>

#include "../../src/vmm/vm_internal.h"
#include "ember/devices.h"
#include "ember/net.h"
#include "ember/snapshot_file.h"
#include "ember/virtio.h"
#include "ember/virtio_devices.h"
#include "snap_image.h"

/* ---- a fake virtio device: its kind, and a byte of state it saves and takes back ---- */

struct virtio_dev {
	const char *kind;
	uint8_t state;
	int restored;
	bool refuse;
};

const char *virtio_kind(const struct virtio_dev *vd)
{
	return vd->kind;
}

int virtio_save(struct virtio_dev *vd, struct snap_writer *w)
{
	return snap_put(w, &vd->state, 1);
}

int virtio_restore(struct virtio_dev *vd, struct snap_cursor *c, char *err, size_t errlen)
{
	if (vd->refuse) {
		snprintf(err, errlen, "fake %s: refused", vd->kind);
		return -EINVAL;
	}
	vd->restored++;
	return snap_get(c, &vd->state, 1) ? -EINVAL : 0;
}

int virtio_net_mmds_config(struct virtio_dev *vd, struct net_mmds_config *out)
{
	if (strcmp(vd->kind, "net"))
		return -ENODEV;
	*out = (struct net_mmds_config){ 0 };
	return 0;
}

/* ---- a VM with a serial port, an i8042 and the given virtio devices ---- */

struct rig {
	struct vm vm;
	struct virtio_dev devs[4];
	int irq;
};

static void no_out(void *opaque, const uint8_t *buf, size_t len)
{
	(void)opaque;
	(void)buf;
	(void)len;
}

static void no_reset(void *opaque)
{
	(void)opaque;
}

static struct rig *rig_new(const char *const *kinds, unsigned n, unsigned nr_drives)
{
	struct rig *r = calloc(1, sizeof(*r));

	assert_non_null(r);
	r->irq = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	r->vm.serial = serial_new(r->irq, no_out, r);
	r->vm.i8042 = i8042_new(r->irq, no_reset, r);
	assert_non_null(r->vm.serial);
	assert_non_null(r->vm.i8042);
	r->vm.cfg.nr_drives = nr_drives;
	r->vm.cfg.nr_nets = n - nr_drives;
	for (unsigned i = 0; i < n; i++) {
		r->devs[i] = (struct virtio_dev){ .kind = kinds[i], .state = (uint8_t)(0x10 + i) };
		r->vm.virtio[i] = &r->devs[i];
	}
	r->vm.nr_virtio = n;
	return r;
}

static void rig_free(struct rig *r)
{
	serial_free(r->vm.serial);
	i8042_free(r->vm.i8042);
	close(r->irq);
	free(r);
}

/* The state file image of `r`'s devices, as a reader. */
static struct snap_reader *saved(struct rig *r)
{
	struct snap_writer *w = snap_writer_new();

	assert_int_equal(vm_save_device_state(&r->vm, w), 0);
	return snap_image_reader(w);
}

static const char *section_name(const struct snap_reader *rd, unsigned i)
{
	struct snap_cursor c;
	const char *name = NULL;

	assert_int_equal(snap_reader_find(rd, SNAP_SEC_DEVICE, i, &c), 0);
	assert_int_equal(snap_get_str(&c, &name, 64), 0);
	return name;
}

static const char *const BLOCK_NET[] = { "block", "net" };

static void test_vm_persist_saves_legacy_then_virtio_in_build_order(void **state)
{
	struct rig *a = rig_new(BLOCK_NET, 2, 1), *b = rig_new(BLOCK_NET, 2, 1);
	struct snap_reader *rd = saved(a);
	char err[160] = "";

	(void)state;
	assert_int_equal(snap_reader_count_id(rd, SNAP_SEC_DEVICE), 4);
	assert_string_equal(section_name(rd, 0), "serial");
	assert_string_equal(section_name(rd, 1), "i8042");
	assert_string_equal(section_name(rd, 2), "virtio-block");
	assert_string_equal(section_name(rd, 3), "virtio-net");
	b->devs[0].state = b->devs[1].state = 0;
	assert_int_equal(vm_restore_device_state(&b->vm, rd, err, sizeof(err)), 0);
	assert_int_equal(b->devs[0].restored, 1);
	assert_int_equal(b->devs[1].restored, 1);
	assert_int_equal(b->devs[0].state, 0x10);
	assert_int_equal(b->devs[1].state, 0x11);
	snap_reader_free(rd);
	rig_free(a);
	rig_free(b);
}

/* Each refusal names the device and the reason, for the API answer. */
static void test_vm_persist_restore_says_which_device_and_why(void **state)
{
	static const char *const NET_BLOCK[] = { "net", "block" };
	struct rig *a = rig_new(BLOCK_NET, 2, 1), *swapped = rig_new(NET_BLOCK, 2, 0),
		   *fewer = rig_new(BLOCK_NET, 1, 1), *refusing = rig_new(BLOCK_NET, 2, 1);
	struct snap_reader *rd = saved(a);
	char err[160] = "";

	(void)state;
	assert_int_equal(vm_restore_device_state(&swapped->vm, rd, err, sizeof(err)), -EINVAL);
	assert_string_equal(err,
		"state file: device 0 is 'virtio-block', the vm has "
		"'virtio-net' there");
	assert_int_equal(vm_restore_device_state(&fewer->vm, rd, err, sizeof(err)), -EINVAL);
	assert_string_equal(err,
		"state file: device 'virtio-net' is not in the vm's "
		"configuration");
	refusing->devs[1].refuse = true;
	assert_int_equal(vm_restore_device_state(&refusing->vm, rd, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "fake net: refused");
	snap_reader_free(rd);
	rig_free(a);
	rig_free(swapped);
	rig_free(fewer);
	rig_free(refusing);
}

/* One DEVICE section of `name` with `len` bytes of state, as a reader. */
static struct snap_reader *one_section(const char *name, const void *data, size_t len)
{
	struct snap_writer *w = snap_writer_new();

	assert_int_equal(snap_section_begin(w, SNAP_SEC_DEVICE, 1), 0);
	assert_int_equal(snap_put_str(w, name), 0);
	assert_int_equal(snap_put(w, data, len), 0);
	assert_int_equal(snap_section_end(w), 0);
	return snap_image_reader(w);
}

static void test_vm_persist_refuses_unknown_and_malformed_legacy_state(void **state)
{
	struct rig *r = rig_new(BLOCK_NET, 0, 0);
	uint8_t junk[4] = { 0 };
	struct snap_reader *rd = one_section("floppy", junk, sizeof(junk));
	char err[160] = "";

	(void)state;
	assert_int_equal(vm_restore_device_state(&r->vm, rd, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "state file: unknown device 'floppy'");
	snap_reader_free(rd);
	rd = one_section("serial", junk, sizeof(junk)); /* far shorter than its state */
	assert_int_equal(vm_restore_device_state(&r->vm, rd, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "serial: saved state is truncated");
	snap_reader_free(rd);
	rig_free(r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_vm_persist_saves_legacy_then_virtio_in_build_order),
		cmocka_unit_test(test_vm_persist_restore_says_which_device_and_why),
		cmocka_unit_test(test_vm_persist_refuses_unknown_and_malformed_legacy_state),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
