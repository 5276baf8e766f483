/* ember test guest, user part: virtio-blk commands (info, read, write, flush, hostile). */
#include "guest.h"
#include "user.h"
#include "virtio.h"

#define BLK_ID 2
#define BLK_MAX_SECTORS 64
#define SECTOR 512u
#define CONFIG_CAPACITY 0x100 /* config space: le64 capacity first (5.2.4) */
#define F_RO 5
#define F_FLUSH 9
#define T_IN 0
#define T_OUT 1
#define T_FLUSH 4
#define T_GET_ID 8
#define T_DISCARD 11
#define ID_BYTES 20
/* Answers that are not a device status byte. */
#define ANS_TIMEOUT -1
#define ANS_NEEDS_RESET -2
#define ANS_NO_DEVICE -3

struct blk_hdr {
	uint32_t type;
	uint32_t reserved;
	uint64_t sector;
};

static struct vdev dev;
static int live;          /* dev is set up with DRIVER_OK */
static unsigned selected; /* `blk use`: the n-th block device, counted from 0 */
static struct blk_hdr hdr __attribute__((aligned(16)));
static volatile uint8_t status_byte;
static uint8_t buf[BLK_MAX_SECTORS * SECTOR] __attribute__((aligned(4096)));

/* Window of the n-th virtio-blk device, or -1. */
static int find(unsigned n)
{
	for (unsigned w = 0; w < VIRTIO_WINDOWS; w++)
		if (vdev_probe(w) == BLK_ID && n-- == 0)
			return (int)w;
	return -1;
}

static int setup(void)
{
	int w;

	if (live)
		return 0;
	w = find(selected);
	if (w < 0 || vdev_init(&dev, (unsigned)w, 1ull << F_RO | 1ull << F_FLUSH) ||
		vdev_queue(&dev, 0, VQ_MAX))
		return -1;
	vdev_driver_ok(&dev);
	live = 1;
	return 0;
}

static uint64_t capacity(void)
{
	return vdev_read(&dev, CONFIG_CAPACITY) |
		(uint64_t)vdev_read(&dev, CONFIG_CAPACITY + 4) << 32;
}

/* Post one chain and wait for it: the status byte the device wrote, or ANS_*. */
static int submit(const struct vbuf *b, unsigned n)
{
	uint32_t id, len;
	int r;

	status_byte = 0xff;
	vq_post(&dev, 0, b, n);
	vq_kick(&dev, 0);
	r = vq_wait(&dev, 0, &id, &len);
	if (r == -2) {
		live = 0; /* the next command starts the device again */
		return ANS_NEEDS_RESET;
	}
	return r ? ANS_TIMEOUT : status_byte;
}

/* The usual three-part request: header, data (if any), status. */
static int request(uint32_t type, uint64_t sector, void *data, uint32_t len, int data_write)
{
	struct vbuf b[3];
	unsigned n = 0;

	if (setup())
		return ANS_NO_DEVICE;
	hdr.type = type;
	hdr.reserved = 0;
	hdr.sector = sector;
	b[n++] = (struct vbuf){ (uint64_t)&hdr, sizeof(hdr), 0 };
	if (len)
		b[n++] = (struct vbuf){ (uint64_t)data, len, data_write };
	b[n++] = (struct vbuf){ (uint64_t)&status_byte, 1, 1 };
	return submit(b, n);
}

static void put_answer(int s)
{
	switch (s) {
	case ANS_TIMEOUT:
		put_str("timeout");
		break;
	case ANS_NEEDS_RESET:
		put_str("needs-reset");
		break;
	case ANS_NO_DEVICE:
		put_str("no-device");
		break;
	default:
		put_dec((uint64_t)s);
	}
}

/* "OK ..." when the device answered 0, else "ERR blk <what> status=<answer>". */
static int failed(const char *what, int s)
{
	if (s == 0)
		return 0;
	put_str("ERR blk ");
	put_str(what);
	put_str(" status=");
	put_answer(s);
	put_char('\n');
	return 1;
}

static int arg_count(const struct args *a, int i, uint64_t *count)
{
	if (parse_u64(a->v[i], count) || *count == 0 || *count > BLK_MAX_SECTORS) {
		put_str("ERR blk count must be 1..64: ");
		put_str(a->v[i]);
		put_char('\n');
		return -1;
	}
	return 0;
}

static int arg_num(const struct args *a, int i, uint64_t *v)
{
	if (parse_u64(a->v[i], v) == 0)
		return 0;
	put_str("ERR bad number: ");
	put_str(a->v[i]);
	put_char('\n');
	return -1;
}

