/* Internals of the vsock host side shared by vsock_uds.c (sockets, connections) and
 * vsock_packets.c (packets to and from the guest). Not a module interface. */
#ifndef EMBER_VSOCK_UDS_INTERNAL_H
#define EMBER_VSOCK_UDS_INTERNAL_H

#include <ev.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ember/unix_socket.h"
#include "ember/vsock.h"

#define HASH_BUCKETS 256
#define ORPHAN_RING 64

enum conn_state {
	CS_LINE,      /* host client accepted, reading "CONNECT <port>\n" */
	CS_REQUESTED, /* REQUEST owed or sent to the guest, waiting for its answer */
	CS_ESTABLISHED,
	CS_CLOSING, /* guest shut down both ways: flush what is buffered, then RST */
	CS_DEAD,    /* socket closed; only the RST to the guest is left */
};

/* Packets a connection owes the guest, sent in this order of bits. */
enum { P_RST = 1, P_RESPONSE = 2, P_REQUEST = 4, P_SHUTDOWN = 8, P_CREDIT = 16, P_DATA = 32 };

struct conn {
	struct vsock_uds *u;
	int fd;
	ev_io rd, wr;
	ev_timer timer;
	enum conn_state state;
	bool host_initiated;
	bool sock_eof;     /* the Unix peer will send no more */
	bool peer_no_send; /* the guest will send no more */
	bool peer_no_rcv;  /* the guest will receive no more */
	bool shut_wr;      /* shutdown(SHUT_WR) done */
	uint32_t local_port, peer_port;
	uint32_t shut_flags; /* of the SHUTDOWN owed */
	unsigned owed;       /* P_* */
	struct vsock_credit cr;
	char line[VSOCK_CONNECT_LINE_MAX];
	size_t line_len;
	uint8_t *buf; /* guest -> host bytes the socket did not take yet (a ring) */
	size_t head, len;
	struct conn *hnext;         /* hash chain (not in CS_LINE / CS_DEAD) */
	struct conn *qprev, *qnext; /* queue of connections owing packets */
	struct conn *prev, *next;   /* every connection */
	bool queued, hashed;
};

struct orphan {
	uint64_t cid;
	uint32_t src_port, dst_port;
};

/* vsock_spares.c: sockets made on the control thread for the device thread. */
#define VSOCK_SPARES 32
struct vsock_spares {
	pthread_mutex_t lock;
	int fds[VSOCK_SPARES];
	unsigned n;
	struct ev_loop *control; /* NULL until started: sockets are made by the taker */
	ev_async refill;
};
void vsock_spares_init(struct vsock_spares *s);
/* Fill the spares now and refill them on `control` (the control thread's loop). */
void vsock_spares_start(struct vsock_spares *s, struct ev_loop *control);
/* A fresh non-blocking AF_UNIX stream socket, or -errno (-EAGAIN: none left just now). */
int vsock_spares_take(struct vsock_spares *s);
void vsock_spares_deinit(struct vsock_spares *s);

struct vsock_uds {
	struct ev_loop *loop;
	struct vsock_spares spares;
	char *path;
	uint64_t guest_cid;
	int listen_fd;
	struct unix_socket_id sock_id; /* the socket file at path that listen_fd made */
	ev_io accept_w;
	vsock_wake_fn wake;
	void *ctx;
	struct conn *hash[HASH_BUCKETS];
	struct conn *all;
	struct conn *qhead, *qtail;
	struct orphan orphans[ORPHAN_RING];
	unsigned orphan_head, orphan_len;
	uint32_t local_port_last;
	struct vsock_uds_stats st;
};

/* vsock_uds.c: the connection table and queue, sockets. Control thread. */
struct conn *vconn_lookup(struct vsock_uds *u, uint32_t local, uint32_t peer);
void vconn_hash_add(struct conn *c);
void vconn_hash_del(struct conn *c);
/* Owe the guest packets (P_* bits); the connection joins the queue's tail. */
void vconn_enqueue(struct conn *c, unsigned bits);
void vconn_dequeue(struct conn *c);
struct conn *vconn_new(struct vsock_uds *u, int fd);
void vconn_free(struct conn *c);
/* Close the socket now and owe the guest a RST (frees a host client still in CS_LINE). */
void vconn_kill(struct conn *c);
void vconn_update_reader(struct conn *c);
void vconn_start_timer(struct conn *c, unsigned ms);
/* Write buffered guest bytes to the socket: 0, or -errno when the connection broke. */
int vconn_flush(struct conn *c);
/* The guest asks for host port h->dst_port: connect to "<uds_path>_<port>". */
void vconn_guest_connect(struct vsock_uds *u, const struct vsock_hdr *h);

/* Owe a RST for a packet no connection takes (a bounded ring; a RST gets none). Inline,
 * as both files owe them and calls run one way (vsock_packets.c calls vsock_uds.c). */
static inline void vconn_orphan_rst(struct vsock_uds *u, const struct vsock_hdr *h)
{
	struct orphan *o;

	if (h->op == VSOCK_OP_RST || u->orphan_len == ORPHAN_RING)
		return;
	o = &u->orphans[(u->orphan_head + u->orphan_len++) % ORPHAN_RING];
	o->cid = h->dst_cid;
	o->src_port = h->dst_port;
	o->dst_port = h->src_port;
}

#endif
