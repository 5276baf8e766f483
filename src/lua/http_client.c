/* core.http_request: one HTTP/1.1 request over a Unix socket (the API client, ember.connect). */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <http_parser.h>
#include <lauxlib.h>

#include "ember/clock.h"
#include "internal.h"

#define BODY_MAX (16u << 20)
#define TIMEOUT_MS_DEFAULT 30000

struct response {
	luaL_Buffer *body; /* lives on the Lua stack */
	size_t len;
	bool complete, too_big;
};

static int on_body(http_parser *p, const char *at, size_t len)
{
	struct response *r = p->data;

	if (r->len + len > BODY_MAX) {
		r->too_big = true;
		return -1;
	}
	luaL_addlstring(r->body, at, len);
	r->len += len;
	return 0;
}

static int on_complete(http_parser *p)
{
	((struct response *)p->data)->complete = true;
	return 0;
}

static long now_ms(void)
{
	return (long)(mono_ns() / 1000000);
}

/* Wait until fd is ready for `events` or the deadline passes: 0, -ETIMEDOUT or -errno. */
static int wait_fd(int fd, short events, long deadline)
{
	struct pollfd pfd = { .fd = fd, .events = events };
	long left = deadline - now_ms();
	int n;

	if (left <= 0)
		return -ETIMEDOUT;
	do
		n = poll(&pfd, 1, (int)left);
	while (n < 0 && errno == EINTR);
	return n < 0 ? -errno : n == 0 ? -ETIMEDOUT : 0;
}

static int send_all(int fd, const char *buf, size_t len, long deadline)
{
	while (len) {
		ssize_t n = send(fd, buf, len, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
			int ret = wait_fd(fd, POLLOUT, deadline);
			if (ret)
				return ret;
			continue;
		}
		if (n < 0)
			return -errno;
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

static int open_socket(const char *path, char *err, size_t errlen)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd;

	if (strlen(path) >= sizeof(sa.sun_path)) {
		snprintf(err, errlen, "%s: socket path too long", path);
		return -1;
	}
	memcpy(sa.sun_path, path, strlen(path) + 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return fd;
}

/* core.http_request(socket, method, url [, body [, timeout_s]]) -> status, body | nil, msg.
 * Blocks the calling task and the loop for the request: it is meant for an API served by
 * another process, which answers at once (a snapshot takes as long as writing it). */
int core_http_request(lua_State *L)
{
	const char *sock = luaL_checkstring(L, 1), *method = luaL_checkstring(L, 2);
	const char *url = luaL_checkstring(L, 3);
	size_t body_len = 0;
	const char *body = luaL_optlstring(L, 4, NULL, &body_len);
	double timeout = luaL_optnumber(L, 5, TIMEOUT_MS_DEFAULT / 1000.0);
	http_parser_settings settings = { .on_body = on_body, .on_message_complete = on_complete };
	struct response resp = { 0 };
	http_parser parser;
	luaL_Buffer b;
	char err[256], buf[4096];
	long deadline = now_ms() + (long)(timeout * 1000);
	int fd, ret;

	if (strpbrk(method, " \r\n") || strpbrk(url, " \r\n"))
		return luaL_error(L,
			"http_request: method and url must not hold spaces or newlines");
	lua_pushfstring(L, "%s %s HTTP/1.1\r\nHost: localhost\r\nAccept: application/json\r\n",
		method, url);
	if (body)
		lua_pushfstring(L, "Content-Type: application/json\r\nContent-Length: %I\r\n\r\n",
			(lua_Integer)body_len);
	else
		lua_pushliteral(L, "\r\n");
	lua_concat(L, 2);
	fd = open_socket(sock, err, sizeof(err));
	if (fd < 0)
		return push_fail(L, err);
	ret = send_all(fd, lua_tostring(L, -1), lua_rawlen(L, -1), deadline);
	if (!ret && body)
		ret = send_all(fd, body, body_len, deadline);
	lua_pop(L, 1);
	luaL_buffinit(L, &b);
	resp.body = &b;
	http_parser_init(&parser, HTTP_RESPONSE);
	parser.data = &resp;
	while (!ret && !resp.complete) {
		ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
		if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
			ret = wait_fd(fd, POLLIN, deadline);
			continue;
		}
		if (n < 0) {
			ret = -errno;
			break;
		}
		/* n == 0 tells the parser the connection closed (ends a body without length). */
		http_parser_execute(&parser, &settings, buf, (size_t)n);
		if (HTTP_PARSER_ERRNO(&parser) != HPE_OK || (n == 0 && !resp.complete)) {
			close(fd);
			luaL_pushresult(&b);
			return push_fail(L,
				resp.too_big ? "http: response body too large"
					: n == 0
					? "http: the server closed the connection early"
					: http_errno_description(HTTP_PARSER_ERRNO(&parser)));
		}
	}
	close(fd);
	luaL_pushresult(&b);
	if (ret) {
		snprintf(err, sizeof(err), "%s %s %s: %s", sock, method, url,
			ret == -ETIMEDOUT ? "no answer in time" : strerror(-ret));
		return push_fail(L, err);
	}
	lua_pushinteger(L, parser.status_code);
	lua_insert(L, -2);
	return 2;
}
