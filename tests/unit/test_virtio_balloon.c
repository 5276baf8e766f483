/* Unit tests for virtio-balloon: PFN and stats parsers, discard per backing, the model,
 * free page hinting and its state. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <ev.h>

#include "ember/balloon.h"
#include "ember/config.h"
#include "ember/guest_mem.h"
#include "ember/snapshot_file.h"
#include "ember/virtio.h"
#include "ember/virtio_devices.h"

#define PG 4096ULL
#define MEM_SIZE (16ULL << 20)
#define DATA_GPA 0x100000ULL /* buffers the fake driver hands over */
#define POOL_GPA 0x800000ULL /* pages it balloons */
#define QSIZE 16

/* ---- fake transport (the model's only link to mmio.c) ---- */

struct virtio_dev {
	const struct virtio_dev_ops *ops;
	void *dev;
	struct virtq q[VIRTIO_MAX_QUEUES];
	unsigned notified[VIRTIO_MAX_QUEUES], yields[VIRTIO_MAX_QUEUES];
	unsigned config_changes, needs_reset, locked;
	uint16_t avail_idx[VIRTIO_MAX_QUEUES], used_seen[VIRTIO_MAX_QUEUES];
	uint16_t next_desc[VIRTIO_MAX_QUEUES];
};

struct virtio_dev *virtio_mmio_new(const struct virtio_env *env, uint64_t base, uint32_t gsi,
	const struct virtio_dev_ops *ops, void *dev, char *err, size_t errlen)
{
	struct virtio_dev *vd = calloc(1, sizeof(*vd));

	(void)env, (void)base, (void)gsi, (void)err, (void)errlen;
	vd->ops = ops;
	vd->dev = dev;
	ops->attach(dev, vd);
	return vd;
}

void virtio_free(struct virtio_dev *vd)
{
	if (!vd)
		return;
	vd->ops->destroy(vd->dev);
	free(vd);
}

struct virtq *virtio_queue(struct virtio_dev *vd, unsigned q)
{
	return q < VIRTIO_MAX_QUEUES ? &vd->q[q] : NULL;
}

void virtio_notify(struct virtio_dev *vd, unsigned q)
{
	vd->notified[q]++;
}

void virtio_config_changed(struct virtio_dev *vd)
{
	vd->config_changes++;
}

void virtio_needs_reset(struct virtio_dev *vd, const char *why)
{
	(void)why;
	vd->needs_reset++;
}

void virtio_queue_yield(struct virtio_dev *vd, unsigned q)
{
	vd->yields[q]++;
}

void virtio_lock(struct virtio_dev *vd)
{
	vd->locked++;
}

void virtio_unlock(struct virtio_dev *vd)
{
	vd->locked--;
}

const char *virtio_kind(const struct virtio_dev *vd)
{
	return vd->ops->kind;
}

/* ---- rig: guest memory, the device, a fake driver that builds rings ---- */

struct rig {
	struct guest_mem gm;
	struct ev_loop *loop;
	struct virtio_dev *vd;
	uint64_t data_next;
};

/* What the model's restore said when it refused (the persist contract's message). */
static char restore_err[256];
#define model_restore(rig, cur) \
	((rig)->vd->ops->restore((rig)->vd->dev, (cur), restore_err, sizeof(restore_err)))
static struct rig *rig_new_cfg(const struct balloon_config *cfg)
{
	struct rig *r = calloc(1, sizeof(*r));
	char err[160];

	assert_int_equal(guest_mem_map(&r->gm, MEM_SIZE, GUEST_MEM_ANON, NULL, err, sizeof(err)),
		0);
	r->loop = ev_loop_new(EVFLAG_AUTO);
	struct virtio_env env = { .loop = r->loop, .mem = &r->gm, .vm_fd = -1 };
	r->vd = virtio_balloon_new(&env, 0xd0001000, 5, cfg, err, sizeof(err));
	assert_non_null(r->vd);
	r->data_next = DATA_GPA;
	for (unsigned i = 0; i < VIRTIO_MAX_QUEUES; i++) {
		struct virtq *q = &r->vd->q[i];

		q->size = QSIZE;
		q->max_size = 256;
		q->ready = true;
		q->desc_gpa = 0x10000 * (i + 1);
		q->avail_gpa = q->desc_gpa + 0x1000;
		q->used_gpa = q->desc_gpa + 0x2000;
		q->mem = &r->gm;
	}
	return r;
}

static struct rig *rig_new(uint32_t interval, bool reporting, uint32_t amount_mib)
{
	struct balloon_config cfg = { .enabled = true,
		.amount_mib = amount_mib,
		.deflate_on_oom = true,
		.stats_polling_interval_s = interval,
		.free_page_reporting = reporting };

	return rig_new_cfg(&cfg);
}

static void rig_free(struct rig *r)
{
	virtio_free(r->vd);
	ev_loop_destroy(r->loop);
	guest_mem_unmap(&r->gm);
	free(r);
}

static void activate(struct rig *r, uint64_t acked)
{
	assert_int_equal(r->vd->ops->activate(r->vd->dev, acked), 0);
}

static void *gp(struct rig *r, uint64_t gpa, uint64_t len)
{
	void *p = guest_mem_ptr_mut(&r->gm, gpa, len);

	assert_non_null(p);
	return p;
}

/* Copy `len` bytes into a fresh data buffer; returns its guest address. */
static uint64_t data(struct rig *r, const void *src, size_t len)
{
	uint64_t gpa = r->data_next;

	if (len)
		memcpy(gp(r, gpa, len), src, len);
	r->data_next += (len + 15) & ~15ULL;
	return gpa;
}

/* Put a chain of `n` segments on queue qi (driver side) without kicking. */
static void post(struct rig *r, unsigned qi, const uint64_t *gpa, const uint32_t *len,
	const bool *write, unsigned n)
{
	struct virtq *q = &r->vd->q[qi];
	uint16_t head = r->vd->next_desc[qi];
	uint16_t *avail = gp(r, q->avail_gpa, 6 + 2 * QSIZE);

	for (unsigned i = 0; i < n; i++) {
		uint8_t *d = gp(r, q->desc_gpa + 16 * ((head + i) % QSIZE), 16);
		uint16_t flags = (i + 1 < n ? 1 : 0) | (write && write[i] ? 2 : 0);
		uint16_t next = (uint16_t)((head + i + 1) % QSIZE);

		memcpy(d, &gpa[i], 8);
		memcpy(d + 8, &len[i], 4);
		memcpy(d + 12, &flags, 2);
		memcpy(d + 14, &next, 2);
	}
	r->vd->next_desc[qi] = (uint16_t)((head + n) % QSIZE);
	avail[2 + r->vd->avail_idx[qi] % QSIZE] = head;
	r->vd->avail_idx[qi]++;
	avail[1] = r->vd->avail_idx[qi];
}

static void post1(struct rig *r, unsigned qi, const void *buf, uint32_t len)
{
	uint64_t gpa = data(r, buf, len);

	post(r, qi, &gpa, &len, NULL, 1);
}

static void kick(struct rig *r, unsigned qi)
{
	r->vd->ops->queue_notify(r->vd->dev, qi);
}

