/* ember test guest, user part: virtio-net commands (MAC, send one frame, receive one frame). */
#include "guest.h"
#include "user.h"
#include "virtio.h"

#define NET_ID 1
#define NET_F_MAC 5
#define HDR 12              /* virtio_net_hdr_v1 */
#define ETH_HDR 14
#define PAYLOAD_MAX 1500
#define NRX 8
#define QSIZE 16
#define BUF 2048
#define ETHERTYPE 0x88b5    /* IEEE local experimental: what the tests exchange */
#define RECV_CYCLES (1ull << 36)
#define FNV_OFFSET 0xcbf29ce484222325ULL
#define FNV_PRIME 0x100000001b3ULL

enum { RXQ, TXQ };

static struct vdev dev;
static int up;
static uint8_t mac[6];
static uint8_t rx[NRX][BUF] __attribute__((aligned(4096)));
static uint8_t tx[BUF] __attribute__((aligned(64)));
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
			mac[i] = (dev.features & (1ull << NET_F_MAC)) ? cfg[i] : (uint8_t)(i ? 0 : 2);
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

/* Broadcast frame from our MAC, EtherType 0x88b5, payload byte i = seed + 131 * i. */
static void cmd_send(const struct args *a)
{
	uint64_t len, seed;
	uint32_t id, used;
	uint8_t *f = tx + HDR;
	struct vbuf b;

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
	b = (struct vbuf){ .addr = (uint64_t)tx, .len = (uint32_t)(HDR + ETH_HDR + len) };
	vq_post(&dev, TXQ, &b, 1);
	vq_kick(&dev, TXQ);
	if (vq_wait(&dev, TXQ, &id, &used)) {
		put_str("ERR net send timeout\n");
		up = 0;
		return;
	}
	put_str("OK net send len=");
	put_dec(ETH_HDR + len);
	put_str(" sum=");
	put_hex16(fnv(f, ETH_HDR + len));
	put_char('\n');
}

/* Waits for the next frame with our EtherType (others are dropped); prints its length
 * and FNV-1a 64 over the Ethernet frame (no virtio header). */
static void cmd_recv(void)
{
	uint64_t t0 = rdtsc();

	for (;;) {
		uint32_t id, len;
		const uint8_t *f;
		int i;

		if (dev.vq[RXQ].used[1] == dev.vq[RXQ].last_used) {
			if (rdtsc() - t0 > RECV_CYCLES) {
				put_str("ERR net recv timeout\n");
				return;
			}
			__asm__ volatile("pause");
			continue;
		}
		if (vq_wait(&dev, RXQ, &id, &len) || id >= QSIZE || slot[id] < 0) {
			put_str("ERR net recv bad used entry\n");
			up = 0;
			return;
		}
		i = slot[id];
		slot[id] = -1;
		f = rx[i] + HDR;
		if (len < HDR + ETH_HDR || len > BUF || rx[i][10] != 1 ||
		    f[12] != (ETHERTYPE >> 8) || f[13] != (ETHERTYPE & 0xff)) {
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

void cmd_net(const struct args *a)
{
	if (a->n < 2) {
		put_str("ERR usage: net mac|send <len> <seed>|recv\n");
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
	else
		put_str("ERR usage: net mac|send <len> <seed>|recv\n");
}
