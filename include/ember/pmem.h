/* virtio-pmem (virtio 1.2, 5.19): a host file mapped into guest-physical memory above RAM,
 * its configuration, the FLUSH request the device answers, and the mapping both the
 * device and the checks use. The device is created by virtio_pmem_new (virtio_devices.h). */
#ifndef EMBER_PMEM_H
#define EMBER_PMEM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ember/rate_limiter.h"

struct virtio_dev;
struct virtq;
struct virtq_elem;

#define VIRTIO_ID_PMEM 27
/* The guest region's alignment and size granule (Firecracker: 2 MiB; the Linux driver
 * maps the region in 2 MiB subsections). A file of another size is padded with private
 * anonymous memory that never reaches the file. */
#define PMEM_ALIGN (2ull << 20)
#define PMEM_CONFIG_SIZE 16 /* le64 start, le64 size */

/* Request and response (5.19.6): le32 type (FLUSH = 0), le32 ret (OK = 0, EIO = 1). */
#define VIRTIO_PMEM_REQ_TYPE_FLUSH 0u
#define VIRTIO_PMEM_RESP_TYPE_OK 0u
#define VIRTIO_PMEM_RESP_TYPE_EIO 1u

/* A pmem device as a definition describes it (copied by the device). */
struct pmem_config {
	char *id;
	char *path; /* the backing file */
	bool root;  /* adds root=/dev/pmemN rw|ro to the command line */
	/* The file is mapped read-only and the KVM slot is read-only: guest writes are
	 * dropped (x86: MMIO exits nobody answers), the file is never written. */
	bool read_only;
	struct rate_limit limit; /* FLUSH requests: one op and the file's bytes each */
};

/* The guest-visible size of a file of `file_size` bytes: rounded up to PMEM_ALIGN. */
static inline uint64_t pmem_region_size(uint64_t file_size)
{
	return (file_size + PMEM_ALIGN - 1) & ~(PMEM_ALIGN - 1);
}

/* Size of the backing file `path` (a regular file or block device). 0 or -errno with err:
 * open's error ("pmem 'p0': cannot open /x: No such file or directory"), -ENOTBLK for
 * another kind of file, -EINVAL with *size 0 for an empty one ("pmem 'p0': Error backing
 * file size is 0", Firecracker's words). Any thread; opens and closes the file. */
__attribute__((warn_unused_result)) int pmem_file_size(const struct pmem_config *cfg,
	uint64_t *size, char *err, size_t errlen);

/* Check one request chain: a 4-byte device-readable type that must be FLUSH, then a
 * 4-byte device-writable status (Firecracker's and Linux's layout). 0 when it is a FLUSH
 * whose status goes at offset 0 of the writable part; -EINVAL with err saying why
 * ("pmem: request type 7 is unknown"). Reads guest memory through `q`. */
__attribute__((warn_unused_result)) int pmem_req_parse(const struct virtq *q,
	const struct virtq_elem *e, char *err, size_t errlen);

/* Where the device lives in guest-physical memory and its counters. */
struct pmem_info {
	uint64_t gpa, size;
};
/* The region of a pmem device's transport `vd`; -ENODEV if vd is not pmem. */
__attribute__((warn_unused_result)) int virtio_pmem_info(struct virtio_dev *vd,
	struct pmem_info *out);
/* Change the FLUSH rate limiter of a live device (PATCH /pmem); lock held by the caller
 * (dev_thread_lock). -EINVAL with err on a bad bucket, nothing changed. */
__attribute__((warn_unused_result)) int virtio_pmem_set_limit(struct virtio_dev *vd,
	const struct rate_limit_update *u, char *err, size_t errlen);

#endif