static uint16_t used_idx(struct rig *r, unsigned qi)
{
	uint16_t *used = gp(r, r->vd->q[qi].used_gpa, 4);

	return used[1];
}

static uint64_t counter(struct rig *r, const char *key);

struct counter_ctx {
	const char *key;
	uint64_t value;
	bool found;
};

static void put_counter(void *ctx, const char *key, uint64_t value)
{
	struct counter_ctx *c = ctx;

	if (strcmp(c->key, key) == 0) {
		c->value = value;
		c->found = true;
	}
}

static uint64_t counter(struct rig *r, const char *key)
{
	struct counter_ctx c = { key, 0, false };

	r->vd->ops->stats(r->vd->dev, put_counter, &c);
	assert_true(c.found);
	return c.value;
}

static size_t resident_pages(const void *p, size_t len)
{
	unsigned char vec[4096];
	size_t n = 0, pages = len / PG;

	assert_true(pages <= sizeof(vec));
	assert_int_equal(mincore((void *)p, len, vec), 0);
	for (size_t i = 0; i < pages; i++)
		n += vec[i] & 1;
	return n;
}

static bool all_zero(const uint8_t *p, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (p[i])
			return false;
	return true;
}

/* ---- PFN parser ---- */

struct ranges {
	uint64_t gpa[16], len[16];
	unsigned n;
};

static void collect(void *ctx, uint64_t gpa, uint64_t len)
{
	struct ranges *rs = ctx;

	if (rs->n < 16) {
		rs->gpa[rs->n] = gpa;
		rs->len[rs->n] = len;
	}
	rs->n++;
}

/* Two regions adjacent in guest-physical space but not in host memory. */
static void two_regions(struct guest_mem *gm, uint8_t *a, uint8_t *b)
{
	memset(gm, 0, sizeof(*gm));
	gm->nr_regions = 2;
	gm->regions[0] = (struct guest_mem_region){ .gpa = 0, .size = 16 * PG, .host = a };
	gm->regions[1] = (struct guest_mem_region){ .gpa = 16 * PG, .size = 16 * PG, .host = b };
	gm->total = 32 * PG;
	gm->page_size = PG;
	gm->fd = -1;
}

static void test_balloon_pfns_merge_consecutive_pages(void **state)
{
	static uint8_t a[16 * PG], b[16 * PG];
	struct guest_mem gm;
	uint32_t pfns[] = { 2, 3, 4, 9, 10, 1 };
	struct balloon_pfn_result res = { 0 };
	struct ranges rs = { 0 };

	(void)state;
	two_regions(&gm, a, b);
	balloon_parse_pfns(&gm, (const uint8_t *)pfns, sizeof(pfns), collect, &rs, &res);
	assert_int_equal(res.pages, 6);
	assert_int_equal(res.refused, 0);
	assert_int_equal(rs.n, 3);
	assert_int_equal(res.ranges, 3);
	assert_int_equal(rs.gpa[0], 2 * PG);
	assert_int_equal(rs.len[0], 3 * PG);
	assert_int_equal(rs.gpa[1], 9 * PG);
	assert_int_equal(rs.len[1], 2 * PG);
	assert_int_equal(rs.gpa[2], 1 * PG);
	assert_int_equal(rs.len[2], PG);
}

static void test_balloon_pfns_split_at_region_boundary(void **state)
{
	static uint8_t a[16 * PG], b[16 * PG];
	struct guest_mem gm;
	uint32_t pfns[] = { 14, 15, 16, 17 };
	struct balloon_pfn_result res = { 0 };
	struct ranges rs = { 0 };

	(void)state;
	two_regions(&gm, a, b);
	balloon_parse_pfns(&gm, (const uint8_t *)pfns, sizeof(pfns), collect, &rs, &res);
	assert_int_equal(res.pages, 4);
	assert_int_equal(rs.n, 2);
	assert_int_equal(rs.gpa[0], 14 * PG);
	assert_int_equal(rs.len[0], 2 * PG);
	assert_int_equal(rs.gpa[1], 16 * PG);
	assert_int_equal(rs.len[1], 2 * PG);
}

static void test_balloon_pfns_refuse_outside_memory(void **state)
{
	static uint8_t a[16 * PG], b[16 * PG];
	struct guest_mem gm;
	uint32_t pfns[] = { 31, 32, 0xffffffff, 0x100000, 5, 0x80000000u };
	struct balloon_pfn_result res = { 0 };
	struct ranges rs = { 0 };

	(void)state;
	two_regions(&gm, a, b);
	balloon_parse_pfns(&gm, (const uint8_t *)pfns, sizeof(pfns), collect, &rs, &res);
	assert_int_equal(res.pages, 2);
	assert_int_equal(res.refused, 4);
	assert_int_equal(rs.n, 2);
	assert_int_equal(rs.gpa[0], 31 * PG);
	assert_int_equal(rs.gpa[1], 5 * PG);
}

static void test_balloon_pfns_count_trailing_bytes(void **state)
{
	static uint8_t a[16 * PG], b[16 * PG];
	struct guest_mem gm;
	uint8_t buf[7] = { 3, 0, 0, 0, 4, 0, 0 };
	struct balloon_pfn_result res = { 0 };

	(void)state;
	two_regions(&gm, a, b);
	balloon_parse_pfns(&gm, buf, sizeof(buf), NULL, NULL, &res);
	assert_int_equal(res.pages, 1);
	assert_int_equal(res.trailing, 3);
	balloon_parse_pfns(&gm, buf, 0, NULL, NULL, &res);
	assert_int_equal(res.pages, 1);
	assert_int_equal(res.ranges, 1);
}

/* ---- stats parser ---- */

static size_t stat_entry(uint8_t *p, uint16_t tag, uint64_t val)
{
	memcpy(p, &tag, 2);
	memcpy(p + 2, &val, 8);
	return BALLOON_STATS_ENTRY_SIZE;
}

static void test_balloon_stats_parse_known_unknown_and_repeated_tags(void **state)
{
	uint8_t buf[60];
	size_t n = 0;
	uint64_t present = 0, v[BALLOON_STAT_TAGS];

	(void)state;
	n += stat_entry(buf + n, BALLOON_STAT_SWAP_IN, 11);
	n += stat_entry(buf + n, BALLOON_STAT_MEMFREE, 1ULL << 40);
	n += stat_entry(buf + n, 99, 5); /* unknown: skipped */
	n += stat_entry(buf + n, BALLOON_STAT_MEMTOT, 256ULL << 20);
	n += stat_entry(buf + n, BALLOON_STAT_SWAP_IN, 12); /* repeated: last wins */
	n += stat_entry(buf + n, BALLOON_STAT_DIRECT_RECLAIM, 7);
	assert_int_equal(balloon_parse_stats(buf, n, &present, v), 0);
	assert_int_equal(present,
		(1ULL << BALLOON_STAT_SWAP_IN) | (1ULL << BALLOON_STAT_MEMFREE) |
			(1ULL << BALLOON_STAT_MEMTOT) | (1ULL << BALLOON_STAT_DIRECT_RECLAIM));
	assert_int_equal(v[BALLOON_STAT_SWAP_IN], 12);
	assert_int_equal(v[BALLOON_STAT_MEMFREE], 1ULL << 40);
	assert_int_equal(v[BALLOON_STAT_MEMTOT], 256ULL << 20);
	assert_int_equal(v[BALLOON_STAT_DIRECT_RECLAIM], 7);
	assert_int_equal(v[BALLOON_STAT_SWAP_OUT], 0);
	assert_string_equal(balloon_stat_name(BALLOON_STAT_MAJFLT), "major_faults");
	assert_string_equal(balloon_stat_name(BALLOON_STAT_HTLB_PGFAIL), "hugetlb_failures");
	assert_null(balloon_stat_name(BALLOON_STAT_TAGS));
}

