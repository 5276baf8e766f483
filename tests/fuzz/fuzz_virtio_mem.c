/* libFuzzer harness for virtio-mem: the guest's requests, the host's requested sizes and
 * the device's saved state on restore.
 *
 * Build and run (from the repository root), or `make fuzz`:
 *   build/fuzz/fuzz_virtio_mem -max_total_time=60 tests/fuzz/corpus/virtio_mem
 *
 * Input: byte 0 chooses the mode. Bit 0 clear: a stream of steps, each 27 bytes: a
 * request (24 bytes, as the driver writes struct virtio_mem_req), the response buffer's
 * length (1 byte, 0..255), flags (1 byte: bit 0 puts the request in a device-writable
 * descriptor, bit 1 asks the host for a new requested size first, bit 2 resets the device
 * through the status register and brings it up again), and that size in blocks (1 byte).
 * Bit 0 set: bytes 1.. are the model's saved state (one device section of a real state
 * file, after a transport state saved from a live device), restored into a fresh device;
 * then one plug and one state request. Invariants: the device never crashes; plugged_size
 * is a whole number of blocks, at most the area; a refused state says why. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "ember/byteorder.h"
#include "ember/log.h"
#include "ember/snapshot_file.h"
#include "ember/virtio.h"
#include "ember/virtio_devices.h"
#include "ember/virtio_mem.h"
#include "virtio_rig.h"

#include "fuzz.h"

#define AREA 0x100000000ull
#define TOTAL_MIB 256u
#define STEP 27
#define QSIZE 8
/* The model's part of a saved device: struct mem_state (56 bytes) and the block map (128
 * blocks: two longs). What comes before it in the section is the transport's. */
#define MODEL_STATE (56 + 16)

static const struct mem_hotplug_config cfg = { .enabled = true,
	.total_mib = TOTAL_MIB,
	.block_mib = 2,
	.slot_mib = 128 };
static struct rig *r;

static void setup(void)
{
	void *area;

	log_set_level(LOG_ERROR);
	r = rig_new();
	area = mmap(NULL, (size_t)TOTAL_MIB << 20, PROT_READ | PROT_WRITE,
		MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	CHECK(area != MAP_FAILED);
	r->mem.regions[r->mem.nr_regions++] = (struct guest_mem_region){ .gpa = AREA,
		.size = (uint64_t)TOTAL_MIB << 20,
		.host = area };
	r->mem.nr_device = 1;
}

static struct virtio_dev *new_dev(void)
{
	char err[256];
	struct virtio_dev *vd = virtio_mem_new(&r->env, RIG_BASE, 5, &cfg, err, sizeof(err));

	CHECK(vd != NULL);
	return vd;
}

/* A bus has no unregister (it lives as long as its VM): the next device gets a new one. */
static void free_dev(void)
{
	virtio_free(r->vd);
	r->vd = NULL;
	memset(&r->mmio, 0, sizeof(r->mmio));
	r->mmio.name = "mmio";
}

static void check_sizes(struct virtio_dev *vd)
{
	struct mem_hotplug_status st;

	virtio_mem_status(vd, &st);
	CHECK(st.plugged_mib % 2 == 0 && st.plugged_mib <= TOTAL_MIB);
	CHECK(st.requested_mib % 2 == 0 && st.requested_mib <= TOTAL_MIB);
}

static void request(const uint8_t *req, uint8_t resp_len, bool req_writable)
{
	memcpy(ram(r, RIG_BUF), req, 24);
	put_desc(r, 0, RIG_BUF, 24, D_NEXT | (req_writable ? D_WRITE : 0), 1);
	put_desc(r, 1, RIG_BUF + 0x1000, resp_len, D_WRITE, 0);
	offer(r, 0);
	wr(r, QUEUE_NOTIFY, 0);
	run_loop(r);
}

static void steps(const uint8_t *data, size_t size)
{
	r->vd = new_dev();
	bring_up_at(r, RIG_BASE, 1u << VIRTIO_MEM_F_UNPLUGGED_INACCESSIBLE, QSIZE);
	for (size_t off = 0; off + STEP <= size; off += STEP) {
		const uint8_t *s = data + off;
		uint8_t flags = s[25];

		if (flags & 4)
			bring_up_at(r, RIG_BASE, 1u << VIRTIO_MEM_F_UNPLUGGED_INACCESSIBLE, QSIZE);
		if (flags & 2) {
			int ret = virtio_mem_set_requested(r->vd, (uint32_t)s[26] * 2);
			CHECK(ret == 0 || ret == -EINVAL);
		}
		request(s, s[24], flags & 1);
		check_sizes(r->vd);
	}
}

static void restored(const uint8_t *data, size_t size)
{
	struct snap_writer *w = snap_writer_new(), *live_w = snap_writer_new();
	struct snap_reader *rd_ = NULL, *live = NULL;
	struct snap_cursor c, lc;
	const uint8_t *img;
	size_t img_len;
	uint8_t req[24] = { 0 };
	char err[256] = "";
	int ret;

	CHECK(w && live_w);
	/* The transport's part from a real device, so the model's part is reached. */
	r->vd = new_dev();
	bring_up_at(r, RIG_BASE, 1u << VIRTIO_MEM_F_UNPLUGGED_INACCESSIBLE, QSIZE);
	CHECK(snap_section_begin(live_w, SNAP_SEC_DEVICE, 1) == 0);
	CHECK(virtio_save(r->vd, live_w) == 0);
	CHECK(snap_section_end(live_w) == 0);
	CHECK(snap_writer_image(live_w, &img, &img_len) == 0);
	CHECK(snap_reader_parse(&live, img, img_len, err, sizeof(err)) == 0);
	CHECK(snap_reader_find(live, SNAP_SEC_DEVICE, 0, &lc) == 0);
	/* Its model state (after the transport's) is what the input replaces. */
	free_dev();
	r->vd = new_dev();
	CHECK(snap_section_begin(w, SNAP_SEC_DEVICE, 1) == 0);
	CHECK(lc.left > MODEL_STATE);
	CHECK(snap_put(w, lc.p, lc.left - MODEL_STATE) == 0);
	CHECK(snap_put(w, data, size) == 0);
	CHECK(snap_section_end(w) == 0);
	CHECK(snap_writer_image(w, &img, &img_len) == 0);
	CHECK(snap_reader_parse(&rd_, img, img_len, err, sizeof(err)) == 0);
	CHECK(snap_reader_find(rd_, SNAP_SEC_DEVICE, 0, &c) == 0);
	ret = virtio_restore(r->vd, &c, err, sizeof(err));
	CHECK(ret == 0 || err[0]);
	check_sizes(r->vd);
	if (ret == 0) {
		put_le16(req, VIRTIO_MEM_REQ_STATE);
		put_le64(req + 8, AREA);
		put_le16(req + 16, 64);
		request(req, 10, false);
		check_sizes(r->vd);
	}
	snap_reader_free(rd_);
	snap_reader_free(live);
	snap_writer_free(w);
	snap_writer_free(live_w);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!r)
		setup();
	if (size < 1)
		return 0;
	memset(ram(r, 0), 0, RIG_RAM_SIZE);
	if (data[0] & 1)
		restored(data + 1, size - 1);
	else
		steps(data + 1, size - 1);
	free_dev();
	/* Whatever was plugged: the next input starts from an empty area. */
	madvise(r->mem.regions[r->mem.nr_regions - 1].host, (size_t)TOTAL_MIB << 20, MADV_DONTNEED);
	return 0;
}
