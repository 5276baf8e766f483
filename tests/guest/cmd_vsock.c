/* ember test guest, user part: virtio-vsock commands (echo a host connection, send a line). */
#include "guest.h"
#include "user.h"
#include "virtio.h"

#define VSOCK_ID 19
#define HOST_CID 2
#define HDR 44
#define NRX 8
#define QSIZE 16
#define RXBUF (HDR + 4096)
#define TX_PAYLOAD 4096
#define BUF_ALLOC 65536u /* what this guest offers: the size of its echo buffer */
#define WAIT_CYCLES (1ull << 36)
#define EVENT_CYCLES (1ull << 31)
#define FNV_OFFSET 0xcbf29ce484222325ULL
#define FNV_PRIME 0x100000001b3ULL
#define LOCAL_PORT_FIRST 50000

enum { RXQ, TXQ, EVQ };
enum {
	OP_REQUEST = 1,
	OP_RESPONSE,
	OP_RST,
	OP_SHUTDOWN,
	OP_RW,
	OP_CREDIT_UPDATE,
	OP_CREDIT_REQUEST
};

struct hdr {
	uint64_t src_cid, dst_cid;
	uint32_t src_port, dst_port, len;
	uint16_t type, op;
	uint32_t flags, buf_alloc, fwd_cnt;
} __attribute__((packed));

/* One connection at a time. */
struct conn {
	uint32_t port, peer;
	uint32_t peer_buf, peer_fwd, tx_cnt; /* the host's credit */
	uint32_t fwd_cnt;                    /* bytes we consumed */
	uint64_t bytes, sum;
};

static struct vdev dev;
static int up;
static uint64_t cid;
static uint32_t next_port = LOCAL_PORT_FIRST;
static uint8_t rx[NRX][RXBUF] __attribute__((aligned(4096)));
static uint8_t tx[HDR + TX_PAYLOAD] __attribute__((aligned(64)));
static uint8_t ev[4] __attribute__((aligned(8)));
static uint8_t pkt[RXBUF];      /* the packet recv() took */
static uint8_t pend[BUF_ALLOC]; /* received, not yet echoed (a ring) */
static uint32_t pend_head, pend_len;
static int8_t slot[QSIZE];

static void post_rx(int i)
{
	struct vbuf b = { .addr = (uint64_t)rx[i], .len = RXBUF, .write = 1 };

	slot[vq_post(&dev, RXQ, &b, 1) % QSIZE] = (int8_t)i;
}

static int vsock_up(void)
{
	if (up && !(vdev_status(&dev) & VSTAT_NEEDS_RESET))
		return 0;
	up = 0;
	for (unsigned n = 0; n < VIRTIO_WINDOWS; n++) {
		struct vbuf e = { .addr = (uint64_t)ev, .len = sizeof(ev), .write = 1 };
		volatile uint32_t *cfg;

		if (vdev_probe(n) != VSOCK_ID)
			continue;
		if (vdev_init(&dev, n, 0) || vdev_queue(&dev, RXQ, QSIZE) ||
			vdev_queue(&dev, TXQ, QSIZE) || vdev_queue(&dev, EVQ, 2)) {
			put_str("ERR vsock status=");
			put_hex(vdev_status(&dev));
			put_char('\n');
			return -1;
		}
		cfg = (volatile uint32_t *)(dev.base + 0x100);
		cid = cfg[0] | (uint64_t)cfg[1] << 32;
		vdev_driver_ok(&dev);
		for (int i = 0; i < QSIZE; i++)
			slot[i] = -1;
		for (int i = 0; i < NRX; i++)
			post_rx(i);
		vq_kick(&dev, RXQ);
		vq_post(&dev, EVQ, &e, 1);
		vq_kick(&dev, EVQ);
		up = 1;
		return 0;
	}
	put_str("ERR no vsock device\n");
	return -1;
}

static uint32_t credit(const struct conn *c)
{
	uint32_t in_flight = c->tx_cnt - c->peer_fwd;

	return in_flight > c->peer_buf ? 0 : c->peer_buf - in_flight;
}

