/* libFuzzer harness for a virtio device's saved state on restore: the transport's section and the model's.
 *
 * Build and run (from the repository root), or `make fuzz`:
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -std=c11 -D_GNU_SOURCE -Iinclude \
 *     -Itests/unit tests/fuzz/fuzz_virtio_state.c src/devices/virtio/{mmio,mmio_notify,mmio_regs,\
 *     mmio_persist,queue}.c src/devices/rng/rng.c src/devices/balloon/{balloon,balloon_parse,\
 *     balloon_persist,balloon_queues,balloon_memory}.c src/kvm/{bus,guest_mem}.c \
 *     src/util/rate_limiter.c \
 *     src/snapshot/state_file.c src/snapshot/state_file_read.c src/util/{crc64,log}.c \
 *     tests/unit/virtio_rig.c -lev -lcmocka -o fuzz_virtio_state
 *   ./fuzz_virtio_state -max_total_time=60 tests/fuzz/corpus/virtio_state
 * Regenerate the seeds (a plain program, no libFuzzer):
 *   cc -DVIRTIO_STATE_SEED_MAIN ... (the same files) -lev -lcmocka -o seeds && \
 *     ./seeds tests/fuzz/corpus/virtio_state
 *
 * A state file is outside input: it may come from another host, and its CRC proves no
 * origin. Input: a byte choosing the device, 2 bytes (LE) of state length L, L bytes that
 * become one device section of a real state file (written by snap_writer, read back by
 * snap_reader), and the rest copied into guest RAM from 0x1000 on, where the saved queues'
 * rings may point. The device, fresh on the test rig's transport, is virtio-rng (bit 0
 * clear: its rate limiter's budgets) or virtio-balloon (bit 0 set; bit 1 turns on the
 * stats queue, bit 2 free page reporting, bit 3 deflate on OOM: target, stats buffer held
 * across the snapshot, latest statistics). It restores from that section (virtio_restore:
 * version, device id, queue count, status and feature bits, every ready queue
 * re-validated, then the model's own state), then the loop runs
 * (restore kicks every live queue, so the restored rings are walked), every register is
 * read, each queue is notified, and the driver resets the device. A refusal must say
 * why; nothing may crash, leak or trip a sanitizer. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ember/config.h"
#include "ember/log.h"
#include "ember/rate_limiter.h"
#include "ember/snapshot_file.h"
#include "ember/virtio.h"
#include "ember/virtio_devices.h"
#include "virtio_rig.h"

#include "fuzz.h"

#define RAM_FROM 0x1000u
#define RAM_TO 0x20000u

static struct rig *r;
static const struct rate_limit limit = {
	.bandwidth = { .size = 4096, .one_time_burst = 1024, .refill_time_ms = 100 },
	.ops = { .size = 8, .refill_time_ms = 100 },
};

static struct virtio_dev *new_dev(uint8_t kind)
{
	struct balloon_config cfg = { .enabled = true,
		.amount_mib = 0,
		.stats_polling_interval_s = kind & 2 ? 1 : 0,
		.free_page_reporting = kind & 4,
		.deflate_on_oom = kind & 8,
		.free_page_hinting = kind & 16 };
	char err[256];
	struct virtio_dev *vd = kind & 1
		? virtio_balloon_new(&r->env, RIG_BASE, 5, &cfg, err, sizeof(err))
		: virtio_rng_new(&r->env, RIG_BASE, 5, &limit, err, sizeof(err));

	if (!vd)
		fprintf(stderr, "%s\n", err);
	CHECK(vd != NULL);
	return vd;
}

/* The section as a state file carries it: written, then found again by the reader. */
static int restore_from(struct virtio_dev *vd, const uint8_t *st, size_t len, char *err,
	size_t errlen)
{
	struct snap_writer *w = snap_writer_new();
	struct snap_reader *rd_ = NULL;
	struct snap_cursor c;
	const uint8_t *img;
	size_t img_len;
	int ret;

	CHECK(w != NULL);
	CHECK(snap_section_begin(w, SNAP_SEC_DEVICE, 1) == 0);
	CHECK(snap_put(w, st, len) == 0);
	CHECK(snap_section_end(w) == 0);
	CHECK(snap_writer_image(w, &img, &img_len) == 0);
	CHECK(snap_reader_parse(&rd_, img, img_len, err, errlen) == 0);
	CHECK(snap_reader_find(rd_, SNAP_SEC_DEVICE, 0, &c) == 0);
	ret = virtio_restore(vd, &c, err, errlen);
	snap_reader_free(rd_);
	snap_writer_free(w);
	return ret;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct virtio_dev *vd;
	size_t len, rest;
	char err[256];
	int ret;

	if (!r) {
		log_set_level(LOG_ERROR);
		r = rig_new();
	}
	if (size < 3)
		return 0;
	len = (size_t)(data[1] | data[2] << 8);
	if (len > size - 3)
		len = size - 3;
	rest = size - 3 - len;
	if (rest > RAM_TO - RAM_FROM)
		rest = RAM_TO - RAM_FROM;
	memset(ram(r, 0), 0, RAM_TO);
	memcpy(ram(r, RAM_FROM), data + 3 + len, rest);

	vd = new_dev(data[0]);
	err[0] = '\0';
	ret = restore_from(vd, data + 3, len, err, sizeof(err));
	CHECK(ret == 0 || ((ret == -EINVAL || ret == -ENOTSUP) && err[0]));
	run_loop(r);
	for (uint64_t off = 0; off < CONFIG; off += 4)
		(void)rd(r, off);
	for (uint32_t q = 0; q < 4; q++) {
		wr(r, QUEUE_NOTIFY, q);
		run_loop(r);
	}
	wr(r, ISR_ACK, rd(r, ISR));
	wr(r, STATUS, 0); /* the driver resets the device */
	run_loop(r);
	CHECK(rd(r, STATUS) == 0);
	virtio_free(vd);
	/* A bus has no unregister (it lives as long as its VM): the next device gets a new one. */
	memset(&r->mmio, 0, sizeof(r->mmio));
	r->mmio.name = "mmio";
	return 0;
}

