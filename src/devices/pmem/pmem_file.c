/* virtio-pmem's host file: the backing file's size, what the device maps and what the
 * configuration checks refuse. */
#include "ember/pmem.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <linux/fs.h>

int pmem_file_size(const struct pmem_config *cfg, uint64_t *size, char *err, size_t errlen)
{
	int fd = open(cfg->path, (cfg->read_only ? O_RDONLY : O_RDWR) | O_NONBLOCK | O_CLOEXEC);
	struct stat st;
	int ret = 0;

	*size = 0;
	if (fd < 0 || fstat(fd, &st) < 0) {
		ret = -errno;
		snprintf(err, errlen, "pmem '%s': cannot open %s: %s", cfg->id, cfg->path,
			strerror(errno));
		goto out;
	}
	if (S_ISREG(st.st_mode)) {
		*size = (uint64_t)st.st_size;
	} else if (!S_ISBLK(st.st_mode) || ioctl(fd, BLKGETSIZE64, size) < 0) {
		snprintf(err, errlen, "pmem '%s': %s is not a regular file or a block device",
			cfg->id, cfg->path);
		ret = -ENOTBLK;
		goto out;
	}
	if (*size == 0) {
		snprintf(err, errlen, "pmem '%s': Error backing file size is 0", cfg->id);
		ret = -EINVAL;
	}
out:
	if (fd >= 0)
		close(fd);
	return ret;
}
