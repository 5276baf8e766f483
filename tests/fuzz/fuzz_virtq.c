/* libFuzzer harness for the split virtqueue walker: random rings in guest memory, pop to the end.
 *
 * Build and run (from the repository root), or `make fuzz`:
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -std=c11 -D_GNU_SOURCE -Iinclude \
 *     tests/fuzz/fuzz_virtq.c src/devices/virtio/queue.c src/kvm/guest_mem.c -o fuzz_virtq
 *   ./fuzz_virtq -max_total_time=60 tests/fuzz/corpus/virtq
 * Regenerate the seeds (a plain program, no libFuzzer):
 *   cc -DVIRTQ_SEED_MAIN -std=c11 -D_GNU_SOURCE -Iinclude tests/fuzz/fuzz_virtq.c \
 *     src/devices/virtio/queue.c src/kvm/guest_mem.c -o seeds && ./seeds tests/fuzz/corpus/virtq
 *
 * Input: one control byte, two bytes of next_avail, one byte of avail idx offset, then
 * guest memory from address 0 (descriptor table at 0, avail ring at 0x1000, used ring at
 * 0x2000, buffers and indirect tables after). Control bits: 0-3 queue size exponent (mod
 * 9), 4 event idx, 5 indirect, 6 "tame" (addresses, lengths, indices folded into range so
 * that most chains are nearly valid), 7 undo the first pop and pop it again.
 * Memory: 32 KiB at 0 and 4 KiB at 0x10000 (a gap between). Every chain popped must obey
 * the contract: head inside the queue, at most VIRTQ_MAX_SEGMENTS segments, readable before
 * writable, no empty segment, every segment inside guest memory, lengths that add up, the
 * copy helpers moving exactly those lengths, push accepted. A refusal must leave next_avail
 * alone and say "virtq: ...". Any violation traps. */
#include "ember/virtio.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ember/guest_mem.h"

#include "fuzz.h"

#define LOW_SIZE 0x8000u
#define HIGH_GPA 0x10000u
#define HIGH_SIZE 0x1000u
#define DESC_GPA 0x0u
#define AVAIL_GPA 0x1000u
#define USED_GPA 0x2000u
#define HEADER 4u

static uint8_t low[LOW_SIZE], high[HIGH_SIZE];
static uint8_t scratch[VIRTQ_MAX_SEGMENTS * LOW_SIZE];

static void fold(struct virtq *q, unsigned pending)
{
	uint16_t idx = (uint16_t)(q->next_avail + pending);

	for (unsigned i = 0; i < q->size; i++) {
		uint8_t *d = low + DESC_GPA + 16 * i;
		uint64_t addr;
		uint32_t len;
		uint16_t flags, next, head;

		memcpy(&addr, d, 8);
		memcpy(&len, d + 8, 4);
		memcpy(&flags, d + 12, 2);
		memcpy(&next, d + 14, 2);
		addr %= HIGH_GPA + HIGH_SIZE + 0x100; /* both regions, the gap, a bit past */
		len %= 0x400;
		flags &= 7;
		next %= q->size + 1; /* sometimes one past the end */
		memcpy(d, &addr, 8);
		memcpy(d + 8, &len, 4);
		memcpy(d + 12, &flags, 2);
		memcpy(d + 14, &next, 2);
		memcpy(&head, low + AVAIL_GPA + 4 + 2 * i, 2);
		head %= q->size + 1;
		memcpy(low + AVAIL_GPA + 4 + 2 * i, &head, 2);
	}
	memcpy(low + AVAIL_GPA + 2, &idx, 2);
}