static void test_balloon_stats_parse_refuses_malformed(void **state)
{
	uint8_t buf[BALLOON_STATS_MAX_BYTES + 10] = { 0 };
	uint64_t present = 42, v[BALLOON_STAT_TAGS] = { 7 };

	(void)state;
	assert_int_equal(balloon_parse_stats(buf, 0, &present, v), -EINVAL);
	assert_int_equal(balloon_parse_stats(buf, 9, &present, v), -EINVAL);
	assert_int_equal(balloon_parse_stats(buf, 21, &present, v), -EINVAL);
	assert_int_equal(balloon_parse_stats(buf, sizeof(buf), &present, v), -EINVAL);
	assert_int_equal(present, 42);
	assert_int_equal(v[0], 7);
}

/* ---- discard per backing, on real mappings ---- */

static void test_balloon_discard_anon_frees_pages(void **state)
{
	struct guest_mem gm;
	struct balloon_discard d;
	char err[160];
	uint8_t *p;

	(void)state;
	unsigned long dirty[4] = { 0 };

	assert_int_equal(guest_mem_map(&gm, 1 << 20, GUEST_MEM_ANON, NULL, err, sizeof(err)), 0);
	assert_int_equal(guest_mem_track_dirty(&gm), 0);
	p = gm.regions[0].host;
	memset(p, 0xa5, 64 * PG);
	assert_int_equal(resident_pages(p, 64 * PG), 64);
	assert_int_equal(balloon_memory_discard(&gm, 8 * PG, 32 * PG, &d, err, sizeof(err)), 0);
	assert_int_equal(d.bytes, 32 * PG);
	assert_int_equal(resident_pages(p, 64 * PG), 32);
	assert_int_equal(resident_pages(p + 8 * PG, 32 * PG), 0);
	assert_true(all_zero(p + 8 * PG, 32 * PG));
	assert_int_equal(p[8 * PG - 1], 0xa5);
	assert_int_equal(p[40 * PG], 0xa5);
	/* Pages 8..39 changed behind KVM's back: recorded for the next diff snapshot. */
	guest_mem_take_dirty(&gm, 0, dirty);
	assert_int_equal(dirty[0], 0xffffffffULL << 8);
	assert_int_equal(dirty[1], 0);
	guest_mem_unmap(&gm);
}

static void test_balloon_discard_memfd_punches_the_file(void **state)
{
	struct guest_mem gm;
	struct stat st0, st1;
	char err[160];
	uint8_t *p;

	(void)state;
	assert_int_equal(guest_mem_map(&gm, 1 << 20, GUEST_MEM_MEMFD, NULL, err, sizeof(err)), 0);
	p = gm.regions[0].host;
	memset(p, 0x5a, 1 << 20);
	assert_int_equal(fstat(gm.fd, &st0), 0);
	assert_int_equal(balloon_memory_discard(&gm, 0, 128 * PG, NULL, err, sizeof(err)), 0);
	assert_int_equal(fstat(gm.fd, &st1), 0);
	/* The file gave back its blocks: MADV_DONTNEED alone would leave them in place. */
	assert_true(st0.st_blocks - st1.st_blocks >= (blkcnt_t)(128 * PG / 512));
	assert_int_equal(st1.st_size, 1 << 20);
	assert_int_equal(resident_pages(p, 128 * PG), 0);
	assert_true(all_zero(p, 128 * PG));
	assert_int_equal(p[128 * PG], 0x5a);
	guest_mem_unmap(&gm);
}

/* "Anonymous:" kB of the mapping that starts at `start` (/proc/self/smaps), or -1. */
static long smaps_anon_kib(const void *start, bool *is_file)
{
	FILE *f = fopen("/proc/self/smaps", "r");
	char line[512];
	bool in = false;
	long kib = -1;

	assert_non_null(f);
	while (fgets(line, sizeof(line), f)) {
		unsigned long lo, hi, ino;
		long v;

		if (sscanf(line, "%lx-%lx %*s %*s %*s %lu", &lo, &hi, &ino) == 3) {
			in = lo == (unsigned long)(uintptr_t)start;
			if (in)
				*is_file = ino != 0;
		} else if (in && sscanf(line, "Anonymous: %ld kB", &v) == 1) {
			kib = v;
			break;
		}
	}
	fclose(f);
	return kib;
}

static void test_balloon_discard_private_file_reads_zero_not_file_data(void **state)
{
	char path[] = "/tmp/ember-balloon-test-XXXXXX", err[160];
	int fd = mkstemp(path);
	static uint8_t pattern[1 << 20];
	struct guest_mem gm;
	bool is_file = true;
	uint8_t *p;

	(void)state;
	assert_true(fd >= 0);
	memset(pattern, 0x77, sizeof(pattern));
	assert_int_equal(write(fd, pattern, sizeof(pattern)), (ssize_t)sizeof(pattern));
	close(fd);
	assert_int_equal(guest_mem_map(&gm, 1 << 20, GUEST_MEM_FILE, path, err, sizeof(err)), 0);
	unlink(path);
	p = gm.regions[0].host;
	/* Pages 0-7 become private copies, pages 8-15 stay file pages read in. */
	memset(p, 0x11, 8 * PG);
	assert_int_equal(p[12 * PG], 0x77);
	/* Why the model cannot use MADV_DONTNEED here: the file shows through again. */
	assert_int_equal(madvise(p + 2 * PG, PG, MADV_DONTNEED), 0);
	assert_int_equal(p[2 * PG], 0x77);

	assert_int_equal(balloon_memory_discard(&gm, 4 * PG, 8 * PG, NULL, err, sizeof(err)), 0);
	assert_int_equal(resident_pages(p + 4 * PG, 8 * PG), 0);
	assert_true(all_zero(p + 4 * PG, 8 * PG));
	assert_int_equal(p[3 * PG], 0x11);
	assert_int_equal(p[12 * PG], 0x77);
	/* The discarded range is now its own anonymous mapping, not the file. */
	assert_true(smaps_anon_kib(p + 4 * PG, &is_file) >= 0);
	assert_false(is_file);
	guest_mem_unmap(&gm);
}

