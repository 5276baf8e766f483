/* Unit tests for virtio-pmem on its transport: config space, FLUSH requests (good, bad,
 * limited), the backing file's checks, and the persist pair's size check. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "ember/byteorder.h"
#include "ember/pmem.h"
#include "ember/snapshot_file.h"
#include "ember/virtio.h"
#include "ember/virtio_devices.h"
#include "virtio_rig.h"

#define QSIZE 8
#define GPA (5ull << 30)

static unsigned restores; /* windows used by restored devices (the rig's bus keeps them) */

struct fixture {
	char path[64];
	struct pmem_config cfg;
	struct rig *r;
};

/* A backing file of `size` bytes holding 0x5a. */
static void make_file(struct fixture *f, uint64_t size)
{
	FILE *fp;

	snprintf(f->path, sizeof(f->path), "/tmp/ember-pmem-XXXXXX");
	int fd = mkstemp(f->path);
	assert_true(fd >= 0);
	fp = fdopen(fd, "w");
	for (uint64_t i = 0; i < size; i++)
		fputc(0x5a, fp);
	fclose(fp);
	f->cfg = (struct pmem_config){ .id = "p0", .path = f->path };
}

static struct virtio_dev *pmem_at(struct rig *r, const struct fixture *f, uint64_t base, char *err,
	size_t errlen)
{
	return virtio_pmem_new(&r->env, base, 5, &f->cfg, GPA, 2, err, errlen);
}

static void up(struct fixture *f, uint64_t size, const struct rate_limit *limit)
{
	char err[256];

	make_file(f, size);
	if (limit)
		f->cfg.limit = *limit;
	f->r = rig_new();
	f->r->vd = pmem_at(f->r, f, RIG_BASE, err, sizeof(err));
	assert_non_null(f->r->vd);
	bring_up_at(f->r, RIG_BASE, 0, QSIZE);
}

static void down(struct fixture *f)
{
	rig_free(f->r);
	unlink(f->path);
}

static uint64_t config64(struct rig *r, uint32_t off)
{
	return (uint64_t)rd(r, CONFIG + off) | (uint64_t)rd(r, CONFIG + off + 4) << 32;
}

/* A request chain at descriptors d, d+1: `req_len` readable bytes holding `type`, then
 * `status_len` writable bytes (0xff before the device answers). */
static void request(struct rig *r, uint16_t d, uint32_t type, uint32_t req_len, uint32_t status_len)
{
	put_le32(ram(r, RIG_BUF + 0x1000 * d), type);
	memset(ram(r, RIG_BUF + 0x1000 * (d + 1)), 0xff, 4);
	put_desc(r, d, RIG_BUF + 0x1000 * d, req_len, D_NEXT, (uint16_t)(d + 1));
	put_desc(r, (uint16_t)(d + 1), RIG_BUF + 0x1000 * (d + 1), status_len, D_WRITE, 0);
	offer(r, d);
}

static void kick(struct rig *r)
{
	wr(r, QUEUE_NOTIFY, 0);
	run_loop(r);
}

/* Run the loop until `want` chains are used or `ms` passed (answers come from the flush
 * worker): the used index then. */
static uint16_t settle(struct rig *r, uint16_t want, unsigned ms)
{
	for (unsigned i = 0; i < ms && used_idx(r) < want; i++) {
		run_loop(r);
		usleep(1000);
	}
	run_loop(r);
	return used_idx(r);
}

static uint32_t status_of(struct rig *r, uint16_t d)
{
	return get_le32(ram(r, RIG_BUF + 0x1000 * (d + 1)));
}

/* One of the device's counters, by name. */
struct counter {
	const char *key;
	uint64_t value;
};

static void pick(void *ctx, const char *key, uint64_t v)
{
	struct counter *c = ctx;

	if (!strcmp(key, c->key))
		c->value = v;
}

static uint64_t counter(struct rig *r, const char *key)
{
	struct counter c = { key, ~0ull };

	virtio_stats(r->vd, pick, &c);
	return c.value;
}

