/* libFuzzer harness for virtio-vsock: packets from the guest through the device model and
 * the Unix-socket host side, with host clients and a guest-connect listener around it.
 *
 * Build and run (from the repository root), or `make fuzz`:
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -std=c11 -D_GNU_SOURCE -Iinclude \
 *     -Itests/unit tests/fuzz/fuzz_vsock.c src/devices/vsock/vsock.c \
 *     src/devices/vsock/vsock_proto.c src/devices/vsock/vsock_uds.c src/devices/vsock/vsock_packets.c \
 *     src/devices/virtio/queue.c \
 *     src/kvm/guest_mem.c src/util/log.c src/snapshot/state_file.c \
 *     src/snapshot/state_file_read.c src/util/crc64.c tests/unit/netvsock_rig.c -lev \
 *     -o fuzz_vsock
 *   ./fuzz_vsock -max_total_time=60 tests/fuzz/corpus/vsock
 *
 * The input is a list of 4-byte records plus payloads: ctl, a, b, len. ctl & 3 picks the
 * action: 0 a packet built from the fields (mostly well-formed, so the state machine is
 * reached: ops, ports, credit, shutdown flags, lying lengths), 1 an RX buffer of a * 4
 * bytes, 2 a raw chain of `len` input bytes (any header at all), 3 a host-side action
 * (a client sends "CONNECT <port>\n", writes bytes, or hangs up). After each record the
 * queues are kicked and the loop turned. Used lengths must fit their buffers and ember's
 * buffering stays within its credit; ASan/UBSan see the rest. */
#include "ember/vsock.h"

#include <errno.h>
#include <ev.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "ember/config.h"
#include "ember/log.h"
#include "ember/virtio.h"
#include "netvsock_rig.h"

#include "fuzz.h"

enum { RXQ, TXQ, EVQ };
#define CID 3
#define MAX_CLIENTS 4
#define GUEST_PORT 1024

static struct ev_loop *loop;
static struct virtio_dev *rig;
static struct vsock_dev *dev;
static char path[128], sub[160];
static int listener = -1;
static int clients[MAX_CLIENTS] = { -1, -1, -1, -1 };
static uint32_t rx_len[NVR_QSIZE];

static void cleanup(void)
{
	vsock_ops.destroy(dev);
	unlink(sub);
}

static void init(void)
{
	struct vsock_config cfg = { .enabled = true, .guest_cid = CID };
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	char err[256];

	log_set_level(LOG_ERROR);
	snprintf(path, sizeof(path), "/tmp/ember-fuzz-vsock-%d.sock", (int)getpid());
	snprintf(sub, sizeof(sub), "%s_%u", path, GUEST_PORT);
	unlink(path);
	unlink(sub);
	loop = ev_loop_new(EVFLAG_AUTO);
	rig = nvr_new(3);
	cfg.uds_path = path;
	dev = vsock_dev_new(loop, &cfg, err, sizeof(err));
	CHECK(dev);
	vsock_ops.attach(dev, rig);
	listener = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0);
	strcpy(sa.sun_path, sub);
	CHECK(bind(listener, (struct sockaddr *)&sa, sizeof(sa)) == 0);
	CHECK(listen(listener, 64) == 0);
	atexit(cleanup);
}

static void host_action(uint8_t a, uint8_t b, const uint8_t *p, size_t n)
{
	int *c = &clients[a % MAX_CLIENTS];
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	char line[48];

	switch (b & 3) {
	case 0: /* connect and ask for a guest port */
		if (*c >= 0)
			close(*c);
		*c = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0);
		strcpy(sa.sun_path, path);
		if (connect(*c, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
			int len = snprintf(line, sizeof(line), "CONNECT %u\n", (unsigned)(b >> 2));
			if (send(*c, line, (size_t)len, MSG_NOSIGNAL) < 0)
				break;
		}
		break;
	case 1: /* raw bytes, maybe a bad line */
		if (*c >= 0 && send(*c, p, n, MSG_NOSIGNAL | MSG_DONTWAIT) < 0)
			break;
		break;
	case 2:
		if (*c >= 0)
			close(*c);
		*c = -1;
		break;
	default: { /* the guest-connect listener takes its calls, and reads a little */
		int fd = accept(listener, NULL, NULL);
		char buf[512];

		if (fd >= 0) {
			if (recv(fd, buf, sizeof(buf), MSG_DONTWAIT) < 0)
				buf[0] = 0;
			if (b & 4)
				close(fd);
			else if (*c < 0)
				*c = fd;
			else
				close(fd);
		}
	}
	}
}

