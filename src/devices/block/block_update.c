/* virtio-blk changes at run time: a new backing file swapped in between requests, and new
 * rate-limit buckets (Firecracker's PATCH /drives after boot). */
#include "block_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ember/clock.h"
#include "ember/virtio.h"

int virtio_block_set_path(struct virtio_dev *vd, const char *path, char *err, size_t errlen)
{
	struct block *b = blk_of(vd);
	struct block_backend *be;
	int ret;

	if (!b) {
		snprintf(err, errlen, "not a block device");
		return -ENODEV;
	}
	ret = block_file_open(b->id, path, b->read_only, &be, err, errlen);
	return ret ? ret : virtio_block_set_backend(vd, be, path, err, errlen);
}

int virtio_block_set_backend(struct virtio_dev *vd, struct block_backend *be, const char *path,
	char *err, size_t errlen)
{
	struct block *b = blk_of(vd);
	struct block_backend *old;
	char *copy = b ? strdup(path) : NULL;

	if (!copy) {
		if (b)
			snprintf(err, errlen, "drive '%s': out of memory", b->id);
		else
			snprintf(err, errlen, "not a block device");
		be->ops->close(be);
		return b ? -ENOMEM : -ENODEV;
	}
	virtio_lock(vd);
	/* With the transport lock held nothing new reaches the engine (requests are submitted
	 * under it, on this thread); the drain waits for what the engine has. After it no
	 * request can touch the old backend, so it may be closed. What it finished stays on
	 * the done list and is answered as usual. */
	blk_engine_drain(b->engine);
	blk_engine_set_backend(b->engine, be);
	old = b->be;
	b->be = be;
	free(b->path);
	b->path = copy;
	blk_set_capacity(b, be->ops->size(be));
	virtio_config_changed(vd);
	virtio_unlock(vd);
	old->ops->close(old);
	return 0;
}

int virtio_block_set_limit(struct virtio_dev *vd, const struct rate_limit_update *u, char *err,
	size_t errlen)
{
	struct block *b = blk_of(vd);
	char why[160];
	int ret;

	if (!b) {
		snprintf(err, errlen, "not a block device");
		return -ENODEV;
	}
	virtio_lock(vd);
	ret = rate_limiter_update(&b->rl, u, mono_ns(), why, sizeof(why));
	if (!ret && ev_is_active(&b->throttle)) {
		/* What the old limit held back is weighed against the new one now. */
		ev_timer_stop(b->loop, &b->throttle);
		blk_process(b);
	}
	virtio_unlock(vd);
	if (ret)
		snprintf(err, errlen, "drive '%s': rate_limiter: %s", b->id, why);
	return ret;
}
