/* libFuzzer harness for the virtio-blk request parser behind the virtqueue walker.
 *
 * Build and run (from the repository root), or `make fuzz`:
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -std=c11 -D_GNU_SOURCE -Iinclude \
 *     tests/fuzz/fuzz_virtio_block.c src/devices/block/block_req.c \
 *     src/devices/virtio/queue.c src/kvm/guest_mem.c -o fuzz_virtio_block
 *   ./fuzz_virtio_block -max_total_time=60 tests/fuzz/corpus/virtio_block
 * Regenerate the seeds (a plain program, no libFuzzer):
 *   cc -DBLOCK_SEED_MAIN -std=c11 -D_GNU_SOURCE -Iinclude tests/fuzz/fuzz_virtio_block.c \
 *     src/devices/block/block_req.c src/devices/virtio/queue.c src/kvm/guest_mem.c \
 *     -o seeds && ./seeds tests/fuzz/corpus/virtio_block
 *
 * Guest RAM is a heap block of exactly RAM_SIZE bytes, so ASan sees any access outside
 * it. The first input byte picks the mode: raw (the rest of the input is copied over the
 * rings and data, so the walker meets arbitrary descriptors) or built (the input is read
 * as recipes: per request a few segments with lengths, directions and addresses, a
 * request type and a sector, written into RAM as a well-formed-looking split ring). Every
 * chain popped goes through blk_req_parse, whose answer must hold: data only for IN/OUT,
 * whole sectors inside the disk, the iovecs inside guest RAM and adding up to the length,
 * nothing writable refused only when there is no status byte; then the status byte is
 * written and the chain pushed, as the device does. Any violation traps. */
#include "ember/block.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ember/guest_mem.h"

#include "fuzz.h"

#define RAM_BASE 0x4000ull /* not at 0, so address arithmetic is exercised */
#define RAM_SIZE 0x10000u
#define QSIZE 16
#define DESC RAM_BASE
#define AVAIL (RAM_BASE + 0x100)
#define USED (RAM_BASE + 0x200)
#define DATA_OFF 0x400u
#define MAX_REQS 8
#define MAX_SEGS 6

struct input {
	const uint8_t *p;
	size_t left;
};

static uint64_t take(struct input *in, unsigned n)
{
	uint64_t v = 0;

	for (unsigned i = 0; i < n && in->left; i++, in->left--)
		v |= (uint64_t)*in->p++ << (8 * i);
	return v;
}

static void put(uint8_t *ram, uint64_t gpa, uint64_t v, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		ram[gpa - RAM_BASE + i] = (uint8_t)(v >> (8 * i));
}

/* A segment length, biased to the sizes that matter. */
static uint32_t seg_len(struct input *in)
{
	static const uint32_t common[] = { 0, 1, 8, 15, 16, 17, 20, 512, 513, 1024, 16 + 512 };
	uint8_t k = (uint8_t)take(in, 1);

	if (k < 2 * (sizeof(common) / sizeof(common[0])))
		return common[k / 2];
	return (uint32_t)take(in, 2);
}

static uint64_t sector(struct input *in, uint64_t capacity)
{
	switch (take(in, 1) & 7) {
	case 0:
		return 0;
	case 1:
		return capacity ? capacity - 1 : 0;
	case 2:
		return capacity;
	case 3:
		return UINT64_MAX;
	case 4:
		return UINT64_MAX - 1;
	default:
		return take(in, 8);
	}
}

static uint32_t req_type(struct input *in)
{
	static const uint32_t types[] = { VIRTIO_BLK_T_IN, VIRTIO_BLK_T_OUT, VIRTIO_BLK_T_FLUSH,
		VIRTIO_BLK_T_GET_ID, 11, 13 };
	uint8_t k = (uint8_t)take(in, 1);

	return k < 6 * 32 ? types[k % 6] : (uint32_t)take(in, 4);
}

/* Lay out up to MAX_REQS chains from recipes. The first segment of each chain gets the
 * header when it is long enough, as a driver would put it there. */
