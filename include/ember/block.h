/* Block devices: the host backend contract, the raw-file backend and the virtio-blk
 * request parser (virtio 1.x 5.2) that the device model and the fuzzer share. */
#ifndef EMBER_BLOCK_H
#define EMBER_BLOCK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "ember/rate_limiter.h"
#include "ember/virtio.h"

/* A drive as a definition describes it (copied by the device). */
struct drive_config {
	char *id;   /* also the virtio-blk serial (first 20 bytes) */
	char *path; /* raw image */
	bool read_only;
	bool root; /* adds root=/dev/vdX to the command line */
	/* cache_type Writeback: FLUSH offered and a flush fsyncs the file. Otherwise Unsafe
	 * (Firecracker's default): no FLUSH offered, nothing synced. */
	bool writeback;
	/* io_engine Async: requests go to an io_uring (several in flight), completions come
	 * back on the device loop. Otherwise Sync (the default): a worker thread per drive. */
	bool async_io;
	struct rate_limit limit;
};

#define BLK_SECTOR_SIZE 512u
#define BLK_SECTOR_SHIFT 9
#define BLK_ID_BYTES 20 /* VIRTIO_BLK_ID_BYTES: the serial the driver reads with GET_ID */

/* Feature bits (5.2.3). */
#define VIRTIO_BLK_F_SIZE_MAX 1
#define VIRTIO_BLK_F_SEG_MAX 2
#define VIRTIO_BLK_F_RO 5
#define VIRTIO_BLK_F_BLK_SIZE 6
#define VIRTIO_BLK_F_FLUSH 9

/* Request types and status values (5.2.6). */
#define VIRTIO_BLK_T_IN 0
#define VIRTIO_BLK_T_OUT 1
#define VIRTIO_BLK_T_FLUSH 4
#define VIRTIO_BLK_T_GET_ID 8
#define VIRTIO_BLK_S_OK 0
#define VIRTIO_BLK_S_IOERR 1
#define VIRTIO_BLK_S_UNSUPP 2

#define BLK_REQ_HEADER 16 /* le32 type, le32 reserved, le64 sector */

/* ---- host backend ---- */

struct block_backend;

/* What a backend does for the device model. read/write/flush run on the device's I/O
 * worker thread and may block; size and close on the control thread. */
struct block_backend_ops {
	/* Transfer exactly the iovecs' total length at byte `offset`: 0 or -errno (a read
	 * that meets the end of the file is -EIO; short transfers are retried inside). */
	int (*read)(struct block_backend *b, uint64_t offset, const struct iovec *iov,
		unsigned iovcnt);
	int (*write)(struct block_backend *b, uint64_t offset, const struct iovec *iov,
		unsigned iovcnt);
	/* Make written data durable (fsync for a file): 0 or -errno. */
	int (*flush)(struct block_backend *b);
	/* The file descriptor an io_uring may read and write, or -1 (NULL: none). */
	int (*fd)(const struct block_backend *b);
	/* Size in bytes, as found when the backend was opened. */
	uint64_t (*size)(const struct block_backend *b);
	void (*close)(struct block_backend *b);
};

/* Implementations embed this as their first member. */
struct block_backend {
	const struct block_backend_ops *ops;
};

/* Open a raw image: O_RDWR, or O_RDONLY when `read_only` (a read-only drive can never
 * write its file). Only a regular file or a block device is taken; anything else (a FIFO,
 * a socket, a character device) is refused without waiting on it, so every caller (Lua
 * definition, update_drive, the API, restore) is safe. Errors name the drive: "drive
 * 'rootfs': cannot open /x.img: No such file or directory". 0 with *out set, or -errno.
 * Control thread. */
__attribute__((warn_unused_result)) int block_file_open(const char *drive_id, const char *path,
	bool read_only, struct block_backend **out, char *err, size_t errlen);

/* Whether this host can run drives with io_engine Async: an io_uring can be set up and
 * knows readv, writev and fsync. 0, or -errno with err in Firecracker's words
 * ("Error calling io_uring_setup: Function not implemented (os error 38)"). */
__attribute__((warn_unused_result)) int block_uring_check(char *err, size_t errlen);

/* ---- virtio-blk device ---- */

/* Like virtio_block_new (ember/virtio_devices.h) but on a backend the caller opened, for
 * tests and other backends. Takes ownership of `be` whatever the outcome. */
struct virtio_dev *virtio_block_new_backend(const struct virtio_env *env, uint64_t base,
	uint32_t gsi, const struct drive_config *cfg, struct block_backend *be, char *err,
	size_t errlen);

/* The features a drive offers (5.2.3): VIRTIO_BLK_F_FLUSH only with cache_type
 * Writeback, RO for a read-only drive, and always SIZE_MAX, SEG_MAX, BLK_SIZE. Pure. */
uint64_t blk_features_for(bool read_only, bool writeback);

/* ---- virtio-blk changes at run time (PATCH /drives after boot); control thread ---- */

struct rate_limit_update;

/* Serve the drive from `path` from now on: opened as at boot (read-only drives O_RDONLY,
 * others O_RDWR; a regular file or a block device). On failure, with err ("drive 'data':
 * cannot open /x.img: No such file or directory"), the old file stays in use. Otherwise as
 * virtio_block_set_backend. -ENODEV if `vd` is not a block device. */
__attribute__((warn_unused_result)) int virtio_block_set_path(struct virtio_dev *vd,
	const char *path, char *err, size_t errlen);
/* Swap in `be` (owned from here, closed on failure) as the backing of `path`: waits until
 * no request runs on the old backend, closes it, sets the capacity to the new size and
 * raises a config-change interrupt (once the driver is up) so the guest reads it again.
 * Requests already finished are answered as usual. */
__attribute__((warn_unused_result)) int virtio_block_set_backend(struct virtio_dev *vd,
	struct block_backend *be, const char *path, char *err, size_t errlen);
/* Change the drive's rate-limit buckets in place (see rate_limiter_update); requests held
 * back by the old limit are looked at again at once. -EINVAL with err, nothing changed. */
__attribute__((warn_unused_result)) int virtio_block_set_limit(struct virtio_dev *vd,
	const struct rate_limit_update *u, char *err, size_t errlen);

/* ---- request parsing (pure: no backend, no state) ---- */

/* What a chain asks for. `status` < 0 means "needs the backend" (IN, OUT, FLUSH);
 * otherwise the answer is already known and the caller writes it. */
struct blk_req {
	uint32_t type;
	uint64_t sector;
	uint64_t len;                         /* data bytes (IN/OUT), a multiple of 512 */
	struct iovec iov[VIRTQ_MAX_SEGMENTS]; /* the data, as host pointers into guest RAM */
	unsigned iovcnt;
	int status;       /* VIRTIO_BLK_S_* decided now, or -1 */
	uint32_t written; /* bytes the device writes, status included */
	const char *why;  /* for a failed request: what was wrong */
};

/* Parse the chain `e` taken from `q`, for a disk of `capacity` sectors. Returns 0 when the
 * chain can be answered (see r->status), or -EINVAL when it has no device-writable status
 * byte: nothing can be answered and the device should go to NEEDS_RESET. GET_ID is
 * answered here: `id` (BLK_ID_BYTES, NUL padded) is copied into the chain. Guest memory
 * is reached through virtq_read/virtq_write and guest_mem_ptr only. */
__attribute__((warn_unused_result)) int blk_req_parse(const struct virtq *q,
	const struct virtq_elem *e, uint64_t capacity, bool read_only, const char id[BLK_ID_BYTES],
	struct blk_req *r);

#endif
