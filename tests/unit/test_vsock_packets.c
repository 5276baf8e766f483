/* Unit tests for virtio-vsock: header, credit, CONNECT line, Unix-socket host side, model. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>
#include <ev.h>

#include "ember/config.h"
#include "ember/log.h"
#include "ember/snapshot_file.h"
#include "ember/virtio.h"
#include "ember/vsock.h"
#include "netvsock_rig.h"

#define CID 3

/* ---- header ---- */

static void test_vsock_hdr_round_trip_is_little_endian(void **state)
{
	struct vsock_hdr h, back;
	uint8_t raw[VSOCK_HDR_SIZE];

	(void)state;
	memset(&h, 0, sizeof(h)); /* padding too: the structs are compared whole */
	memset(&back, 0x55, sizeof(back));
	h.src_cid = 0x0102030405060708ull;
	h.dst_cid = 2;
	h.src_port = 0x11223344;
	h.dst_port = 5;
	h.len = 7;
	h.type = 1;
	h.op = 5;
	h.flags = 3;
	h.buf_alloc = 0x10000;
	h.fwd_cnt = 0xdeadbeef;
	vsock_hdr_encode(raw, &h);
	assert_int_equal(raw[0], 0x08);
	assert_int_equal(raw[7], 0x01);
	assert_int_equal(raw[8], 2);
	assert_int_equal(raw[16], 0x44);
	assert_int_equal(raw[24], 7);
	assert_int_equal(raw[28], 1);
	assert_int_equal(raw[30], 5);
	assert_int_equal(raw[40], 0xef);
	assert_int_equal(raw[43], 0xde);
	vsock_hdr_decode(&back, raw);
	assert_memory_equal(&back, &h, offsetof(struct vsock_hdr, fwd_cnt) + 4);
}

static struct vsock_hdr guest_hdr(uint16_t op, uint32_t len)
{
	struct vsock_hdr h = { .src_cid = CID,
		.dst_cid = VSOCK_HOST_CID,
		.src_port = 1000,
		.dst_port = 2000,
		.len = len,
		.type = VSOCK_TYPE_STREAM,
		.op = op,
		.buf_alloc = 65536 };
	return h;
}

static void test_vsock_hdr_check_refuses_bad_packets(void **state)
{
	struct vsock_hdr h;
	const char *why = NULL;

	(void)state;
	h = guest_hdr(VSOCK_OP_RW, 10);
	assert_int_equal(vsock_hdr_check(&h, CID, 10, &why), 0);
	assert_int_equal(vsock_hdr_check(&h, CID, 9, &why), -EINVAL);
	assert_string_equal(why, "payload longer than the chain");
	h.src_cid = 4;
	assert_int_equal(vsock_hdr_check(&h, CID, 10, &why), -EINVAL);
	assert_string_equal(why, "not from the guest's cid");
	h = guest_hdr(VSOCK_OP_RW, 10);
	h.type = 2;
	assert_int_equal(vsock_hdr_check(&h, CID, 10, &why), -EINVAL);
	h = guest_hdr(0, 0);
	assert_int_equal(vsock_hdr_check(&h, CID, 0, &why), -EINVAL);
	h = guest_hdr(8, 0);
	assert_int_equal(vsock_hdr_check(&h, CID, 0, &why), -EINVAL);
	assert_string_equal(why, "unknown op");
	h = guest_hdr(VSOCK_OP_RW, VSOCK_MAX_PAYLOAD + 1);
	assert_int_equal(vsock_hdr_check(&h, CID, 1u << 20, &why), -EINVAL);
	h = guest_hdr(VSOCK_OP_REQUEST, 4);
	assert_int_equal(vsock_hdr_check(&h, CID, 4, &why), -EINVAL);
	assert_string_equal(why, "payload on a control packet");
	h = guest_hdr(VSOCK_OP_SHUTDOWN, 0);
	h.flags = 4;
	assert_int_equal(vsock_hdr_check(&h, CID, 0, &why), -EINVAL);
	h.flags = 3;
	assert_int_equal(vsock_hdr_check(&h, CID, 0, &why), 0);
	/* another destination cid is valid here: the host side answers RST */
	h = guest_hdr(VSOCK_OP_REQUEST, 0);
	h.dst_cid = 7;
	assert_int_equal(vsock_hdr_check(&h, CID, 0, &why), 0);
}

