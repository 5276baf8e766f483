/* Listening Unix sockets at a path, made 0600 and removed only while they are ours. */
#include "ember/unix_socket.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

int unix_listen(const char *what, const char *path, int backlog, struct unix_socket_id *id,
	char *err, size_t errlen)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct stat st;
	int fd, ret;

	if (!path[0] || strlen(path) >= sizeof(sa.sun_path)) {
		snprintf(err, errlen, "%s %s: the path must be 1 to %zu bytes long", what, path,
			sizeof(sa.sun_path) - 1);
		return -ENAMETOOLONG;
	}
	memcpy(sa.sun_path, path, strlen(path) + 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		ret = -errno;
		snprintf(err, errlen, "%s %s: %s", what, path, strerror(errno));
		return ret;
	}
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		ret = -errno;
		snprintf(err, errlen, "%s %s: %s", what, path, strerror(errno));
		close(fd);
		return ret;
	}
	/* 0600 whatever the umask. chmod between bind and listen, not umask(): the umask is
	 * process-wide and other threads may be creating files; no client can connect before
	 * listen, so the wider mode bind gave the path is never usable. */
	if (chmod(path, 0600) < 0 || listen(fd, backlog) < 0 || stat(path, &st) < 0) {
		ret = -errno;
		unlink(path);
		snprintf(err, errlen, "%s %s: %s", what, path, strerror(-ret));
		close(fd);
		return ret;
	}
	id->dev = st.st_dev;
	id->ino = st.st_ino;
	return fd;
}

void unix_unlink_own(const char *path, const struct unix_socket_id *id)
{
	struct stat st;

	if (stat(path, &st) == 0 && st.st_dev == id->dev && st.st_ino == id->ino)
		unlink(path);
}
