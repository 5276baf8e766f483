/* Unit tests for virtio-blk: requests, bounds, read-only, hostile chains, throttling,
 * persist, on a fake backend and on a real temporary file. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ember/block.h"
#include "ember/config.h"
#include "ember/rate_limiter.h"
#include "ember/snapshot_file.h"
#include "ember/virtio_devices.h"
#include "fake_block_env.h"
#include "snap_image.h"

#define SECTORS 64
#define DISK_BYTES (SECTORS * 512)

/* ---- fake backend: RAM disk with call counts, failures and a gate ---- */

struct fake_disk {
	struct block_backend be;
	uint8_t data[DISK_BYTES + 100]; /* a partial last sector, never exposed */
	unsigned reads, writes, flushes;
	uint64_t last_offset;
	int fail; /* -errno returned by every call when set */
	bool gated;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool entered;
	bool closed;
	uint64_t size; /* bytes the disk says it has; 0: DISK_BYTES + 100 */
};

/* What the model's restore said when it refused (the persist contract's message). */
static char restore_err[256];
#define model_restore(rig, cur) \
	((rig)->vd->ops->restore((rig)->vd->dev, (cur), restore_err, sizeof(restore_err)))
static void gate(struct fake_disk *f)
{
	pthread_mutex_lock(&f->lock);
	f->entered = true;
	pthread_cond_broadcast(&f->cond);
	while (f->gated)
		pthread_cond_wait(&f->cond, &f->lock);
	pthread_mutex_unlock(&f->lock);
}

static int disk_io(struct block_backend *b, uint64_t off, const struct iovec *iov, unsigned n,
	bool write)
{
	struct fake_disk *f = (struct fake_disk *)b;

	gate(f);
	f->last_offset = off;
	if (write)
		f->writes++;
	else
		f->reads++;
	if (f->fail)
		return f->fail;
	for (unsigned i = 0; i < n; i++) {
		if (off + iov[i].iov_len > DISK_BYTES)
			return -EIO;
		if (write)
			memcpy(f->data + off, iov[i].iov_base, iov[i].iov_len);
		else
			memcpy(iov[i].iov_base, f->data + off, iov[i].iov_len);
		off += iov[i].iov_len;
	}
	return 0;
}

static int disk_read(struct block_backend *b, uint64_t off, const struct iovec *iov, unsigned n)
{
	return disk_io(b, off, iov, n, false);
}

static int disk_write(struct block_backend *b, uint64_t off, const struct iovec *iov, unsigned n)
{
	return disk_io(b, off, iov, n, true);
}

static int disk_flush(struct block_backend *b)
{
	struct fake_disk *f = (struct fake_disk *)b;

	gate(f);
	f->flushes++;
	return f->fail;
}

static uint64_t disk_size(const struct block_backend *b)
{
	const struct fake_disk *f = (const struct fake_disk *)b;

	return f->size ? f->size : DISK_BYTES + 100;
}

static void disk_close(struct block_backend *b)
{
	((struct fake_disk *)b)->closed = true;
}

static const struct block_backend_ops disk_ops = {
	.read = disk_read,
	.write = disk_write,
	.flush = disk_flush,
	.size = disk_size,
	.close = disk_close,
};

static void disk_open_gate(struct fake_disk *f)
{
	pthread_mutex_lock(&f->lock);
	f->gated = false;
	pthread_cond_broadcast(&f->cond);
	pthread_mutex_unlock(&f->lock);
}

static void disk_wait_entered(struct fake_disk *f)
{
	pthread_mutex_lock(&f->lock);
	while (!f->entered)
		pthread_cond_wait(&f->cond, &f->lock);
	pthread_mutex_unlock(&f->lock);
}

/* ---- rig ---- */

struct rig {
	struct fake_driver d;
	struct fake_disk disk;
	struct drive_config cfg;
	struct virtio_dev *vd;
	char tmp[64];
};

static struct rig *rig_new(bool read_only, const char *id)
{
	struct rig *r = calloc(1, sizeof(*r));

	assert_non_null(r);
	fake_driver_init(&r->d);
	r->disk.be.ops = &disk_ops;
	pthread_mutex_init(&r->disk.lock, NULL);
	pthread_cond_init(&r->disk.cond, NULL);
	for (unsigned i = 0; i < sizeof(r->disk.data); i++)
		r->disk.data[i] = (uint8_t)(i * 7 + i / 512);
	r->cfg.id = (char *)id;
	r->cfg.path = "/fake/disk.img";
	r->cfg.read_only = read_only;
	return r;
}

static void rig_start(struct rig *r)
{
	char err[256];

	r->vd = virtio_block_new_backend(&r->d.env, 0xd0001000, 5, &r->cfg, &r->disk.be, err,
		sizeof(err));
	assert_non_null(r->vd);
	fake_driver_attach(&r->d, r->vd);
}

static struct rig *rig(bool read_only)
{
	struct rig *r = rig_new(read_only, "rootfs");

	rig_start(r);
	return r;
}

static void rig_free(struct rig *r)
{
	disk_open_gate(&r->disk);
	virtio_free(r->vd);
	fake_driver_deinit(&r->d);
	if (r->tmp[0])
		unlink(r->tmp);
	free(r);
}

/* A request in the usual three descriptors: header, data, status. */
struct req {
	uint64_t hdr, data, status;
	uint32_t len;
};

static struct req build(struct rig *r, uint32_t type, uint64_t sector, uint32_t len,
	bool data_writable)
{
	struct req q = { .len = len };
	struct fake_seg s[3];
	unsigned n = 0;

	q.hdr = fake_alloc(&r->d, 16);
	q.data = len ? fake_alloc(&r->d, len) : 0;
	q.status = fake_alloc(&r->d, 1);
	memcpy(fake_ptr(&r->d, q.hdr), &type, 4);
	memcpy(fake_ptr(&r->d, q.hdr + 8), &sector, 8);
	*fake_ptr(&r->d, q.status) = 0xee;
	s[n++] = (struct fake_seg){ q.hdr, 16, false };
	if (len)
		s[n++] = (struct fake_seg){ q.data, len, data_writable };
	s[n++] = (struct fake_seg){ q.status, 1, true };
	fake_add_chain(&r->d, s, n);
	return q;
}

static uint8_t status_of(struct rig *r, const struct req *q)
{
	return *fake_ptr(&r->d, q->status);
}

/* Kick, wait for `n` more used entries, return the status of the last request built. */
static void run(struct rig *r, uint16_t want)
{
	fake_kick(&r->d);
	assert_true(fake_wait_used(&r->d, want));
}

static uint32_t used_len(struct rig *r, uint16_t i)
{
	uint32_t id, len;

	fake_used_elem(&r->d, i, &id, &len);
	return len;
}

struct stat_seen {
	const char *key;
	uint64_t value;
};

static void put_stat(void *ctx, const char *key, uint64_t value)
{
	struct stat_seen *s = ctx;

	if (!strcmp(key, s->key))
		s->value = value;
}

static uint64_t counter(struct rig *r, const char *key)
{
	struct stat_seen s = { key, UINT64_MAX };

	r->vd->ops->stats(r->vd->dev, put_stat, &s);
	assert_int_not_equal(s.value, UINT64_MAX);
	return s.value;
}

/* ---- config space and features ---- */

static void test_virtio_block_config_space(void **state)
{
	struct rig *r = rig(false);
	uint8_t cfg[24];
	uint64_t cap;
	uint32_t v;
	uint64_t f = r->vd->ops->features(r->vd->dev);

	(void)state;
	r->vd->ops->config_read(r->vd->dev, 0, cfg, 8);
	r->vd->ops->config_read(r->vd->dev, 8, cfg + 8, 8);
	r->vd->ops->config_read(r->vd->dev, 16, cfg + 16, 8);
	memcpy(&cap, cfg, 8);
	assert_int_equal(cap, SECTORS); /* the partial sector is not exposed */
	memcpy(&v, cfg + 8, 4);
	assert_true(v >= 4096);
	memcpy(&v, cfg + 12, 4);
	assert_int_equal(v, VIRTQ_MAX_SEGMENTS - 2);
	memcpy(&v, cfg + 20, 4);
	assert_int_equal(v, 512);
	assert_false(f & (1ull << VIRTIO_BLK_F_FLUSH)); /* Unsafe, the default */
	assert_true(f & (1ull << VIRTIO_BLK_F_SEG_MAX));
	assert_false(f & (1ull << VIRTIO_BLK_F_RO));
	assert_int_equal(r->vd->ops->device_id, VIRTIO_ID_BLOCK);
	rig_free(r);

	r = rig(true);
	assert_true(r->vd->ops->features(r->vd->dev) & (1ull << VIRTIO_BLK_F_RO));
	rig_free(r);
}

