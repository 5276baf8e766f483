/* One API connection: non-blocking reads parsed request by request (keep-alive,
 * pipelining, requests split across reads), answers queued and written with EV_WRITE as
 * the peer takes them, and one destroy function. */
#include "server.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ember/api.h"
#include "ember/log.h"
#include "ember/metrics.h"

static void on_read(struct ev_loop *loop, ev_io *w, int revents);
static void on_write(struct ev_loop *loop, ev_io *w, int revents);
static void on_timeout(struct ev_loop *loop, ev_timer *w, int revents);

static void unlink_conn(struct api_conn *c)
{
	struct api_server *srv = c->srv;

	if (c->prev)
		c->prev->next = c->next;
	else
		srv->head = c->next;
	if (c->next)
		c->next->prev = c->prev;
	else
		srv->tail = c->prev;
	c->prev = c->next = NULL;
}

static void link_tail(struct api_conn *c)
{
	struct api_server *srv = c->srv;

	c->prev = srv->tail;
	c->next = NULL;
	if (srv->tail)
		srv->tail->next = c;
	else
		srv->head = c;
	srv->tail = c;
}

static size_t max_body = HTTP_MAX_BODY;

void api_set_max_payload(size_t bytes)
{
	max_body = bytes;
}

struct api_conn *api_conn_new(struct api_server *srv, int fd)
{
	struct api_conn *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	c->srv = srv;
	c->fd = fd;
	http_in_init(&c->in, max_body);
	ev_io_init(&c->rd, on_read, fd, EV_READ);
	ev_io_init(&c->wr, on_write, fd, EV_WRITE);
	ev_init(&c->timer, on_timeout);
	c->timer.repeat = API_REQUEST_TIMEOUT;
	c->rd.data = c->wr.data = c->timer.data = c;
	link_tail(c);
	srv->nconns++;
	ev_io_start(srv->loop, &c->rd);
	return c;
}

void api_conn_destroy(struct api_conn *c)
{
	struct ev_loop *loop = c->srv->loop;

	ev_io_stop(loop, &c->rd);
	ev_io_stop(loop, &c->wr);
	ev_timer_stop(loop, &c->timer);
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	http_in_deinit(&c->in);
	http_out_deinit(&c->out);
	unlink_conn(c);
	c->srv->nconns--;
	free(c);
}

/* Write what is queued. Returns false if the connection was destroyed. */
static bool flush(struct api_conn *c)
{
	struct ev_loop *loop = c->srv->loop;

	while (http_out_pending(&c->out)) {
		ssize_t n = send(c->fd, c->out.buf + c->out.off, http_out_pending(&c->out),
			MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			ev_io_start(loop, &c->wr); /* the peer is slow: wait until it takes more */
			return true;
		}
		if (n <= 0) {
			log_debug("api: connection closed while answering: %s",
				n < 0 ? strerror(errno) : "no progress");
			api_conn_destroy(c);
			return false;
		}
		http_out_consume(&c->out, (size_t)n);
	}
	ev_io_stop(loop, &c->wr);
	if (!c->closing)
		return true;
	if (c->eof || c->draining || shutdown(c->fd, SHUT_WR) < 0) {
		api_conn_destroy(c);
		return false;
	}
	/* Closing with unread input would reset the connection and the peer could lose the
	 * answer: read and drop what it still sends, for a while. */
	c->draining = true;
	ev_io_start(loop, &c->rd);
	c->timer.repeat = API_LINGER_TIME;
	ev_timer_again(loop, &c->timer);
	return true;
}

static void drain(struct api_conn *c)
{
	ssize_t n = read(c->fd, c->rbuf, sizeof(c->rbuf));

	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
		return;
	if (n > 0 && (c->drained += (size_t)n) <= API_LINGER_MAX)
		return;
	api_conn_destroy(c);
}

static void answer(struct api_conn *c, int status, const char *body, bool deprecation)
{
	if (http_out_response(&c->out, status, body, !c->closing, deprecation)) {
		/* No memory for the answer: the peer sees the connection close instead. */
		log_warn("api: out of memory answering a request; closing the connection");
		c->closing = true;
		http_out_consume(&c->out, http_out_pending(&c->out));
	}
}

/* An error below the API (the request could not be read), answered as micro-http does:
 * {"error": ...} with its sentence appended, newline and all (not strict JSON, as
 * Firecracker's). The connection closes after it. */
static void fault(struct api_conn *c, int status, const char *msg)
{
	char body[sizeof(c->in.err_msg) + 96];

	snprintf(body, sizeof(body),
		"{ \"error\": \"%s\nAll previous unanswered requests will "
		"be dropped.\" }",
		msg);
	c->closing = true;
	answer(c, status, body, false);
}