/* ---- credit ---- */

static void test_vsock_credit_peer_free_follows_fwd_cnt(void **state)
{
	struct vsock_credit c;

	(void)state;
	vsock_credit_init(&c, VSOCK_CONN_BUF);
	assert_int_equal(vsock_credit_peer_free(&c), 0); /* peer told nothing yet */
	vsock_credit_peer(&c, 1000, 0);
	assert_int_equal(vsock_credit_peer_free(&c), 1000);
	c.tx_cnt = 600;
	assert_int_equal(vsock_credit_peer_free(&c), 400);
	vsock_credit_peer(&c, 1000, 500);
	assert_int_equal(vsock_credit_peer_free(&c), 900);
	/* a peer that forwarded more than it got, or shrank below what is in flight */
	vsock_credit_peer(&c, 1000, 700);
	assert_int_equal(vsock_credit_peer_free(&c), 0);
	vsock_credit_peer(&c, 50, 500);
	assert_int_equal(vsock_credit_peer_free(&c), 0);
}

static void test_vsock_credit_wraps_at_2_32(void **state)
{
	struct vsock_credit c;

	(void)state;
	vsock_credit_init(&c, 1000);
	c.tx_cnt = 100; /* wrapped: 0xffffff00 + 0x164 */
	vsock_credit_peer(&c, 1000, 0xffffff00u);
	assert_int_equal(vsock_credit_peer_free(&c), 1000 - 0x164);
	c.rx_cnt = 0xfffffff0u;
	c.fwd_cnt = 0xfffffff0u;
	assert_int_equal(vsock_credit_rx(&c, 1000), 0);
	assert_int_equal(c.rx_cnt, 1000 - 0x10);
	assert_int_equal(vsock_credit_rx_pending(&c), 1000);
	assert_int_equal(vsock_credit_rx(&c, 1), -ENOSPC);
}

static void test_vsock_credit_rx_refuses_overrun(void **state)
{
	struct vsock_credit c;

	(void)state;
	vsock_credit_init(&c, 100);
	assert_int_equal(vsock_credit_rx(&c, 60), 0);
	assert_int_equal(vsock_credit_rx(&c, 41), -ENOSPC);
	assert_int_equal(c.rx_cnt, 60);
	assert_int_equal(vsock_credit_rx(&c, 40), 0);
	c.fwd_cnt = 30;
	assert_int_equal(vsock_credit_rx(&c, 30), 0);
	assert_int_equal(vsock_credit_rx(&c, 1), -ENOSPC);
}

static void test_vsock_credit_update_due_after_a_quarter(void **state)
{
	struct vsock_credit c;

	(void)state;
	vsock_credit_init(&c, 1000);
	assert_false(vsock_credit_update_due(&c));
	c.rx_cnt = 600;
	c.fwd_cnt = 249;
	assert_false(vsock_credit_update_due(&c));
	c.fwd_cnt = 250;
	assert_true(vsock_credit_update_due(&c));
	c.fwd_cnt_sent = 250;
	assert_false(vsock_credit_update_due(&c));
}

/* ---- CONNECT line ---- */

static int parse(const char *s, uint32_t *port)
{
	return vsock_parse_connect(s, strlen(s), port);
}

static void test_vsock_connect_line_valid(void **state)
{
	uint32_t port = 0;

	(void)state;
	assert_int_equal(parse("CONNECT 52\n", &port), 11);
	assert_int_equal(port, 52);
	assert_int_equal(parse("CONNECT 4294967295\n", &port), 19);
	assert_int_equal(port, 4294967295u);
	assert_int_equal(parse("CONNECT 0\r\n", &port), 11);
	assert_int_equal(port, 0);
	/* bytes after the line are the stream's, not the line's */
	assert_int_equal(parse("CONNECT 7\nhello", &port), 10);
	assert_int_equal(port, 7);
}