/* ---- each request type against the fake backend ---- */

static void test_virtio_block_read_returns_disk_data(void **state)
{
	struct rig *r = rig(false);
	struct req q = build(r, VIRTIO_BLK_T_IN, 3, 1024, true);

	(void)state;
	run(r, 1);
	assert_int_equal(status_of(r, &q), VIRTIO_BLK_S_OK);
	assert_memory_equal(fake_ptr(&r->d, q.data), r->disk.data + 3 * 512, 1024);
	assert_int_equal(used_len(r, 0), 1025);
	assert_int_equal(r->disk.last_offset, 3 * 512);
	assert_int_equal(counter(r, "reads"), 1);
	assert_int_equal(counter(r, "read_bytes"), 1024);
	assert_true(r->vd->notifies >= 1);
	rig_free(r);
}

/* The disk is read straight into guest memory, behind KVM's dirty log: the pages must be
 * marked for diff snapshots, or a restored guest keeps old bytes in its page cache. */
static void test_virtio_block_read_marks_its_pages_dirty(void **state)
{
	struct rig *r = rig(false);
	struct req q = build(r, VIRTIO_BLK_T_IN, 3, 8192, true);
	unsigned long bits[FAKE_RAM_SIZE / 4096 / 64] = { 0 };

	(void)state;
	assert_int_equal(guest_mem_track_dirty(&r->d.mem), 0);
	run(r, 1);
	assert_int_equal(status_of(r, &q), VIRTIO_BLK_S_OK);
	guest_mem_take_dirty(&r->d.mem, 0, bits);
	for (uint64_t p = q.data / 4096; p <= (q.data + 8191) / 4096; p++)
		assert_true(bits[p / 64] & (1ul << (p % 64)));
	rig_free(r);
}

static void test_virtio_block_write_reaches_disk(void **state)
{
	struct rig *r = rig(false);
	struct req q = build(r, VIRTIO_BLK_T_OUT, 10, 512, false);

	(void)state;
	memset(fake_ptr(&r->d, q.data), 0x5a, 512);
	run(r, 1);
	assert_int_equal(status_of(r, &q), VIRTIO_BLK_S_OK);
	for (int i = 0; i < 512; i++)
		assert_int_equal(r->disk.data[10 * 512 + i], 0x5a);
	assert_int_equal(used_len(r, 0), 1);
	assert_int_equal(counter(r, "writes"), 1);
	assert_int_equal(counter(r, "write_bytes"), 512);
	rig_free(r);
}

static void test_virtio_block_flush_calls_backend(void **state)
{
	struct rig *r = rig(false);
	struct req q = build(r, VIRTIO_BLK_T_FLUSH, 0, 0, false);

	(void)state;
	run(r, 1);
	assert_int_equal(status_of(r, &q), VIRTIO_BLK_S_OK);
	assert_int_equal(r->disk.flushes, 1);
	assert_int_equal(counter(r, "flushes"), 1);
	rig_free(r);
}

/* cache_type as Firecracker: FLUSH offered only for Writeback; Unsafe syncs nothing. */
static void test_virtio_block_cache_type_features(void **state)
{
	uint64_t base = 1ull << VIRTIO_BLK_F_SIZE_MAX | 1ull << VIRTIO_BLK_F_SEG_MAX |
		1ull << VIRTIO_BLK_F_BLK_SIZE;
	struct rig *r = rig_new(false, "wb");

	(void)state;
	assert_int_equal(blk_features_for(false, false), base);
	assert_int_equal(blk_features_for(false, true), base | 1ull << VIRTIO_BLK_F_FLUSH);
	assert_int_equal(blk_features_for(true, false), base | 1ull << VIRTIO_BLK_F_RO);
	assert_int_equal(blk_features_for(true, true),
		base | 1ull << VIRTIO_BLK_F_RO | 1ull << VIRTIO_BLK_F_FLUSH);
	r->cfg.writeback = true;
	rig_start(r);
	assert_int_equal(r->vd->ops->features(r->vd->dev), base | 1ull << VIRTIO_BLK_F_FLUSH);
	rig_free(r);
	/* Unsafe: a write is answered without a sync; a flush sent anyway is still served. */
	r = rig(false);
	assert_int_equal(r->vd->ops->activate(r->vd->dev, 0), 0);
	build(r, VIRTIO_BLK_T_OUT, 0, 512, false);
	run(r, 1);
	assert_int_equal(r->disk.writes, 1);
	assert_int_equal(r->disk.flushes, 0);
	build(r, VIRTIO_BLK_T_FLUSH, 0, 0, false);
	run(r, 2);
	assert_int_equal(r->disk.flushes, 1);
	rig_free(r);
}

static void test_virtio_block_write_through_without_flush_feature(void **state)
{
	struct rig *r = rig_new(false, "rootfs");

	(void)state;
	r->cfg.writeback = true; /* offered FLUSH, not taken: every write made durable */
	rig_start(r);
	assert_int_equal(r->vd->ops->activate(r->vd->dev, 0), 0);
	build(r, VIRTIO_BLK_T_OUT, 0, 512, false);
	run(r, 1);
	assert_int_equal(r->disk.writes, 1);
	assert_int_equal(r->disk.flushes, 1); /* durable before it is answered */
	assert_int_equal(r->vd->ops->activate(r->vd->dev, 1ull << VIRTIO_BLK_F_FLUSH), 0);
	build(r, VIRTIO_BLK_T_OUT, 1, 512, false);
	run(r, 2);
	assert_int_equal(r->disk.writes, 2);
	assert_int_equal(r->disk.flushes, 1); /* the driver flushes when it wants */
	rig_free(r);
}

static void test_virtio_block_get_id_is_the_drive_id(void **state)
{
	struct rig *r = rig(false);
	struct req q = build(r, VIRTIO_BLK_T_GET_ID, 0, 20, true);
	char want[20] = "rootfs";

	(void)state;
	memset(fake_ptr(&r->d, q.data), 0xff, 20);
	run(r, 1);
	assert_int_equal(status_of(r, &q), VIRTIO_BLK_S_OK);
	assert_memory_equal(fake_ptr(&r->d, q.data), want, 20); /* NUL padded */
	assert_int_equal(used_len(r, 0), 21);
	assert_int_equal(r->disk.reads + r->disk.writes, 0);
	rig_free(r);

	/* A long id is cut at 20 bytes, without a terminator. */
	r = rig_new(false, "a-drive-id-longer-than-twenty");
	rig_start(r);
	q = build(r, VIRTIO_BLK_T_GET_ID, 0, 20, true);
	run(r, 1);
	assert_memory_equal(fake_ptr(&r->d, q.data), "a-drive-id-longer-th", 20);
	rig_free(r);
}

static void test_virtio_block_unknown_type_is_unsupported(void **state)
{
	struct rig *r = rig(false);
	struct req a = build(r, 11 /* DISCARD, not offered */, 0, 512, false);
	struct req b = build(r, 0x7fffffff, 0, 0, false);

	(void)state;
	run(r, 2);
	assert_int_equal(status_of(r, &a), VIRTIO_BLK_S_UNSUPP);
	assert_int_equal(status_of(r, &b), VIRTIO_BLK_S_UNSUPP);
	assert_int_equal(r->disk.reads + r->disk.writes + r->disk.flushes, 0);
	assert_int_equal(r->vd->needs_reset, 0);
	rig_free(r);
}

/* ---- bounds ---- */

static void test_virtio_block_bounds_against_capacity(void **state)
{
	struct rig *r = rig(false);
	struct req last = build(r, VIRTIO_BLK_T_IN, SECTORS - 1, 512, true);
	struct req past = build(r, VIRTIO_BLK_T_IN, SECTORS - 1, 1024, true);
	struct req at_end = build(r, VIRTIO_BLK_T_OUT, SECTORS, 512, false);
	struct req huge = build(r, VIRTIO_BLK_T_IN, UINT64_MAX, 512, true);
	struct req wrap = build(r, VIRTIO_BLK_T_OUT, UINT64_MAX - 1, 1024, false);

	(void)state;
	run(r, 5);
	assert_int_equal(status_of(r, &last), VIRTIO_BLK_S_OK);
	assert_int_equal(status_of(r, &past), VIRTIO_BLK_S_IOERR);
	assert_int_equal(status_of(r, &at_end), VIRTIO_BLK_S_IOERR);
	assert_int_equal(status_of(r, &huge), VIRTIO_BLK_S_IOERR);
	assert_int_equal(status_of(r, &wrap), VIRTIO_BLK_S_IOERR);
	assert_int_equal(r->disk.reads, 1);
	assert_int_equal(r->disk.writes, 0);
	assert_int_equal(counter(r, "errors"), 4);
	assert_int_equal(r->vd->needs_reset, 0);
	rig_free(r);
}