static void test_virtio_pmem_config_space_and_rounded_size(void **state)
{
	struct fixture f;
	struct pmem_info info;

	(void)state;
	up(&f, (1u << 20) + 3, NULL); /* 1 MiB and 3 bytes: a 2 MiB region */
	assert_int_equal(rd(f.r, DEVICE_ID), VIRTIO_ID_PMEM);
	assert_string_equal(virtio_kind(f.r->vd), "pmem");
	assert_int_equal(config64(f.r, 0), GPA);
	assert_int_equal(config64(f.r, 8), PMEM_ALIGN);
	assert_int_equal(virtio_pmem_info(f.r->vd, &info), 0);
	assert_int_equal(info.gpa, GPA);
	assert_int_equal(info.size, PMEM_ALIGN);
	wr(f.r, QUEUE_SEL, 1);
	assert_int_equal(rd(f.r, QUEUE_NUM_MAX), 0); /* one queue only */
	down(&f);
}

static void test_virtio_pmem_flush_answers_ok_once_per_kick(void **state)
{
	struct fixture f;
	uint32_t id, len;

	(void)state;
	up(&f, 4096, NULL);
	request(f.r, 0, VIRTIO_PMEM_REQ_TYPE_FLUSH, 4, 4);
	request(f.r, 2, VIRTIO_PMEM_REQ_TYPE_FLUSH, 4, 4);
	kick(f.r);
	assert_int_equal(settle(f.r, 2, 2000), 2);
	used_elem(f.r, 0, &id, &len);
	assert_int_equal(id, 0);
	assert_int_equal(len, 4);
	assert_int_equal(status_of(f.r, 0), VIRTIO_PMEM_RESP_TYPE_OK);
	assert_int_equal(status_of(f.r, 2), VIRTIO_PMEM_RESP_TYPE_OK);
	assert_int_equal(counter(f.r, "flushes"), 1); /* both asked for the same msync */
	assert_int_equal(rd(f.r, ISR) & 1, 1);
	down(&f);
}

static void test_virtio_pmem_bad_requests_get_nothing(void **state)
{
	static const uint32_t cases[][3] = {
		{ 7, 4, 4 },                          /* unknown type */
		{ VIRTIO_PMEM_REQ_TYPE_FLUSH, 8, 4 }, /* request too long */
		{ VIRTIO_PMEM_REQ_TYPE_FLUSH, 4, 2 }, /* status too short */
		{ VIRTIO_PMEM_REQ_TYPE_FLUSH, 2, 4 }, /* request too short */
	};
	struct fixture f;
	uint32_t id, len;

	(void)state;
	up(&f, 4096, NULL);
	for (unsigned i = 0; i < 4; i++)
		request(f.r, (uint16_t)(2 * i), cases[i][0], cases[i][1], cases[i][2]);
	kick(f.r);
	assert_int_equal(used_idx(f.r), 4);
	for (unsigned i = 0; i < 4; i++) {
		used_elem(f.r, (uint16_t)i, &id, &len);
		assert_int_equal(len, 0);
		assert_int_equal(status_of(f.r, (uint16_t)(2 * i)), 0xffffffffu);
	}
	assert_int_equal(counter(f.r, "bad_requests"), 4);
	assert_int_equal(counter(f.r, "flushes"), 0);
	assert_false(rd(f.r, STATUS) & NEEDS_RESET);
	/* The device goes on: a good request after them is answered. */
	request(f.r, 0, VIRTIO_PMEM_REQ_TYPE_FLUSH, 4, 4);
	kick(f.r);
	assert_int_equal(settle(f.r, 5, 2000), 5);
	assert_int_equal(status_of(f.r, 0), VIRTIO_PMEM_RESP_TYPE_OK);
	down(&f);
}

/* A device whose limiter lets one FLUSH a minute: the first is answered, the second
 * held back. */
static void one_through_one_held(struct fixture *f)
{
	struct rate_limit limit = { .ops = { .size = 1, .refill_time_ms = 60000 } };

	up(f, 4096, &limit);
	request(f->r, 0, VIRTIO_PMEM_REQ_TYPE_FLUSH, 4, 4);
	kick(f->r);
	assert_int_equal(settle(f->r, 1, 2000), 1);
	request(f->r, 2, VIRTIO_PMEM_REQ_TYPE_FLUSH, 4, 4);
	kick(f->r);
	assert_int_equal(settle(f->r, 2, 100), 1);
}

static void test_virtio_pmem_limiter_holds_a_flush_back(void **state)
{
	struct rate_limit_update u = { .ops_set = true };
	struct fixture f;
	char err[256];

	(void)state;
	one_through_one_held(&f);
	assert_int_equal(counter(f.r, "throttled"), 1);
	/* A PATCH that lifts the limit lets it through at once. */
	assert_int_equal(virtio_pmem_set_limit(f.r->vd, &u, err, sizeof(err)), 0);
	assert_int_equal(settle(f.r, 2, 2000), 2);
	assert_int_equal(status_of(f.r, 2), VIRTIO_PMEM_RESP_TYPE_OK);
	down(&f);
}