static void test_vsock_connect_line_incomplete_waits(void **state)
{
	uint32_t port = 0;

	(void)state;
	assert_int_equal(parse("", &port), 0);
	assert_int_equal(parse("CONN", &port), 0);
	assert_int_equal(parse("CONNECT ", &port), 0);
	assert_int_equal(parse("CONNECT 12", &port), 0);
	assert_int_equal(parse("CONNECT 12\r", &port), 0);
}

static void test_vsock_connect_line_bad_numbers(void **state)
{
	static const char *const bad[] = {
		"CONNECT \n",
		"CONNECT -1\n",
		"CONNECT +5\n",
		"CONNECT 4294967296\n",
		"CONNECT 99999999999\n",
		"CONNECT 0x10\n",
		"CONNECT 5 \n",
		"CONNECT  5\n",
		"CONNECT 1\r2\n",
		"CONNECT 12a",
		"CONNECT 12345678901",
	};
	uint32_t port = 0;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(parse(bad[i], &port), -EINVAL);
}

static void test_vsock_connect_line_bad_words_and_long_lines(void **state)
{
	char longline[64];
	uint32_t port = 0;

	(void)state;
	assert_int_equal(parse("connect 5\n", &port), -EINVAL);
	assert_int_equal(parse("GET / HTTP/1.1", &port), -EINVAL);
	assert_int_equal(parse("CONNECT5\n", &port), -EINVAL);
	assert_int_equal(parse("\n", &port), -EINVAL);
	memset(longline, '0', sizeof(longline));
	memcpy(longline, "CONNECT ", 8);
	/* no newline within the limit */
	assert_int_equal(vsock_parse_connect(longline, VSOCK_CONNECT_LINE_MAX, &port), -EINVAL);
	assert_int_equal(vsock_parse_connect(longline, sizeof(longline), &port), -EINVAL);
	/* a newline past the limit does not count */
	longline[40] = '\n';
	assert_int_equal(vsock_parse_connect(longline, 41, &port), -EINVAL);
}

/* ---- host side over real Unix sockets ---- */

struct host {
	struct ev_loop *loop;
	char dir[64], path[96];
	struct vsock_uds *u;
	int wakes;
};

static void on_wake(void *ctx)
{
	((struct host *)ctx)->wakes++;
}

static int host_setup(void **state)
{
	struct host *h = calloc(1, sizeof(*h));
	char err[256];

	assert_non_null(h);
	strcpy(h->dir, "/tmp/ember-vsock-XXXXXX");
	assert_non_null(mkdtemp(h->dir));
	snprintf(h->path, sizeof(h->path), "%s/v.sock", h->dir);
	h->loop = ev_loop_new(EVFLAG_AUTO);
	h->u = vsock_uds_new(h->loop, h->path, CID, on_wake, h, err, sizeof(err));
	assert_non_null(h->u);
	*state = h;
	return 0;
}

static int host_teardown(void **state)
{
	struct host *h = *state;
	char sub[128];

	vsock_uds_free(h->u);
	snprintf(sub, sizeof(sub), "%s/v.sock_5000", h->dir);
	unlink(sub);
	assert_int_equal(access(h->path, F_OK), -1); /* the socket file is gone */
	rmdir(h->dir);
	ev_loop_destroy(h->loop);
	free(h);
	return 0;
}

static void spin(struct host *h)
{
	for (int i = 0; i < 5; i++)
		ev_run(h->loop, EVRUN_NOWAIT);
}

static int unix_connect(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);

	strcpy(sa.sun_path, path);
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	return fd;
}

static int unix_listen(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);

	strcpy(sa.sun_path, path);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(fd, 4), 0);
	return fd;
}