/* ---- read-only ---- */

static void test_virtio_block_read_only_refuses_writes(void **state)
{
	struct rig *r = rig(true);
	struct req w = build(r, VIRTIO_BLK_T_OUT, 0, 512, false);
	struct req rd = build(r, VIRTIO_BLK_T_IN, 0, 512, true);
	struct req fl = build(r, VIRTIO_BLK_T_FLUSH, 0, 0, false);

	(void)state;
	run(r, 3);
	assert_int_equal(status_of(r, &w), VIRTIO_BLK_S_IOERR);
	assert_int_equal(status_of(r, &rd), VIRTIO_BLK_S_OK);
	assert_int_equal(status_of(r, &fl), VIRTIO_BLK_S_OK);
	assert_int_equal(r->disk.writes, 0);
	rig_free(r);
}

/* ---- malformed requests ---- */

static void test_virtio_block_short_header_is_ioerr(void **state)
{
	struct rig *r = rig(false);
	uint64_t h = fake_alloc(&r->d, 16), st = fake_alloc(&r->d, 1);
	struct fake_seg s[2] = { { h, 8, false }, { st, 1, true } };

	(void)state;
	fake_add_chain(&r->d, s, 2);
	run(r, 1);
	assert_int_equal(*fake_ptr(&r->d, st), VIRTIO_BLK_S_IOERR);
	assert_int_equal(r->vd->needs_reset, 0);
	assert_int_equal(counter(r, "errors"), 1);
	rig_free(r);
}

static void test_virtio_block_no_status_byte_needs_reset(void **state)
{
	struct rig *r = rig(false);
	uint64_t h = fake_alloc(&r->d, 16), data = fake_alloc(&r->d, 512);
	struct fake_seg s[2] = { { h, 16, false }, { data, 512, false } };
	uint32_t type = VIRTIO_BLK_T_OUT;

	(void)state;
	memcpy(fake_ptr(&r->d, h), &type, 4);
	fake_add_chain(&r->d, s, 2);
	fake_kick(&r->d);
	assert_int_equal(r->vd->needs_reset, 1);
	assert_non_null(strstr(r->vd->why, "status"));
	assert_int_equal(r->disk.writes, 0);
	rig_free(r);
}

static void test_virtio_block_unaligned_length_is_ioerr(void **state)
{
	struct rig *r = rig(false);
	struct req in = build(r, VIRTIO_BLK_T_IN, 0, 100, true);
	struct req out = build(r, VIRTIO_BLK_T_OUT, 0, 513, false);

	(void)state;
	run(r, 2);
	assert_int_equal(status_of(r, &in), VIRTIO_BLK_S_IOERR);
	assert_int_equal(status_of(r, &out), VIRTIO_BLK_S_IOERR);
	assert_int_equal(r->disk.reads + r->disk.writes, 0);
	rig_free(r);
}

static void test_virtio_block_broken_chain_needs_reset(void **state)
{
	struct rig *r = rig(false);
	struct fake_seg s[2] = { { FAKE_RAM_SIZE - 8, 16, false }, { 0x20000, 1, true } };

	(void)state;
	fake_add_chain(&r->d, s, 2); /* header runs outside guest RAM */
	fake_kick(&r->d);
	assert_int_equal(r->vd->needs_reset, 1);
	assert_non_null(strstr(r->vd->why, "outside guest memory"));
	rig_free(r);
}

/* The device may assume no framing: a header split in two, data in three pieces, the
 * status sharing the last writable descriptor with data. */
static void test_virtio_block_any_framing(void **state)
{
	struct rig *r = rig(false);
	uint64_t h = fake_alloc(&r->d, 16), d1 = fake_alloc(&r->d, 100),
		 d2 = fake_alloc(&r->d, 412), d3 = fake_alloc(&r->d, 513);
	uint32_t type = VIRTIO_BLK_T_IN;
	uint64_t sector = 2;
	struct fake_seg s[5] = { { h, 8, false }, { h + 8, 8, false }, { d1, 100, true },
		{ d2, 412, true }, { d3, 513, true } };
	uint8_t want[1024];

	(void)state;
	memcpy(fake_ptr(&r->d, h), &type, 4);
	memcpy(fake_ptr(&r->d, h + 8), &sector, 8);
	fake_add_chain(&r->d, s, 5);
	run(r, 1);
	assert_int_equal(*fake_ptr(&r->d, d3 + 512), VIRTIO_BLK_S_OK);
	memcpy(want, fake_ptr(&r->d, d1), 100);
	memcpy(want + 100, fake_ptr(&r->d, d2), 412);
	memcpy(want + 512, fake_ptr(&r->d, d3), 512);
	assert_memory_equal(want, r->disk.data + 1024, 1024);
	assert_int_equal(used_len(r, 0), 1025);
	rig_free(r);
}

static void test_virtio_block_header_and_data_in_one_descriptor(void **state)
{
	struct rig *r = rig(false);
	uint64_t buf = fake_alloc(&r->d, 16 + 512), st = fake_alloc(&r->d, 1);
	uint32_t type = VIRTIO_BLK_T_OUT;
	uint64_t sector = 5;
	struct fake_seg s[2] = { { buf, 16 + 512, false }, { st, 1, true } };

	(void)state;
	memcpy(fake_ptr(&r->d, buf), &type, 4);
	memcpy(fake_ptr(&r->d, buf + 8), &sector, 8);
	memset(fake_ptr(&r->d, buf + 16), 0xc3, 512);
	fake_add_chain(&r->d, s, 2);
	run(r, 1);
	assert_int_equal(*fake_ptr(&r->d, st), VIRTIO_BLK_S_OK);
	assert_int_equal(r->disk.data[5 * 512], 0xc3);
	assert_int_equal(r->disk.data[6 * 512 - 1], 0xc3);
	rig_free(r);
}

static void test_virtio_block_backend_error_is_ioerr(void **state)
{
	struct rig *r = rig(false);
	struct req q;

	(void)state;
	r->disk.fail = -EIO;
	q = build(r, VIRTIO_BLK_T_IN, 0, 512, true);
	run(r, 1);
	assert_int_equal(status_of(r, &q), VIRTIO_BLK_S_IOERR);
	assert_int_equal(used_len(r, 0), 1);
	assert_int_equal(counter(r, "errors"), 1);
	assert_int_equal(counter(r, "reads"), 0);
	rig_free(r);
}

/* ---- the control loop never waits for the backend ---- */

static void test_virtio_block_slow_backend_does_not_block_the_loop(void **state)
{
	struct rig *r = rig(false);
	struct req q;

	(void)state;
	r->disk.gated = true;
	q = build(r, VIRTIO_BLK_T_IN, 0, 512, true);
	fake_kick(&r->d); /* returns although the backend is stuck */
	disk_wait_entered(&r->disk);
	assert_int_equal(fake_used_idx(&r->d), 0);
	assert_int_equal(status_of(r, &q), 0xee); /* no status before the data */
	disk_open_gate(&r->disk);
	assert_true(fake_wait_used(&r->d, 1));
	assert_int_equal(status_of(r, &q), VIRTIO_BLK_S_OK);
	assert_true(r->vd->locks >= 1); /* the completion took the transport lock */
	rig_free(r);
}

/* ---- throttling ---- */

/* Two reads against an ops bucket of one: the first is answered, the second waits for the
 * timer. */
static void second_read_held_back(struct rig *r, struct req *a, struct req *b)
{
	*a = build(r, VIRTIO_BLK_T_IN, 0, 512, true);
	*b = build(r, VIRTIO_BLK_T_IN, 1, 512, true);
	run(r, 1);
	assert_int_equal(status_of(r, a), VIRTIO_BLK_S_OK);
	assert_int_equal(status_of(r, b), 0xee);
	assert_non_null(fake_ev_timer());
	assert_int_equal(counter(r, "throttled"), 1);
}

