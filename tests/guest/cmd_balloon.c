/* ember test guest, user part: virtio-balloon driver commands (inflate, deflate, stats, report). */
#include "guest.h"
#include "user.h"
#include "virtio.h"

#define BALLOON_ID 5
#define F_STATS_VQ 1
#define F_DEFLATE_ON_OOM 2
#define F_REPORTING 5
#define CFG_NUM_PAGES 0x100 /* config space (5.5.4): le32 num_pages, le32 actual */
#define CFG_ACTUAL 0x104
#define Q_INFLATE 0
#define Q_DEFLATE 1
#define Q_THIRD 2         /* stats, or reporting when stats are not offered */
#define PFNS_PER_BUF 1024 /* 4 MiB of pages per inflate/deflate buffer */
#define REPORT_CHUNK (4 * MIB)
#define NO_QUEUE 0xffu
#define FAR_AWAY (1ull << 40)

/* Stats entries as the device reads them: le16 tag, le64 value, packed (5.5.6.3). */
struct stat_entry {
	uint16_t tag;
	uint64_t val;
} __attribute__((packed));

enum { ST_SWAP_IN, ST_SWAP_OUT, ST_MAJFLT, ST_MINFLT, ST_MEMFREE, ST_MEMTOT, ST_AVAIL, ST_CACHES };
#define STAT_UNKNOWN_TAG 0x77 /* the device must skip tags it does not know */
#define NR_STATS 9

static struct vdev dev;
static int live;
static unsigned q_stats = NO_QUEUE, q_report = NO_QUEUE;
static uint64_t area_start, area_pages; /* the work area, read from the zero page */
static uint64_t held;                   /* pages in the balloon: the first `held` of the area */
static int stats_with_device;           /* our stats buffer is the device's until it returns */
static uint64_t stats_posts;
static uint32_t pfns[PFNS_PER_BUF] __attribute__((aligned(4096)));
static struct stat_entry stats[NR_STATS] __attribute__((aligned(16)));

static void err_line(const char *what, uint32_t status)
{
	put_str("ERR balloon ");
	put_str(what);
	put_str(" status=");
	put_hex(status);
	put_char('\n');
}

static void fill_stats(void)
{
	uint64_t free_bytes = (area_pages - held) * PAGE_SIZE;
	static const uint16_t tags[NR_STATS] = { ST_SWAP_IN, ST_SWAP_OUT, ST_MAJFLT, ST_MINFLT,
		ST_MEMFREE, ST_MEMTOT, ST_AVAIL, ST_CACHES, STAT_UNKNOWN_TAG };
	struct boot_info bi;
	uint64_t vals[NR_STATS];

	boot_info_read(&bi, (const uint8_t *)LAYOUT_ZERO_PAGE);
	vals[0] = 11;
	vals[1] = 22;
	vals[2] = 33;
	vals[3] = 1000 + stats_posts; /* changes with every post: the host sees fresh values */
	vals[4] = free_bytes;
	vals[5] = bi.mem;
	vals[6] = free_bytes;
	vals[7] = 55;
	vals[8] = 99;
	for (unsigned i = 0; i < NR_STATS; i++) {
		stats[i].tag = tags[i];
		stats[i].val = vals[i];
	}
}

/* Hand the stats buffer to the device (it keeps it until it wants fresh values). */
static void post_stats(void)
{
	struct vbuf b = { (uint64_t)stats, sizeof(stats), 0 };

	fill_stats();
	stats_posts++;
	vq_post(&dev, q_stats, &b, 1);
	vq_kick(&dev, q_stats);
	stats_with_device = 1;
}

/* The first balloon, driven: VERSION_1, STATS_VQ, DEFLATE_ON_OOM; REPORTING only when no
 * stats queue is offered (the driver library has three queues per device, and queues
 * that are absent take no index: reporting is then queue 2). */
