/* ember-uffd: reference page-fault handler for snapshot restore with the Uffd memory backend. */
/*
 * Usage: ember-uffd --socket PATH --mem-file FILE [--state STATE] [--mode on-demand|all]
 *                   [--working-set FILE] [--once] [--kill-peer] [-v]
 *
 * Serves guest memory of a VM restored with the Uffd backend (ember, or Firecracker's
 * "mem_backend": {"backend_type": "Uffd", "backend_path": PATH}) from a snapshot's
 * memory file. Start it before the restore; it listens on PATH (a stale socket file is
 * replaced, a live one refused).
 *
 * With --state STATE (the snapshot's state file) it first checks that the memory file
 * belongs to it: an ember memory file names its snapshot in the user.ember.snapshot
 * attribute, the state file records the same id (see include/ember/snapshot_id.h). A
 * mismatch (a crash between writing the two, files from different snapshots), a diff not
 * yet merged or an interrupted merge is refused with a message naming both files and
 * status 1, before the socket exists. A memory file without an id (Firecracker's) passes.
 * The handshake carries no file names, so this check is the handler's to make.
 *
 * The handshake (Firecracker's, byte for byte): the VMM connects and sends ONE message,
 * a JSON array with one object per guest memory region,
 *   [{"base_host_virt_addr":N,"size":N,"offset":N,"page_size":N,"page_size_kib":N},...]
 * (offset = where the region starts in the memory file; page_size_kib is in bytes, a
 * historical misnomer) with the VMM's userfaultfd attached as SCM_RIGHTS. Nothing else
 * is ever sent; the VMM keeps the socket open until it exits. ember-uffd checks all of
 * it (fields, integers, power-of-two page size, no overlaps, regions inside the memory
 * file and adding up to its size) and refuses with a message and status 1 otherwise.
 *
 * Serving: on each page fault it copies the page from the file (UFFDIO_COPY), or with
 * --mode all it copies every region on the first fault and prints
 * "ember-uffd: populated N MiB in X us". A range the VMM gives back (balloon:
 * madvise(MADV_DONTNEED), seen as UFFD_EVENT_REMOVE) is remembered and served as zeros
 * from then on, never from the file again. While a REMOVE is pending the kernel answers
 * EAGAIN; those faults are retried after the queued events are read.
 *
 * With --working-set FILE (on-demand mode): if FILE does not exist, the pages this VM
 * faults in are noted in order and written to FILE when it ends ("ember-uffd: working set
 * of N pages written to FILE"); if it exists (tools/working_set.h gives its form, checked
 * against the memory file: a bad one is refused with status 1 before the socket exists),
 * its pages are copied in, in that order, in batches between the faults the VM does take,
 * so a restore of the same snapshot finds what it touched first last time already there.
 *
 * It ends with status 0 when the VM ends (the peer closes the socket, or the uffd hangs
 * up); with --once after the first VM, else it accepts the next one. If the peer
 * misbehaves (bad handshake, data after it, a fault outside the announced regions) it
 * exits with status 1 and a message. Then the VM's next fault blocks for ever: ember
 * notices the socket closing; Firecracker does not, so supervise the handler there.
 * With --kill-peer, a failed session SIGKILLs the peer (its pid from SO_PEERCRED) so the
 * VM fails at once instead, as Firecracker's example handlers do. -v prints a one-line
 * summary of what was served when a VM ends. Usage errors: 2.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "ember/clock.h"
#include "ember/snapshot_file.h"
#include "ember/snapshot_id.h"
#include "ember/uffd.h"
#include "uffd_serve.h"

#define HANDSHAKE_TIMEOUT_MS 5000 /* from accept to a complete handshake */
#define LATE_FD_MS 100            /* grace for more bytes or a late fd, as Firecracker waits */

static const char *prog = "ember-uffd";

__attribute__((format(printf, 1, 2))) static int fail(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: ", prog);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return -1;
}

/* Listen on `path`. It appears only once it accepts connections (bind a temporary name,
 * listen, rename), so whoever waits for the file can connect at once. Its mode is 0600
 * whatever the umask: chmod before listen, when nobody can connect yet. A socket file
 * nobody listens on is stale and replaced; a live one is refused. */