static void test_virtio_block_ops_limit_defers_requests(void **state)
{
	struct rig *r = rig_new(false, "rootfs");
	struct req a, b;

	(void)state;
	r->cfg.limit.ops = (struct token_bucket_config){ .size = 1, .refill_time_ms = 50 };
	rig_start(r);
	second_read_held_back(r, &a, &b);
	assert_true(fake_ev_timer()->at > 0 && fake_ev_timer()->at <= 0.051);
	/* A kick while throttled does nothing: the timer owns the queue. */
	fake_kick(&r->d);
	assert_int_equal(r->disk.reads, 1);
	usleep(60000);
	fake_ev_fire_timer();
	assert_true(fake_wait_used(&r->d, 2));
	assert_int_equal(status_of(r, &b), VIRTIO_BLK_S_OK);
	rig_free(r);
}

static void test_virtio_block_bandwidth_limit_defers_requests(void **state)
{
	struct rig *r = rig_new(false, "rootfs");
	struct req a, b, id;

	(void)state;
	r->cfg.limit.bandwidth = (struct token_bucket_config){ .size = 1024,
		.refill_time_ms = 1000 };
	rig_start(r);
	a = build(r, VIRTIO_BLK_T_OUT, 0, 1024, false);
	b = build(r, VIRTIO_BLK_T_OUT, 2, 512, false);
	run(r, 1);
	assert_int_equal(status_of(r, &a), VIRTIO_BLK_S_OK);
	assert_int_equal(status_of(r, &b), 0xee);
	assert_non_null(fake_ev_timer());
	/* half a bucket: about half a second */
	assert_true(fake_ev_timer()->at > 0.4 && fake_ev_timer()->at <= 0.51);
	assert_int_equal(counter(r, "throttled"), 1);
	rig_free(r);

	/* A flush costs no bandwidth; GET_ID is answered without the limiter. */
	r = rig_new(false, "rootfs");
	r->cfg.limit.bandwidth = (struct token_bucket_config){ .size = 512,
		.refill_time_ms = 100000 };
	rig_start(r);
	a = build(r, VIRTIO_BLK_T_OUT, 0, 512, false);
	b = build(r, VIRTIO_BLK_T_FLUSH, 0, 0, false);
	id = build(r, VIRTIO_BLK_T_GET_ID, 0, 20, true);
	run(r, 3);
	assert_int_equal(status_of(r, &b), VIRTIO_BLK_S_OK);
	assert_int_equal(status_of(r, &id), VIRTIO_BLK_S_OK);
	assert_null(fake_ev_timer());
	rig_free(r);
}

static void test_virtio_block_bad_limit_names_the_drive(void **state)
{
	struct rig *r = rig_new(false, "data");
	char err[256];

	(void)state;
	r->cfg.limit.ops = (struct token_bucket_config){ .size = 10, .refill_time_ms = 0 };
	r->vd = virtio_block_new_backend(&r->d.env, 0xd0001000, 5, &r->cfg, &r->disk.be, err,
		sizeof(err));
	assert_null(r->vd);
	assert_string_equal(err,
		"drive 'data': rate_limit: ops: refill_time_ms must be > 0 "
		"when size is set");
	assert_true(r->disk.closed);
	fake_driver_deinit(&r->d);
	free(r);
}

/* ---- real file ---- */

/* Make a temporary image from the mkstemp template `path`: sector n filled with base + n. */
static void make_image(char *path, size_t sectors, uint8_t base)
{
	uint8_t buf[512];
	int fd = mkstemp(path);

	assert_true(fd >= 0);
	for (size_t i = 0; i < sectors; i++) {
		memset(buf, (int)(base + i), sizeof(buf));
		assert_int_equal(write(fd, buf, sizeof(buf)), 512);
	}
	close(fd);
}

/* A drive on a temporary image of `sectors` sectors (sector n filled with the byte n), with
 * io_engine Async when `async`. */
static struct rig *engine_rig(bool read_only, char *path, size_t sectors, bool async)
{
	struct rig *r = rig_new(read_only, "rootfs");
	char err[256];

	snprintf(r->tmp, sizeof(r->tmp), "%s", path);
	make_image(r->tmp, sectors, 0);
	r->cfg.path = r->tmp;
	r->cfg.async_io = async;
	r->cfg.writeback = async; /* Async rigs are Writeback: write-through is reachable */
	r->vd = virtio_block_new(&r->d.env, 0xd0001000, 5, &r->cfg, err, sizeof(err));
	if (!r->vd)
		fail_msg("%s", err);
	fake_driver_attach(&r->d, r->vd);
	return r;
}

static struct rig *file_rig(bool read_only, char *path, size_t sectors)
{
	return engine_rig(read_only, path, sectors, false);
}

static void test_virtio_block_file_round_trip(void **state)
{
	char path[] = "/tmp/ember-blk-XXXXXX";
	struct rig *r = file_rig(false, path, 16);
	struct req w, rd, fl;
	uint8_t buf[1024];
	int fd;

	(void)state;
	w = build(r, VIRTIO_BLK_T_OUT, 4, 1024, false);
	for (int i = 0; i < 1024; i++)
		fake_ptr(&r->d, w.data)[i] = (uint8_t)(i ^ 0x3c);
	fl = build(r, VIRTIO_BLK_T_FLUSH, 0, 0, false);
	run(r, 2);
	assert_int_equal(status_of(r, &w), VIRTIO_BLK_S_OK);
	assert_int_equal(status_of(r, &fl), VIRTIO_BLK_S_OK);
	fd = open(r->tmp, O_RDWR);
	assert_true(fd >= 0);
	assert_int_equal(pread(fd, buf, 1024, 4 * 512), 1024);
	assert_memory_equal(buf, fake_ptr(&r->d, w.data), 1024);

	/* The host writes the image; the guest reads it back. */
	memset(buf, 0xa7, 512);
	assert_int_equal(pwrite(fd, buf, 512, 9 * 512), 512);
	close(fd);
	rd = build(r, VIRTIO_BLK_T_IN, 9, 1024, true);
	run(r, 3);
	assert_int_equal(status_of(r, &rd), VIRTIO_BLK_S_OK);
	assert_memory_equal(fake_ptr(&r->d, rd.data), buf, 512);
	assert_int_equal(fake_ptr(&r->d, rd.data)[512], 10); /* sector 10 as written */
	rig_free(r);
}

static void test_virtio_block_file_read_only_never_writes(void **state)
{
	char path[] = "/tmp/ember-blk-XXXXXX";
	struct rig *r = file_rig(true, path, 4);
	struct req w;
	uint8_t buf[512], want[512];
	int fd;

	(void)state;
	w = build(r, VIRTIO_BLK_T_OUT, 1, 512, false);
	memset(fake_ptr(&r->d, w.data), 0xff, 512);
	run(r, 1);
	assert_int_equal(status_of(r, &w), VIRTIO_BLK_S_IOERR);
	fd = open(r->tmp, O_RDONLY);
	assert_int_equal(pread(fd, buf, 512, 512), 512);
	close(fd);
	memset(want, 1, sizeof(want));
	assert_memory_equal(buf, want, 512);
	rig_free(r);
}

static void test_virtio_block_missing_file_names_the_drive(void **state)
{
	struct fake_driver d;
	struct drive_config cfg = { .id = "rootfs", .path = "/nonexistent/x.img" };
	char err[256];

	(void)state;
	fake_driver_init(&d);
	assert_null(virtio_block_new(&d.env, 0xd0001000, 5, &cfg, err, sizeof(err)));
	assert_string_equal(err,
		"drive 'rootfs': cannot open /nonexistent/x.img: No such file "
		"or directory");
	cfg.path = "/tmp";
	assert_null(virtio_block_new(&d.env, 0xd0001000, 5, &cfg, err, sizeof(err)));
	assert_non_null(strstr(err, "drive 'rootfs'"));
	fake_driver_deinit(&d);
}

/* ---- persist ---- */

static void *open_gate_later(void *arg)
{
	usleep(50000);
	disk_open_gate(arg);
	return NULL;
}

/* Save the device into a one-section image and return a reader on it. */
/* Close the one open section of `w`, free it, and return a reader on the image. */
static struct snap_reader *reader_of(struct snap_writer *w)
{
	assert_int_equal(snap_section_end(w), 0);
	return snap_image_reader(w);
}

static struct snap_reader *save(struct rig *r)
{
	struct snap_writer *w = snap_writer_new();

	assert_non_null(w);
	assert_int_equal(snap_section_begin(w, SNAP_SEC_DEVICE, 1), 0);
	assert_int_equal(r->vd->ops->save(r->vd->dev, w), 0);
	return reader_of(w);
}

/* A version 1 block state (it held read_only and the path) with nothing owed. */
static struct snap_reader *v1_state(bool read_only)
{
	struct snap_writer *w = snap_writer_new();

