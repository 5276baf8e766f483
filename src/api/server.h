/* The API's HTTP server: the listening socket (server.c) and its connections (conn.c).
 * Not a module interface. */
#ifndef EMBER_API_SERVER_H
#define EMBER_API_SERVER_H

#include <stdbool.h>
#include <sys/types.h>

#include <ev.h>

#include "ember/unix_socket.h"
#include "http.h"

#define API_MAX_CONNS 256 /* more: the least recently active connection is closed */
#define API_READ_CHUNK 16384
#define API_OUT_HIGH (256u << 10) /* stop reading requests while this much output waits */
#define API_REQUEST_TIMEOUT 30.0  /* seconds a started request may take to arrive */
#define API_LINGER_TIME 2.0       /* after a last answer: seconds to read what the peer sends */
#define API_LINGER_MAX (1u << 20) /* ... and how much of it */

struct api;
struct api_conn;

struct api_server {
	struct ev_loop *loop;
	struct api *api;
	int fd;
	char *path;
	struct unix_socket_id id; /* the socket file this server made, to remove only it */
	ev_io accept_w;
	ev_timer accept_retry;        /* out of file descriptors: try again a little later */
	struct api_conn *head, *tail; /* least recently active first */
	unsigned nconns;
};

struct api_conn {
	struct api_server *srv;
	struct api_conn *prev, *next;
	int fd;
	ev_io rd, wr;
	ev_timer timer; /* a started request must complete in time */
	struct http_in in;
	struct http_out out;
	char rbuf[API_READ_CHUNK]; /* bytes read and not yet parsed: [roff, rlen) */
	size_t rlen, roff;
	bool closing;  /* serve no more requests: close once output is written */
	bool eof;      /* the peer has finished sending */
	bool draining; /* answered and shut down for writing: discarding input until
				    * the peer closes, so it reads the answer instead of a reset */
	size_t drained;
};

/* Take an accepted, non-blocking socket. NULL (fd not closed) if out of memory. */
struct api_conn *api_conn_new(struct api_server *srv, int fd);
/* Stop every watcher, close the fd, unlink from the server, free. */
void api_conn_destroy(struct api_conn *c);

#endif