static int next(struct host *h, struct vsock_hdr *p, uint8_t *buf, size_t cap)
{
	spin(h);
	return vsock_uds_recv(h->u, p, buf, cap);
}

static void from_guest(struct host *h, uint16_t op, uint32_t gport, uint32_t hport,
	const void *data, uint32_t len)
{
	struct vsock_hdr p = { .src_cid = CID,
		.dst_cid = VSOCK_HOST_CID,
		.src_port = gport,
		.dst_port = hport,
		.len = len,
		.type = VSOCK_TYPE_STREAM,
		.op = op,
		.buf_alloc = 1u << 20,
		.fwd_cnt = 0 };
	const char *why;

	assert_int_equal(vsock_hdr_check(&p, CID, len, &why), 0);
	assert_true(vsock_uds_can_send(h->u));
	vsock_uds_send(h->u, &p, data);
}

/* Host client: CONNECT, the guest's RESPONSE, OK line, bytes both ways. */
static uint32_t host_connect(struct host *h, int *fd_out, uint32_t gport)
{
	struct vsock_hdr p;
	char line[32], want[32];
	uint8_t buf[64];
	int fd = unix_connect(h->path);
	ssize_t n;

	snprintf(line, sizeof(line), "CONNECT %u\n", gport);
	assert_int_equal(write(fd, line, strlen(line)), (ssize_t)strlen(line));
	assert_int_equal(next(h, &p, buf, sizeof(buf)), 0);
	assert_int_equal(p.op, VSOCK_OP_REQUEST);
	assert_int_equal(p.src_cid, VSOCK_HOST_CID);
	assert_int_equal(p.dst_cid, CID);
	assert_int_equal(p.dst_port, gport);
	assert_true(p.src_port >= VSOCK_LOCAL_PORT_FIRST);
	assert_int_equal(p.buf_alloc, VSOCK_CONN_BUF);
	from_guest(h, VSOCK_OP_RESPONSE, gport, p.src_port, NULL, 0);
	n = read(fd, line, sizeof(line) - 1);
	assert_true(n > 0);
	line[n] = '\0';
	snprintf(want, sizeof(want), "OK %u\n", p.src_port);
	assert_string_equal(line, want);
	*fd_out = fd;
	return p.src_port;
}

static void test_vsock_uds_host_connect_ok_and_data(void **state)
{
	struct host *h = *state;
	struct vsock_hdr p;
	uint8_t buf[256];
	char got[16] = { 0 };
	int fd;
	uint32_t hport = host_connect(h, &fd, 52);

	assert_int_equal(write(fd, "hello", 5), 5);
	assert_int_equal(next(h, &p, buf, sizeof(buf)), 5);
	assert_int_equal(p.op, VSOCK_OP_RW);
	assert_int_equal(p.src_port, hport);
	assert_memory_equal(buf, "hello", 5);
	from_guest(h, VSOCK_OP_RW, 52, hport, "world", 5);
	assert_int_equal(read(fd, got, sizeof(got)), 5);
	assert_string_equal(got, "world");
	/* the host client hangs up: the guest hears SHUTDOWN(SEND) */
	close(fd);
	assert_int_equal(next(h, &p, buf, sizeof(buf)), 0);
	assert_int_equal(p.op, VSOCK_OP_SHUTDOWN);
	assert_true(p.flags & VSOCK_SHUTDOWN_SEND);
	/* the guest closes too: RST, and the connection is gone */
	vsock_uds_send(h->u,
		&(struct vsock_hdr){ .src_cid = CID,
			.dst_cid = 2,
			.src_port = 52,
			.dst_port = hport,
			.type = 1,
			.op = VSOCK_OP_SHUTDOWN,
			.flags = 3 },
		NULL);
	assert_int_equal(next(h, &p, buf, sizeof(buf)), 0);
	assert_int_equal(p.op, VSOCK_OP_RST);
	assert_int_equal(next(h, &p, buf, sizeof(buf)), -ENOENT);
	struct vsock_uds_stats st;
	vsock_uds_stats(h->u, &st);
	assert_int_equal(st.open, 0);
}