	assert_int_equal(snap_section_begin(w, SNAP_SEC_DEVICE, 1), 0);
	assert_int_equal(snap_put_u32(w, 1), 0);
	assert_int_equal(snap_put_u32(w, read_only), 0);
	assert_int_equal(snap_put_u64(w, 16), 0);
	assert_int_equal(snap_put_str(w, "/where/it/was.img"), 0);
	for (int i = 0; i < 4; i++)
		assert_int_equal(snap_put_u64(w, 0), 0);
	assert_int_equal(snap_put_u32(w, 0), 0);
	return reader_of(w);
}

static void test_virtio_block_save_drains_in_flight_requests(void **state)
{
	struct rig *a = rig(false), *b = rig(false);
	struct snap_reader *rd;
	struct snap_cursor c;
	pthread_t t;
	struct req q;

	(void)state;
	a->disk.gated = true;
	q = build(a, VIRTIO_BLK_T_IN, 2, 512, true);
	fake_kick(&a->d);
	disk_wait_entered(&a->disk);
	pthread_create(&t, NULL, open_gate_later, &a->disk);
	rd = save(a); /* waits for the worker */
	pthread_join(t, NULL);
	/* The data is in guest memory before it is saved; the answer is owed. */
	assert_memory_equal(fake_ptr(&a->d, q.data), a->disk.data + 2 * 512, 512);
	assert_int_equal(fake_used_idx(&a->d), 0);
	assert_int_equal(status_of(a, &q), 0xee);
	/* The restored machine (its RAM as saved) gives the answer once live... */
	memcpy(fake_ptr(&b->d, 0), fake_ptr(&a->d, 0), FAKE_RAM_SIZE);
	b->d.data_top = a->d.data_top;
	assert_int_equal(snap_reader_find(rd, SNAP_SEC_DEVICE, 0, &c), 0);
	assert_int_equal(model_restore(b, &c), 0);
	assert_int_equal(fake_used_idx(&b->d), 0);
	assert_int_equal(b->vd->ops->activate(b->vd->dev, 0), 0);
	assert_int_equal(fake_used_idx(&b->d), 1);
	assert_int_equal(status_of(b, &q), VIRTIO_BLK_S_OK);
	assert_int_equal(used_len(b, 0), 513);
	/* ...and the saved machine gives it from its loop, as usual. */
	assert_true(fake_wait_used(&a->d, 1));
	assert_int_equal(status_of(a, &q), VIRTIO_BLK_S_OK);
	snap_reader_free(rd);
	rig_free(a);
	rig_free(b);
}

static void test_virtio_block_restore_keeps_the_configured_path(void **state)
{
	char p1[] = "/tmp/ember-blk-XXXXXX", p2[] = "/tmp/ember-blk-XXXXXX";
	struct rig *a = file_rig(false, p1, 8), *b = file_rig(false, p2, 8);
	struct snap_reader *rd;
	struct snap_cursor c;
	struct req q;
	uint8_t buf[512];
	int fd;

	(void)state;
	/* Make the first image recognisable. */
	fd = open(a->tmp, O_WRONLY);
	memset(buf, 0x99, sizeof(buf));
	assert_int_equal(pwrite(fd, buf, 512, 3 * 512), 512);
	close(fd);
	rd = save(a);
	assert_int_equal(snap_reader_find(rd, SNAP_SEC_DEVICE, 0, &c), 0);
	assert_int_equal(model_restore(b, &c), 0);
	q = build(b, VIRTIO_BLK_T_IN, 3, 512, true);
	run(b, 1);
	assert_int_equal(status_of(b, &q), VIRTIO_BLK_S_OK);
	/* The device reads its own image (a drive override moved it), not the saved path:
	 * file_rig fills sector n with the byte n. */
	memset(buf, 3, sizeof(buf));
	assert_memory_equal(fake_ptr(&b->d, q.data), buf, 512);
	snap_reader_free(rd);
	rig_free(a);
	rig_free(b);
}

static void test_virtio_block_restore_refuses_bad_state(void **state)
{
	struct rig *r = rig(false), *ro = rig(true);
	struct snap_writer *w = snap_writer_new();
	struct snap_reader *rd;
	struct snap_cursor c;
	const uint8_t *img;
	size_t len;
	char err[128];

	(void)state;
	/* Truncated: a version and nothing else. */
	assert_int_equal(snap_section_begin(w, SNAP_SEC_DEVICE, 1), 0);
	assert_int_equal(snap_put_u32(w, 1), 0);
	assert_int_equal(snap_section_end(w), 0);
	/* A later version. */
	assert_int_equal(snap_section_begin(w, SNAP_SEC_DEVICE, 1), 0);
	assert_int_equal(snap_put_u32(w, 99), 0);
	assert_int_equal(snap_section_end(w), 0);
	assert_int_equal(snap_writer_image(w, &img, &len), 0);
	assert_int_equal(snap_reader_parse(&rd, img, len, err, sizeof(err)), 0);
	assert_int_equal(snap_reader_find(rd, SNAP_SEC_DEVICE, 0, &c), 0);
	assert_int_equal(model_restore(r, &c), -EINVAL);
	assert_int_equal(snap_reader_find(rd, SNAP_SEC_DEVICE, 1, &c), 0);
	assert_int_equal(model_restore(r, &c), -EINVAL);
	assert_non_null(strstr(restore_err, "saved state is malformed (version 99)"));
	snap_reader_free(rd);
	snap_writer_free(w);

	/* A read-write drive's state of version 1 (which held read_only) does not restore
	 * into a read-only one. */
	rd = v1_state(false);
	assert_int_equal(snap_reader_find(rd, SNAP_SEC_DEVICE, 0, &c), 0);
	assert_int_equal(model_restore(ro, &c), -EINVAL);
	/* The refusal says why, for the API answer (not only the log). */
	assert_non_null(strstr(restore_err, "saved as read-write, defined as read-only"));
	snap_reader_free(rd);
	rig_free(r);
	rig_free(ro);
}

/* Snapshots of version 1 (before the configuration was stored only in DEVICE_CONFIG)
 * still restore; today's state holds no configuration (no path, no read-only flag). */
static void test_virtio_block_restores_version_1_and_stores_no_configuration(void **state)
{
	struct rig *r = rig(false);
	struct snap_reader *rd = v1_state(false);
	struct snap_writer *w = snap_writer_new();
	struct snap_cursor c;
	const uint8_t *img;
	size_t len;

	(void)state;
	assert_int_equal(snap_reader_find(rd, SNAP_SEC_DEVICE, 0, &c), 0);
	assert_int_equal(model_restore(r, &c), 0);
	assert_int_equal(c.left, 0);
	snap_reader_free(rd);
	assert_int_equal(snap_section_begin(w, SNAP_SEC_DEVICE, 1), 0);
	assert_int_equal(r->vd->ops->save(r->vd->dev, w), 0);
	assert_int_equal(snap_section_end(w), 0);
	assert_int_equal(snap_writer_image(w, &img, &len), 0);
	/* header, section header, version 2, capacity, 4 limiter words, no saved requests */
	assert_int_equal(len, SNAP_HEADER_SIZE + SNAP_SECTION_HEADER_SIZE + 4 + 8 + 4 * 8 + 4 + 8);
	snap_writer_free(w);
	rig_free(r);
}

static void test_virtio_block_reset_drops_in_flight_requests(void **state)
{
	struct rig *r = rig(false);
	pthread_t t;
	struct req q;

	(void)state;
	r->disk.gated = true;
	q = build(r, VIRTIO_BLK_T_IN, 0, 512, true);
	fake_kick(&r->d);
	disk_wait_entered(&r->disk);
	pthread_create(&t, NULL, open_gate_later, &r->disk);
	r->vd->ops->reset(r->vd->dev); /* waits for the worker, answers nothing */
	pthread_join(t, NULL);
	fake_ev_run_async();
	assert_int_equal(fake_used_idx(&r->d), 0);
	assert_int_equal(status_of(r, &q), 0xee);
	rig_free(r);
}

static void test_virtio_block_late_completion_after_queue_stop_writes_nothing(void **state)
{
	struct rig *r = rig(false);
	struct req q;

	(void)state;
	r->disk.gated = true;
	q = build(r, VIRTIO_BLK_T_IN, 0, 512, true);
	fake_kick(&r->d);
	disk_wait_entered(&r->disk);
	virtio_needs_reset(r->vd, "test"); /* the transport stops the queue */
	disk_open_gate(&r->disk);
	for (int i = 0; i < 1000 && !fake_ev_run_async(); i++)
		usleep(1000);
	assert_int_equal(fake_used_idx(&r->d), 0);
	assert_int_equal(status_of(r, &q), 0xee);
	rig_free(r);
}

