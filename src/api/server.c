/* The API's listening Unix socket: stale-socket check, non-blocking accept, a bounded
 * number of connections, and removal of the socket path on the way out. */
#include "server.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "ember/api.h"
#include "ember/log.h"
#include "ember/metrics.h"
#include "ember/unix_socket.h"

#define ACCEPTS_PER_WAKEUP 64
#define ACCEPT_RETRY 0.1 /* seconds, after running out of file descriptors */

static void evict_oldest(struct api_server *srv)
{
	log_info("api: %u connections open: closing the least recently active one", srv->nconns);
	metrics_inc(METRICS_API_EVICTED);
	api_conn_destroy(srv->head);
}

static void on_accept(struct ev_loop *loop, ev_io *w, int revents)
{
	struct api_server *srv = w->data;

	(void)revents;
	for (int i = 0; i < ACCEPTS_PER_WAKEUP; i++) {
		int fd = accept4(srv->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
				errno == ENOMEM) {
				if (srv->head) {
					evict_oldest(srv); /* frees a descriptor for the newcomer */
					continue;
				}
				log_warn("api: accept: %s; trying again shortly", strerror(errno));
				ev_io_stop(loop, &srv->accept_w);
				ev_timer_start(loop, &srv->accept_retry);
			} else if (errno != EAGAIN && errno != EWOULDBLOCK &&
				errno != ECONNABORTED) {
				log_warn("api: accept: %s", strerror(errno));
			}
			return;
		}
		if (srv->nconns >= API_MAX_CONNS)
			evict_oldest(srv);
		if (!api_conn_new(srv, fd)) {
			log_warn("api: out of memory for a connection");
			close(fd);
			continue;
		}
		metrics_inc(METRICS_API_CONNECTIONS);
	}
}

static void on_accept_retry(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct api_server *srv = w->data;

	(void)revents;
	ev_io_start(loop, &srv->accept_w);
}

/* An existing path is taken over only if it is a socket nobody accepts on. */
static int claim_path(const char *path, char *err, size_t errlen)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct stat st;
	int fd, ret;

	if (lstat(path, &st) < 0) {
		if (errno == ENOENT)
			return 0;
		snprintf(err, errlen, "api socket %s: %s", path, strerror(errno));
		return -errno;
	}
	if (!S_ISSOCK(st.st_mode)) {
		snprintf(err, errlen, "api socket %s: the path exists and is not a socket", path);
		return -EEXIST;
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		snprintf(err, errlen, "api socket: %s", strerror(errno));
		return -errno;
	}
	memcpy(sa.sun_path, path, strlen(path) + 1);
	ret = connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ? -errno : 0;
	close(fd);
	if (ret == 0) {
		snprintf(err, errlen, "api socket %s: another process is serving on it", path);
		return -EADDRINUSE;
	}
	if (ret != -ECONNREFUSED) {
		snprintf(err, errlen, "api socket %s: %s", path, strerror(-ret));
		return ret;
	}
	/* Stale: left behind by a process that is gone. */
	if (unlink(path) < 0 && errno != ENOENT) {
		snprintf(err, errlen, "api socket %s: cannot remove the stale socket: %s", path,
			strerror(errno));
		return -errno;
	}
	log_info("api: replaced the stale socket %s", path);
	return 0;
}

struct api_server *api_server_new(struct ev_loop *loop, struct api *api, const char *path,
	char *err, size_t errlen)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct api_server *srv;

	if (!path[0] || strlen(path) >= sizeof(sa.sun_path)) {
		snprintf(err, errlen, "api socket %s: the path must be 1 to %zu bytes long", path,
			sizeof(sa.sun_path) - 1);
		return NULL;
	}
	if (claim_path(path, err, errlen))
		return NULL;
	srv = calloc(1, sizeof(*srv));
	if (!srv || !(srv->path = strdup(path))) {
		free(srv);
		snprintf(err, errlen, "api: out of memory");
		return NULL;
	}
	srv->loop = loop;
	srv->api = api;
	srv->fd = unix_listen("api socket", path, SOMAXCONN, &srv->id, err, errlen);
	if (srv->fd < 0) {
		free(srv->path);
		free(srv);
		return NULL;
	}
	ev_io_init(&srv->accept_w, on_accept, srv->fd, EV_READ);
	srv->accept_w.data = srv;
	ev_timer_init(&srv->accept_retry, on_accept_retry, ACCEPT_RETRY, 0);
	srv->accept_retry.data = srv;
	ev_io_start(loop, &srv->accept_w);
	log_info("api: listening on %s", path);
	return srv;
}

void api_server_free(struct api_server *srv)
{
	if (!srv)
		return;
	while (srv->head)
		api_conn_destroy(srv->head);
	ev_io_stop(srv->loop, &srv->accept_w);
	ev_timer_stop(srv->loop, &srv->accept_retry);
	close(srv->fd);
	unix_unlink_own(srv->path, &srv->id);
	free(srv->path);
	free(srv);
}
