/* ember test guest, user part: virtio-net commands (MAC, send one frame, receive one frame,
 * raw frames in hex both ways). */
#include "guest.h"
#include "user.h"
#include "virtio.h"

#define NET_ID 1
#define NET_F_MAC 5
#define HDR 12 /* virtio_net_hdr_v1 */
#define ETH_HDR 14
#define PAYLOAD_MAX 1500
#define NRX 8
#define QSIZE 16
#define BUF 2048
#define ETHERTYPE 0x88b5 /* IEEE local experimental: what the tests exchange */
#define RECV_CYCLES (1ull << 36)
#define FNV_OFFSET 0xcbf29ce484222325ULL
#define FNV_PRIME 0x100000001b3ULL

enum { RXQ, TXQ };

static struct vdev dev;
static int up;
static uint8_t mac[6];
static uint8_t rx[NRX][BUF] __attribute__((aligned(4096)));
static uint8_t tx[BUF] __attribute__((aligned(64)));
static uint64_t raw_len;   /* bytes of the raw frame `net hex` has gathered after the header */
static int8_t slot[QSIZE]; /* rx descriptor head -> buffer */

static void post_rx(int i)
{
	struct vbuf b = { .addr = (uint64_t)rx[i], .len = BUF, .write = 1 };

	slot[vq_post(&dev, RXQ, &b, 1) % QSIZE] = (int8_t)i;
}

static void put_byte_hex(uint8_t v)
{
	static const char digits[] = "0123456789abcdef";

	put_char(digits[v >> 4]);
	put_char(digits[v & 15]);
}

static uint64_t fnv(const uint8_t *p, uint64_t n)
{
	uint64_t h = FNV_OFFSET;

	for (uint64_t i = 0; i < n; i++)
		h = (h ^ p[i]) * FNV_PRIME;
	return h;
}

/* The first net device, set up with both queues and NRX receive buffers posted. */
static int net_up(void)
{
	volatile uint8_t *cfg;

	if (up && !(vdev_status(&dev) & VSTAT_NEEDS_RESET))
		return 0;
	up = 0;
	for (unsigned n = 0; n < VIRTIO_WINDOWS; n++) {
		if (vdev_probe(n) != NET_ID)
			continue;
		if (vdev_init(&dev, n, 1ull << NET_F_MAC) || vdev_queue(&dev, RXQ, QSIZE) ||
			vdev_queue(&dev, TXQ, QSIZE)) {
			put_str("ERR net status=");
			put_hex(vdev_status(&dev));
			put_char('\n');
			return -1;
		}
		cfg = (volatile uint8_t *)(dev.base + 0x100);
		for (int i = 0; i < 6; i++)
			mac[i] = (dev.features & (1ull << NET_F_MAC)) ? cfg[i]
								      : (uint8_t)(i ? 0 : 2);
		vdev_driver_ok(&dev);
		for (int i = 0; i < QSIZE; i++)
			slot[i] = -1;
		for (int i = 0; i < NRX; i++)
			post_rx(i);
		vq_kick(&dev, RXQ);
		up = 1;
		return 0;
	}
	put_str("ERR no net device\n");
	return -1;
}

static void cmd_mac(void)
{
	put_str("OK net mac=");
	for (int i = 0; i < 6; i++) {
		if (i)
			put_char(':');
		put_byte_hex(mac[i]);
	}
	put_str((dev.features & (1ull << NET_F_MAC)) ? "\n" : " (none offered)\n");
}

/* Sends tx[0 .. HDR + len) and waits for the device to take it; -1 after "ERR net <what>
 * timeout". */
static int tx_one(uint64_t len, const char *what)
{
	struct vbuf b = { .addr = (uint64_t)tx, .len = (uint32_t)(HDR + len) };
	uint32_t id, used;

	vq_post(&dev, TXQ, &b, 1);
	vq_kick(&dev, TXQ);
	if (!vq_wait(&dev, TXQ, &id, &used))
		return 0;
	put_str("ERR net ");
	put_str(what);
	put_str(" timeout\n");
	up = 0;
	return -1;
}

/* Broadcast frame from our MAC, EtherType 0x88b5, payload byte i = seed + 131 * i. */
static void cmd_send(const struct args *a)
{
	uint64_t len, seed;
	uint8_t *f = tx + HDR;

	if (a->n != 4 || parse_u64(a->v[2], &len) || parse_u64(a->v[3], &seed) || len == 0 ||
		len > PAYLOAD_MAX) {
		put_str("ERR usage: net send <len 1..1500> <seed>\n");
		return;
	}
	for (int i = 0; i < HDR; i++)
		tx[i] = 0;
	for (int i = 0; i < 6; i++) {
		f[i] = 0xff;
		f[6 + i] = mac[i];
	}
	f[12] = ETHERTYPE >> 8;
	f[13] = ETHERTYPE & 0xff;
	for (uint64_t i = 0; i < len; i++)
		f[ETH_HDR + i] = (uint8_t)(seed + 131 * i);
	if (tx_one(ETH_HDR + len, "send"))
		return;
	put_str("OK net send len=");
	put_dec(ETH_HDR + len);
	put_str(" sum=");
	put_hex16(fnv(f, ETH_HDR + len));
	put_char('\n');
}