static void test_balloon_discard_trims_to_whole_pages(void **state)
{
	struct guest_mem gm;
	struct balloon_discard d;
	char err[160];
	uint8_t *p;

	(void)state;
	assert_int_equal(guest_mem_map(&gm, 1 << 20, GUEST_MEM_ANON, NULL, err, sizeof(err)), 0);
	p = gm.regions[0].host;
	memset(p, 0x33, 8 * PG);
	assert_int_equal(balloon_memory_discard(&gm, PG + 100, 2 * PG, &d, err, sizeof(err)), 0);
	assert_int_equal(d.bytes, PG);
	assert_int_equal(d.skipped, PG);
	assert_int_equal(p[PG + 100], 0x33);
	assert_int_equal(p[2 * PG], 0);
	assert_int_equal(p[3 * PG + 99], 0x33);
	assert_int_equal(balloon_memory_discard(&gm, 5 * PG + 1, 100, &d, err, sizeof(err)), 0);
	assert_int_equal(d.bytes, 0);
	assert_int_equal(p[5 * PG + 1], 0x33);
	guest_mem_unmap(&gm);
}

/* hugetlb: only whole 2 MiB pages can go back; skipped where the host has none. */
static void test_balloon_discard_hugetlb_whole_pages_only(void **state)
{
	struct guest_mem gm;
	struct balloon_discard d;
	char err[160];
	uint8_t *p;

	(void)state;
	if (guest_mem_map(&gm, 4 << 20, GUEST_MEM_HUGETLB, NULL, err, sizeof(err)) < 0) {
		skip();
		return;
	}
	p = gm.regions[0].host;
	memset(p, 0x42, 4 << 20);
	assert_int_equal(balloon_memory_discard(&gm, PG, (4 << 20) - PG, &d, err, sizeof(err)), 0);
	assert_int_equal(d.bytes, 2 << 20);
	assert_int_equal(d.skipped, (2 << 20) - PG);
	assert_int_equal(p[PG], 0x42);
	assert_true(all_zero(p + (2 << 20), 2 << 20));
	guest_mem_unmap(&gm);
}

static void test_balloon_discard_refuses_outside_memory(void **state)
{
	struct guest_mem gm;
	char err[160];

	(void)state;
	assert_int_equal(guest_mem_map(&gm, 1 << 20, GUEST_MEM_ANON, NULL, err, sizeof(err)), 0);
	assert_int_equal(balloon_memory_discard(&gm, (1 << 20) - PG, 2 * PG, NULL, err,
				 sizeof(err)),
		-EFAULT);
	assert_non_null(strstr(err, "not inside guest memory"));
	/* The caller names the device (the balloon or virtio-mem). */
	assert_string_equal(err, "range 0xff000+0x2000 is not inside guest memory");
	assert_int_equal(balloon_memory_discard(&gm, UINT64_MAX - PG + 1, 2 * PG, NULL, err,
				 sizeof(err)),
		-EFAULT);
	guest_mem_unmap(&gm);
}

/* ---- the device model ---- */

static uint64_t acked_all(void)
{
	return (1ULL << VIRTIO_BALLOON_F_STATS_VQ) | (1ULL << VIRTIO_BALLOON_F_DEFLATE_ON_OOM) |
		(1ULL << VIRTIO_BALLOON_F_REPORTING);
}

static void test_balloon_features_follow_config(void **state)
{
	struct rig *r = rig_new(0, false, 0);

	(void)state;
	assert_int_equal(r->vd->ops->features(r->vd->dev), 1ULL << VIRTIO_BALLOON_F_DEFLATE_ON_OOM);
	assert_int_equal(r->vd->ops->device_id, VIRTIO_ID_BALLOON);
	assert_int_equal(r->vd->ops->config_size, 8);
	rig_free(r);
	r = rig_new(1, true, 0);
	assert_int_equal(r->vd->ops->features(r->vd->dev), acked_all());
	rig_free(r);
}

static void test_balloon_inflate_gives_pages_back(void **state)
{
	struct rig *r = rig_new(0, false, 0);
	uint8_t *pool = gp(r, POOL_GPA, 64 * PG);
	uint32_t pfns[40];

	(void)state;
	activate(r, 0);
	memset(pool, 0xcc, 64 * PG);
	for (unsigned i = 0; i < 32; i++)
		pfns[i] = (uint32_t)(POOL_GPA / PG) + i;
	for (unsigned i = 32; i < 40; i++) /* every other page of the rest */
		pfns[i] = (uint32_t)(POOL_GPA / PG) + 32 + 2 * (i - 32);
	post1(r, 0, pfns, sizeof(pfns));
	kick(r, 0);
	assert_int_equal(used_idx(r, 0), 1);
	assert_int_equal(r->vd->notified[0], 1);
	assert_int_equal(r->vd->needs_reset, 0);
	assert_int_equal(resident_pages(pool, 32 * PG), 0);
	assert_int_equal(resident_pages(pool + 32 * PG, 16 * PG), 8);
	assert_true(all_zero(pool, 32 * PG));
	assert_int_equal(pool[33 * PG], 0xcc);
	assert_int_equal(counter(r, "inflated_pages"), 40);
	assert_int_equal(counter(r, "discarded_bytes"), 40 * PG);
	assert_int_equal(counter(r, "refused_pfns"), 0);
	rig_free(r);
}

static void test_balloon_inflate_refuses_hostile_pfns(void **state)
{
	struct rig *r = rig_new(0, false, 0);
	uint8_t *pool = gp(r, POOL_GPA, 4 * PG);
	uint32_t pfns[] = { 0xffffffff, (uint32_t)(MEM_SIZE / PG), 0x100000,
		(uint32_t)(POOL_GPA / PG) + 1 };
	uint8_t odd[6] = { 0 };

	(void)state;
	activate(r, 0);
	memset(pool, 0xcc, 4 * PG);
	post1(r, 0, pfns, sizeof(pfns));
	post1(r, 0, odd, sizeof(odd)); /* PFN 0 plus two stray bytes */
	kick(r, 0);
	assert_int_equal(used_idx(r, 0), 2);
	assert_int_equal(r->vd->needs_reset, 0);
	assert_int_equal(counter(r, "refused_pfns"), 3);
	assert_int_equal(counter(r, "inflated_pages"), 2);
	assert_int_equal(counter(r, "malformed_buffers"), 1);
	assert_int_equal(pool[0], 0xcc);
	assert_int_equal(pool[PG], 0);
	assert_int_equal(pool[2 * PG], 0xcc);
	rig_free(r);
}

static void test_balloon_deflate_counts_without_touching_memory(void **state)
{
	struct rig *r = rig_new(0, false, 0);
	uint8_t *pool = gp(r, POOL_GPA, 4 * PG);
	uint32_t pfns[] = { (uint32_t)(POOL_GPA / PG), (uint32_t)(POOL_GPA / PG) + 1, 0xfffffff0 };

	(void)state;
	activate(r, 0);
	memset(pool, 0xdd, 4 * PG);
	post1(r, 1, pfns, sizeof(pfns));
	kick(r, 1);
	assert_int_equal(used_idx(r, 1), 1);
	assert_int_equal(counter(r, "deflated_pages"), 2);
	assert_int_equal(counter(r, "refused_pfns"), 1);
	assert_int_equal(counter(r, "inflated_pages"), 0);
	assert_int_equal(pool[0], 0xdd);
	rig_free(r);
}