static int setup(void)
{
	uint64_t want = 1ull << F_STATS_VQ | 1ull << F_DEFLATE_ON_OOM, offered;
	struct boot_info bi;
	uint32_t s;
	int w = -1;

	s = live ? vdev_status(&dev) : 0;
	if (live && (s & VSTAT_DRIVER_OK) && !(s & VSTAT_NEEDS_RESET))
		return 0;
	live = 0;
	held = 0;
	stats_with_device = 0;
	q_stats = q_report = NO_QUEUE;
	for (unsigned n = 0; n < VIRTIO_WINDOWS && w < 0; n++)
		if (vdev_probe(n) == BALLOON_ID)
			w = (int)n;
	if (w < 0) {
		put_str("ERR balloon no device\n");
		return -1;
	}
	boot_info_read(&bi, (const uint8_t *)LAYOUT_ZERO_PAGE);
	area_start = bi.work_start;
	area_pages = (bi.work_end - bi.work_start) / PAGE_SIZE;
	if (vdev_init(&dev, (unsigned)w, want)) {
		err_line("init", vdev_status(&dev));
		return -1;
	}
	offered = dev.offered;
	if (!(offered & (1ull << F_STATS_VQ)) && (offered & (1ull << F_REPORTING))) {
		/* Negotiate again, this time with reporting. */
		if (vdev_init(&dev, (unsigned)w, want | 1ull << F_REPORTING)) {
			err_line("init", vdev_status(&dev));
			return -1;
		}
	}
	if (dev.features & (1ull << F_STATS_VQ))
		q_stats = Q_THIRD;
	if (dev.features & (1ull << F_REPORTING))
		q_report = Q_THIRD;
	if (vdev_queue(&dev, Q_INFLATE, VQ_MAX) || vdev_queue(&dev, Q_DEFLATE, VQ_MAX) ||
		(q_stats != NO_QUEUE && vdev_queue(&dev, q_stats, 4)) ||
		(q_report != NO_QUEUE && vdev_queue(&dev, q_report, 16))) {
		err_line("queues", vdev_status(&dev));
		return -1;
	}
	vdev_driver_ok(&dev);
	vdev_write(&dev, CFG_ACTUAL, 0);
	live = 1;
	if (q_stats != NO_QUEUE)
		post_stats(); /* 5.5.6.3: the driver gives the first buffer at start */
	return 0;
}

/* Post one buffer on queue q and wait for the device to use it. */
static int exchange(unsigned q, const struct vbuf *b, unsigned n, const char *what)
{
	uint32_t id, len;
	int r;

	vq_post(&dev, q, b, n);
	vq_kick(&dev, q);
	r = vq_wait(&dev, q, &id, &len);
	if (r == 0)
		return 0;
	live = 0;
	put_str("ERR balloon ");
	put_str(what);
	put_str(r == -2 ? " needs-reset" : " timeout");
	put_str(" status=");
	put_hex(vdev_status(&dev));
	put_char('\n');
	return -1;
}

/* Pages [from, to) of the area, in buffers of PFNS_PER_BUF, on the given queue. */
static int send_pages(unsigned q, uint64_t from, uint64_t to)
{
	while (from < to) {
		unsigned n = to - from < PFNS_PER_BUF ? (unsigned)(to - from) : PFNS_PER_BUF;
		struct vbuf b = { (uint64_t)pfns, n * 4u, 0 };

		for (unsigned i = 0; i < n; i++)
			pfns[i] = (uint32_t)((area_start + (from + i) * PAGE_SIZE) / PAGE_SIZE);
		if (exchange(q, &b, 1, q == Q_INFLATE ? "inflate" : "deflate"))
			return -1;
		from += n;
	}
	return 0;
}

static void answer_pages(void)
{
	put_str("OK balloon pages=");
	put_dec(held);
	put_char('\n');
}

/* Follow the target: touch the pages first (so the host has them resident), hand them
 * over, then tell the device through `actual`. */
static void balloon_inflate(void)
{
	uint64_t target = vdev_read(&dev, CFG_NUM_PAGES);

	if (target > area_pages) {
		put_str("ERR balloon target=");
		put_dec(target);
		put_str(" exceeds the work area of ");
		put_dec(area_pages);
		put_str(" pages\n");
		return;
	}
	if (target > held) {
		work_touch(area_start + held * PAGE_SIZE, target - held);
		if (send_pages(Q_INFLATE, held, target))
			return;
	} else if (target < held && send_pages(Q_DEFLATE, target, held)) {
		return;
	}
	held = target;
	vdev_write(&dev, CFG_ACTUAL, (uint32_t)held);
	answer_pages();
}

static void balloon_deflate(void)
{
	if (held && send_pages(Q_DEFLATE, 0, held))
		return;
	held = 0;
	vdev_write(&dev, CFG_ACTUAL, 0);
	answer_pages();
}

/* Wait until the device hands the stats buffer back (its polling interval), then post
 * fresh values. */
static void balloon_stats(void)
{
	uint32_t id, len;
	int r;

	if (q_stats == NO_QUEUE) {
		put_str("ERR balloon stats not offered\n");
		return;
	}
	if (stats_with_device) {
		r = vq_wait(&dev, q_stats, &id, &len);
		if (r) {
			live = 0;
			err_line(r == -2 ? "stats needs-reset" : "stats timeout",
				vdev_status(&dev));
			return;
		}
	}
	post_stats();
	put_str("OK balloon stats posts=");
	put_dec(stats_posts);
	put_str(" free=");
	put_dec(stats[ST_MEMFREE].val);
	put_char('\n');
}