static void serve(struct api_conn *c)
{
	const struct http_request *req = &c->in.req;
	struct api_response resp;

	/* micro-http knows four methods; others are refused before Firecracker's router. */
	if (req->method != HTTP_GET && req->method != HTTP_PUT && req->method != HTTP_PATCH &&
		req->method != HTTP_DELETE) {
		fault(c, 400, "Invalid HTTP Method: Unsupported HTTP method.");
		return;
	}
	api_handle(c->srv->api, http_method_str(req->method), req->url, req->body, req->body_len,
		&resp);
	if (!req->keep_alive)
		c->closing = true;
	answer(c, resp.status, resp.body, resp.deprecation);
	api_response_deinit(&resp);
}

/* Parse and answer what was read, as far as output room allows; then decide whether to
 * read more. Returns false if the connection was destroyed. */
static bool process(struct api_conn *c)
{
	struct ev_loop *loop = c->srv->loop;

	for (;;) {
		while (!c->closing && c->roff < c->rlen &&
			http_out_pending(&c->out) < API_OUT_HIGH) {
			size_t used = 0;
			enum http_in_status st = http_in_feed(&c->in, c->rbuf + c->roff,
				c->rlen - c->roff, &used);

			c->roff += used;
			if (c->in.send_continue) {
				c->in.send_continue = false;
				if (http_out_continue(&c->out))
					c->closing = true;
			}
			if (st == HTTP_IN_ERROR) {
				metrics_inc(METRICS_API_BAD_REQUESTS);
				log_info("api: bad request: %s", c->in.err_msg);
				fault(c, c->in.err_status, c->in.err_msg);
			} else if (st == HTTP_IN_REQUEST) {
				serve(c);
				http_in_next(&c->in);
			}
		}
		if (c->roff == c->rlen)
			c->roff = c->rlen = 0;
		/* Everything the peer sent is parsed: a request it left half-sent is dropped. */
		if (c->eof && !c->rlen)
			c->closing = true;
		if (!c->closing && !c->rlen && http_out_pending(&c->out) < API_OUT_HIGH)
			ev_io_start(loop, &c->rd);
		else
			ev_io_stop(loop, &c->rd);
		if (!c->closing && http_in_partial(&c->in)) {
			if (!ev_is_active(&c->timer))
				ev_timer_again(loop, &c->timer);
		} else {
			ev_timer_stop(loop, &c->timer);
		}
		if (!flush(c))
			return false;
		/* The peer took all the output at once: go on with requests already read, as
		 * no watcher would bring us back to them. */
		if (c->draining || c->closing || !c->rlen ||
			http_out_pending(&c->out) >= API_OUT_HIGH)
			return true;
	}
}

static void touch(struct api_conn *c)
{
	if (c->srv->tail != c) {
		unlink_conn(c);
		link_tail(c);
	}
}

static void on_read(struct ev_loop *loop, ev_io *w, int revents)
{
	struct api_conn *c = w->data;
	ssize_t n;

	(void)loop;
	(void)revents;
	if (c->draining) {
		drain(c);
		return;
	}
	if (c->rlen)
		return; /* not everything read so far is parsed yet */
	n = read(c->fd, c->rbuf, sizeof(c->rbuf));
	if (n < 0) {
		if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
			return;
		log_debug("api: read: %s", strerror(errno));
		api_conn_destroy(c);
		return;
	}
	if (n == 0) {
		if (http_in_partial(&c->in))
			log_debug("api: the peer left in the middle of a request");
		c->eof = true;
	}
	c->rlen = (size_t)n;
	c->roff = 0;
	touch(c);
	process(c);
}

static void on_write(struct ev_loop *loop, ev_io *w, int revents)
{
	struct api_conn *c = w->data;

	(void)loop;
	(void)revents;
	if (flush(c) && !c->draining && http_out_pending(&c->out) < API_OUT_HIGH)
		process(c); /* room again: go on with requests already read */
}

static void on_timeout(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct api_conn *c = w->data;

	(void)loop;
	(void)revents;
	if (c->draining) {
		api_conn_destroy(c);
		return;
	}
	log_info("api: a request did not arrive in full within %.0f s; closing its connection",
		API_REQUEST_TIMEOUT);
	metrics_inc(METRICS_API_BAD_REQUESTS);
	fault(c, 408, "Request timed out.");
	/* One try to say so; a peer that does not read is not waited for. */
	if (flush(c) && !c->draining)
		api_conn_destroy(c);
}
