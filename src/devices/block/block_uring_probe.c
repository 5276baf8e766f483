/* Whether this host can run io_engine Async drives: an io_uring, and the operations they use. */
#include "ember/block.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <liburing.h>

int block_uring_check(char *err, size_t errlen)
{
	static const struct {
		int op;
		const char *name;
	} need[] = {
		{ IORING_OP_READV, "IORING_OP_READV" },
		{ IORING_OP_WRITEV, "IORING_OP_WRITEV" },
		{ IORING_OP_FSYNC, "IORING_OP_FSYNC" },
	};
	struct io_uring ring;
	struct io_uring_probe *probe;
	int ret = io_uring_queue_init(2, &ring, 0);

	if (ret) {
		snprintf(err, errlen, "Error calling io_uring_setup: %s (os error %d)",
			strerror(-ret), -ret);
		return ret;
	}
	probe = io_uring_get_probe_ring(&ring);
	if (!probe) {
		io_uring_queue_exit(&ring);
		snprintf(err, errlen, "Error probing the io_uring subsystem: out of memory");
		return -ENOMEM;
	}
	for (size_t i = 0; i < sizeof(need) / sizeof(need[0]); i++) {
		if (!io_uring_opcode_supported(probe, need[i].op)) {
			snprintf(err, errlen,
				"Required operation is not supported on the host kernel: %s",
				need[i].name);
			ret = -EOPNOTSUPP;
			break;
		}
	}
	io_uring_free_probe(probe);
	io_uring_queue_exit(&ring);
	return ret;
}