static void blk_info(void)
{
	char id[ID_BYTES + 1];
	int s = request(T_GET_ID, 0, buf, ID_BYTES, 1);

	if (failed("info", s))
		return;
	for (unsigned i = 0; i < ID_BYTES; i++)
		id[i] = buf[i] >= 0x20 && buf[i] < 0x7f ? (char)buf[i] : 0;
	id[ID_BYTES] = 0;
	put_str("OK blk capacity=");
	put_dec(capacity());
	put_str(" ro=");
	put_dec((dev.features >> F_RO) & 1);
	put_str(" serial=");
	put_str(id);
	put_char('\n');
}

/* Requests a correct driver never sends; the answer is the status the device gave. */
static void blk_evil(const char *kind)
{
	struct vbuf b[2];
	int s;

	if (setup()) {
		failed("evil", ANS_NO_DEVICE);
		return;
	}
	hdr = (struct blk_hdr){ .type = T_IN };
	if (str_eq(kind, "short-header")) {
		b[0] = (struct vbuf){ (uint64_t)&hdr, 8, 0 };
		b[1] = (struct vbuf){ (uint64_t)&status_byte, 1, 1 };
		s = submit(b, 2);
	} else if (str_eq(kind, "oob")) {
		s = request(T_IN, capacity(), buf, SECTOR, 1);
	} else if (str_eq(kind, "ro-write")) {
		s = request(T_OUT, 0, buf, SECTOR, 0);
	} else if (str_eq(kind, "unaligned")) {
		s = request(T_IN, 0, buf, 100, 1);
	} else if (str_eq(kind, "unsupported")) {
		s = request(T_DISCARD, 0, buf, 16, 0);
	} else if (str_eq(kind, "no-status")) {
		b[0] = (struct vbuf){ (uint64_t)&hdr, sizeof(hdr), 0 };
		s = submit(b, 1);
	} else {
		put_str("ERR blk evil: unknown kind ");
		put_str(kind);
		put_char('\n');
		return;
	}
	put_str("OK blk evil status=");
	put_answer(s);
	put_char('\n');
}

void cmd_blk(const struct args *a)
{
	uint64_t sector, count, seed, n;
	const char *sub = a->n > 1 ? a->v[1] : "";

	if (str_eq(sub, "info") && a->n == 2) {
		blk_info();
	} else if (str_eq(sub, "use") && a->n == 3) {
		if (arg_num(a, 2, &n))
			return;
		selected = (unsigned)n;
		live = 0;
		if (setup()) {
			failed("use", ANS_NO_DEVICE);
			return;
		}
		put_str("OK blk use window=");
		put_dec(dev.index);
		put_char('\n');
	} else if (str_eq(sub, "write") && a->n == 5) {
		if (arg_num(a, 2, &sector) || arg_count(a, 3, &count) || arg_num(a, 4, &seed))
			return;
		work_fill((uint64_t)buf, count * SECTOR, seed);
		if (!failed("write", request(T_OUT, sector, buf, (uint32_t)(count * SECTOR), 0)))
			put_str("OK blk written\n");
	} else if (str_eq(sub, "read") && a->n == 4) {
		if (arg_num(a, 2, &sector) || arg_count(a, 3, &count))
			return;
		if (failed("read", request(T_IN, sector, buf, (uint32_t)(count * SECTOR), 1)))
			return;
		put_str("OK blk sum=");
		put_hex16(work_sum((uint64_t)buf, count * SECTOR));
		put_char('\n');
	} else if (str_eq(sub, "sum") && a->n == 3) {
		/* What the last read left in the buffer, without asking the device again. */
		if (arg_count(a, 2, &count))
			return;
		put_str("OK blk sum=");
		put_hex16(work_sum((uint64_t)buf, count * SECTOR));
		put_str(" buf=");
		put_hex((uint64_t)buf);
		put_char('\n');
	} else if (str_eq(sub, "put") && a->n == 4) {
		/* The buffer as it is, untouched by this CPU: only the device reads it. */
		if (arg_num(a, 2, &sector) || arg_count(a, 3, &count))
			return;
		if (!failed("put", request(T_OUT, sector, buf, (uint32_t)(count * SECTOR), 0)))
			put_str("OK blk put\n");
	} else if (str_eq(sub, "flush") && a->n == 2) {
		if (!failed("flush", request(T_FLUSH, 0, 0, 0, 0)))
			put_str("OK blk flushed\n");
	} else if (str_eq(sub, "evil") && a->n == 3) {
		blk_evil(a->v[2]);
	} else {
		put_str("ERR usage: blk info | use <n> | read <sector> <count> | sum <count> | "
			"put <sector> <count> | write <sector> <count> <seed> | flush | evil <kind>\n");
	}
}