static void test_balloon_inflate_large_buffer_in_chunks(void **state)
{
	struct rig *r = rig_new(0, false, 0);
	enum { N = 1900 }; /* 7.4 MiB from POOL_GPA, inside the 16 MiB */
	static uint32_t pfns[N];
	uint8_t *pool = gp(r, POOL_GPA, (uint64_t)N * PG);

	(void)state;
	activate(r, 0);
	memset(pool, 1, (size_t)N * PG);
	for (unsigned i = 0; i < N; i++)
		pfns[i] = (uint32_t)(POOL_GPA / PG) + i;
	post1(r, 0, pfns, sizeof(pfns));
	kick(r, 0);
	assert_int_equal(counter(r, "inflated_pages"), N);
	assert_int_equal(counter(r, "discarded_bytes"), (uint64_t)N * PG);
	assert_true(all_zero(pool, (size_t)N * PG));
	rig_free(r);
}

static void test_balloon_broken_chain_needs_reset(void **state)
{
	struct rig *r = rig_new(0, false, 0);
	uint64_t gpa = 1ULL << 40;
	uint32_t len = 8;

	(void)state;
	activate(r, 0);
	post(r, 0, &gpa, &len, NULL, 1);
	kick(r, 0);
	assert_int_equal(r->vd->needs_reset, 1);
	assert_int_equal(used_idx(r, 0), 0);
	rig_free(r);
}

static uint32_t cfg_read32(struct rig *r, uint32_t off)
{
	uint32_t v = 0;

	r->vd->ops->config_read(r->vd->dev, off, (uint8_t *)&v, 4);
	return v;
}

static void test_balloon_config_target_and_actual(void **state)
{
	struct rig *r = rig_new(0, false, 4);
	uint32_t v = 1234;
	uint8_t b2[2] = { 0x34, 0x12 };

	(void)state;
	assert_int_equal(cfg_read32(r, 0), 4 * 256);
	/* Before the driver is up too (the transport raises no interrupt then). */
	assert_int_equal(virtio_balloon_set_target(r->vd, 8), 0);
	assert_int_equal(r->vd->config_changes, 1);
	assert_int_equal(cfg_read32(r, 0), 8 * 256);
	activate(r, 0);
	assert_int_equal(virtio_balloon_set_target(r->vd, 10), 0);
	assert_int_equal(r->vd->config_changes, 2);
	assert_int_equal(r->vd->locked, 0);
	assert_int_equal(virtio_balloon_set_target(r->vd, 17), -EINVAL);
	assert_int_equal(virtio_balloon_set_target(r->vd, 16), 0);
	struct balloon_config now;
	assert_int_equal(virtio_balloon_config(r->vd, &now), 0);
	assert_int_equal(now.amount_mib, 16);
	assert_true(now.deflate_on_oom);
	assert_false(now.free_page_reporting);
	assert_int_equal(now.stats_polling_interval_s, 0);
	/* The driver writes actual; its writes to num_pages are ignored. */
	r->vd->ops->config_write(r->vd->dev, 4, (const uint8_t *)&v, 4);
	r->vd->ops->config_write(r->vd->dev, 0, (const uint8_t *)&v, 4);
	assert_int_equal(cfg_read32(r, 0), 16 * 256);
	assert_int_equal(cfg_read32(r, 4), 1234);
	r->vd->ops->config_write(r->vd->dev, 6, b2, 2);
	assert_int_equal(cfg_read32(r, 4), 0x123404d2);
	/* A write spanning both fields updates only actual. */
	v = 0;
	r->vd->ops->config_write(r->vd->dev, 2, (const uint8_t *)&v, 4);
	assert_int_equal(cfg_read32(r, 0), 16 * 256);
	assert_int_equal(cfg_read32(r, 4), 0x12340000);
	uint8_t one;
	r->vd->ops->config_read(r->vd->dev, 1, &one, 1);
	assert_int_equal(one, (16 * 256) >> 8);
	r->vd->ops->reset(r->vd->dev);
	assert_int_equal(cfg_read32(r, 4), 0);
	assert_int_equal(cfg_read32(r, 0), 16 * 256);
	rig_free(r);
}

static void test_balloon_public_calls_refuse_other_devices(void **state)
{
	struct virtio_dev other = { 0 };
	struct balloon_stats st;
	struct rig *r = rig_new(0, false, 0);

	(void)state;
	assert_int_equal(virtio_balloon_set_target(&other, 1), -ENODEV);
	struct balloon_config cfg;
	assert_int_equal(virtio_balloon_config(&other, &cfg), -ENODEV);
	assert_int_equal(virtio_balloon_stats(&other, &st), -ENODEV);
	assert_int_equal(virtio_balloon_set_target(NULL, 1), -ENODEV);
	/* Statistics off: no stats, and they cannot be turned on at runtime. */
	assert_int_equal(virtio_balloon_stats(r->vd, &st), -ENOTSUP);
	assert_int_equal(virtio_balloon_set_stats_interval(r->vd, 5), -ENOTSUP);
	assert_int_equal(virtio_balloon_set_stats_interval(r->vd, 0), 0);
	rig_free(r);
}

static size_t guest_stats(uint8_t *buf, uint64_t memfree)
{
	size_t n = 0;

	n += stat_entry(buf + n, BALLOON_STAT_SWAP_IN, 1);
	n += stat_entry(buf + n, BALLOON_STAT_MAJFLT, 3);
	n += stat_entry(buf + n, BALLOON_STAT_MEMFREE, memfree);
	n += stat_entry(buf + n, BALLOON_STAT_MEMTOT, 256ULL << 20);
	return n;
}

static void test_balloon_stats_poll_cycle(void **state)
{
	struct rig *r = rig_new(1, false, 2);
	struct balloon_stats st;
	uint8_t buf[64];
	size_t n = guest_stats(buf, 100ULL << 20);

	(void)state;
	activate(r, 1ULL << VIRTIO_BALLOON_F_STATS_VQ);
	assert_int_equal(virtio_balloon_stats(r->vd, &st), 0);
	assert_int_equal(st.updates, 0);
	assert_int_equal(st.present, 0);
	post1(r, 2, buf, (uint32_t)n);
	kick(r, 2);
	/* The device keeps the buffer until it wants fresh values. */
	assert_int_equal(used_idx(r, 2), 0);
	assert_int_equal(virtio_balloon_stats(r->vd, &st), 0);
	assert_int_equal(st.updates, 1);
	assert_int_equal(st.value[BALLOON_STAT_MEMFREE], 100ULL << 20);
	assert_int_equal(st.value[BALLOON_STAT_MAJFLT], 3);
	assert_true(st.present & (1ULL << BALLOON_STAT_MEMTOT));
	assert_false(st.present & (1ULL << BALLOON_STAT_SWAP_OUT));
	assert_int_equal(st.target_pages, 512);
	assert_int_equal(st.target_mib, 2);
	assert_int_equal(st.polling_interval_s, 1);
	/* One polling interval later the buffer goes back with an interrupt. */
	ev_run(r->loop, EVRUN_ONCE);
	assert_int_equal(used_idx(r, 2), 1);
	assert_int_equal(r->vd->notified[2], 1);
	assert_int_equal(r->vd->locked, 0);
	/* The driver refills it. */
	n = guest_stats(buf, 90ULL << 20);
	post1(r, 2, buf, (uint32_t)n);
	kick(r, 2);
	assert_int_equal(virtio_balloon_stats(r->vd, &st), 0);
	assert_int_equal(st.updates, 2);
	assert_int_equal(st.value[BALLOON_STAT_MEMFREE], 90ULL << 20);
	/* Interval changes are allowed, turning statistics off is not. */
	assert_int_equal(virtio_balloon_set_stats_interval(r->vd, 3), 0);
	assert_int_equal(virtio_balloon_set_stats_interval(r->vd, 0), -ENOTSUP);
	assert_int_equal(virtio_balloon_stats(r->vd, &st), 0);
	assert_int_equal(st.polling_interval_s, 3);
	rig_free(r);
}