static void test_vsock_uds_guest_rst_refuses_host_client(void **state)
{
	struct host *h = *state;
	struct vsock_hdr p;
	uint8_t buf[64];
	int fd = unix_connect(h->path);

	assert_int_equal(write(fd, "CONNECT 9\n", 10), 10);
	assert_int_equal(next(h, &p, buf, sizeof(buf)), 0);
	assert_int_equal(p.op, VSOCK_OP_REQUEST);
	from_guest(h, VSOCK_OP_RST, 9, p.src_port, NULL, 0);
	assert_int_equal(read(fd, buf, sizeof(buf)), 0); /* closed, no OK */
	close(fd);
}

static void test_vsock_uds_bad_connect_line_closes_client(void **state)
{
	struct host *h = *state;
	struct vsock_hdr p;
	uint8_t buf[64];
	int fd = unix_connect(h->path);
	struct vsock_uds_stats st;

	assert_int_equal(write(fd, "CONNECT x\n", 10), 10);
	assert_int_equal(next(h, &p, buf, sizeof(buf)), -ENOENT);
	assert_int_equal(read(fd, buf, sizeof(buf)), 0);
	close(fd);
	vsock_uds_stats(h->u, &st);
	assert_int_equal(st.bad_connect_lines, 1);
	assert_int_equal(h->wakes, 0);
}

static void test_vsock_uds_guest_connect_to_listener(void **state)
{
	struct host *h = *state;
	struct vsock_hdr p;
	uint8_t buf[64];
	char sub[128];
	int lfd, fd;

	snprintf(sub, sizeof(sub), "%s_5000", h->path);
	lfd = unix_listen(sub);
	from_guest(h, VSOCK_OP_REQUEST, 1234, 5000, NULL, 0);
	assert_int_equal(next(h, &p, buf, sizeof(buf)), 0);
	assert_int_equal(p.op, VSOCK_OP_RESPONSE);
	assert_int_equal(p.src_port, 5000);
	assert_int_equal(p.dst_port, 1234);
	fd = accept(lfd, NULL, NULL);
	assert_true(fd >= 0);
	from_guest(h, VSOCK_OP_RW, 1234, 5000, "line\n", 5);
	assert_int_equal(read(fd, buf, sizeof(buf)), 5);
	assert_memory_equal(buf, "line\n", 5);
	assert_int_equal(write(fd, "back", 4), 4);
	assert_int_equal(next(h, &p, buf, sizeof(buf)), 4);
	assert_int_equal(p.op, VSOCK_OP_RW);
	close(fd);
	close(lfd);
}

static void test_vsock_uds_guest_connect_without_listener_gets_rst(void **state)
{
	struct host *h = *state;
	struct vsock_hdr p;
	uint8_t buf[64];

	from_guest(h, VSOCK_OP_REQUEST, 1234, 4999, NULL, 0);
	assert_int_equal(next(h, &p, buf, sizeof(buf)), 0);
	assert_int_equal(p.op, VSOCK_OP_RST);
	assert_int_equal(p.src_port, 4999);
	assert_int_equal(p.dst_port, 1234);
	/* packets for unknown connections get RST too, but a RST gets nothing */
	from_guest(h, VSOCK_OP_RW, 1, 2, "x", 1);
	assert_int_equal(next(h, &p, buf, sizeof(buf)), 0);
	assert_int_equal(p.op, VSOCK_OP_RST);
	from_guest(h, VSOCK_OP_RST, 1, 2, NULL, 0);
	assert_int_equal(next(h, &p, buf, sizeof(buf)), -ENOENT);
}