static void tx_packet(uint8_t ctl, uint8_t a, uint8_t b, const uint8_t *p, size_t n)
{
	uint8_t pkt[VSOCK_HDR_SIZE + 256];
	struct vsock_hdr h = {
		.src_cid = (ctl & 0x80) ? a : CID,
		.dst_cid = (ctl & 0x40) ? 7 : VSOCK_HOST_CID,
		.src_port = a & 7,
		.dst_port = (b & 1) ? GUEST_PORT : VSOCK_LOCAL_PORT_FIRST + ((b >> 1) & 3),
		.len = (ctl & 0x20) ? 0xffff : (uint32_t)n,
		.type = VSOCK_TYPE_STREAM,
		.op = (uint16_t)((ctl >> 2) & 7),
		.flags = (uint32_t)(b >> 4) & 3,
		.buf_alloc = (uint32_t)a << ((b >> 6) * 6),
		.fwd_cnt = (uint32_t)b << 4,
	};

	vsock_hdr_encode(pkt, &h);
	memcpy(pkt + VSOCK_HDR_SIZE, p, n);
	nvr_tx(rig, TXQ, pkt, (uint32_t)(VSOCK_HDR_SIZE + n));
}

static void drain_used(void)
{
	uint32_t id, len;

	while (nvr_used(rig, RXQ, &id, &len)) {
		CHECK(id < NVR_QSIZE && len <= rx_len[id] && len >= VSOCK_HDR_SIZE);
		/* the guest consumed it: a real driver would now send credit updates */
	}
	while (nvr_used(rig, TXQ, &id, &len))
		CHECK(len == 0);
	while (nvr_used(rig, EVQ, &id, &len))
		CHECK(len == 4);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t i = 0;

	if (!loop)
		init();
	nvr_reset(rig, 3);
	memset(rx_len, 0, sizeof(rx_len));
	CHECK(vsock_ops.activate(dev, 0) == 0);
	while (i + 4 <= size) {
		uint8_t ctl = data[i], a = data[i + 1], b = data[i + 2];
		size_t n = data[i + 3];

		i += 4;
		if (n > size - i)
			n = size - i;
		switch (ctl & 3) {
		case 0:
			tx_packet(ctl, a, b, data + i, n);
			i += n;
			break;
		case 1: {
			uint16_t head = nvr_rx(rig, RXQ, (uint32_t)a * 4 + (b & 3) * 4096, NULL);
			rx_len[head] = (uint32_t)a * 4 + (b & 3) * 4096;
			break;
		}
		case 2:
			nvr_tx(rig, TXQ, data + i, (uint32_t)n);
			i += n;
			break;
		default:
			host_action(a, b, data + i, n);
			i += n;
			break;
		}
		if ((uint16_t)(rig->avail_idx[RXQ] - rig->used_seen[RXQ]) > NVR_QSIZE - 8 ||
			(uint16_t)(rig->avail_idx[TXQ] - rig->used_seen[TXQ]) > NVR_QSIZE - 8)
			break; /* the rig's rings are full: a driver would wait */
		vsock_ops.queue_notify(dev, TXQ);
		vsock_ops.queue_notify(dev, RXQ);
		vsock_ops.queue_notify(dev, EVQ);
		ev_run(loop, EVRUN_NOWAIT);
		drain_used();
	}
	/* Next input starts clean: connections dropped, clients closed, listener drained. */
	vsock_ops.reset(dev);
	for (int c = 0; c < MAX_CLIENTS; c++) {
		if (clients[c] >= 0)
			close(clients[c]);
		clients[c] = -1;
	}
	for (int fd; (fd = accept(listener, NULL, NULL)) >= 0;)
		close(fd);
	ev_run(loop, EVRUN_NOWAIT);
	return 0;
}