static void test_balloon_malformed_stats_refused(void **state)
{
	struct rig *r = rig_new(1, false, 0);
	struct balloon_stats st;
	uint8_t buf[64];
	size_t n = guest_stats(buf, 5);

	(void)state;
	activate(r, 1ULL << VIRTIO_BALLOON_F_STATS_VQ);
	post1(r, 2, buf, (uint32_t)n);
	kick(r, 2);
	post1(r, 2, buf, 13); /* second buffer, not a multiple of 10: first one comes back */
	kick(r, 2);
	assert_int_equal(used_idx(r, 2), 1);
	assert_int_equal(r->vd->notified[2], 1);
	assert_int_equal(counter(r, "bad_stats"), 1);
	assert_int_equal(virtio_balloon_stats(r->vd, &st), 0);
	assert_int_equal(st.updates, 1);
	assert_int_equal(st.value[BALLOON_STAT_MEMFREE], 5);
	assert_int_equal(r->vd->needs_reset, 0);
	rig_free(r);
}

static void test_balloon_reporting_queue_numbering_and_discard(void **state)
{
	struct rig *r = rig_new(0, true, 0);
	uint8_t *pool = gp(r, POOL_GPA, 1 << 20);
	uint64_t gpa[2] = { POOL_GPA, POOL_GPA + (512 << 10) };
	uint32_t len[2] = { 256 << 10, 512 << 10 };
	bool wr[2] = { true, true };

	(void)state;
	/* No STATS_VQ: the reporting queue takes index 2. */
	activate(r, 1ULL << VIRTIO_BALLOON_F_REPORTING);
	memset(pool, 0xee, 1 << 20);
	post(r, 2, gpa, len, wr, 2);
	kick(r, 2);
	assert_int_equal(used_idx(r, 2), 1);
	assert_int_equal(counter(r, "reported_bytes"), 768 << 10);
	assert_true(all_zero(pool, 256 << 10));
	assert_int_equal(pool[256 << 10], 0xee);
	assert_true(all_zero(pool + (512 << 10), 512 << 10));
	assert_int_equal(counter(r, "inflated_pages"), 0);
	/* With STATS_VQ as well, reporting is queue 3 and queue 2 holds stats. */
	r->vd->ops->reset(r->vd->dev);
	rig_free(r);
	r = rig_new(1, true, 0);
	activate(r, acked_all());
	pool = gp(r, POOL_GPA, PG);
	memset(pool, 0xee, PG);
	gpa[0] = POOL_GPA;
	len[0] = PG;
	post(r, 3, gpa, len, wr, 1);
	kick(r, 3);
	assert_int_equal(counter(r, "reported_bytes"), PG);
	assert_int_equal(pool[0], 0);
	kick(r, 4); /* no such queue: ignored */
	rig_free(r);
}

static void test_balloon_save_restore_round_trip(void **state)
{
	struct rig *a = rig_new(1, true, 3), *b = rig_new(1, true, 0), *c = rig_new(0, true, 0);
	struct snap_writer *w = snap_writer_new();
	struct snap_reader *rd;
	struct snap_cursor cur, cur2;
	struct balloon_stats st;
	const uint8_t *img;
	uint8_t buf[64];
	uint32_t actual = 700;
	size_t len, n = guest_stats(buf, 77);
	char err[160];

	(void)state;
	activate(a, acked_all());
	post1(a, 2, buf, (uint32_t)n);
	kick(a, 2);
	a->vd->ops->config_write(a->vd->dev, 4, (const uint8_t *)&actual, 4);
	assert_int_equal(snap_section_begin(w, SNAP_SEC_DEVICE, 1), 0);
	assert_int_equal(a->vd->ops->save(a->vd->dev, w), 0);
	assert_int_equal(snap_section_end(w), 0);
	assert_int_equal(snap_writer_image(w, &img, &len), 0);
	assert_int_equal(snap_reader_parse(&rd, img, len, err, sizeof(err)), 0);
	assert_int_equal(snap_reader_find(rd, SNAP_SEC_DEVICE, 0, &cur), 0);
	cur2 = cur;

	/* A device configured without statistics is not the same device. */
	assert_int_equal(model_restore(c, &cur2), -EINVAL);
	assert_non_null(strstr(restore_err, "balloon: saved state does not match this device"));

	assert_int_equal(model_restore(b, &cur), 0);
	assert_int_equal(cur.left, 0);
	activate(b, acked_all()); /* the transport re-activates after restore */
	assert_int_equal(cfg_read32(b, 0), 3 * 256);
	assert_int_equal(cfg_read32(b, 4), 700);
	assert_int_equal(virtio_balloon_stats(b->vd, &st), 0);
	assert_int_equal(st.value[BALLOON_STAT_MEMFREE], 77);
	assert_int_equal(st.updates, 1);
	/* The held stats buffer goes back at the next poll, as it would have before. */
	ev_run(b->loop, EVRUN_ONCE);
	assert_int_equal(b->vd->notified[2], 1);

	/* Truncated state is refused. */
	cur2.p = NULL;
	assert_int_equal(snap_reader_find(rd, SNAP_SEC_DEVICE, 0, &cur2), 0);
	cur2.left -= 9;
	assert_int_equal(model_restore(b, &cur2), -EINVAL);
	assert_string_equal(restore_err, "balloon: saved state is truncated");
	snap_reader_free(rd);
	snap_writer_free(w);
	rig_free(a);
	rig_free(b);
	rig_free(c);
}

/* ---- free page hinting ---- */

