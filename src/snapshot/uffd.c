/* Uffd memory backend: register guest RAM with a userfaultfd and hand it to a page-fault handler. */
#include "ember/uffd.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/userfaultfd.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

#include "ember/guest_mem.h"

#ifndef USERFAULTFD_IOC_NEW /* linux/userfaultfd.h before 6.1 */
#define USERFAULTFD_IOC_NEW _IO(0xAA, 0x00)
#endif

/* /dev/userfaultfd (6.1+) is governed by file permissions and always handles kernel-mode
 * faults; the syscall needs CAP_SYS_PTRACE or vm.unprivileged_userfaultfd=1 for those.
 * Guest memory is touched by KVM and by ember itself, so kernel-mode faults are a must
 * (no UFFD_USER_MODE_ONLY): without them a restored VM fails with EFAULT. */
static int create_uffd(const char *path, char *err, size_t errlen)
{
	int flags = O_CLOEXEC | O_NONBLOCK;
	int dev, fd, dev_errno, e;

	dev = open("/dev/userfaultfd", O_RDWR | O_CLOEXEC);
	if (dev >= 0) {
		fd = ioctl(dev, USERFAULTFD_IOC_NEW, flags);
		dev_errno = errno;
		close(dev);
		if (fd >= 0)
			return fd;
	} else {
		dev_errno = errno;
	}
	fd = (int)syscall(SYS_userfaultfd, flags);
	if (fd >= 0)
		return fd;
	e = errno;
	snprintf(err, errlen,
		"uffd backend %s: cannot create a userfaultfd: %s "
		"(/dev/userfaultfd: %s)",
		path, strerror(e), strerror(dev_errno));
	return -e;
}

static int setup_uffd(const struct guest_mem *gm, const char *path, int fd, char *err,
	size_t errlen)
{
	struct uffdio_api api = { .api = UFFD_API, .features = UFFD_FEATURE_EVENT_REMOVE };
	int e;

	if (ioctl(fd, UFFDIO_API, &api) < 0) {
		e = errno;
		snprintf(err, errlen, "uffd backend %s: UFFDIO_API with EVENT_REMOVE: %s", path,
			strerror(e));
		return -e;
	}
	if (!(api.features & UFFD_FEATURE_EVENT_REMOVE)) {
		snprintf(err, errlen, "uffd backend %s: kernel lacks UFFD_FEATURE_EVENT_REMOVE",
			path);
		return -ENOTSUP;
	}
	for (unsigned i = 0; i < gm->nr_regions; i++) {
		const struct guest_mem_region *r = &gm->regions[i];
		struct uffdio_register reg = {
			.range = { .start = (uintptr_t)r->host, .len = r->size },
			.mode = UFFDIO_REGISTER_MODE_MISSING,
		};

		if (ioctl(fd, UFFDIO_REGISTER, &reg) < 0) {
			e = errno;
			snprintf(err, errlen,
				"uffd backend %s: cannot register region %u "
				"(%" PRIu64 " bytes at %p): %s",
				path, i, r->size, (void *)r->host, strerror(e));
			return -e;
		}
		if (!(reg.ioctls & (1ULL << _UFFDIO_COPY))) {
			snprintf(err, errlen,
				"uffd backend %s: region %u cannot be filled with "
				"UFFDIO_COPY",
				path, i);
			return -ENOTSUP;
		}
	}
	return 0;
}

static int connect_socket(const char *path, char *err, size_t errlen)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	int fd, e;

	if (strlen(path) >= sizeof(addr.sun_path)) {
		snprintf(err, errlen, "uffd backend %s: socket path is longer than %zu bytes", path,
			sizeof(addr.sun_path) - 1);
		return -ENAMETOOLONG;
	}
	memcpy(addr.sun_path, path, strlen(path) + 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		e = errno;
		snprintf(err, errlen, "uffd backend %s: socket: %s", path, strerror(e));
		return -e;
	}
	while (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
		if (errno == EINTR)
			continue;
		e = errno;
		snprintf(err, errlen, "uffd backend %s: cannot connect: %s", path, strerror(e));
		close(fd);
		return -e;
	}
	return fd;
}

/* One sendmsg carrying the whole JSON and the fd, as Firecracker does; a short write
 * (only possible for a huge message) is finished without the fd. */
static int send_handshake(int sock, int uffd, const char *msg, size_t len, const char *path,
	char *err, size_t errlen)
{
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} ctl;
	struct iovec iov = { .iov_base = (void *)msg, .iov_len = len };
	struct msghdr mh = { .msg_iov = &iov,
		.msg_iovlen = 1,
		.msg_control = ctl.buf,
		.msg_controllen = sizeof(ctl.buf) };
	struct cmsghdr *c;
	size_t done = 0;
	ssize_t n;

	memset(&ctl, 0, sizeof(ctl));
	c = CMSG_FIRSTHDR(&mh);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(c), &uffd, sizeof(int));
	do
		n = sendmsg(sock, &mh, MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	while (n >= 0 && (done += (size_t)n) < len) {
		n = send(sock, msg + done, len - done, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			n = 0;
	}
	if (n < 0) {
		int e = errno;
		snprintf(err, errlen, "uffd backend %s: cannot send the handshake: %s", path,
			strerror(e));
		return -e;
	}
	return 0;
}

int uffd_backend_attach(const struct guest_mem *gm, const char *socket_path, int *uffd, int *sock,
	char *err, size_t errlen)
{
	struct uffd_region regs[GUEST_MEM_MAX_REGIONS];
	char msg[UFFD_HANDSHAKE_MAX];
	int fd, s, len, ret;

	*uffd = -1;
	*sock = -1;
	if (gm->nr_regions == 0 || gm->nr_regions > GUEST_MEM_MAX_REGIONS || gm->page_size == 0) {
		snprintf(err, errlen, "uffd backend %s: guest memory is not mapped", socket_path);
		return -EINVAL;
	}
	for (unsigned i = 0; i < gm->nr_regions; i++) {
		if (!gm->regions[i].host) {
			snprintf(err, errlen, "uffd backend %s: region %u is not mapped",
				socket_path, i);
			return -EINVAL;
		}
		regs[i] = (struct uffd_region){
			.base_host_virt_addr = (uintptr_t)gm->regions[i].host,
			.size = gm->regions[i].size,
			.offset = gm->regions[i].file_offset,
			.page_size = gm->page_size,
			.page_size_kib = gm->page_size, /* bytes, as Firecracker sends it */
		};
	}
	len = uffd_handshake_encode(regs, gm->nr_regions, msg, sizeof(msg));
	if (len < 0) {
		snprintf(err, errlen, "uffd backend %s: handshake does not fit in %zu bytes",
			socket_path, sizeof(msg));
		return len;
	}
	fd = create_uffd(socket_path, err, errlen);
	if (fd < 0)
		return fd;
	ret = setup_uffd(gm, socket_path, fd, err, errlen);
	if (ret < 0)
		goto err_close_uffd;
	s = connect_socket(socket_path, err, errlen);
	if (s < 0) {
		ret = s;
		goto err_close_uffd;
	}
	ret = send_handshake(s, fd, msg, (size_t)len, socket_path, err, errlen);
	if (ret < 0)
		goto err_close_sock;
	*uffd = fd;
	*sock = s;
	return 0;

err_close_sock:
	close(s);
err_close_uffd:
	close(fd); /* the last reference: the kernel unregisters every range */
	return ret;
}
