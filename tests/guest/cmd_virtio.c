/* ember test guest, user part: virtio commands (list, rng, and chains built wrong on purpose). */
#include "guest.h"
#include "user.h"
#include "virtio.h"

#define RNG_MAX 65536u
#define RNG_QUEUE 16
#define FNV_OFFSET 0xcbf29ce484222325ULL
#define FNV_PRIME 0x100000001b3ULL
#define FAR_AWAY (1ull << 40)           /* far above any RAM the guest has */
#define FLOOD_STALL_CYCLES (1ull << 35) /* no answer for this long: the device stopped */

static uint8_t data[RNG_MAX] __attribute__((aligned(4096)));
static struct vdev devs[VIRTIO_WINDOWS];
static int live[VIRTIO_WINDOWS]; /* set up by us and not reset since */

static void put_status_err(const char *what, uint32_t status)
{
	put_str("ERR ");
	put_str(what);
	put_str(" status=");
	put_hex(status);
	put_char('\n');
}

void cmd_virtio(const struct args *a)
{
	int found = 0;

	if (!str_eq(a->v[1], "list")) {
		put_str("ERR usage: virtio list\n");
		return;
	}
	put_str("OK virtio");
	for (unsigned n = 0; n < VIRTIO_WINDOWS; n++) {
		uint32_t id = vdev_probe(n);
		const char *name = virtio_id_name(id);

		if (!id)
			continue;
		found = 1;
		put_char(' ');
		put_dec(n);
		put_char(':');
		if (name) {
			put_str(name);
		} else {
			put_str("id");
			put_dec(id);
		}
	}
	put_str(found ? "\n" : " none\n");
}

/* The first window holding device `id`, set up (VERSION_1, EVENT_IDX, queue 0 of
 * `qsize` entries, at most VQ_MAX) and live. */
static struct vdev *device(uint32_t id, const char *what, unsigned qsize)
{
	for (unsigned n = 0; n < VIRTIO_WINDOWS; n++) {
		struct vdev *d = &devs[n];
		uint32_t s;

		if (vdev_probe(n) != id)
			continue;
		s = live[n] ? vdev_status(d) : 0;
		if (live[n] && (s & VSTAT_DRIVER_OK) && !(s & VSTAT_NEEDS_RESET) &&
			d->vq[0].size == qsize)
			return d;
		live[n] = 0;
		if (vdev_init(d, n, 1ull << VIRTIO_F_EVENT_IDX) || vdev_queue(d, 0, qsize)) {
			put_status_err(what, vdev_status(d));
			return 0;
		}
		vdev_driver_ok(d);
		live[n] = 1;
		return d;
	}
	put_str("ERR no ");
	put_str(what);
	put_str(" device\n");
	return 0;
}

/* Waits for the next used entry; answers the error line itself on failure. */
static int wait_used(struct vdev *d, const char *what, uint32_t *len)
{
	uint32_t id;
	int ret = vq_wait(d, 0, &id, len);

	if (ret == 0)
		return 0;
	live[d->index] = 0;
	put_str("ERR ");
	put_str(what);
	put_str(ret == -2 ? " device needs reset" : " timeout");
	put_str(" status=");
	put_hex(vdev_status(d));
	put_char('\n');
	return -1;
}

void cmd_rng(const struct args *a)
{
	uint64_t n, got = 0, h = FNV_OFFSET;
	struct vdev *d;

	if (arg_u64(a, 1, &n))
		return;
	if (n == 0 || n > RNG_MAX) {
		put_str("ERR rng bytes=");
		put_dec(n);
		put_str(" must be 1..65536\n");
		return;
	}
	d = device(4, "rng", RNG_QUEUE);
	if (!d)
		return;
	/* The device may give less than asked for (a rate limit caps a request): ask again. */
	while (got < n) {
		struct vbuf b = { .addr = (uint64_t)(data + got),
			.len = (uint32_t)(n - got),
			.write = 1 };
		uint32_t len;

		vq_post(d, 0, &b, 1);
		vq_kick(d, 0);
		if (wait_used(d, "rng", &len))
			return;
		if (len == 0 || len > n - got) {
			put_str("ERR rng device returned ");
			put_dec(len);
			put_str(" bytes\n");
			return;
		}
		got += len;
	}
	for (uint64_t i = 0; i < n; i++)
		h = (h ^ data[i]) * FNV_PRIME;
	put_str("OK rng bytes=");
	put_dec(n);
	put_str(" sum=");
	put_hex16(h);
	put_char('\n');
}

/* A guest that keeps the device busy: every descriptor of the rng queue stays posted
 * (`bytes` each, all into one buffer), each answer is posted again at once, and the
 * queue is kicked whenever a look at the used ring found nothing new, whatever the
 * device asked for, until `chains` requests were answered. Re-posting without an exit
 * is faster than the device answers, so its queue is never empty. */