static void check_elem(struct virtq *q, const struct virtq_elem *e)
{
	uint64_t rlen = 0, wlen = 0;

	CHECK(e->head < q->size);
	CHECK(e->nsegs <= VIRTQ_MAX_SEGMENTS);
	CHECK(e->nread <= e->nsegs);
	for (unsigned i = 0; i < e->nsegs; i++) {
		const struct virtq_seg *s = &e->segs[i];

		CHECK(s->len > 0);
		CHECK(s->write == (i >= e->nread));
		CHECK(guest_mem_ptr(q->mem, s->gpa, s->len) != NULL);
		if (s->write)
			wlen += s->len;
		else
			rlen += s->len;
	}
	CHECK(rlen == e->read_len && wlen == e->write_len);
	CHECK(virtq_read(q, e, 0, scratch, sizeof(scratch)) == (long)rlen);
	CHECK(virtq_read(q, e, rlen, scratch, 1) == 0);
	CHECK(virtq_write(q, e, 0, scratch, wlen) == (long)wlen);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct guest_mem mem = { .nr_regions = 2, .fd = -1 };
	struct virtq q = { .max_size = VIRTQ_MAX_SIZE,
		.ready = true,
		.desc_gpa = DESC_GPA,
		.avail_gpa = AVAIL_GPA,
		.used_gpa = USED_GPA,
		.mem = &mem };
	static struct virtq_elem e, again;
	char err[256];
	uint8_t ctl;

	if (size < HEADER)
		return 0;
	ctl = data[0];
	q.size = (uint16_t)(1u << ((ctl & 15) % 9));
	q.event_idx = ctl & 16;
	q.indirect = ctl & 32;
	q.next_avail = q.next_used = q.signalled_used = (uint16_t)(data[1] | data[2] << 8);
	mem.regions[0] = (struct guest_mem_region){ .gpa = 0, .size = LOW_SIZE, .host = low };
	mem.regions[1] = (struct guest_mem_region){ .gpa = HIGH_GPA,
		.size = HIGH_SIZE,
		.host = high };
	memset(low, 0, sizeof(low));
	memset(high, 0x5a, sizeof(high));
	memcpy(low, data + HEADER, size - HEADER < LOW_SIZE ? size - HEADER : LOW_SIZE);
	if (ctl & 64)
		fold(&q, data[3] % (q.size + 2u));
	CHECK(virtq_validate(&q, err, sizeof(err)) == 0);

	/* Every pop takes one entry the driver made available, so a ring cannot yield more
	 * than 65536 chains however the device's writes change it; stop well before. */
	for (unsigned n = 0; n < 4u * q.size + 8; n++) {
		uint16_t before = q.next_avail, used_before = q.next_used, used_idx;
		int ret;

		err[0] = '\0';
		ret = virtq_pop(&q, &e, err, sizeof(err));
		if (ret == -ENOENT) {
			CHECK(q.next_avail == before);
			break;
		}
		if (ret) {
			CHECK(ret == -EINVAL);
			CHECK(q.next_avail == before);
			CHECK(strncmp(err, "virtq: ", 7) == 0);
			break;
		}
		CHECK(q.next_avail == (uint16_t)(before + 1));
		if (n == 0 && (ctl & 128)) {
			virtq_undo_pop(&q);
			CHECK(virtq_pop(&q, &again, err, sizeof(err)) == 0);
			CHECK(again.head == e.head && again.nsegs == e.nsegs &&
				!memcmp(again.segs, e.segs, e.nsegs * sizeof(e.segs[0])));
		}
		check_elem(&q, &e);
		CHECK(virtq_push(&q, &e, (uint32_t)e.write_len + 1) == -EINVAL ||
			e.write_len == UINT32_MAX);
		CHECK(virtq_push(&q, &e, (uint32_t)e.write_len) == 0);
		CHECK(q.next_used == (uint16_t)(used_before + 1));
		memcpy(&used_idx, low + USED_GPA + 2, 2);
		CHECK(used_idx == q.next_used);
		(void)virtq_needs_notify(&q);
	}
	return 0;
}

#ifdef VIRTQ_SEED_MAIN
/* Seeds: a good direct chain, an indirect chain, a loop, with event idx. */
static void put_desc(uint8_t *mem, uint64_t at, uint64_t addr, uint32_t len, uint16_t flags,
	uint16_t next)
{
	memcpy(mem + at, &addr, 8);
	memcpy(mem + at + 8, &len, 4);
	memcpy(mem + at + 12, &flags, 2);
	memcpy(mem + at + 14, &next, 2);
}

static int write_seed(const char *dir, const char *name, const uint8_t *buf, size_t len)
{
	char path[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "wb");
	if (!f || fwrite(buf, 1, len, f) != len || fclose(f)) {
		perror(path);
		return 1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	static uint8_t buf[HEADER + 0x4000];
	uint8_t *m = buf + HEADER;
	uint16_t one = 1, two = 2;
	int bad = 0;

	if (argc != 2) {
		fprintf(stderr, "usage: %s DIR\n", argv[0]);
		return 2;
	}
	/* size 8, event idx; chain 0 -> 1 (read 16, write 32); chain 2 (write 8) */
	buf[0] = 3 | 16;
	put_desc(m, 0, 0x3000, 16, 1, 1);
	put_desc(m, 16, 0x3100, 32, 2, 0);
	put_desc(m, 32, 0x10000, 8, 2, 0);
	memcpy(m + AVAIL_GPA + 4, &(uint16_t){ 0 }, 2);
	memcpy(m + AVAIL_GPA + 6, &two, 2);
	memcpy(m + AVAIL_GPA + 2, &two, 2);
	bad |= write_seed(argv[1], "direct", buf, HEADER + 0x3200);
	/* size 4, indirect: descriptor 0 names a table of 3 at 0x3800 */
	memset(buf, 0, sizeof(buf));
	buf[0] = 2 | 32;
	put_desc(m, 0, 0x3800, 48, 4, 0);
	put_desc(m, 0x3800, 0x3000, 16, 1, 1);
	put_desc(m, 0x3810, 0x3100, 16, 3, 2);
	put_desc(m, 0x3820, 0x10010, 16, 2, 0);
	memcpy(m + AVAIL_GPA + 2, &one, 2);
	bad |= write_seed(argv[1], "indirect", buf, HEADER + 0x3830);
	/* size 2, tame, undo: a loop */
	memset(buf, 0, sizeof(buf));
	buf[0] = 1 | 64 | 128;
	buf[3] = 1;
	put_desc(m, 0, 0x3000, 16, 1, 1);
	put_desc(m, 16, 0x3000, 16, 1, 0);
	bad |= write_seed(argv[1], "loop", buf, HEADER + 0x2010);
	return bad;
}
#endif