/* Free page reporting: `pages` of the area just above the balloon, touched, then reported
 * as device-writable ranges of one chain. */
static void balloon_report(uint64_t pages)
{
	struct vbuf b[8];
	uint64_t start, bytes;
	unsigned n = 0;

	if (q_report == NO_QUEUE) {
		put_str("ERR balloon reporting not offered\n");
		return;
	}
	if (pages == 0 || pages > area_pages - held || pages * PAGE_SIZE > 8 * REPORT_CHUNK) {
		put_str("ERR balloon report pages must be 1..8192 and outside the balloon\n");
		return;
	}
	bytes = pages * PAGE_SIZE;
	start = area_start + held * PAGE_SIZE;
	work_touch(start, pages);
	for (uint64_t off = 0; off < bytes; off += REPORT_CHUNK)
		b[n++] = (struct vbuf){ start + off,
			(uint32_t)(bytes - off < REPORT_CHUNK ? bytes - off : REPORT_CHUNK), 1 };
	if (exchange(q_report, b, n, "report"))
		return;
	put_str("OK balloon report pages=");
	put_dec(pages);
	put_char('\n');
}

/* Inflate buffers a correct driver never sends. `pfns`: PFNs outside RAM (refused, the
 * device carries on). `chain`: a buffer outside RAM (the device goes to NEEDS_RESET). */
static void balloon_evil(const char *kind)
{
	struct vbuf b = { (uint64_t)pfns, 0, 0 };
	struct boot_info bi;

	boot_info_read(&bi, (const uint8_t *)LAYOUT_ZERO_PAGE);
	if (str_eq(kind, "pfns")) {
		pfns[0] = 0xffffffffu;
		pfns[1] = (uint32_t)(LAYOUT_MMIO_GAP_START / PAGE_SIZE);   /* the MMIO gap */
		pfns[2] = (uint32_t)(LAYOUT_VIRTIO_MMIO_BASE / PAGE_SIZE); /* a device window */
		pfns[3] = (uint32_t)((bi.mem + 64 * MIB) / PAGE_SIZE);     /* past the end of RAM */
		b.len = 4 * 4 + 2;                                         /* and stray bytes */
		if (exchange(Q_INFLATE, &b, 1, "evil pfns"))
			return;
	} else if (str_eq(kind, "chain")) {
		b.addr = FAR_AWAY;
		b.len = 64;
		vq_post(&dev, Q_INFLATE, &b, 1);
		vq_kick(&dev, Q_INFLATE);
		/* Each status read is a VM exit: some thousands of them cover the device's
		 * reaction to the kick. */
		for (unsigned i = 0; i < 100000 && !(vdev_status(&dev) & VSTAT_NEEDS_RESET); i++)
			__asm__ volatile("pause");
		live = 0;
	} else {
		put_str("ERR balloon evil: unknown kind ");
		put_str(kind);
		put_str(" (pfns, chain)\n");
		return;
	}
	put_str("OK balloon evil ");
	put_str(kind);
	put_str(" status=");
	put_hex(vdev_status(&dev));
	put_char('\n');
}

void cmd_balloon(const struct args *a)
{
	uint64_t pages;

	if (a->n < 2 || a->n > 3)
		goto usage;
	if (setup())
		return;
	if (a->n == 2 && str_eq(a->v[1], "info")) {
		put_str("OK balloon target=");
		put_dec(vdev_read(&dev, CFG_NUM_PAGES));
		put_str(" actual=");
		put_dec(vdev_read(&dev, CFG_ACTUAL));
		put_str(" held=");
		put_dec(held);
		put_str(" features=");
		put_hex(dev.features);
		put_char('\n');
	} else if (a->n == 2 && str_eq(a->v[1], "inflate")) {
		balloon_inflate();
	} else if (a->n == 2 && str_eq(a->v[1], "deflate")) {
		balloon_deflate();
	} else if (a->n == 2 && str_eq(a->v[1], "stats")) {
		balloon_stats();
	} else if (a->n == 3 && str_eq(a->v[1], "report")) {
		if (parse_u64(a->v[2], &pages)) {
			put_str("ERR bad number: ");
			put_str(a->v[2]);
			put_char('\n');
			return;
		}
		balloon_report(pages);
	} else if (a->n == 3 && str_eq(a->v[1], "evil")) {
		balloon_evil(a->v[2]);
	} else {
		goto usage;
	}
	return;
usage:
	put_str("ERR usage: balloon info|inflate|deflate|stats|report <pages>|evil <pfns|chain>\n");
}