/* Waits up to `cycles` TSC cycles (measured from t0) for the next received buffer: its
 * index in rx[] (taken off its slot; give it back with post_rx) and its length with the
 * virtio header, or -1 after "ERR net <what> timeout|bad used entry". */
static int rx_one(uint64_t t0, uint64_t cycles, const char *what, uint32_t *len)
{
	uint32_t id;
	int i;

	while (dev.vq[RXQ].used[1] == dev.vq[RXQ].last_used) {
		if (rdtsc() - t0 > cycles) {
			put_str("ERR net ");
			put_str(what);
			put_str(" timeout\n");
			return -1;
		}
		wait_turn();
	}
	if (vq_wait(&dev, RXQ, &id, len) || id >= QSIZE || slot[id] < 0 || *len < HDR ||
		*len > BUF) {
		put_str("ERR net ");
		put_str(what);
		put_str(" bad used entry\n");
		up = 0;
		return -1;
	}
	i = slot[id];
	slot[id] = -1;
	return i;
}

/* Waits for the next frame with our EtherType (others are dropped); prints its length
 * and FNV-1a 64 over the Ethernet frame (no virtio header). */
static void cmd_recv(void)
{
	uint64_t t0 = rdtsc();

	for (;;) {
		uint32_t len;
		const uint8_t *f;
		int i = rx_one(t0, RECV_CYCLES, "recv", &len);

		if (i < 0)
			return;
		f = rx[i] + HDR;
		if (len < HDR + ETH_HDR || rx[i][10] != 1 || f[12] != (ETHERTYPE >> 8) ||
			f[13] != (ETHERTYPE & 0xff)) {
			post_rx(i);
			vq_kick(&dev, RXQ);
			continue;
		}
		put_str("OK net recv len=");
		put_dec(len - HDR);
		put_str(" sum=");
		put_hex16(fnv(f, len - HDR));
		put_char('\n');
		post_rx(i);
		vq_kick(&dev, RXQ);
		return;
	}
}

static int hex_digit(char c)
{
	unsigned v = (unsigned)(unsigned char)c - '0';

	if (v < 10)
		return (int)v;
	v = ((unsigned)(unsigned char)c | 0x20) - 'a'; /* either case */
	return v < 6 ? (int)v + 10 : -1;
}

/* Appends the bytes of a hex word to the raw frame (lines are short: a frame takes several). */
static void cmd_hex(const struct args *a)
{
	const char *h = a->v[2];
	uint64_t n = 0;

	if (a->n != 3) {
		put_str("ERR usage: net hex <hex bytes>\n");
		return;
	}
	while (h[n])
		n++;
	if (n % 2 || raw_len + n / 2 > BUF - HDR) {
		put_str("ERR net hex: odd digit count or frame too long\n");
		return;
	}
	for (uint64_t i = 0; i < n; i += 2) {
		int hi = hex_digit(h[i]), lo = hex_digit(h[i + 1]);
		if (hi < 0 || lo < 0) {
			put_str("ERR net hex: not a hex digit\n");
			return;
		}
		tx[HDR + raw_len++] = (uint8_t)(hi << 4 | lo);
	}
	put_str("OK net hex len=");
	put_dec(raw_len);
	put_char('\n');
}

/* Sends the raw frame `net hex` gathered, as it is, and starts a new one. */
static void cmd_xmit(void)
{
	uint64_t len = raw_len;

	if (len == 0) {
		put_str("ERR net xmit: no frame (net hex first)\n");
		return;
	}
	for (int i = 0; i < HDR; i++)
		tx[i] = 0;
	raw_len = 0;
	if (tx_one(len, "xmit"))
		return;
	put_str("OK net xmit len=");
	put_dec(len);
	put_char('\n');
}

/* Prints the next frame of any EtherType in hex, waiting up to `cycles` TSC cycles. */
static void cmd_dump(const struct args *a)
{
	uint64_t cycles = RECV_CYCLES;
	const uint8_t *f;
	uint32_t len;
	int i;

	if (a->n > 3 || (a->n == 3 && parse_u64(a->v[2], &cycles))) {
		put_str("ERR usage: net dump [cycles]\n");
		return;
	}
	i = rx_one(rdtsc(), cycles, "dump", &len);
	if (i < 0)
		return;
	f = rx[i] + HDR;
	put_str("OK net frame len=");
	put_dec(len - HDR);
	put_char(' ');
	for (uint32_t k = 0; k < len - HDR; k++)
		put_byte_hex(f[k]);
	put_char('\n');
	post_rx(i);
	vq_kick(&dev, RXQ);
}

void cmd_net(const struct args *a)
{
	if (a->n < 2) {
		put_str("ERR usage: net mac|send <len> <seed>|recv|hex <hex>|xmit|dump [cycles]\n");
		return;
	}
	if (net_up())
		return;
	if (str_eq(a->v[1], "mac") && a->n == 2)
		cmd_mac();
	else if (str_eq(a->v[1], "send"))
		cmd_send(a);
	else if (str_eq(a->v[1], "recv") && a->n == 2)
		cmd_recv();
	else if (str_eq(a->v[1], "hex"))
		cmd_hex(a);
	else if (str_eq(a->v[1], "xmit") && a->n == 2)
		cmd_xmit();
	else if (str_eq(a->v[1], "dump"))
		cmd_dump(a);
	else
		put_str("ERR usage: net mac|send <len> <seed>|recv|hex <hex>|xmit|dump [cycles]\n");
}