static void test_virtio_block_restore_refuses_bad_saved_requests(void **state)
{
	struct rig *r = rig(false);
	struct snap_writer *w = snap_writer_new();
	struct snap_reader *rd;
	struct snap_cursor c;
	const uint8_t *img;
	size_t len;
	char err[128];
	int ret = 0;

	(void)state;
	/* One owed answer with a head outside the queue; then one whose status byte lies
	 * outside guest memory (accepted, dropped when the queue is live). */
	for (int k = 0; k < 2; k++) {
		ret |= snap_section_begin(w, SNAP_SEC_DEVICE, 1);
		ret |= snap_put_u32(w, 1) | snap_put_u32(w, 0) | snap_put_u64(w, SECTORS);
		ret |= snap_put_str(w, "/fake/disk.img");
		for (int i = 0; i < 4; i++)
			ret |= snap_put_u64(w, 0);
		ret |= snap_put_u32(w, 1);
		ret |= snap_put_u32(w, k ? 3 : 999) | snap_put_u32(w, 1);
		ret |= snap_put_u64(w, k ? (uint64_t)FAKE_RAM_SIZE + 5 : 0x10000);
		ret |= snap_put_u32(w, 0);
		ret |= snap_section_end(w);
	}
	assert_int_equal(ret, 0);
	assert_int_equal(snap_writer_image(w, &img, &len), 0);
	assert_int_equal(snap_reader_parse(&rd, img, len, err, sizeof(err)), 0);
	assert_int_equal(snap_reader_find(rd, SNAP_SEC_DEVICE, 0, &c), 0);
	assert_int_equal(model_restore(r, &c), -EINVAL);
	assert_int_equal(snap_reader_find(rd, SNAP_SEC_DEVICE, 1, &c), 0);
	assert_int_equal(model_restore(r, &c), 0);
	assert_int_equal(r->vd->ops->activate(r->vd->dev, 0), 0);
	assert_int_equal(fake_used_idx(&r->d), 0);
	snap_reader_free(rd);
	snap_writer_free(w);
	rig_free(r);
}

/* ---- the parser on its own ---- */

static void test_virtio_block_parse_reports_what_was_wrong(void **state)
{
	struct fake_driver d;
	struct virtq q = { .size = 256, .max_size = 256 };
	struct virtq_elem e = { 0 };
	struct blk_req r;
	char id[BLK_ID_BYTES] = "x";

	(void)state;
	fake_driver_init(&d);
	q.mem = &d.mem;
	e.nsegs = 2;
	e.nread = 1;
	e.segs[0] = (struct virtq_seg){ 0x10000, 16, false };
	e.segs[1] = (struct virtq_seg){ 0x10010, 513, true };
	e.read_len = 16;
	e.write_len = 513;
	*(uint32_t *)fake_ptr(&d, 0x10000) = VIRTIO_BLK_T_IN;
	assert_int_equal(blk_req_parse(&q, &e, 100, false, id, &r), 0);
	assert_int_equal(r.status, -1);
	assert_int_equal(r.len, 512);
	assert_int_equal(r.iovcnt, 1);
	assert_ptr_equal(r.iov[0].iov_base, fake_ptr(&d, 0x10010));

	e.write_len = 0;
	e.nsegs = 1;
	assert_int_equal(blk_req_parse(&q, &e, 100, false, id, &r), -EINVAL);
	assert_non_null(r.why);

	e.nsegs = 2;
	e.write_len = 513;
	*(uint64_t *)fake_ptr(&d, 0x10008) = 100; /* sector == capacity */
	assert_int_equal(blk_req_parse(&q, &e, 100, false, id, &r), 0);
	assert_int_equal(r.status, VIRTIO_BLK_S_IOERR);
	assert_string_equal(r.why, "request runs past the end of the disk");
	fake_driver_deinit(&d);
}

/* ---- run-time changes (PATCH /drives after boot) ---- */

static uint64_t config_capacity(struct rig *r)
{
	uint64_t cap;

	r->vd->ops->config_read(r->vd->dev, 0, (uint8_t *)&cap, 8);
	return cap;
}

static void test_virtio_block_set_backend_waits_for_the_request_in_flight(void **state)
{
	struct rig *r = rig(false);
	struct fake_disk *nd = calloc(1, sizeof(*nd));
	struct req old_rd, new_rd, past;
	char err[256];
	pthread_t t;

	(void)state;
	assert_non_null(nd);
	nd->be.ops = &disk_ops;
	nd->size = 16 * 512;
	pthread_mutex_init(&nd->lock, NULL);
	pthread_cond_init(&nd->cond, NULL);
	memset(nd->data, 0x5a, sizeof(nd->data));
	r->disk.gated = true;
	old_rd = build(r, VIRTIO_BLK_T_IN, 2, 512, true);
	fake_kick(&r->d);
	disk_wait_entered(&r->disk);
	pthread_create(&t, NULL, open_gate_later, &r->disk);
	assert_int_equal(virtio_block_set_backend(r->vd, &nd->be, "/fake/new.img", err,
				 sizeof(err)),
		0);
	/* The read ran to its end on the old disk before that disk was closed. */
	assert_int_equal(r->disk.reads, 1);
	assert_true(r->disk.closed);
	assert_false(nd->closed);
	pthread_join(t, NULL);
	assert_true(fake_wait_used(&r->d, 1));
	assert_int_equal(status_of(r, &old_rd), VIRTIO_BLK_S_OK);
	assert_memory_equal(fake_ptr(&r->d, old_rd.data), r->disk.data + 2 * 512, 512);
	/* The guest is told, and reads the new size. */
	assert_int_equal(r->vd->config_changes, 1);
	assert_int_equal(config_capacity(r), 16);
	/* From now on requests go to the new disk, within its bounds. */
	new_rd = build(r, VIRTIO_BLK_T_IN, 3, 512, true);
	past = build(r, VIRTIO_BLK_T_IN, 16, 512, true);
	run(r, 3);
	assert_int_equal(status_of(r, &new_rd), VIRTIO_BLK_S_OK);
	assert_int_equal(fake_ptr(&r->d, new_rd.data)[0], 0x5a);
	assert_int_equal(status_of(r, &past), VIRTIO_BLK_S_IOERR);
	assert_int_equal(nd->reads, 1);
	assert_int_equal(r->disk.reads, 1);
	rig_free(r);
	assert_true(nd->closed);
	free(nd);
}

static void test_virtio_block_set_path_bad_file_keeps_the_old_one(void **state)
{
	char path[] = "/tmp/ember-blk-XXXXXX", other[] = "/tmp/ember-blk-XXXXXX";
	struct rig *r = file_rig(false, path, 8);
	struct req q;
	char err[256];

	(void)state;
	assert_int_equal(virtio_block_set_path(r->vd, "/nonexistent/y.img", err, sizeof(err)),
		-ENOENT);
	assert_string_equal(err,
		"drive 'rootfs': cannot open /nonexistent/y.img: No such file "
		"or directory");
	assert_int_not_equal(virtio_block_set_path(r->vd, "/tmp", err, sizeof(err)), 0);
	assert_non_null(strstr(err, "drive 'rootfs': cannot open /tmp: Is a directory"));
	assert_int_equal(r->vd->config_changes, 0);
	assert_int_equal(config_capacity(r), 8);
	q = build(r, VIRTIO_BLK_T_IN, 5, 512, true);
	run(r, 1);
	assert_int_equal(status_of(r, &q), VIRTIO_BLK_S_OK);
	assert_int_equal(fake_ptr(&r->d, q.data)[0], 5);

	/* A good file: 32 sectors of 0x80 + i. */
	make_image(other, 32, 0x80);
	assert_int_equal(virtio_block_set_path(r->vd, other, err, sizeof(err)), 0);
	assert_int_equal(config_capacity(r), 32);
	q = build(r, VIRTIO_BLK_T_IN, 20, 512, true);
	run(r, 2);
	assert_int_equal(status_of(r, &q), VIRTIO_BLK_S_OK);
	assert_int_equal(fake_ptr(&r->d, q.data)[0], 0x80 + 20);
	rig_free(r);
	unlink(other);
}

/* A FIFO with no writer would hold open() forever; the backend must refuse it (and any
 * other kind that is not a file or a block device) at once, whichever way it is reached.
 * The alarm turns a hang into a failure. */