static int listen_socket(const char *path)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX }, tmp = addr;
	struct stat st;
	int fd, e;

	if (strlen(path) >= sizeof(addr.sun_path) ||
		snprintf(tmp.sun_path, sizeof(tmp.sun_path), "%s.%d", path, (int)getpid()) >=
			(int)sizeof(tmp.sun_path))
		return fail("socket %s: path too long", path);
	memcpy(addr.sun_path, path, strlen(path) + 1);
	if (lstat(path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode))
			return fail("socket %s: exists and is not a socket", path);
		fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd >= 0 && connect(fd, (struct sockaddr *)&addr, sizeof(addr)) == 0) {
			close(fd);
			return fail("socket %s: another process is listening on it", path);
		}
		if (fd >= 0)
			close(fd);
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return fail("socket %s: %s", path, strerror(errno));
	unlink(tmp.sun_path);
	if (bind(fd, (struct sockaddr *)&tmp, sizeof(tmp)) < 0 || chmod(tmp.sun_path, 0600) < 0 ||
		listen(fd, 1) < 0 || rename(tmp.sun_path, path) < 0) {
		e = errno;
		unlink(tmp.sun_path);
		close(fd);
		return fail("socket %s: %s", path, strerror(e));
	}
	return fd;
}

static int64_t now_ms(void)
{
	return (int64_t)(mono_ns() / 1000000);
}