static int send(struct conn *c, uint16_t op, uint32_t flags, const uint8_t *data, uint32_t len)
{
	struct hdr *h = (struct hdr *)tx;
	struct vbuf b = { .addr = (uint64_t)tx, .len = HDR + len };
	uint32_t id, used;

	*h = (struct hdr){ .src_cid = cid,
		.dst_cid = HOST_CID,
		.src_port = c->port,
		.dst_port = c->peer,
		.len = len,
		.type = 1,
		.op = op,
		.flags = flags,
		.buf_alloc = BUF_ALLOC,
		.fwd_cnt = c->fwd_cnt };
	for (uint32_t i = 0; i < len; i++)
		tx[HDR + i] = data[i];
	vq_post(&dev, TXQ, &b, 1);
	vq_kick(&dev, TXQ);
	if (op == OP_RW)
		c->tx_cnt += len;
	return vq_wait(&dev, TXQ, &id, &used);
}

/* The next packet for port `port` (others are answered RST or dropped) into pkt:
 * returns its header, or 0 on timeout. */
static const struct hdr *recv(uint32_t port)
{
	uint64_t t0 = rdtsc();

	for (;;) {
		const struct hdr *h = (const struct hdr *)pkt;
		uint32_t id, len;
		int i;

		if (dev.vq[RXQ].used[1] == dev.vq[RXQ].last_used) {
			if (rdtsc() - t0 > WAIT_CYCLES)
				return 0;
			wait_turn();
			continue;
		}
		if (vq_wait(&dev, RXQ, &id, &len) || id >= QSIZE || slot[id] < 0)
			return 0;
		i = slot[id];
		slot[id] = -1;
		for (uint32_t k = 0; k < len && k < RXBUF; k++)
			pkt[k] = rx[i][k];
		post_rx(i);
		vq_kick(&dev, RXQ);
		if (len >= HDR && h->dst_port == port && h->dst_cid == cid && h->len <= len - HDR)
			return h;
	}
}

static void take_credit(struct conn *c, const struct hdr *h)
{
	c->peer_buf = h->buf_alloc;
	c->peer_fwd = h->fwd_cnt;
}

/* Echo what is pending as far as the host's credit goes. */
static int flush(struct conn *c)
{
	while (pend_len) {
		uint32_t n = pend_len, cr = credit(c);
		static uint8_t chunk[TX_PAYLOAD];

		if (n > TX_PAYLOAD)
			n = TX_PAYLOAD;
		if (n > cr)
			n = cr;
		if (!n)
			return 0;
		for (uint32_t k = 0; k < n; k++)
			chunk[k] = pend[(pend_head + k) % BUF_ALLOC];
		pend_head = (pend_head + n) % BUF_ALLOC;
		pend_len -= n;
		c->fwd_cnt += n;
		if (send(c, OP_RW, 0, chunk, n))
			return -1;
	}
	return 0;
}

static void finish(const char *what, const struct conn *c)
{
	put_str("OK vsock ");
	put_str(what);
	put_str(" port=");
	put_dec(c->port == 0 ? c->peer : c->port);
	put_str(" bytes=");
	put_dec(c->bytes);
	put_str(" sum=");
	put_hex16(c->sum);
	put_char('\n');
}

/* Accept one host connection on `port`, echo its bytes until the host shuts down. */
static void cmd_echo(uint32_t port)
{
	struct conn c = { .port = port, .sum = FNV_OFFSET };
	const struct hdr *h;
	int connected = 0, host_done = 0;

	pend_head = pend_len = 0;
	while ((h = recv(port))) {
		if (!connected && h->op != OP_REQUEST)
			continue;
		if (connected && h->src_port != c.peer)
			continue;
		take_credit(&c, h);
		switch (h->op) {
		case OP_REQUEST:
			c.peer = h->src_port;
			connected = 1;
			if (send(&c, OP_RESPONSE, 0, 0, 0))
				goto err;
			break;
		case OP_RW:
			if (h->len > BUF_ALLOC - pend_len)
				goto err; /* the host broke our credit */
			for (uint32_t k = 0; k < h->len; k++) {
				uint8_t b = pkt[HDR + k];

				pend[(pend_head + pend_len + k) % BUF_ALLOC] = b;
				c.sum = (c.sum ^ b) * FNV_PRIME;
			}
			pend_len += h->len;
			c.bytes += h->len;
			break;
		case OP_SHUTDOWN:
			host_done = 1;
			break;
		case OP_CREDIT_REQUEST:
			if (send(&c, OP_CREDIT_UPDATE, 0, 0, 0))
				goto err;
			break;
		case OP_RST:
			finish("echo", &c);
			return;
		default:
			break;
		}
		if (flush(&c))
			goto err;
		if (host_done && !pend_len) {
			/* Both ways done: wait for the host's RST to our SHUTDOWN. */
			if (send(&c, OP_SHUTDOWN, 3, 0, 0))
				goto err;
			host_done = 0;
		}
	}
err:
	put_str("ERR vsock echo port=");
	put_dec(port);
	put_str(connected ? " broken\n" : " timeout\n");
}

