/* Listening Unix stream sockets that ember owns at a path: the API socket and vsock's
 * host side. */
#ifndef EMBER_UNIX_SOCKET_H
#define EMBER_UNIX_SOCKET_H

#include <stddef.h>
#include <sys/types.h>

/* Which file at the path is ours, so that only it is ever removed. */
struct unix_socket_id {
	dev_t dev;
	ino_t ino;
};

/* A non-blocking, close-on-exec socket bound at `path` (mode 0600 whatever the umask)
 * and listening; *id says which file it made. The fd, or -errno with err: `what`, the
 * path and why ("vsock: cannot listen on /x: Address already in use"). */
__attribute__((warn_unused_result)) int unix_listen(const char *what, const char *path, int backlog,
	struct unix_socket_id *id, char *err, size_t errlen);

/* Remove `path` only if it is still the socket `id` names, not one that replaced it (a
 * VM restored from a snapshot of this one, listening at the same path). */
void unix_unlink_own(const char *path, const struct unix_socket_id *id);

#endif
