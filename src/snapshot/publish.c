/* Putting a snapshot's files in place: renames over the final names, each made durable
 * by a sync of its directory before the next step. */
#include "ember/snapshot_publish.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* fsync the directory that holds `path`, so that a rename there survives a crash. */
static int sync_dir(const char *path)
{
	const char *slash = strrchr(path, '/');
	char *dir;
	int fd, ret = 0;

	if (!slash)
		dir = strdup(".");
	else
		dir = strndup(path, slash == path ? 1 : (size_t)(slash - path));
	if (!dir)
		return -ENOMEM;
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	ret = fd < 0 ? -errno : 0;
	free(dir);
	if (ret)
		return ret;
	if (fsync(fd) < 0)
		ret = -errno;
	close(fd);
	return ret;
}

int snap_publish(const char *mem_tmp, const char *mem_path, const char *state_tmp,
	const char *state_path, char *err, size_t errlen)
{
	int ret;

	if (rename(mem_tmp, mem_path) < 0) {
		ret = -errno;
		snprintf(err, errlen, "memory file %s: cannot rename %s to it: %s", mem_path,
			mem_tmp, strerror(-ret));
		return ret;
	}
	/* Synced before the state file is renamed, so that no crash keeps the second rename
	 * and loses the first. */
	ret = sync_dir(mem_path);
	if (ret) {
		snprintf(err, errlen, "memory file %s: in place, but cannot sync its directory: %s",
			mem_path, strerror(-ret));
		return ret;
	}
	if (!state_tmp)
		return 0;
	if (rename(state_tmp, state_path) < 0) {
		ret = -errno;
		snprintf(err, errlen,
			"state file %s: cannot rename %s to it: %s (memory file %s "
			"is already the new one; restore refuses it with the old state file)",
			state_path, state_tmp, strerror(-ret), mem_path);
		return ret;
	}
	ret = sync_dir(state_path);
	if (ret)
		snprintf(err, errlen, "state file %s: written, but cannot sync its directory: %s",
			state_path, strerror(-ret));
	return ret;
}
