/* virtio-pmem's guest input: the FLUSH request's layout, checked. */
#include "ember/pmem.h"

#include <errno.h>
#include <stdio.h>

#include "ember/byteorder.h"
#include "ember/virtio.h"

#define REQ_BYTES 4  /* struct virtio_pmem_req: le32 type */
#define RESP_BYTES 4 /* struct virtio_pmem_resp: le32 ret */

int pmem_req_parse(const struct virtq *q, const struct virtq_elem *e, char *err, size_t errlen)
{
	uint8_t type[REQ_BYTES];

	if (e->read_len != REQ_BYTES) {
		snprintf(err, errlen, "pmem: request has %llu readable bytes instead of %d",
			(unsigned long long)e->read_len, REQ_BYTES);
		return -EINVAL;
	}
	if (e->write_len != RESP_BYTES) {
		snprintf(err, errlen, "pmem: status has %llu writable bytes instead of %d",
			(unsigned long long)e->write_len, RESP_BYTES);
		return -EINVAL;
	}
	/* One descriptor each, as Firecracker (and Linux) have them: the status is written
	 * where the one writable descriptor points. */
	if (e->nread != 1 || e->nsegs != 2) {
		snprintf(err, errlen, "pmem: request in %u descriptors instead of 2", e->nsegs);
		return -EINVAL;
	}
	if (virtq_read(q, e, 0, type, sizeof(type)) != (long)sizeof(type)) {
		snprintf(err, errlen, "pmem: request is outside guest memory");
		return -EINVAL;
	}
	if (get_le32(type) != VIRTIO_PMEM_REQ_TYPE_FLUSH) {
		snprintf(err, errlen, "pmem: request type %u is unknown", get_le32(type));
		return -EINVAL;
	}
	return 0;
}