static void test_virtio_block_fifo_is_refused_without_waiting(void **state)
{
	char path[] = "/tmp/ember-blk-XXXXXX", dir[] = "/tmp/ember-fifo-XXXXXX";
	char fifo[64], want[160], err[256];
	struct drive_config cfg = { .id = "data" };
	struct block_backend *be = NULL;
	struct fake_driver d;
	struct rig *r;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(fifo, sizeof(fifo), "%s/pipe", dir);
	assert_int_equal(mkfifo(fifo, 0600), 0);
	snprintf(want, sizeof(want),
		"drive 'data': the block device backing file %s is not a "
		"regular file or a block device",
		fifo);
	alarm(10);

	for (int ro = 0; ro < 2; ro++) {
		assert_int_equal(block_file_open("data", fifo, ro, &be, err, sizeof(err)), -EINVAL);
		assert_string_equal(err, want);
		assert_null(be);
	}
	fake_driver_init(&d);
	cfg.path = fifo;
	assert_null(virtio_block_new(&d.env, 0xd0001000, 5, &cfg, err, sizeof(err)));
	assert_string_equal(err, want);
	fake_driver_deinit(&d);
	assert_int_equal(block_file_open("data", "/dev/null", true, &be, err, sizeof(err)),
		-EINVAL);
	assert_non_null(strstr(err, "/dev/null is not a regular file or a block device"));

	/* At run time the old file stays. */
	r = file_rig(false, path, 8);
	assert_int_equal(virtio_block_set_path(r->vd, fifo, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "is not a regular file or a block device"));
	assert_int_equal(config_capacity(r), 8);
	rig_free(r);

	alarm(0);
	unlink(fifo);
	rmdir(dir);
}

static void test_virtio_block_set_limit_releases_held_requests(void **state)
{
	struct rig *r = rig_new(false, "rootfs");
	struct rate_limit_update u = { .ops_set = true,
		.limit.ops = { .size = 5, .refill_time_ms = 0 } };
	struct req a, b;
	char err[256];

	(void)state;
	r->cfg.limit.ops = (struct token_bucket_config){ .size = 1, .refill_time_ms = 100000 };
	rig_start(r);
	a = build(r, VIRTIO_BLK_T_IN, 0, 512, true);
	b = build(r, VIRTIO_BLK_T_IN, 1, 512, true);
	run(r, 1);
	assert_int_equal(status_of(r, &b), 0xee);
	assert_non_null(fake_ev_timer());
	/* A bad bucket changes nothing. */
	assert_int_equal(virtio_block_set_limit(r->vd, &u, err, sizeof(err)), -EINVAL);
	assert_string_equal(err,
		"drive 'rootfs': rate_limiter: ops: refill_time_ms must be > 0 "
		"when size is set");
	assert_non_null(fake_ev_timer());
	/* Size 0 removes the ops bucket: the held request goes at once. */
	u.limit.ops = (struct token_bucket_config){ 0 };
	assert_int_equal(virtio_block_set_limit(r->vd, &u, err, sizeof(err)), 0);
	assert_null(fake_ev_timer());
	assert_true(fake_wait_used(&r->d, 2));
	assert_int_equal(status_of(r, &a), VIRTIO_BLK_S_OK);
	assert_int_equal(status_of(r, &b), VIRTIO_BLK_S_OK);
	rig_free(r);
}

/* ---- io_engine Async: a real io_uring on a temporary file ---- */

static void expect_sectors(const char *path, unsigned first, unsigned n, uint8_t base)
{
	uint8_t buf[512], want[512];
	int fd = open(path, O_RDONLY);

	assert_true(fd >= 0);
	for (unsigned i = 0; i < n; i++) {
		assert_int_equal(pread(fd, buf, 512, (first + i) * 512), 512);
		memset(want, base + i, sizeof(want));
		assert_memory_equal(buf, want, 512);
	}
	close(fd);
}

/* Many requests from one kick go to the ring together; reads see the writes once the
 * writes are answered, and a FLUSH is an fsync. */
static void test_virtio_block_async_many_in_flight(void **state)
{
	char path[] = "/tmp/ember-blk-XXXXXX";
	struct rig *r = engine_rig(false, path, 64, true);
	struct req w[40], rd[40], fl;

	(void)state;
	for (unsigned i = 0; i < 40; i++) {
		w[i] = build(r, VIRTIO_BLK_T_OUT, 10 + i, 512, false);
		memset(fake_ptr(&r->d, w[i].data), 0xc0 + i, 512);
	}
	fl = build(r, VIRTIO_BLK_T_FLUSH, 0, 0, false);
	run(r, 41);
	for (unsigned i = 0; i < 40; i++)
		assert_int_equal(status_of(r, &w[i]), VIRTIO_BLK_S_OK);
	assert_int_equal(status_of(r, &fl), VIRTIO_BLK_S_OK);
	expect_sectors(r->tmp, 10, 40, 0xc0);
	expect_sectors(r->tmp, 0, 10, 0); /* untouched around them */
	expect_sectors(r->tmp, 50, 14, 50);
	/* Reads of every size the queue allows, across the written ones. */
	for (unsigned i = 0; i < 40; i++)
		rd[i] = build(r, VIRTIO_BLK_T_IN, i, 512 * (1 + i % 4), true);
	run(r, 81);
	for (unsigned i = 0; i < 40; i++) {
		assert_int_equal(status_of(r, &rd[i]), VIRTIO_BLK_S_OK);
		for (unsigned k = 0; k < 1 + i % 4; k++) {
			unsigned sector = i + k;
			uint8_t want = sector >= 10 && sector < 50 ? (uint8_t)(0xc0 + sector - 10)
								   : (uint8_t)sector;
			assert_int_equal(fake_ptr(&r->d, rd[i].data)[k * 512 + 511], want);
		}
		assert_int_equal(used_len(r, (uint16_t)(41 + i)), 512 * (1 + i % 4) + 1);
	}
	assert_int_equal(counter(r, "reads"), 40);
	assert_int_equal(counter(r, "writes"), 40);
	assert_int_equal(counter(r, "flushes"), 1);
	assert_int_equal(counter(r, "errors"), 0);
	rig_free(r);
}

/* A request split over several descriptors, write-through (FLUSH offered, not taken),
 * a read-only refusal, and a read that the file, shrunk behind the device's back, ends
 * half-way (a short read, then the end of the file): an I/O error, not stale data. */
static void test_virtio_block_async_segments_write_through_and_short_read(void **state)
{
	char path[] = "/tmp/ember-blk-XXXXXX", rpath[] = "/tmp/ember-blk-XXXXXX";
	struct rig *r = engine_rig(false, path, 16, true), *ro;
	struct fake_seg s[5];
	uint64_t hdr = fake_alloc(&r->d, 16), st = fake_alloc(&r->d, 1), d[3];
	uint32_t type = VIRTIO_BLK_T_OUT;
	uint64_t sector = 2;
	struct req q;

	(void)state;
	assert_int_equal(r->vd->ops->activate(r->vd->dev, 0), 0); /* FLUSH not acked */
	memcpy(fake_ptr(&r->d, hdr), &type, 4);
	memcpy(fake_ptr(&r->d, hdr + 8), &sector, 8);
	s[0] = (struct fake_seg){ hdr, 16, false };
	for (unsigned i = 0; i < 3; i++) {
		d[i] = fake_alloc(&r->d, 512);
		memset(fake_ptr(&r->d, d[i]), 0x70 + i, 512);
		s[1 + i] = (struct fake_seg){ d[i], 512, false };
	}
	s[4] = (struct fake_seg){ st, 1, true };
	fake_add_chain(&r->d, s, 5);
	run(r, 1);
	assert_int_equal(*fake_ptr(&r->d, st), VIRTIO_BLK_S_OK);
	expect_sectors(r->tmp, 2, 3, 0x70);

	assert_int_equal(truncate(r->tmp, 6 * 512), 0);
	q = build(r, VIRTIO_BLK_T_IN, 4, 4 * 512, true);
	run(r, 2);
	assert_int_equal(status_of(r, &q), VIRTIO_BLK_S_IOERR);
	assert_int_equal(used_len(r, 1), 1);
	assert_int_equal(counter(r, "errors"), 1);
	rig_free(r);

	ro = engine_rig(true, rpath, 4, true);
	q = build(ro, VIRTIO_BLK_T_OUT, 1, 512, false);
	run(ro, 1);
	assert_int_equal(status_of(ro, &q), VIRTIO_BLK_S_IOERR);
	expect_sectors(ro->tmp, 1, 1, 1);
	rig_free(ro);
}

/* Save waits for what the ring has: the data is in guest memory, the answers owed (and
 * given by a restored Async drive); a backend swap waits too, and the next requests go to
 * the new file. */