static void build(struct input *in, uint8_t *ram, uint64_t capacity)
{
	unsigned desc = 0, reqs = 1 + (unsigned)(take(in, 1) % MAX_REQS);
	uint16_t idx = 0;

	for (unsigned r = 0; r < reqs && desc < QSIZE; r++) {
		unsigned nsegs = 1 + (unsigned)(take(in, 1) % MAX_SEGS);
		uint16_t head = (uint16_t)desc;

		for (unsigned s = 0; s < nsegs && desc < QSIZE; s++, desc++) {
			uint8_t flags = (uint8_t)take(in, 1);
			uint32_t len = seg_len(in);
			uint64_t gpa = RAM_BASE + DATA_OFF + take(in, 2) % (RAM_SIZE - DATA_OFF);
			bool last = s + 1 == nsegs || desc + 1 == QSIZE;

			if (flags & 0x80)
				gpa = take(in, 8); /* anywhere, usually outside RAM */
			if (s == 0 && len >= BLK_REQ_HEADER && gpa >= RAM_BASE &&
				gpa - RAM_BASE <= RAM_SIZE - BLK_REQ_HEADER) {
				put(ram, gpa, req_type(in), 4);
				put(ram, gpa + 8, sector(in, capacity), 8);
			}
			put(ram, DESC + 16ull * desc, gpa, 8);
			put(ram, DESC + 16ull * desc + 8, len, 4);
			put(ram, DESC + 16ull * desc + 12,
				(last ? 0 : 1) | (flags & 1 ? 2 : 0) | (flags & 0x40 ? 4 : 0), 2);
			put(ram, DESC + 16ull * desc + 14, (flags & 0x20) ? take(in, 1) : desc + 1,
				2);
		}
		put(ram, AVAIL + 4 + 2ull * (idx % QSIZE), head, 2);
		idx++;
	}
	put(ram, AVAIL + 2, idx, 2);
}

static bool inside(const uint8_t *ram, const struct iovec *v)
{
	const uint8_t *p = v->iov_base;

	return p >= ram && v->iov_len <= RAM_SIZE && p + v->iov_len <= ram + RAM_SIZE;
}

