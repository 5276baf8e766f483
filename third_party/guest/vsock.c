/* vsock: a tiny AF_VSOCK tool for the guest's initramfs, since busybox has none.
 *
 *   vsock listen PORT        accept one stream on PORT, echo it back until the peer's
 *                            end, print "echoed N bytes"; "listening" once it listens
 *   vsock connect CID PORT   send stdin, then shut the sending side; what comes back
 *                            goes to stdout (both at once, so an echoing peer cannot
 *                            stall on full buffers)
 *
 * Built static by build-rootfs.sh; errors go to stderr with exit status 1. */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <linux/vm_sockets.h>

static int fail(const char *what)
{
	fprintf(stderr, "vsock: %s: %s\n", what, strerror(errno));
	return 1;
}

static int number(const char *s, unsigned *out)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || end == s || *end || v > 0xffffffffUL) {
		fprintf(stderr, "vsock: '%s' is not a number\n", s);
		return -1;
	}
	*out = (unsigned)v;
	return 0;
}

static int write_all(int fd, const char *p, size_t n)
{
	while (n) {
		ssize_t w = write(fd, p, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

static struct sockaddr_vm address(unsigned cid, unsigned port)
{
	struct sockaddr_vm a;

	memset(&a, 0, sizeof(a));
	a.svm_family = AF_VSOCK;
	a.svm_cid = cid;
	a.svm_port = port;
	return a;
}

static int listen_echo(unsigned port)
{
	struct sockaddr_vm a = address(VMADDR_CID_ANY, port);
	unsigned long long total = 0;
	static char buf[65536];
	int s, c;
	ssize_t n;

	s = socket(AF_VSOCK, SOCK_STREAM, 0);
	if (s < 0)
		return fail("socket");
	if (bind(s, (struct sockaddr *)&a, sizeof(a)) || listen(s, 1))
		return fail("bind/listen");
	printf("listening\n");
	fflush(stdout);
	c = accept(s, NULL, NULL);
	if (c < 0)
		return fail("accept");
	while ((n = read(c, buf, sizeof(buf))) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return fail("read");
		if (write_all(c, buf, (size_t)n))
			return fail("write");
		total += (unsigned long long)n;
	}
	close(c);
	printf("echoed %llu bytes\n", total);
	return 0;
}

static int connect_send(unsigned cid, unsigned port)
{
	struct sockaddr_vm a = address(cid, port);
	struct pollfd p[2] = { { .fd = 0, .events = POLLIN }, { .events = POLLIN } };
	static char buf[65536];
	ssize_t n;
	int s;

	s = socket(AF_VSOCK, SOCK_STREAM, 0);
	if (s < 0)
		return fail("socket");
	if (connect(s, (struct sockaddr *)&a, sizeof(a)))
		return fail("connect");
	p[1].fd = s;
	/* The socket is read until the peer's end; stdin until its own. */
	for (;;) {
		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			return fail("poll");
		}
		if (p[0].revents) {
			n = read(0, buf, sizeof(buf));
			if (n < 0)
				return fail("read stdin");
			if (n == 0) {
				shutdown(s, SHUT_WR);
				p[0].fd = -1;
			} else if (write_all(s, buf, (size_t)n)) {
				return fail("send");
			}
		}
		if (p[1].revents) {
			n = read(s, buf, sizeof(buf));
			if (n < 0)
				return fail("receive");
			if (n == 0)
				break;
			if (write_all(1, buf, (size_t)n))
				return fail("write stdout");
		}
	}
	close(s);
	return 0;
}

int main(int argc, char **argv)
{
	unsigned cid, port;

	if (argc == 3 && !strcmp(argv[1], "listen"))
		return number(argv[2], &port) ? 1 : listen_echo(port);
	if (argc == 4 && !strcmp(argv[1], "connect"))
		return number(argv[2], &cid) || number(argv[3], &port) ? 1 :
			connect_send(cid, port);
	fprintf(stderr, "usage: vsock listen PORT | vsock connect CID PORT\n");
	return 2;
}