static void test_vsock_uds_orphan_replies_are_bounded(void **state)
{
	struct host *h = *state;
	struct vsock_hdr p = { .src_cid = CID,
		.dst_cid = VSOCK_HOST_CID,
		.type = 1,
		.op = VSOCK_OP_CREDIT_REQUEST };
	unsigned n = 0;

	while (vsock_uds_can_send(h->u) && n < 1000) {
		p.src_port = n++;
		vsock_uds_send(h->u, &p, NULL);
	}
	assert_false(vsock_uds_can_send(h->u));
	assert_true(n < 1000);
	uint8_t buf[8];
	assert_int_equal(vsock_uds_recv(h->u, &p, buf, sizeof(buf)), 0);
	assert_true(vsock_uds_can_send(h->u));
}

static void test_vsock_uds_respects_guest_credit(void **state)
{
	struct host *h = *state;
	struct vsock_hdr p;
	uint8_t buf[4096], data[1000];
	int fd;
	uint32_t hport = host_connect(h, &fd, 60);

	/* the guest offers 100 bytes */
	vsock_uds_send(h->u,
		&(struct vsock_hdr){ .src_cid = CID,
			.dst_cid = 2,
			.src_port = 60,
			.dst_port = hport,
			.type = 1,
			.op = VSOCK_OP_CREDIT_UPDATE,
			.buf_alloc = 100 },
		NULL);
	memset(data, 'a', sizeof(data));
	assert_int_equal(write(fd, data, sizeof(data)), (ssize_t)sizeof(data));
	assert_int_equal(next(h, &p, buf, sizeof(buf)), 100);
	assert_int_equal(next(h, &p, buf, sizeof(buf)), -ENOENT); /* no credit left */
	vsock_uds_send(h->u,
		&(struct vsock_hdr){ .src_cid = CID,
			.dst_cid = 2,
			.src_port = 60,
			.dst_port = hport,
			.type = 1,
			.op = VSOCK_OP_CREDIT_UPDATE,
			.buf_alloc = 100,
			.fwd_cnt = 100 },
		NULL);
	assert_int_equal(next(h, &p, buf, sizeof(buf)), 100);
	assert_int_equal(p.op, VSOCK_OP_RW);
	close(fd);
}

static void test_vsock_uds_credit_violation_resets(void **state)
{
	struct host *h = *state;
	struct vsock_hdr p;
	static uint8_t chunk[VSOCK_MAX_PAYLOAD];
	uint8_t buf[64];
	struct vsock_uds_stats st;
	int fd, sent = 0;
	uint32_t hport = host_connect(h, &fd, 61);

	/* the client never reads: the socket fills, then ember's buffer, then the guest
	 * is over its credit and the connection is reset */
	for (sent = 0; sent < 200; sent++) {
		vsock_uds_stats(h->u, &st);
		if (st.credit_violations)
			break;
		vsock_uds_send(h->u,
			&(struct vsock_hdr){ .src_cid = CID,
				.dst_cid = 2,
				.src_port = 61,
				.dst_port = hport,
				.type = 1,
				.op = VSOCK_OP_RW,
				.len = sizeof(chunk),
				.buf_alloc = 1u << 20 },
			chunk);
	}
	assert_int_equal(st.credit_violations, 1);
	assert_int_equal(next(h, &p, buf, sizeof(buf)), 0);
	assert_int_equal(p.op, VSOCK_OP_RST);
	close(fd);
}

static void test_vsock_uds_reset_closes_clients(void **state)
{
	struct host *h = *state;
	uint8_t buf[64];
	int fd;

	host_connect(h, &fd, 62);
	vsock_uds_reset(h->u);
	assert_int_equal(read(fd, buf, sizeof(buf)), 0);
	close(fd);
	struct vsock_hdr p;
	assert_int_equal(next(h, &p, buf, sizeof(buf)), -ENOENT);
}

static void test_vsock_uds_refuses_existing_path(void **state)
{
	struct host *h = *state;
	char err[256];

	assert_null(vsock_uds_new(h->loop, h->path, CID, on_wake, h, err, sizeof(err)));
	assert_non_null(strstr(err, "Address already in use"));
	assert_non_null(strstr(err, h->path));
}