/* Collect SCM_RIGHTS fds into *fd; more than one in all is a protocol error. */
static int take_fds(struct msghdr *mh, int *fd, unsigned *nfds)
{
	for (struct cmsghdr *c = CMSG_FIRSTHDR(mh); c; c = CMSG_NXTHDR(mh, c)) {
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		for (size_t i = 0; i < (c->cmsg_len - CMSG_LEN(0)) / sizeof(int); i++) {
			int f;
			memcpy(&f, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
			if (++*nfds == 1)
				*fd = f;
			else
				close(f);
		}
	}
	return *nfds > 1 ? -1 : 0;
}

/* Receive the handshake: JSON bytes plus exactly one fd. Waits a little for more bytes
 * or a late fd, as Firecracker's handlers do. Returns 0 with the parsed regions, 1 for a
 * connection closed without a byte (a probe, such as another ember-uffd checking whether
 * the socket is live: not a VM), -1 on a bad handshake. */
static int receive_handshake(int sock, struct uffd_region *regs, unsigned *n, int *uffd)
{
	static char buf[UFFD_HANDSHAKE_MAX];
	char err[256] = "no handshake received";
	int64_t deadline = now_ms() + HANDSHAKE_TIMEOUT_MS;
	size_t len = 0;
	unsigned nfds = 0;
	bool parsed = false, r_eof = false;

	*uffd = -1;
	while (!(parsed && *uffd >= 0)) {
		union {
			char b[CMSG_SPACE(sizeof(int) * 8)];
			struct cmsghdr align;
		} ctl;
		struct iovec iov = { .iov_base = buf + len, .iov_len = sizeof(buf) - len };
		struct msghdr mh = { .msg_iov = &iov,
			.msg_iovlen = 1,
			.msg_control = ctl.b,
			.msg_controllen = sizeof(ctl.b) };
		struct pollfd p = { .fd = sock, .events = POLLIN };
		int64_t left = deadline - now_ms();
		ssize_t r;

		if (len > 0 && left > LATE_FD_MS)
			left = LATE_FD_MS;
		if (left <= 0 || poll(&p, 1, (int)left) == 0)
			break;
		r = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
		if (r < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (r < 0) {
			fprintf(stderr, "%s: handshake: %s\n", prog, strerror(errno));
			goto err;
		}
		if (take_fds(&mh, uffd, &nfds) < 0) {
			fprintf(stderr,
				"%s: handshake: peer sent %u file descriptors, expected one\n",
				prog, nfds);
			goto err;
		}
		if (mh.msg_flags & MSG_CTRUNC) {
			fprintf(stderr, "%s: handshake: control data truncated\n", prog);
			goto err;
		}
		if (r == 0) {
			r_eof = true;
			break; /* peer closed: judge what arrived */
		}
		len += (size_t)r;
		parsed = uffd_handshake_parse(buf, len, regs, UFFD_MAX_REGIONS, n, err,
				 sizeof(err)) == 0;
		if (len == sizeof(buf))
			break; /* the fd travels with the first bytes; nothing more may come */
	}
	if (len == 0 && nfds == 0 && r_eof)
		return 1;
	if (!parsed) {
		fprintf(stderr, "%s: bad handshake: %s\n", prog, len ? err : "no data received");
		goto err;
	}
	if (*uffd < 0) {
		fprintf(stderr, "%s: bad handshake: no userfaultfd came with it\n", prog);
		goto err;
	}
	return 0;
err:
	if (*uffd >= 0)
		close(*uffd);
	*uffd = -1;
	return -1;
}

/* The fd must be a userfaultfd, non-blocking (poll on a blocking one reports POLLERR). */
static int check_uffd(int fd)
{
	char link[64], target[64];
	ssize_t len;
	int fl;

	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	len = readlink(link, target, sizeof(target) - 1);
	target[len > 0 ? len : 0] = '\0';
	if (strcmp(target, "anon_inode:[userfaultfd]") != 0)
		return fail("bad handshake: the fd sent is %s, not a userfaultfd",
			len > 0 ? target : "unknown");
	fl = fcntl(fd, F_GETFL);
	if (fl < 0 || (!(fl & O_NONBLOCK) && fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0))
		return fail("userfaultfd: cannot make it non-blocking: %s", strerror(errno));
	return 0;
}

/* Without its handler the VM would hang on its next fault; end it instead. */
static void kill_the_peer(int sock)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);

	if (getsockopt(sock, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0 || cred.pid <= 0 ||
		cred.pid == getpid())
		return;
	if (kill(cred.pid, SIGKILL) == 0)
		fprintf(stderr, "%s: killed the peer (pid %d) so its VM fails instead of hanging\n",
			prog, (int)cred.pid);
}

/* --state: refuse a memory file that is not that state file's. */
static int check_state(const char *state_path, int mfd, const char *mem_path)
{
	struct snap_reader *r = NULL;
	struct snap_id id;
	struct mem_id m;
	bool found = false;
	char err[1024];
	int ret = snap_reader_open(&r, state_path, err, sizeof(err));

	if (!ret)
		ret = snap_id_load(r, &id, &found, NULL, NULL, err, sizeof(err));
	snap_reader_free(r);
	if (ret)
		return fail("%s", err);
	ret = mem_id_read(mfd, &m);
	if (ret == -ENOTSUP) {
		fprintf(stderr,
			"%s: memory file %s: its file system has no extended attributes, "
			"so it cannot be checked against %s\n",
			prog, mem_path, state_path);
		return 0;
	}
	if (ret)
		return fail("memory file %s: cannot read its snapshot id: %s", mem_path,
			strerror(-ret));
	if (snap_id_check_pair(state_path, found ? &id : NULL, mem_path, &m, err, sizeof(err)))
		return fail("%s", err);
	return 0;
}

static int usage(int status)
{
	fprintf(status ? stderr : stdout,
		"usage: %s --socket PATH --mem-file FILE [--state STATE]\n"
		"       [--mode on-demand|all] [--working-set FILE] [--once] [--kill-peer] [-v]\n",
		prog);
	return status;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "socket", required_argument, NULL, 's' },
		{ "mem-file", required_argument, NULL, 'm' },
		{ "state", required_argument, NULL, 'S' },
		{ "mode", required_argument, NULL, 'M' },
		{ "working-set", required_argument, NULL, 'w' },
		{ "once", no_argument, NULL, 'o' },
		{ "kill-peer", no_argument, NULL, 'k' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	struct uffd_serve ctx = { .uffd = -1, .sock = -1 };
	const char *sock_path = NULL, *mem_path = NULL, *state_path = NULL, *ws_path = NULL;
	struct working_set ws = { 0 };
	bool once = false, kill_peer = false;
	struct stat st;
	int c, ret, lfd, mfd, status = 0;
	char err[256];

	while ((c = getopt_long(argc, argv, "v", opts, NULL)) != -1) {
		switch (c) {
		case 's':
			sock_path = optarg;
			break;
		case 'm':
			mem_path = optarg;
			break;
		case 'S':
			state_path = optarg;
			break;
		case 'w':
			ws_path = optarg;
			break;
		case 'o':
			once = true;
			break;
		case 'k':
			kill_peer = true;
			break;
		case 'v':
			ctx.verbose = true;
			break;
		case 'h':
			return usage(0);
		case 'M':
			if (!strcmp(optarg, "all") || !strcmp(optarg, "on-demand")) {
				ctx.populate_all = !strcmp(optarg, "all");
				break;
			}
			fprintf(stderr, "%s: --mode: '%s' is not on-demand or all\n", prog, optarg);
			return 2;
		default:
			return usage(2);
		}
	}
	if (!sock_path || !mem_path || optind != argc)
		return usage(2);
	if (ws_path && ctx.populate_all) {
		fprintf(stderr, "%s: --working-set needs --mode on-demand\n", prog);
		return 2;
	}

	mfd = open(mem_path, O_RDONLY | O_CLOEXEC);
	if (mfd < 0 || fstat(mfd, &st) < 0) {
		fprintf(stderr, "%s: memory file %s: %s\n", prog, mem_path, strerror(errno));
		return 1;
	}
	if (st.st_size <= 0) {
		fprintf(stderr, "%s: memory file %s is empty\n", prog, mem_path);
		return 1;
	}
	if (state_path && check_state(state_path, mfd, mem_path) < 0) {
		close(mfd);
		return 1;
	}
	ctx.mem_size = (uint64_t)st.st_size;
	ctx.mem = mmap(NULL, ctx.mem_size, PROT_READ,
		MAP_PRIVATE | (ctx.populate_all ? MAP_POPULATE : 0), mfd, 0);
	close(mfd);
	if (ctx.mem == MAP_FAILED) {
		fprintf(stderr, "%s: memory file %s: mmap: %s\n", prog, mem_path, strerror(errno));
		return 1;
	}
	if (ws_path) {
		ret = working_set_load(ws_path, ctx.mem_size, &ws, err, sizeof(err));
		if (ret && ret != -ENOENT) {
			fprintf(stderr, "%s: %s\n", prog, err);
			munmap((void *)ctx.mem, ctx.mem_size);
			return 1;
		}
		if (ret)
			ctx.record = &ws;
		else
			ctx.prefetch = &ws;
	}
	lfd = listen_socket(sock_path);
	if (lfd < 0)
		return 1;

	for (;;) {
		ctx.sock = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
		if (ctx.sock < 0) {
			if (errno == EINTR)
				continue;
			fprintf(stderr, "%s: accept on %s: %s\n", prog, sock_path, strerror(errno));
			status = 1;
			break;
		}
		ret = receive_handshake(ctx.sock, ctx.regs, &ctx.nr_regs, &ctx.uffd);
		if (ret == 1) {
			close(ctx.sock);
			continue; /* a probe: keep waiting for the VM */
		}
		if (ret < 0 || check_uffd(ctx.uffd) < 0) {
			status = 1;
		} else if (uffd_handshake_check_file(ctx.regs, ctx.nr_regs, ctx.mem_size, err,
				   sizeof(err)) < 0) {
			fprintf(stderr, "%s: bad handshake for memory file %s: %s\n", prog,
				mem_path, err);
			status = 1;
		} else if (uffd_serve_run(&ctx) < 0) {
			status = 1;
		}
		if (status && kill_peer)
			kill_the_peer(ctx.sock);
		if (!status && ctx.record) {
			if (working_set_save(ws_path, &ws, err, sizeof(err)) < 0) {
				fprintf(stderr, "%s: %s\n", prog, err);
				status = 1;
			} else {
				printf("%s: working set of %zu pages written to %s\n", prog, ws.n,
					ws_path);
				fflush(stdout);
				ctx.prefetch = &ws; /* the next VM of this handler gets it */
				ctx.record = NULL;
			}
		}
		if (ctx.uffd >= 0)
			close(ctx.uffd);
		close(ctx.sock);
		ctx.uffd = ctx.sock = -1;
		if (once || status)
			break;
	}

	close(lfd);
	unlink(sock_path);
	munmap((void *)ctx.mem, ctx.mem_size);
	working_set_free(&ws);
	return status;
}
