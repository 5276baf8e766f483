/* virtio-vsock (virtio 1.x 5.10): packet header, credit accounting, the CONNECT line,
 * and the host side that maps guest AF_VSOCK streams onto Unix sockets (Firecracker's
 * hybrid design).
 *
 * Host-initiated: a client connects to uds_path and sends "CONNECT <port>\n"; ember sends
 * a REQUEST to that guest port and answers "OK <host port>\n" once the guest accepts (a
 * RST, or no answer within VSOCK_CONNECT_TIMEOUT_MS, closes the client). Guest-initiated:
 * a REQUEST to host port P makes ember connect to "<uds_path>_<P>". Everything runs on
 * the control thread; every socket is non-blocking and watched by libev. What ember
 * buffers is bounded: per connection by the credit it advertised (VSOCK_CONN_BUF), and a
 * fixed ring of replies to packets for unknown connections. */
#ifndef EMBER_VSOCK_H
#define EMBER_VSOCK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct ev_loop;

#define VSOCK_HOST_CID 2
#define VSOCK_HDR_SIZE 44 /* struct virtio_vsock_hdr, little endian, packed */
#define VSOCK_TYPE_STREAM 1
#define VSOCK_MAX_PAYLOAD (64u * 1024) /* largest RW payload either side sends */
#define VSOCK_CONN_BUF (256u * 1024)   /* buf_alloc ember advertises per connection */
#define VSOCK_CONNECT_LINE_MAX 32      /* "CONNECT 4294967295\n" is 19 */
#define VSOCK_CONNECT_TIMEOUT_MS 2000  /* guest answer to a host-initiated REQUEST */
#define VSOCK_CLOSE_TIMEOUT_MS 2000    /* guest RST after a SHUTDOWN of both ways */
#define VSOCK_MAX_CONNS 1024
#define VSOCK_LOCAL_PORT_FIRST (1u << 30) /* host ports for host-initiated connections */

enum vsock_op {
	VSOCK_OP_INVALID = 0,
	VSOCK_OP_REQUEST = 1,
	VSOCK_OP_RESPONSE = 2,
	VSOCK_OP_RST = 3,
	VSOCK_OP_SHUTDOWN = 4,
	VSOCK_OP_RW = 5,
	VSOCK_OP_CREDIT_UPDATE = 6,
	VSOCK_OP_CREDIT_REQUEST = 7,
};

#define VSOCK_SHUTDOWN_RCV 1u  /* the sender will receive no more data */
#define VSOCK_SHUTDOWN_SEND 2u /* the sender will send no more data */
#define VSOCK_EVENT_TRANSPORT_RESET 0

struct vsock_hdr {
	uint64_t src_cid, dst_cid;
	uint32_t src_port, dst_port;
	uint32_t len; /* payload bytes after the header */
	uint16_t type, op;
	uint32_t flags;
	uint32_t buf_alloc, fwd_cnt;
};

/* Wire <-> struct (little endian). Pure. */
void vsock_hdr_decode(struct vsock_hdr *h, const uint8_t raw[VSOCK_HDR_SIZE]);
void vsock_hdr_encode(uint8_t raw[VSOCK_HDR_SIZE], const struct vsock_hdr *h);

/* Check a packet the guest sent, whose chain holds `avail` bytes after the header.
 * 0, or -EINVAL with *why set to a static reason ("payload longer than the chain", "not
 * from the guest's cid", "unknown op 9", ...). A packet for another cid than the host's is
 * valid here (the caller answers RST). Pure. */
int vsock_hdr_check(const struct vsock_hdr *h, uint64_t guest_cid, uint64_t avail,
	const char **why);

/* Credit accounting of one connection (virtio 5.10.6.3), all counters mod 2^32. */
struct vsock_credit {
	/* What ember receives from the peer (guest): buffer it offers and bytes forwarded. */
	uint32_t buf_alloc;    /* VSOCK_CONN_BUF */
	uint32_t rx_cnt;       /* payload bytes taken from the peer */
	uint32_t fwd_cnt;      /* of those, bytes handed on (written to the Unix socket) */
	uint32_t fwd_cnt_sent; /* fwd_cnt as last told to the peer */
	/* What ember sends to the peer: the peer's buffer and its forward count. */
	uint32_t peer_buf_alloc, peer_fwd_cnt;
	uint32_t tx_cnt; /* payload bytes sent to the peer */
};

void vsock_credit_init(struct vsock_credit *c, uint32_t buf_alloc);
/* Take buf_alloc / fwd_cnt from a header the peer sent. */
void vsock_credit_peer(struct vsock_credit *c, uint32_t buf_alloc, uint32_t fwd_cnt);
/* Bytes ember may send the peer now (0 if the peer's numbers do not add up). */
uint32_t vsock_credit_peer_free(const struct vsock_credit *c);
/* Whether `len` more bytes from the peer fit in what ember offered; if so they are
 * counted in rx_cnt (0), else nothing changes (-ENOSPC: the peer broke the protocol). */