static void test_balloon_hint_chain_rules(void **state)
{
	struct balloon_hinting h = { .host_cmd = BALLOON_HINT_CMD_STOP,
		.acknowledge_on_stop = true };
	bool ack;

	(void)state;
	/* No run: nothing is discarded, whatever the driver says. */
	assert_false(balloon_hint_chain(&h, true, 2, &ack));
	assert_false(ack);
	assert_true(h.has_guest_cmd);
	assert_int_equal(h.guest_cmd, 2);
	/* Run 2: pages under the driver's id 2 go, those under a stale id do not. */
	h.host_cmd = 2;
	assert_true(balloon_hint_chain(&h, false, 0, &ack));
	assert_false(balloon_hint_chain(&h, true, 7, &ack));
	assert_false(balloon_hint_chain(&h, false, 0, &ack));
	assert_true(balloon_hint_chain(&h, true, 2, &ack));
	assert_false(ack);
	/* The driver's STOP ends run 2, acknowledged (the caller sets DONE). */
	assert_false(balloon_hint_chain(&h, true, BALLOON_HINT_CMD_STOP, &ack));
	assert_true(ack);
	assert_int_equal(h.guest_cmd, BALLOON_HINT_CMD_STOP);
	/* A STOP that ends a run other than the current one is not acknowledged. */
	h.host_cmd = 3;
	assert_false(balloon_hint_chain(&h, true, BALLOON_HINT_CMD_STOP, &ack));
	assert_false(ack);
	h.acknowledge_on_stop = false;
	assert_true(balloon_hint_chain(&h, true, 3, &ack));
	assert_false(balloon_hint_chain(&h, true, BALLOON_HINT_CMD_STOP, &ack));
	assert_false(ack);
	/* After DONE nothing is touched, even under the id that was current. */
	h.host_cmd = BALLOON_HINT_CMD_DONE;
	assert_false(balloon_hint_chain(&h, true, BALLOON_HINT_CMD_DONE, &ack));
	assert_false(balloon_hint_chain(&h, false, 0, &ack));
	assert_false(ack);
}

static struct rig *hint_rig(void)
{
	struct balloon_config cfg = { .enabled = true, .free_page_hinting = true };

	return rig_new_cfg(&cfg);
}

#define HINT_Q 2 /* no statistics: the hinting queue takes index 2 */

static void hint_cmd(struct rig *r, uint32_t cmd)
{
	post1(r, HINT_Q, &cmd, 4);
	kick(r, HINT_Q);
}

/* A hint of `len` bytes at `gpa` (device-writable), kicked. */
static void hint_pages(struct rig *r, uint64_t gpa, uint32_t len)
{
	bool wr = true;

	post(r, HINT_Q, &gpa, &len, &wr, 1);
	kick(r, HINT_Q);
}

static void test_balloon_hinting_features_and_shape(void **state)
{
	struct rig *r = hint_rig();
	struct balloon_hinting h;

	(void)state;
	assert_int_equal(r->vd->ops->features(r->vd->dev), 1ULL << VIRTIO_BALLOON_F_FREE_PAGE_HINT);
	assert_int_equal(r->vd->ops->num_queues, 5);
	assert_int_equal(r->vd->ops->config_size, 16);
	assert_int_equal(cfg_read32(r, 8), BALLOON_HINT_CMD_STOP);
	/* Before the driver is up: status answers, start and stop do not. */
	assert_int_equal(virtio_balloon_hinting(r->vd, BALLOON_HINT_STATUS, true, &h), 0);
	assert_int_equal(h.host_cmd, BALLOON_HINT_CMD_STOP);
	assert_false(h.has_guest_cmd);
	assert_int_equal(virtio_balloon_hinting(r->vd, BALLOON_HINT_START, true, NULL), -EAGAIN);
	assert_int_equal(virtio_balloon_hinting(r->vd, BALLOON_HINT_STOP, true, NULL), -EAGAIN);
	rig_free(r);
	/* Without hinting: the shape balloons had before it, and hinting refused. */
	r = rig_new(1, true, 0);
	assert_int_equal(r->vd->ops->num_queues, 4);
	assert_int_equal(r->vd->ops->config_size, 8);
	activate(r, acked_all());
	assert_int_equal(virtio_balloon_hinting(r->vd, BALLOON_HINT_START, true, NULL), -ENOTSUP);
	assert_int_equal(virtio_balloon_hinting(r->vd, BALLOON_HINT_STATUS, true, &h), -ENOTSUP);
	rig_free(r);
}

static void test_balloon_hinting_run_discards_only_current_hints(void **state)
{
	struct rig *r = hint_rig();
	uint8_t *pool = gp(r, POOL_GPA, 4 << 20);
	struct balloon_hinting h;
	unsigned changes;

	(void)state;
	activate(r, 1ULL << VIRTIO_BALLOON_F_FREE_PAGE_HINT);
	memset(pool, 0xee, 4 << 20);
	changes = r->vd->config_changes;
	assert_int_equal(virtio_balloon_hinting(r->vd, BALLOON_HINT_START, true, NULL), 0);
	assert_int_equal(cfg_read32(r, 8), 2);
	assert_int_equal(r->vd->config_changes, changes + 1);
	/* A hint before the driver named the run is ignored. */
	hint_pages(r, POOL_GPA, 1 << 20);
	assert_int_equal(pool[0], 0xee);
	hint_cmd(r, 2);
	hint_pages(r, POOL_GPA, 1 << 20);
	assert_true(all_zero(pool, 1 << 20));
	assert_int_equal(pool[1 << 20], 0xee);
	assert_int_equal(counter(r, "hinted_bytes"), 1 << 20);
	/* Under a stale id: ignored. */
	hint_cmd(r, 9);
	hint_pages(r, POOL_GPA + (1 << 20), 1 << 20);
	assert_int_equal(pool[1 << 20], 0xee);
	/* The driver's STOP: acknowledged with DONE; hints after that are ignored. */
	hint_cmd(r, 2);
	changes = r->vd->config_changes;
	hint_cmd(r, BALLOON_HINT_CMD_STOP);
	assert_int_equal(cfg_read32(r, 8), BALLOON_HINT_CMD_DONE);
	assert_int_equal(r->vd->config_changes, changes + 1);
	hint_pages(r, POOL_GPA + (2 << 20), 1 << 20);
	assert_int_equal(pool[2 << 20], 0xee);
	assert_int_equal(counter(r, "hinted_bytes"), 1 << 20);
	assert_int_equal(virtio_balloon_hinting(r->vd, BALLOON_HINT_STATUS, false, &h), 0);
	assert_int_equal(h.host_cmd, BALLOON_HINT_CMD_DONE);
	assert_true(h.has_guest_cmd);
	assert_int_equal(h.guest_cmd, BALLOON_HINT_CMD_STOP);
	assert_int_equal(h.ignored_hints, 3);
	/* Every chain went back to the driver. */
	assert_int_equal(used_idx(r, HINT_Q), 8);
	assert_int_equal(r->vd->needs_reset, 0);
	/* Without acknowledge_on_stop the guest holds its pages until the host stops. */
	assert_int_equal(virtio_balloon_hinting(r->vd, BALLOON_HINT_START, false, NULL), 0);
	assert_int_equal(cfg_read32(r, 8), 3);
	hint_cmd(r, 3);
	hint_pages(r, POOL_GPA + (3 << 20), PG);
	hint_cmd(r, BALLOON_HINT_CMD_STOP);
	assert_int_equal(cfg_read32(r, 8), 3);
	assert_int_equal(pool[3 << 20], 0);
	assert_int_equal(virtio_balloon_hinting(r->vd, BALLOON_HINT_STOP, false, NULL), 0);
	assert_int_equal(cfg_read32(r, 8), BALLOON_HINT_CMD_DONE);
	/* The driver cannot write the command id. */
	uint32_t junk = 5;
	r->vd->ops->config_write(r->vd->dev, 8, (const uint8_t *)&junk, 4);
	assert_int_equal(cfg_read32(r, 8), BALLOON_HINT_CMD_DONE);
	rig_free(r);
}

