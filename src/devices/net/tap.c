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

int tap_open(const char *name, char *err, size_t errlen)
{
	struct ifreq ifr;
	int hdr = NET_HDR_SIZE, fd, ret;
	const char *step;

	if (!name || !*name || strlen(name) >= IFNAMSIZ) {
		snprintf(err, errlen, "cannot open tap '%s': the name must be 1..%d bytes",
			name ? name : "", IFNAMSIZ - 1);
		return -EINVAL;
	}
	fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0) {
		ret = -errno;
		snprintf(err, errlen, "cannot open tap '%s': /dev/net/tun: %s", name,
			strerror(errno));
		return ret;
	}
	memset(&ifr, 0, sizeof(ifr));
	memcpy(ifr.ifr_name, name, strlen(name));
	ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
	step = "";
	if (ioctl(fd, TUNSETIFF, &ifr) < 0)
		goto err_close;
	step = "TUNSETVNETHDRSZ: ";
	if (ioctl(fd, TUNSETVNETHDRSZ, &hdr) < 0)
		goto err_close;
	return fd;
err_close:
	ret = -errno;
	snprintf(err, errlen, "cannot open tap '%s': %s%s", name, step, strerror(errno));
	close(fd);
	return ret;
}

int tap_set_offload(int fd, unsigned tun_flags)
{
	return ioctl(fd, TUNSETOFFLOAD, (unsigned long)tun_flags) < 0 ? -errno : 0;
}