#ifdef VIRTIO_STATE_SEED_MAIN
/* Seeds: per device, the state of a live one (queue 0 of 8 at the rig's rings, one request
 * served, one waiting), a freshly reset one, and the live one with its ring content in RAM. */
static void seed(const char *dir, const char *name, uint8_t kind, struct virtio_dev *vd,
	bool with_ram)
{
	struct snap_writer *w = snap_writer_new();
	struct snap_reader *rd_;
	struct snap_cursor c;
	const uint8_t *img;
	size_t img_len;
	char path[512], err[256];
	FILE *f;

	CHECK(w && snap_section_begin(w, SNAP_SEC_DEVICE, 1) == 0);
	CHECK(virtio_save(vd, w) == 0 && snap_section_end(w) == 0);
	CHECK(snap_writer_image(w, &img, &img_len) == 0);
	CHECK(snap_reader_parse(&rd_, img, img_len, err, sizeof(err)) == 0);
	CHECK(snap_reader_find(rd_, SNAP_SEC_DEVICE, 0, &c) == 0);
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "wb");
	CHECK(f != NULL);
	fputc(kind, f);
	fputc((int)(c.left & 0xff), f);
	fputc((int)(c.left >> 8), f);
	CHECK(fwrite(c.p, 1, c.left, f) == c.left);
	if (with_ram) /* the rings, not the buffers: 0x1000..0x4000 */
		CHECK(fwrite(ram(r, RAM_FROM), 1, 0x3000, f) == 0x3000);
	CHECK(fclose(f) == 0);
	snap_reader_free(rd_);
	snap_writer_free(w);
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: %s DIR\n", argv[0]);
		return 2;
	}
	for (unsigned i = 0; i < 2; i++) {
		static const uint8_t kinds[] = { 0, 1 | 2 | 4 };
		static const char *const names[][3] = { { "rng_reset", "rng_live",
								"rng_live_with_rings" },
			{ "balloon_reset", "balloon_live", "balloon_live_with_rings" } };
		uint8_t kind = kinds[i];

		r = rig_new();
		r->vd = new_dev(kind);
		seed(argv[1], names[i][0], kind, r->vd, false);
		bring_up_at(r, RIG_BASE, 0, 8);
		/* rng: a buffer to fill; balloon: one PFN to inflate */
		post(r, 0, kind & 1 ? 4 : 64, kind & 1 ? 0 : D_WRITE);
		wr(r, QUEUE_NOTIFY, 0);
		run_loop(r);
		put_desc(r, 1, RIG_BUF + 0x1000, 32, kind & 1 ? 0 : D_WRITE, 0);
		offer(r, 1);
		seed(argv[1], names[i][1], kind, r->vd, false);
		seed(argv[1], names[i][2], kind, r->vd, true);
		rig_free(r);
		r = NULL;
	}
	return 0;
}
#endif