/* Save `r`'s model state into a fresh image; a cursor on it in *cur. */
static struct snap_reader *save_model(struct rig *r, struct snap_writer *w, struct snap_cursor *cur)
{
	struct snap_reader *rd;
	const uint8_t *img;
	size_t len;
	char err[160];

	assert_int_equal(snap_section_begin(w, SNAP_SEC_DEVICE, 1), 0);
	assert_int_equal(r->vd->ops->save(r->vd->dev, w), 0);
	assert_int_equal(snap_section_end(w), 0);
	assert_int_equal(snap_writer_image(w, &img, &len), 0);
	assert_int_equal(snap_reader_parse(&rd, img, len, err, sizeof(err)), 0);
	assert_int_equal(snap_reader_find(rd, SNAP_SEC_DEVICE, 0, cur), 0);
	return rd;
}

static void test_balloon_hinting_state_survives_a_snapshot(void **state)
{
	struct rig *a = hint_rig(), *b = hint_rig(), *plain = rig_new(0, false, 0);
	struct snap_writer *w = snap_writer_new();
	struct snap_cursor cur, cur2;
	struct snap_reader *rd;
	struct balloon_hinting h;
	unsigned changes;

	(void)state;
	activate(a, 1ULL << VIRTIO_BALLOON_F_FREE_PAGE_HINT);
	assert_int_equal(virtio_balloon_hinting(a->vd, BALLOON_HINT_START, false, NULL), 0);
	hint_cmd(a, 2);
	hint_pages(a, POOL_GPA, 64 << 10);
	rd = save_model(a, w, &cur);
	cur2 = cur;
	/* A balloon without hinting is not the same device. */
	assert_int_equal(model_restore(plain, &cur2), -EINVAL);
	assert_non_null(strstr(restore_err, "does not match this device"));
	assert_int_equal(model_restore(b, &cur), 0);
	assert_int_equal(cur.left, 0);
	/* Saved mid-run: restored as DONE (the guest may take its pages back), and the
	 * driver is told once it is live again. */
	assert_int_equal(cfg_read32(b, 8), BALLOON_HINT_CMD_DONE);
	changes = b->vd->config_changes;
	activate(b, 1ULL << VIRTIO_BALLOON_F_FREE_PAGE_HINT);
	assert_int_equal(b->vd->config_changes, changes + 1);
	activate(b, 1ULL << VIRTIO_BALLOON_F_FREE_PAGE_HINT);
	assert_int_equal(b->vd->config_changes, changes + 1);
	assert_int_equal(virtio_balloon_hinting(b->vd, BALLOON_HINT_STATUS, true, &h), 0);
	assert_int_equal(h.host_cmd, BALLOON_HINT_CMD_DONE);
	assert_true(h.has_guest_cmd);
	assert_int_equal(h.guest_cmd, 2);
	assert_false(h.acknowledge_on_stop);
	assert_int_equal(h.hinted_bytes, 64 << 10);
	/* The next run does not reuse the saved run's id. */
	assert_int_equal(virtio_balloon_hinting(b->vd, BALLOON_HINT_START, true, NULL), 0);
	assert_int_equal(cfg_read32(b, 8), 3);
	snap_reader_free(rd);
	snap_writer_free(w);
	rig_free(a);
	rig_free(b);
	rig_free(plain);
}

/* A version 1 state (written before hinting existed: no hinting words at its end) is
 * still read by a balloon without hinting; a version from the future is refused. */
static void test_balloon_reads_version_1_state(void **state)
{
	struct rig *a = rig_new(1, true, 2), *b = rig_new(1, true, 0);
	struct snap_writer *w = snap_writer_new();
	struct snap_cursor cur, old;
	struct snap_reader *rd;
	uint8_t buf[512];
	uint32_t v = 1;

	(void)state;
	activate(a, acked_all());
	rd = save_model(a, w, &cur);
	assert_true(cur.left <= sizeof(buf) && cur.left > 36);
	memcpy(buf, cur.p, cur.left);
	memcpy(buf, &v, 4);
	old = cur;
	old.p = buf;
	old.left = cur.left - 36; /* u32 x5 and u64 x2 of hinting */
	assert_int_equal(model_restore(b, &old), 0);
	assert_int_equal(old.left, 0);
	assert_int_equal(cfg_read32(b, 0), 2 * 256);
	v = 3;
	memcpy(buf, &v, 4);
	old.p = buf;
	old.left = cur.left;
	assert_int_equal(model_restore(b, &old), -ENOTSUP);
	assert_string_equal(restore_err, "balloon: saved state is of an unknown version");
	snap_reader_free(rd);
	snap_writer_free(w);
	rig_free(a);
	rig_free(b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_balloon_pfns_merge_consecutive_pages),
		cmocka_unit_test(test_balloon_pfns_split_at_region_boundary),
		cmocka_unit_test(test_balloon_pfns_refuse_outside_memory),
		cmocka_unit_test(test_balloon_pfns_count_trailing_bytes),
		cmocka_unit_test(test_balloon_stats_parse_known_unknown_and_repeated_tags),
		cmocka_unit_test(test_balloon_stats_parse_refuses_malformed),
		cmocka_unit_test(test_balloon_discard_anon_frees_pages),
		cmocka_unit_test(test_balloon_discard_memfd_punches_the_file),
		cmocka_unit_test(test_balloon_discard_private_file_reads_zero_not_file_data),
		cmocka_unit_test(test_balloon_discard_trims_to_whole_pages),
		cmocka_unit_test(test_balloon_discard_hugetlb_whole_pages_only),
		cmocka_unit_test(test_balloon_discard_refuses_outside_memory),
		cmocka_unit_test(test_balloon_features_follow_config),
		cmocka_unit_test(test_balloon_inflate_gives_pages_back),
		cmocka_unit_test(test_balloon_inflate_refuses_hostile_pfns),
		cmocka_unit_test(test_balloon_deflate_counts_without_touching_memory),
		cmocka_unit_test(test_balloon_inflate_large_buffer_in_chunks),
		cmocka_unit_test(test_balloon_broken_chain_needs_reset),
		cmocka_unit_test(test_balloon_config_target_and_actual),
		cmocka_unit_test(test_balloon_public_calls_refuse_other_devices),
		cmocka_unit_test(test_balloon_stats_poll_cycle),
		cmocka_unit_test(test_balloon_malformed_stats_refused),
		cmocka_unit_test(test_balloon_reporting_queue_numbering_and_discard),
		cmocka_unit_test(test_balloon_save_restore_round_trip),
		cmocka_unit_test(test_balloon_hint_chain_rules),
		cmocka_unit_test(test_balloon_hinting_features_and_shape),
		cmocka_unit_test(test_balloon_hinting_run_discards_only_current_hints),
		cmocka_unit_test(test_balloon_hinting_state_survives_a_snapshot),
		cmocka_unit_test(test_balloon_reads_version_1_state),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
