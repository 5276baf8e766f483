/* TAP backend for virtio-net: open a host tap device with 12-byte virtio-net headers. */
#include "ember/net.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

/* An errno as Rust's io::Error shows it in Firecracker's messages (musl's wording where
 * it differs from glibc's, as Firecracker's tests match it). */
static const char *os_text(int e, char *buf, size_t len)
{
	snprintf(buf, len, "%s (os error %d)", e == EBUSY ? "Resource busy" : strerror(e), e);
	return buf;
}

int tap_open(const char *name, char *err, size_t errlen)
{
	struct ifreq ifr;
	int hdr = NET_HDR_SIZE, fd, ret;
	char os[96];

	if (!name || !*name || strlen(name) >= IFNAMSIZ) {
		snprintf(err, errlen, "Invalid interface name: the name must be 1..%d bytes",
			IFNAMSIZ - 1);
		return -EINVAL;
	}
	fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0) {
		ret = -errno;
		snprintf(err, errlen, "Couldn't open /dev/net/tun: %s",
			os_text(errno, os, sizeof(os)));
		return ret;
	}
	memset(&ifr, 0, sizeof(ifr));
	memcpy(ifr.ifr_name, name, strlen(name));
	ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
	if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
		ret = -errno;
		snprintf(err, errlen,
			"Error while creating ifreq structure: %s. Invalid TUN/TAP Backend provided "
			"by %s. Check our documentation on setting up the network devices.",
			os_text(errno, os, sizeof(os)), name);
		goto err_close;
	}
	if (ioctl(fd, TUNSETVNETHDRSZ, &hdr) < 0) {
		ret = -errno;
		snprintf(err, errlen, "Error while setting size of the vnet header: %s",
			os_text(errno, os, sizeof(os)));
		goto err_close;
	}
	return fd;
err_close:
	close(fd);
	return ret;
}

int tap_set_offload(int fd, unsigned tun_flags)
{
	return ioctl(fd, TUNSETOFFLOAD, (unsigned long)tun_flags) < 0 ? -errno : 0;
}