static void check(struct virtq *q, const struct virtq_elem *e, const struct blk_req *r,
	uint64_t capacity, bool read_only, int ret, uint8_t *ram)
{
	uint64_t total = 0;

	if (ret) {
		CHECK(ret == -EINVAL && e->write_len == 0 && r->why);
		return;
	}
	CHECK(e->write_len >= 1);
	CHECK(r->written >= 1 && r->written <= e->write_len);
	for (unsigned i = 0; i < r->iovcnt; i++) {
		CHECK(inside(ram, &r->iov[i]));
		total += r->iov[i].iov_len;
	}
	CHECK(total == r->len);
	if (r->status < 0) {
		CHECK(r->type == VIRTIO_BLK_T_IN || r->type == VIRTIO_BLK_T_OUT ||
			r->type == VIRTIO_BLK_T_FLUSH);
		CHECK(!(read_only && r->type == VIRTIO_BLK_T_OUT));
		CHECK(r->len % BLK_SECTOR_SIZE == 0);
		if (r->type != VIRTIO_BLK_T_FLUSH) /* a flush's sector means nothing */
			CHECK(r->sector <= capacity &&
				r->len / BLK_SECTOR_SIZE <= capacity - r->sector);
		if (r->type == VIRTIO_BLK_T_IN)
			CHECK(r->len == e->write_len - 1);
		if (r->type == VIRTIO_BLK_T_OUT)
			CHECK(r->len == e->read_len - BLK_REQ_HEADER && r->len > 0);
		if (r->type == VIRTIO_BLK_T_FLUSH)
			CHECK(r->len == 0);
		/* What the worker would do: touch every byte (ASan checks the range). */
		for (unsigned i = 0; i < r->iovcnt; i++) {
			if (r->type == VIRTIO_BLK_T_IN)
				memset(r->iov[i].iov_base, 0xab, r->iov[i].iov_len);
			else
				CHECK(*(volatile uint8_t *)r->iov[i].iov_base ||
					!*(volatile uint8_t *)r->iov[i].iov_base);
		}
	} else {
		CHECK(r->status == VIRTIO_BLK_S_OK || r->status == VIRTIO_BLK_S_IOERR ||
			r->status == VIRTIO_BLK_S_UNSUPP);
		CHECK(r->iovcnt == 0 || r->status == VIRTIO_BLK_S_OK);
		if (r->status != VIRTIO_BLK_S_OK)
			CHECK(r->written == 1 && r->why);
	}
	{
		uint8_t s = r->status < 0 ? VIRTIO_BLK_S_OK : (uint8_t)r->status;
		CHECK(virtq_write(q, e, e->write_len - 1, &s, 1) == 1);
	}
	CHECK(virtq_push(q, e, r->written) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct input in = { data, size };
	struct guest_mem mem = { 0 };
	struct virtq q = { 0 };
	uint8_t *ram = calloc(1, RAM_SIZE);
	uint8_t mode = (uint8_t)take(&in, 1);
	uint64_t capacity = take(&in, 2);
	bool read_only = mode & 2;
	char id[BLK_ID_BYTES] = "fuzz-drive";

	if (!ram)
		return 0;
	mem.nr_regions = 1;
	mem.regions[0] = (struct guest_mem_region){ .gpa = RAM_BASE,
		.size = RAM_SIZE,
		.host = ram };
	mem.total = RAM_SIZE;
	mem.page_size = 4096;
	mem.fd = -1;
	q = (struct virtq){ .size = QSIZE,
		.max_size = VIRTQ_MAX_SIZE,
		.ready = true,
		.desc_gpa = DESC,
		.avail_gpa = AVAIL,
		.used_gpa = USED,
		.event_idx = mode & 4,
		.indirect = mode & 8,
		.mem = &mem };
	if (mode & 1) {
		size_t n = in.left < RAM_SIZE ? in.left : RAM_SIZE;
		memcpy(ram, in.p, n);
	} else {
		build(&in, ram, capacity);
	}

	for (unsigned i = 0; i < 2 * QSIZE; i++) {
		struct virtq_elem e;
		struct blk_req r;
		char err[160];
		int ret = virtq_pop(&q, &e, err, sizeof(err));

		if (ret) {
			CHECK(ret == -ENOENT || ret == -EINVAL);
			break;
		}
		ret = blk_req_parse(&q, &e, capacity, read_only, id, &r);
		check(&q, &e, &r, capacity, read_only, ret, ram);
	}
	free(ram);
	return 0;
}

#ifdef BLOCK_SEED_MAIN
/* Seeds: one built request of each type, a hostile mix, and a raw ring. */
static void seed(const char *dir, const char *name, const uint8_t *b, size_t n)
{
	char path[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "wb");
	if (!f || fwrite(b, 1, n, f) != n) {
		perror(path);
		exit(1);
	}
	fclose(f);
}

int main(int argc, char **argv)
{
	/* mode, capacity(2), reqs, then per request: nsegs, per seg: flags, len code, gpa(2),
	 * and for the first segment a type code and a sector code. */
	static const uint8_t in_req[] = { 0, 64, 0, 0, 2, 0, 8, 0x00, 0x00, 0, 0, 1, 14, 0x00, 0x01,
		1, 2, 0x00, 0x04 };
	static const uint8_t out_req[] = { 0, 64, 0, 0, 2, 0, 20, 0x00, 0x00, 1, 1, 1, 2, 0x00,
		0x04 };
	static const uint8_t flush_id[] = { 0, 64, 0, 1, 1, 0, 8, 0x00, 0x00, 2, 0, 1, 2, 0x00,
		0x01, 1, 0, 8, 0x00, 0x02, 3, 0, 1, 8, 0x00, 0x03 };
	static const uint8_t hostile[] = { 12, 8, 0, 3, 5, 0x20, 3, 0x10, 0x00, 0, 2, 0x81, 0x40,
		0x01, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 1, 14, 0, 0 };
	uint8_t raw[1 + 2 + 0x210] = { 1, 16, 0 };

	if (argc != 2) {
		fprintf(stderr, "usage: %s DIR\n", argv[0]);
		return 2;
	}
	/* raw: one descriptor 0 -> 16 bytes at DATA, avail idx 1 */
	raw[3 + 0] = 0x00;
	raw[3 + 1] = 0x44;
	raw[3 + 8] = 16;
	raw[3 + 0x102] = 1;
	seed(argv[1], "in", in_req, sizeof(in_req));
	seed(argv[1], "out", out_req, sizeof(out_req));
	seed(argv[1], "flush_get_id", flush_id, sizeof(flush_id));
	seed(argv[1], "hostile", hostile, sizeof(hostile));
	seed(argv[1], "raw", raw, sizeof(raw));
	return 0;
}
#endif