static void test_virtio_block_async_save_and_swap_drain(void **state)
{
	char p1[] = "/tmp/ember-blk-XXXXXX", p2[] = "/tmp/ember-blk-XXXXXX";
	char other[] = "/tmp/ember-blk-XXXXXX", err[256];
	struct rig *a = engine_rig(false, p1, 32, true), *b = engine_rig(false, p2, 32, true);
	struct snap_reader *rd;
	struct snap_cursor c;
	struct req q[8], n;

	(void)state;
	for (unsigned i = 0; i < 8; i++)
		q[i] = build(a, VIRTIO_BLK_T_IN, 3 * i, 512, true);
	fake_kick(&a->d);
	rd = save(a); /* drains the ring */
	for (unsigned i = 0; i < 8; i++) {
		assert_int_equal(fake_ptr(&a->d, q[i].data)[0], 3 * i);
		assert_int_equal(status_of(a, &q[i]), 0xee);
	}
	assert_int_equal(fake_used_idx(&a->d), 0);
	memcpy(fake_ptr(&b->d, 0), fake_ptr(&a->d, 0), FAKE_RAM_SIZE);
	b->d.data_top = a->d.data_top;
	assert_int_equal(snap_reader_find(rd, SNAP_SEC_DEVICE, 0, &c), 0);
	assert_int_equal(model_restore(b, &c), 0);
	assert_int_equal(b->vd->ops->activate(b->vd->dev, 1ull << VIRTIO_BLK_F_FLUSH), 0);
	assert_int_equal(fake_used_idx(&b->d), 8);
	for (unsigned i = 0; i < 8; i++)
		assert_int_equal(status_of(b, &q[i]), VIRTIO_BLK_S_OK);
	assert_true(fake_wait_used(&a->d, 8));
	snap_reader_free(rd);
	rig_free(b);

	/* Swap with requests in flight: they finish on the old file. */
	make_image(other, 8, 0x90);
	for (unsigned i = 0; i < 8; i++)
		q[i] = build(a, VIRTIO_BLK_T_IN, 20 + i, 512, true);
	fake_kick(&a->d);
	assert_int_equal(virtio_block_set_path(a->vd, other, err, sizeof(err)), 0);
	assert_true(fake_wait_used(&a->d, 16));
	for (unsigned i = 0; i < 8; i++)
		assert_int_equal(fake_ptr(&a->d, q[i].data)[0], 20 + i);
	assert_int_equal(config_capacity(a), 8);
	n = build(a, VIRTIO_BLK_T_IN, 5, 512, true);
	run(a, 17);
	assert_int_equal(status_of(a, &n), VIRTIO_BLK_S_OK);
	assert_int_equal(fake_ptr(&a->d, n.data)[0], 0x95);
	rig_free(a);
	unlink(other);
}

/* The rate limiter holds Async requests back as it does Sync ones. */
static void test_virtio_block_async_throttled(void **state)
{
	char path[] = "/tmp/ember-blk-XXXXXX";
	struct rig *r = rig_new(false, "rootfs");
	struct req a, b;
	char err[256];
	int fd;

	(void)state;
	snprintf(r->tmp, sizeof(r->tmp), "%s", path);
	fd = mkstemp(r->tmp);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, 8 * 512), 0);
	close(fd);
	r->cfg.path = r->tmp;
	r->cfg.async_io = true;
	r->cfg.limit.ops = (struct token_bucket_config){ .size = 1, .refill_time_ms = 50 };
	r->vd = virtio_block_new(&r->d.env, 0xd0001000, 5, &r->cfg, err, sizeof(err));
	assert_non_null(r->vd);
	fake_driver_attach(&r->d, r->vd);
	second_read_held_back(r, &a, &b);
	usleep(60000);
	fake_ev_fire_timer(); /* the bucket refilled: the held read goes to the ring */
	assert_true(fake_wait_used(&r->d, 2));
	assert_int_equal(status_of(r, &b), VIRTIO_BLK_S_OK);
	rig_free(r);
}

/* A host whose kernel refuses io_uring_setup (here a seccomp filter in a child says
 * ENOSYS) gets Firecracker's words, from the check the API makes and from the device. */
static void test_virtio_block_async_refused_without_io_uring(void **state)
{
	struct sock_filter prog[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_setup, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ENOSYS),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_fprog fprog = { .len = 4, .filter = prog };
	char err[256];
	int status;
	pid_t pid;

	(void)state;
	assert_int_equal(block_uring_check(err, sizeof(err)), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		char path[] = "/tmp/ember-blk-XXXXXX";
		struct drive_config cfg = { .id = "data", .path = path, .async_io = true };
		struct fake_driver d;
		int fd = mkstemp(path);

		if (fd < 0 || ftruncate(fd, 4096) || prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) ||
			prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &fprog))
			_exit(2);
		close(fd);
		if (block_uring_check(err, sizeof(err)) != -ENOSYS ||
			strcmp(err,
				"Error calling io_uring_setup: Function not implemented (os "
				"error 38)"))
			_exit(3);
		fake_driver_init(&d);
		if (virtio_block_new(&d.env, 0xd0001000, 5, &cfg, err, sizeof(err)) ||
			strcmp(err,
				"drive 'data': Error calling io_uring_setup: Function not "
				"implemented (os error 38)"))
			_exit(4);
		unlink(path);
		_exit(0);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_virtio_block_config_space),
		cmocka_unit_test(test_virtio_block_read_returns_disk_data),
		cmocka_unit_test(test_virtio_block_read_marks_its_pages_dirty),
		cmocka_unit_test(test_virtio_block_write_reaches_disk),
		cmocka_unit_test(test_virtio_block_flush_calls_backend),
		cmocka_unit_test(test_virtio_block_write_through_without_flush_feature),
		cmocka_unit_test(test_virtio_block_cache_type_features),
		cmocka_unit_test(test_virtio_block_get_id_is_the_drive_id),
		cmocka_unit_test(test_virtio_block_unknown_type_is_unsupported),
		cmocka_unit_test(test_virtio_block_bounds_against_capacity),
		cmocka_unit_test(test_virtio_block_read_only_refuses_writes),
		cmocka_unit_test(test_virtio_block_short_header_is_ioerr),
		cmocka_unit_test(test_virtio_block_no_status_byte_needs_reset),
		cmocka_unit_test(test_virtio_block_unaligned_length_is_ioerr),
		cmocka_unit_test(test_virtio_block_broken_chain_needs_reset),
		cmocka_unit_test(test_virtio_block_any_framing),
		cmocka_unit_test(test_virtio_block_header_and_data_in_one_descriptor),
		cmocka_unit_test(test_virtio_block_backend_error_is_ioerr),
		cmocka_unit_test(test_virtio_block_slow_backend_does_not_block_the_loop),
		cmocka_unit_test(test_virtio_block_ops_limit_defers_requests),
		cmocka_unit_test(test_virtio_block_bandwidth_limit_defers_requests),
		cmocka_unit_test(test_virtio_block_bad_limit_names_the_drive),
		cmocka_unit_test(test_virtio_block_file_round_trip),
		cmocka_unit_test(test_virtio_block_async_many_in_flight),
		cmocka_unit_test(test_virtio_block_async_segments_write_through_and_short_read),
		cmocka_unit_test(test_virtio_block_async_save_and_swap_drain),
		cmocka_unit_test(test_virtio_block_async_throttled),
		cmocka_unit_test(test_virtio_block_async_refused_without_io_uring),
		cmocka_unit_test(test_virtio_block_file_read_only_never_writes),
		cmocka_unit_test(test_virtio_block_missing_file_names_the_drive),
		cmocka_unit_test(test_virtio_block_fifo_is_refused_without_waiting),
		cmocka_unit_test(test_virtio_block_save_drains_in_flight_requests),
		cmocka_unit_test(test_virtio_block_restore_keeps_the_configured_path),
		cmocka_unit_test(test_virtio_block_restore_refuses_bad_state),
		cmocka_unit_test(test_virtio_block_restores_version_1_and_stores_no_configuration),
		cmocka_unit_test(test_virtio_block_reset_drops_in_flight_requests),
		cmocka_unit_test(test_virtio_block_late_completion_after_queue_stop_writes_nothing),
		cmocka_unit_test(test_virtio_block_restore_refuses_bad_saved_requests),
		cmocka_unit_test(test_virtio_block_parse_reports_what_was_wrong),
		cmocka_unit_test(test_virtio_block_set_backend_waits_for_the_request_in_flight),
		cmocka_unit_test(test_virtio_block_set_path_bad_file_keeps_the_old_one),
		cmocka_unit_test(test_virtio_block_set_limit_releases_held_requests),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