void cmd_rng_flood(const struct args *a)
{
	uint64_t n, bytes, done = 0, kicks = 0;
	uint64_t t0 = rdtsc();
	struct vdev *d;
	struct vq *vq;

	if (arg_u64(a, 1, &n) || arg_u64(a, 2, &bytes))
		return;
	if (bytes == 0 || bytes > RNG_MAX) {
		put_str("ERR rng-flood bytes must be 1..65536\n");
		return;
	}
	d = device(4, "rng", VQ_MAX); /* the longest ring: the most work per kick */
	if (!d)
		return;
	vq = &d->vq[0];
	for (unsigned i = 0; i < vq->size; i++) {
		struct vbuf b = { .addr = (uint64_t)data, .len = (uint32_t)bytes, .write = 1 };
		vq_post(d, 0, &b, 1);
	}
	while (done < n) {
		uint32_t id, len;
		int progress = 0;

		while (done < n && vq_take(d, 0, &id, &len) == 0) {
			vq_offer(d, 0, (uint16_t)id); /* the same buffer, again */
			done++;
			progress = 1;
			t0 = rdtsc();
		}
		if (!progress) {
			vq_notify(d, 0);
			kicks++;
		}
		if (rdtsc() - t0 > FLOOD_STALL_CYCLES) {
			put_str("ERR rng-flood stalled after ");
			put_dec(done);
			put_str(" chains status=");
			put_hex(vdev_status(d));
			put_char('\n');
			live[d->index] = 0;
			return;
		}
	}
	/* Leave the queue as `rng` expects it: nothing outstanding. */
	live[d->index] = 0;
	put_str("OK rng-flood chains=");
	put_dec(done);
	put_str(" kicks=");
	put_dec(kicks);
	put_char('\n');
}

static void desc(struct vq *vq, unsigned i, uint64_t addr, uint32_t len, uint16_t flags,
	uint16_t next)
{
	vq->desc[i].addr = addr;
	vq->desc[i].len = len;
	vq->desc[i].flags = flags;
	vq->desc[i].next = next;
}

/* Build the broken chain `kind` on queue 0; -1 (answered) if it cannot be built here. */
static int build_evil(struct vdev *d, const char *kind)
{
	struct vq *vq = &d->vq[0];
	uint64_t buf = (uint64_t)data;

	if (str_eq(kind, "loop")) { /* 0 -> 1 -> 0 -> ... */
		desc(vq, 0, buf, 16, VRING_WRITE | VRING_NEXT, 1);
		desc(vq, 1, buf + 16, 16, VRING_WRITE | VRING_NEXT, 0);
	} else if (str_eq(kind, "oob")) { /* a buffer far outside RAM */
		desc(vq, 0, FAR_AWAY, 16, VRING_WRITE, 0);
	} else if (str_eq(kind, "long")) { /* every descriptor of the queue in one chain */
		for (unsigned i = 0; i < vq->size; i++)
			desc(vq, i, buf + i, 1,
				(uint16_t)(VRING_WRITE | (i + 1 < vq->size ? VRING_NEXT : 0)),
				(uint16_t)(i + 1));
	} else if (str_eq(kind, "jump")) { /* avail idx moves by more than the queue size */
		desc(vq, 0, buf, 16, VRING_WRITE, 0);
		vq->avail_idx = (uint16_t)(vq->avail_idx + vq->size);
	} else if (str_eq(kind, "nested")) { /* an indirect table naming another */
		volatile struct vring_desc *table = (volatile struct vring_desc *)(data + 0x1000);

		if (!(d->features & (1ull << VIRTIO_F_INDIRECT_DESC))) {
			put_str("ERR evil nested needs VIRTIO_F_RING_INDIRECT_DESC\n");
			return -1;
		}
		table[0].addr = buf + 0x2000;
		table[0].len = 16;
		table[0].flags = VRING_INDIRECT;
		table[0].next = 0;
		desc(vq, 0, (uint64_t)table, 16, VRING_INDIRECT, 0);
	} else {
		put_str("ERR unknown evil kind: ");
		put_str(kind);
		put_str(" (loop, oob, long, jump, nested)\n");
		return -1;
	}
	return 0;
}

/* Post a broken chain on queue 0 of window n, kick, and report the device status once it
 * reacted (NEEDS_RESET, or a used entry) or the wait ran out; then reset the device. */
void cmd_virtio_evil(const struct args *a)
{
	uint64_t n;
	struct vdev *d;
	uint32_t status, id, len;

	if (arg_u64(a, 2, &n))
		return;
	if (n >= VIRTIO_WINDOWS || !vdev_probe((unsigned)n)) {
		put_str("ERR no virtio device at window ");
		put_dec(n);
		put_char('\n');
		return;
	}
	d = &devs[n];
	live[n] = 0;
	if (vdev_init(d, (unsigned)n, 1ull << VIRTIO_F_INDIRECT_DESC) || vdev_queue(d, 0, VQ_MAX)) {
		put_status_err("evil setup", vdev_status(d));
		return;
	}
	vdev_driver_ok(d);
	if (build_evil(d, a->v[1]))
		return;
	vq_offer(d, 0, 0);
	vq_kick(d, 0);
	/* NEEDS_RESET (-2), a used entry (0: the device took it as valid) or a timeout (-1):
	 * the status tells them apart for the host. */
	(void)vq_wait(d, 0, &id, &len);
	status = vdev_status(d);
	vdev_reset(d);
	put_str("OK evil status=");
	put_hex(status);
	put_char('\n');
}
