/* ember-uffd's serving loop: page faults and removals on one VM's userfaultfd. */
#ifndef EMBER_UFFD_SERVE_H
#define EMBER_UFFD_SERVE_H

#include <stdbool.h>
#include <stdint.h>

#include "ember/uffd.h"
#include "working_set.h"

/* One VM session. main() fills it after a checked handshake; the run owns nothing in it. */
struct uffd_serve {
	const uint8_t *mem; /* the memory file, mapped read-only */
	uint64_t mem_size;
	struct uffd_region regs[UFFD_MAX_REGIONS];
	unsigned nr_regs;
	int uffd;          /* non-blocking userfaultfd from the peer */
	int sock;          /* the peer's connection, watched for its end */
	bool populate_all; /* --mode all: copy everything on the first fault */
	bool verbose;      /* summary line when the VM ends */
	/* --working-set: pages to copy in ahead of the VM's faults, in this order, between
	 * serving the faults that do come (NULL: none); or where to note each page the VM
	 * faults in, in order (NULL: nothing noted). */
	const struct working_set *prefetch;
	struct working_set *record;
};

/* Serve faults until the VM ends (peer closes the socket, uffd hangs up, or its memory
 * is gone): 0. On a misbehaving peer or a failed ioctl: message on stderr, -1. */
int uffd_serve_run(struct uffd_serve *s);

#endif