int vsock_credit_rx(struct vsock_credit *c, uint32_t len);
/* Bytes received but not yet forwarded. */
uint32_t vsock_credit_rx_pending(const struct vsock_credit *c);
/* The peer should hear about freed space: at least a quarter of the buffer was freed
 * since it was last told, or everything was forwarded and some of it not yet told. */
bool vsock_credit_update_due(const struct vsock_credit *c);

/* Parse the host client's first line from `buf` (`len` bytes read so far). Returns the
 * line's length including '\n' (> 0) with *port set; 0 if no '\n' yet and the line may
 * still be valid; -EINVAL for a bad line: not "CONNECT <port>", a port that is not a
 * decimal number in 0..4294967295, or no '\n' within VSOCK_CONNECT_LINE_MAX bytes. A
 * '\r' before the '\n' is accepted. Pure. */
int vsock_parse_connect(const char *buf, size_t len, uint32_t *port);

/* ---- the host side: Unix sockets ---- */

struct vsock_uds;

/* The host side has packets for the guest (vsock_uds_pending turned true). Called from
 * the backend's own libev callbacks only, never from inside a vsock_uds_* call. */
typedef void (*vsock_wake_fn)(void *ctx);

/* Listen on `path` (which must not exist). NULL with err ("vsock: cannot bind
 * /tmp/v.sock: Address already in use"). Control thread. */
struct vsock_uds *vsock_uds_new(struct ev_loop *loop, const char *path, uint64_t guest_cid,
	vsock_wake_fn wake, void *ctx, char *err, size_t errlen);
/* Close every connection and the listener, remove the socket file. NULL is a no-op. */
/* The device loop runs on a thread of its own, whose filter allows no socket(2): sockets
 * for guest-initiated connections are then made ahead on `control` (the control thread's
 * loop). Without this call they are made when needed (one thread for everything). */
void vsock_uds_serve_from(struct vsock_uds *u, struct ev_loop *control);
void vsock_uds_free(struct vsock_uds *u);

/* Whether the backend can take one more guest packet now. A packet can need one reply
 * that has nowhere else to go (a RST for an unknown connection); when the ring of those
 * is full, the device leaves the rest of its TX queue for later (after RX drained). */
bool vsock_uds_can_send(const struct vsock_uds *u);
/* A packet from the guest, already checked with vsock_hdr_check; `payload` holds h->len
 * bytes. Never fails for the device: protocol errors become RSTs to the guest. */
void vsock_uds_send(struct vsock_uds *u, const struct vsock_hdr *h, const uint8_t *payload);
/* Whether a packet for the guest is waiting. */
bool vsock_uds_pending(const struct vsock_uds *u);
/* The next packet for the guest, with at most `cap` payload bytes in `buf`: returns the
 * payload length (h->len), or -ENOENT if nothing is waiting. */
int vsock_uds_recv(struct vsock_uds *u, struct vsock_hdr *h, uint8_t *buf, size_t cap);
/* Drop every connection (device reset, transport reset after restore); the listener
 * stays. Clients see their socket closed. */
void vsock_uds_reset(struct vsock_uds *u);

/* The guest's cid changed (restore of a snapshot taken with another one). */
void vsock_uds_set_guest_cid(struct vsock_uds *u, uint64_t cid);

/* Host ports handed to host-initiated connections: saved and restored, so a restored VM
 * does not see the same port numbers again. */
uint32_t vsock_uds_local_port_last(const struct vsock_uds *u);
void vsock_uds_set_local_port_last(struct vsock_uds *u, uint32_t port);

struct vsock_uds_stats {
	uint64_t conns, conns_host, conns_guest, conn_refused, rst_sent, tx_bytes, rx_bytes,
		credit_violations, bad_connect_lines;
	unsigned open;
};
void vsock_uds_stats(const struct vsock_uds *u, struct vsock_uds_stats *s);

/* ---- the device model (virtio_vsock_new in virtio_devices.h wraps it) ---- */

struct virtio_dev_ops;
struct vsock_dev;

/* The vsock device as a definition describes it. */
struct vsock_config {
	bool enabled;
	uint32_t guest_cid; /* >= 3 */
	char *uds_path;     /* host side Unix socket */
};

/* The model's ops, and a model listening on cfg->uds_path but not yet on a transport:
 * for virtio_vsock_new and for tests and fuzzing that drive the ops directly. */
extern const struct virtio_dev_ops vsock_ops;
struct vsock_dev *vsock_dev_new(struct ev_loop *loop, const struct vsock_config *cfg, char *err,
	size_t errlen);

#endif