/* ---- the device model on the rig ---- */

enum { RXQ, TXQ, EVQ };

static void test_vsock_model_config_rst_and_reset_event(void **state)
{
	struct host *h = *state;
	struct vsock_config cfg = { .enabled = true, .guest_cid = 42 };
	struct virtio_dev *r = nvr_new(3);
	struct vsock_dev *d;
	uint8_t raw[VSOCK_HDR_SIZE], cidb[8];
	struct vsock_hdr p = { .src_cid = 42,
		.dst_cid = 2,
		.src_port = 7,
		.dst_port = 4321,
		.type = 1,
		.op = VSOCK_OP_REQUEST };
	uint64_t gpa;
	uint32_t id, len;
	struct snap_writer *w;
	const uint8_t *img;
	size_t img_len;
	struct snap_reader *rd;
	struct snap_cursor c;
	char err[256], path[128];

	snprintf(path, sizeof(path), "%s/m.sock", h->dir);
	cfg.uds_path = path;
	d = vsock_dev_new(h->loop, &cfg, err, sizeof(err));
	assert_non_null(d);
	vsock_ops.attach(d, r);
	vsock_ops.config_read(d, 0, cidb, 8);
	assert_int_equal(cidb[0], 42);
	assert_int_equal(cidb[4], 0);
	assert_int_equal(vsock_ops.activate(d, 0), 0);

	/* a REQUEST to a host port nobody listens on: RST comes back on RX */
	nvr_rx(r, RXQ, 4096, &gpa);
	vsock_hdr_encode(raw, &p);
	nvr_tx(r, TXQ, raw, sizeof(raw));
	vsock_ops.queue_notify(d, TXQ);
	assert_int_equal(nvr_used(r, TXQ, &id, &len), 1);
	assert_int_equal(nvr_used(r, RXQ, &id, &len), 1);
	assert_int_equal(len, VSOCK_HDR_SIZE);
	vsock_hdr_decode(&p, nvr_ptr(r, gpa));
	assert_int_equal(p.op, VSOCK_OP_RST);
	assert_int_equal(p.dst_cid, 42);
	assert_int_equal(p.dst_port, 7);

	/* a short packet is dropped, the chain still returned */
	nvr_tx(r, TXQ, raw, 10);
	vsock_ops.queue_notify(d, TXQ);
	assert_int_equal(nvr_used(r, TXQ, &id, &len), 1);
	assert_int_equal(r->needs_reset, 0);

	/* save, restore: the guest gets TRANSPORT_RESET once it has an event buffer */
	w = snap_writer_new();
	assert_int_equal(snap_section_begin(w, SNAP_SEC_DEVICE, 1), 0);
	assert_int_equal(vsock_ops.save(d, w), 0);
	assert_int_equal(snap_section_end(w), 0);
	assert_int_equal(snap_writer_image(w, &img, &img_len), 0);
	assert_int_equal(snap_reader_parse(&rd, img, img_len, err, sizeof(err)), 0);
	assert_int_equal(snap_reader_find(rd, SNAP_SEC_DEVICE, 0, &c), 0);
	assert_int_equal(vsock_ops.restore(d, &c, err, sizeof(err)), 0);
	vsock_ops.queue_notify(d, EVQ);
	assert_int_equal(nvr_used(r, EVQ, &id, &len), 0);
	nvr_rx(r, EVQ, 4, &gpa);
	memset(nvr_ptr(r, gpa), 0xff, 4);
	vsock_ops.queue_notify(d, EVQ);
	assert_int_equal(nvr_used(r, EVQ, &id, &len), 1);
	assert_int_equal(len, 4);
	assert_int_equal(*(uint32_t *)nvr_ptr(r, gpa), VSOCK_EVENT_TRANSPORT_RESET);
	nvr_rx(r, EVQ, 4, &gpa);
	vsock_ops.queue_notify(d, EVQ);
	assert_int_equal(nvr_used(r, EVQ, &id, &len), 0); /* only one */
	snap_reader_free(rd);
	snap_writer_free(w);
	vsock_ops.destroy(d);
	nvr_free(r);
}