/* Connect to host port `port`, send `word` and a newline, close. */
static void cmd_send(uint32_t port, const char *word)
{
	struct conn c = { .port = next_port++, .peer = port, .sum = FNV_OFFSET };
	const struct hdr *h;
	uint8_t line[128];
	uint32_t n = 0;

	while (word[n] && n < sizeof(line) - 1) {
		line[n] = (uint8_t)word[n];
		n++;
	}
	line[n++] = '\n';
	if (send(&c, OP_REQUEST, 0, 0, 0) || !(h = recv(c.port)) || h->src_port != port)
		goto err;
	if (h->op != OP_RESPONSE) {
		put_str("ERR vsock send port=");
		put_dec(port);
		put_str(" refused\n");
		return;
	}
	take_credit(&c, h);
	if (credit(&c) < n || send(&c, OP_RW, 0, line, n) || send(&c, OP_SHUTDOWN, 3, 0, 0))
		goto err;
	for (uint32_t k = 0; k < n; k++)
		c.sum = (c.sum ^ line[k]) * FNV_PRIME;
	c.bytes = n;
	while ((h = recv(c.port)) && h->op != OP_RST)
		;
	if (!h)
		goto err;
	c.port = 0;
	finish("send", &c);
	return;
err:
	put_str("ERR vsock send port=");
	put_dec(port);
	put_str(" failed\n");
}

/* An event on the event queue (a transport reset after a restore), waited for ~1 s. */
static void cmd_event(void)
{
	struct vbuf e = { .addr = (uint64_t)ev, .len = sizeof(ev), .write = 1 };
	uint64_t t0 = rdtsc();
	uint32_t id, len;

	while (dev.vq[EVQ].used[1] == dev.vq[EVQ].last_used) {
		if (rdtsc() - t0 > EVENT_CYCLES) {
			put_str("OK vsock event=none\n");
			return;
		}
		wait_turn();
	}
	if (vq_wait(&dev, EVQ, &id, &len) || len != sizeof(ev)) {
		put_str("ERR vsock event bad used entry\n");
		return;
	}
	put_str("OK vsock event=");
	put_dec(ev[0] | (uint32_t)ev[1] << 8 | (uint32_t)ev[2] << 16 | (uint32_t)ev[3] << 24);
	put_char('\n');
	vq_post(&dev, EVQ, &e, 1);
	vq_kick(&dev, EVQ);
}

void cmd_vsock(const struct args *a)
{
	uint64_t port = 0;

	if (a->n < 2 || vsock_up())
		goto usage;
	if (str_eq(a->v[1], "cid") && a->n == 2) {
		put_str("OK vsock cid=");
		put_dec(cid);
		put_char('\n');
		return;
	}
	if (str_eq(a->v[1], "event") && a->n == 2) {
		cmd_event();
		return;
	}
	if (a->n < 3 || parse_u64(a->v[2], &port) || port > 0xffffffffull)
		goto usage;
	if (str_eq(a->v[1], "echo") && a->n == 3) {
		cmd_echo((uint32_t)port);
		return;
	}
	if (str_eq(a->v[1], "send") && a->n == 4) {
		cmd_send((uint32_t)port, a->v[3]);
		return;
	}
usage:
	if (a->n >= 2 && !up)
		return; /* vsock_up said why */
	put_str("ERR usage: vsock cid|event|echo <port>|send <port> <word>\n");
}