/* A FLUSH held back when the state is saved is owed: this VM answers it after the save,
 * and a device restored from the state answers it at activation. */
static void test_virtio_pmem_owed_answer_survives_save_restore(void **state)
{
	struct fixture f;
	struct rig_saved *saved;
	struct virtio_dev *vd2;
	char err[256];

	(void)state;
	one_through_one_held(&f);
	saved = rig_save(f.r->vd);
	/* The restored device takes over the same rings; this one goes first. */
	virtio_free(f.r->vd);
	f.r->vd = NULL;
	assert_int_equal(status_of(f.r, 2), 0xffffffffu);
	vd2 = pmem_at(f.r, &f, RIG_BASE2 + 0x1000 * restores++, err, sizeof(err));
	assert_non_null(vd2);
	f.r->vd = vd2;
	assert_int_equal(virtio_restore(vd2, &saved->cursor, err, sizeof(err)), 0);
	assert_int_equal(settle(f.r, 2, 100), 2);
	assert_int_equal(status_of(f.r, 2), VIRTIO_PMEM_RESP_TYPE_OK);
	rig_saved_free(saved);
	down(&f);
}

static void test_virtio_pmem_refuses_empty_and_missing_files(void **state)
{
	struct fixture f;
	struct rig *r = rig_new();
	char err[256];
	uint64_t size;

	(void)state;
	make_file(&f, 0);
	assert_null(pmem_at(r, &f, RIG_BASE, err, sizeof(err)));
	assert_string_equal(err, "pmem 'p0': Error backing file size is 0");
	assert_int_equal(pmem_file_size(&f.cfg, &size, err, sizeof(err)), -EINVAL);
	unlink(f.path);
	assert_null(pmem_at(r, &f, RIG_BASE, err, sizeof(err)));
	assert_non_null(strstr(err, "cannot open"));
	assert_int_equal(pmem_file_size(&f.cfg, &size, err, sizeof(err)), -ENOENT);
	f.cfg.path = "/dev/null";
	assert_int_equal(pmem_file_size(&f.cfg, &size, err, sizeof(err)), -ENOTBLK);
	rig_free(r);
}

/* Save, then restore into a new device whose file is `new_size` bytes: 0 or -errno. */
static int save_restore(struct fixture *f, uint64_t new_size, char *err, size_t errlen)
{
	struct rig_saved *saved = rig_save(f->r->vd);
	struct virtio_dev *vd2;
	int ret;

	assert_int_equal(truncate(f->path, (off_t)new_size), 0);
	/* A window of its own each time: the rig's bus keeps the ones of freed devices. */
	vd2 = pmem_at(f->r, f, RIG_BASE2 + 0x1000 * restores++, err, errlen);
	if (!vd2)
		fail_msg("%s", err);
	ret = virtio_restore(vd2, &saved->cursor, err, errlen);
	virtio_free(vd2);
	rig_saved_free(saved);
	return ret;
}

static void test_virtio_pmem_restore_checks_the_region(void **state)
{
	struct fixture f;
	char err[256];

	(void)state;
	up(&f, 3u << 20, NULL); /* a 4 MiB region */
	assert_int_equal(save_restore(&f, (3u << 20) + 5, err, sizeof(err)), 0);
	assert_int_equal(save_restore(&f, 5u << 20, err, sizeof(err)), -EINVAL);
	assert_string_equal(err,
		"pmem 'p0': Restored pmem size 4194304 does not match backing "
		"file mapping size 6291456");
	down(&f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_virtio_pmem_config_space_and_rounded_size),
		cmocka_unit_test(test_virtio_pmem_flush_answers_ok_once_per_kick),
		cmocka_unit_test(test_virtio_pmem_bad_requests_get_nothing),
		cmocka_unit_test(test_virtio_pmem_limiter_holds_a_flush_back),
		cmocka_unit_test(test_virtio_pmem_owed_answer_survives_save_restore),
		cmocka_unit_test(test_virtio_pmem_refuses_empty_and_missing_files),
		cmocka_unit_test(test_virtio_pmem_restore_checks_the_region),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