static void test_vsock_model_small_rx_buffer_needs_reset(void **state)
{
	struct host *h = *state;
	struct vsock_config cfg = { .enabled = true, .guest_cid = 3 };
	struct virtio_dev *r = nvr_new(3);
	struct vsock_dev *d;
	struct vsock_hdr p = { .src_cid = 3,
		.dst_cid = 2,
		.src_port = 7,
		.dst_port = 1,
		.type = 1,
		.op = VSOCK_OP_REQUEST };
	uint8_t raw[VSOCK_HDR_SIZE];
	char err[256], path[128];

	snprintf(path, sizeof(path), "%s/s.sock", h->dir);
	cfg.uds_path = path;
	d = vsock_dev_new(h->loop, &cfg, err, sizeof(err));
	assert_non_null(d);
	vsock_ops.attach(d, r);
	nvr_rx(r, RXQ, 16, NULL);
	vsock_hdr_encode(raw, &p);
	nvr_tx(r, TXQ, raw, sizeof(raw));
	vsock_ops.queue_notify(d, TXQ);
	assert_int_equal(r->needs_reset, 1);
	assert_non_null(strstr(r->last_reset, "smaller than a packet header"));
	vsock_ops.destroy(d);
	nvr_free(r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_vsock_hdr_round_trip_is_little_endian),
		cmocka_unit_test(test_vsock_hdr_check_refuses_bad_packets),
		cmocka_unit_test(test_vsock_credit_peer_free_follows_fwd_cnt),
		cmocka_unit_test(test_vsock_credit_wraps_at_2_32),
		cmocka_unit_test(test_vsock_credit_rx_refuses_overrun),
		cmocka_unit_test(test_vsock_credit_update_due_after_a_quarter),
		cmocka_unit_test(test_vsock_connect_line_valid),
		cmocka_unit_test(test_vsock_connect_line_incomplete_waits),
		cmocka_unit_test(test_vsock_connect_line_bad_numbers),
		cmocka_unit_test(test_vsock_connect_line_bad_words_and_long_lines),
		cmocka_unit_test_setup_teardown(test_vsock_uds_host_connect_ok_and_data, host_setup,
			host_teardown),
		cmocka_unit_test_setup_teardown(test_vsock_uds_guest_rst_refuses_host_client,
			host_setup, host_teardown),
		cmocka_unit_test_setup_teardown(test_vsock_uds_bad_connect_line_closes_client,
			host_setup, host_teardown),
		cmocka_unit_test_setup_teardown(test_vsock_uds_guest_connect_to_listener,
			host_setup, host_teardown),
		cmocka_unit_test_setup_teardown(test_vsock_uds_guest_connect_without_listener_gets_rst,
			host_setup, host_teardown),
		cmocka_unit_test_setup_teardown(test_vsock_uds_orphan_replies_are_bounded,
			host_setup, host_teardown),
		cmocka_unit_test_setup_teardown(test_vsock_uds_respects_guest_credit, host_setup,
			host_teardown),
		cmocka_unit_test_setup_teardown(test_vsock_uds_credit_violation_resets, host_setup,
			host_teardown),
		cmocka_unit_test_setup_teardown(test_vsock_uds_reset_closes_clients, host_setup,
			host_teardown),
		cmocka_unit_test_setup_teardown(test_vsock_uds_refuses_existing_path, host_setup,
			host_teardown),
		cmocka_unit_test_setup_teardown(test_vsock_model_config_rst_and_reset_event,
			host_setup, host_teardown),
		cmocka_unit_test_setup_teardown(test_vsock_model_small_rx_buffer_needs_reset,
			host_setup, host_teardown),
	};

	log_set_level(LOG_ERROR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
