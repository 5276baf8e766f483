/* ember-uffd's serving loop: fill faulting pages from the memory file, zeros after a REMOVE. */
#include "uffd_serve.h"

#include <errno.h>
#include <inttypes.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ember/clock.h"

#define MAX_DEFERRED 4096 /* faults waiting out a REMOVE; each is a blocked peer thread */
#define EVENT_BATCH 64
#define PREFETCH_BATCH 64 /* pages copied ahead between two looks at the faults */

enum fill { FILL_DONE, FILL_RETRY, FILL_GONE, FILL_ERROR };

struct session {
	struct uffd_serve *s;
	uint64_t *removed[UFFD_MAX_REGIONS]; /* per page: given back, serve zeros from now on */
	uint64_t deferred[MAX_DEFERRED];     /* fault addresses to retry (EAGAIN) */
	unsigned nr_deferred;
	void *zeros;         /* one huge page of zeros (no UFFDIO_ZEROPAGE there) */
	bool populated;      /* --mode all: done copying everything */
	unsigned pop_region; /* --mode all: where copying resumes after EAGAIN */
	uint64_t pop_page, pop_start_us, pop_bytes;
	uint64_t faults, copied, zeroed, removes, retries;
	size_t prefetch_next; /* --working-set: next page to copy ahead */
	uint64_t prefetched;
};

static bool test_bit(const uint64_t *map, uint64_t i)
{
	return map[i / 64] >> (i % 64) & 1;
}

/* One UFFDIO_COPY (src) or UFFDIO_ZEROPAGE (src NULL). *done: bytes filled, even when
 * the call fails part way (the kernel then reports progress and EAGAIN). */
static int fill_once(int uffd, uint64_t dst, const uint8_t *src, uint64_t len, uint64_t *done)
{
	int ret;

	if (src) {
		struct uffdio_copy c = { .dst = dst, .src = (uintptr_t)src, .len = len };
		ret = ioctl(uffd, UFFDIO_COPY, &c);
		*done = ret == 0 ? len : c.copy > 0 ? (uint64_t)c.copy : 0;
	} else {
		struct uffdio_zeropage z = { .range = { .start = dst, .len = len } };
		ret = ioctl(uffd, UFFDIO_ZEROPAGE, &z);
		*done = ret == 0 ? len : z.zeropage > 0 ? (uint64_t)z.zeropage : 0;
	}
	return ret == 0 ? 0 : -errno;
}

/* Fill [dst + *pos, dst + len) of region r from src (NULL: zeros), advancing *pos. A page
 * already present (EEXIST) is fine: wake whoever waits on it and go on. A range that
 * spans two VMAs fails with ENOENT, so shrink to pages; a page not registered at all is
 * not ours to fill. EAGAIN (a REMOVE is queued) means come back after reading events. */
static enum fill fill(struct session *x, const struct uffd_region *r, uint64_t dst,
	const uint8_t *src, uint64_t len, uint64_t *pos)
{
	uint64_t ps = r->page_size, chunk = len;
	int uffd = x->s->uffd;

	while (*pos < len) {
		uint64_t n = len - *pos < chunk ? len - *pos : chunk, done;
		const uint8_t *from = src ? src + *pos : ps == 4096 ? NULL : x->zeros;
		int ret = fill_once(uffd, dst + *pos, from, n, &done);

		*pos += done;
		if (src)
			x->copied += done / ps;
		else
			x->zeroed += done / ps;
		if (ret == 0 || done > 0) {
			chunk = chunk < len / 2 ? chunk * 2 : len;
			continue;
		}
		if (ret == -EAGAIN)
			return FILL_RETRY;
		if (ret == -ESRCH)
			return FILL_GONE; /* the peer's memory is gone: it is exiting */
		if (ret == -ENOENT && n > ps) {
			chunk = ps;
			continue;
		}
		if (ret == -EEXIST) {
			struct uffdio_range w = { .start = dst + *pos, .len = ps };
			ioctl(uffd, UFFDIO_WAKE, &w);
		} else if (ret != -ENOENT) {
			fprintf(stderr,
				"ember-uffd: filling %" PRIu64 " bytes at 0x%" PRIx64 ": %s\n", n,
				dst + *pos, strerror(-ret));
			return FILL_ERROR;
		}
		*pos += ps;
	}
	return FILL_DONE;
}

/* --mode all: copy every page not given back, resuming where an EAGAIN stopped us. */
static enum fill populate(struct session *x)
{
	struct uffd_serve *s = x->s;

	if (!x->pop_start_us)
		x->pop_start_us = mono_ns() / 1000;
	for (; x->pop_region < s->nr_regs; x->pop_region++, x->pop_page = 0) {
		const struct uffd_region *r = &s->regs[x->pop_region];
		uint64_t pages = r->size / r->page_size;

		while (x->pop_page < pages) {
			uint64_t a = x->pop_page, b = a, pos = 0, before = x->copied;
			enum fill f;

			if (test_bit(x->removed[x->pop_region], a)) {
				x->pop_page++;
				continue;
			}
			while (b < pages && !test_bit(x->removed[x->pop_region], b))
				b++;
			f = fill(x, r, r->base_host_virt_addr + a * r->page_size,
				s->mem + r->offset + a * r->page_size, (b - a) * r->page_size,
				&pos);
			x->pop_bytes += (x->copied - before) * r->page_size;
			x->pop_page = a + pos / r->page_size;
			if (f != FILL_DONE)
				return f;
		}
	}
	x->populated = true;
	printf("ember-uffd: populated %" PRIu64 " MiB in %" PRIu64 " us\n", x->pop_bytes >> 20,
		mono_ns() / 1000 - x->pop_start_us);
	fflush(stdout);
	return FILL_DONE;
}

/* The region holding host address addr, or -1. */
static int region_at(const struct uffd_serve *s, uint64_t addr)
{
	for (unsigned i = 0; i < s->nr_regs; i++)
		if (addr >= s->regs[i].base_host_virt_addr &&
			addr - s->regs[i].base_host_virt_addr < s->regs[i].size)
			return (int)i;
	return -1;
}

/* The region holding memory-file offset off, or -1. */
static int region_holding(const struct uffd_serve *s, uint64_t off)
{
	for (unsigned i = 0; i < s->nr_regs; i++)
		if (off >= s->regs[i].offset && off - s->regs[i].offset < s->regs[i].size)
			return (int)i;
	return -1;
}

/* Fill page pg of region i from the memory file. */
static enum fill fill_page(struct session *x, unsigned i, uint64_t pg)
{
	const struct uffd_region *r = &x->s->regs[i];
	uint64_t pos = 0;

	return fill(x, r, r->base_host_virt_addr + pg * r->page_size,
		x->s->mem + r->offset + pg * r->page_size, r->page_size, &pos);
}

static enum fill handle_fault(struct session *x, uint64_t addr)
{
	struct uffd_serve *s = x->s;
	int i = region_at(s, addr);
	const struct uffd_region *r;
	uint64_t pg, pos = 0;

	if (i < 0) {
		fprintf(stderr,
			"ember-uffd: page fault at 0x%" PRIx64 " is outside every region the "
			"peer announced\n",
			addr);
		return FILL_ERROR;
	}
	if (s->populate_all && !x->populated) {
		enum fill f = populate(x);
		if (f != FILL_DONE)
			return f;
	}
	r = &s->regs[i];
	pg = (addr - r->base_host_virt_addr) / r->page_size;
	if (test_bit(x->removed[i], pg)) /* given back: zeros, as the guest expects */
		return fill(x, r, r->base_host_virt_addr + pg * r->page_size, NULL, r->page_size,
			&pos);
	return fill_page(x, (unsigned)i, pg);
}

/* Note the page a fault asked for, by its offset in the memory file. */
static int record_fault(struct session *x, uint64_t addr)
{
	const struct uffd_serve *s = x->s;
	int i = region_at(s, addr);
	const struct uffd_region *r;

	if (i < 0)
		return 0; /* handle_fault says so */
	r = &s->regs[i];
	return working_set_add(s->record,
		r->offset + ((addr - r->base_host_virt_addr) & ~(r->page_size - 1)));
}

/* Copy the next pages of the working set in, unless the VM has them already (EEXIST),
 * gave them back, or they are in no region it announced (another snapshot's set). */
static enum fill prefetch_some(struct session *x)
{
	const struct uffd_serve *s = x->s;
	const struct working_set *ws = s->prefetch;

	for (unsigned done = 0; done < PREFETCH_BATCH && x->prefetch_next < ws->n; done++) {
		uint64_t off = ws->pages[x->prefetch_next];
		int i = region_holding(s, off);

		if (i >= 0) {
			uint64_t pg = (off - s->regs[i].offset) / s->regs[i].page_size;
			uint64_t before = x->copied;
			enum fill f = FILL_DONE;

			if (!test_bit(x->removed[i], pg))
				f = fill_page(x, (unsigned)i, pg);
			x->prefetched += x->copied - before;
			if (f == FILL_RETRY)
				return FILL_DONE; /* a REMOVE is queued: after the events */
			if (f != FILL_DONE)
				return f;
		}
		x->prefetch_next++;
	}
	return FILL_DONE;
}

/* The peer gave [start, end) back (madvise DONTNEED): from now on those pages read as
 * zeros, as the guest expects, never as the snapshot's old contents. */
static void mark_removed(struct session *x, uint64_t start, uint64_t end)
{
	x->removes++;
	for (unsigned i = 0; i < x->s->nr_regs; i++) {
		const struct uffd_region *r = &x->s->regs[i];
		uint64_t lo = start > r->base_host_virt_addr ? start : r->base_host_virt_addr;
		uint64_t hi = end < r->base_host_virt_addr + r->size
			? end
			: r->base_host_virt_addr + r->size;

		if (lo >= hi)
			continue;
		for (uint64_t p = (lo - r->base_host_virt_addr) / r->page_size;
			p * r->page_size < hi - r->base_host_virt_addr; p++)
			x->removed[i][p / 64] |= 1ULL << (p % 64);
	}
}

static enum fill defer(struct session *x, uint64_t addr)
{
	if (x->nr_deferred == MAX_DEFERRED) {
		fprintf(stderr, "ember-uffd: more than %d faults waiting on EAGAIN\n",
			MAX_DEFERRED);
		return FILL_ERROR;
	}
	x->deferred[x->nr_deferred++] = addr;
	return FILL_DONE;
}

/* Read every queued event, then retry the deferred faults once. */
static enum fill drain(struct session *x)
{
	struct uffd_msg msgs[EVENT_BATCH];
	unsigned kept = 0;
	enum fill f = FILL_DONE;

	for (;;) {
		ssize_t n = read(x->s->uffd, msgs, sizeof(msgs));

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			break;
		if (n <= 0 || n % (ssize_t)sizeof(msgs[0])) {
			fprintf(stderr, "ember-uffd: reading the userfaultfd: %s\n",
				n < 0 ? strerror(errno) : "short read");
			return FILL_ERROR;
		}
		for (size_t i = 0; i < (size_t)n / sizeof(msgs[0]); i++) {
			const struct uffd_msg *m = &msgs[i];

			if (m->event == UFFD_EVENT_PAGEFAULT) {
				x->faults++;
				if (x->s->record && record_fault(x, m->arg.pagefault.address)) {
					fprintf(stderr,
						"ember-uffd: out of memory for the working set\n");
					return FILL_ERROR;
				}
				f = handle_fault(x, m->arg.pagefault.address);
				if (f == FILL_RETRY)
					f = defer(x, m->arg.pagefault.address);
				if (f != FILL_DONE)
					return f;
			} else if (m->event == UFFD_EVENT_REMOVE) {
				mark_removed(x, m->arg.remove.start, m->arg.remove.end);
			} else {
				fprintf(stderr, "ember-uffd: ignoring unexpected event %u\n",
					m->event);
			}
		}
	}
	for (unsigned i = 0; i < x->nr_deferred; i++) {
		x->retries++;
		f = handle_fault(x, x->deferred[i]);
		if (f == FILL_RETRY)
			x->deferred[kept++] = x->deferred[i];
		else if (f != FILL_DONE)
			return f;
	}
	x->nr_deferred = kept;
	return FILL_DONE;
}

/* The peer sends nothing after the handshake: EOF means the VM is gone, data is abuse. */
static enum fill check_peer(struct session *x, short revents)
{
	char c;
	ssize_t n;

	if (revents & (POLLHUP | POLLRDHUP | POLLERR))
		return FILL_GONE;
	n = recv(x->s->sock, &c, 1, MSG_DONTWAIT);
	if (n == 0 || (n < 0 && errno == ECONNRESET))
		return FILL_GONE;
	if (n < 0)
		return errno == EAGAIN || errno == EINTR ? FILL_DONE : FILL_GONE;
	fprintf(stderr, "ember-uffd: the peer sent data after the handshake\n");
	return FILL_ERROR;
}

static bool prefetching(const struct session *x)
{
	return x->s->prefetch && x->prefetch_next < x->s->prefetch->n;
}

static enum fill loop(struct session *x)
{
	for (;;) {
		struct pollfd p[2] = {
			{ .fd = x->s->uffd, .events = POLLIN },
			{ .fd = x->s->sock, .events = POLLIN | POLLRDHUP },
		};
		enum fill f = FILL_DONE;

		/* With faults deferred, poll briefly: the REMOVE that blocked them may already
		 * have been read by us, so no new event would wake us. While prefetching, only
		 * look: faults first, then the next batch of the working set. */
		if (poll(p, 2, prefetching(x) ? 0 : x->nr_deferred ? 1 : -1) < 0) {
			if (errno == EINTR)
				continue;
			fprintf(stderr, "ember-uffd: poll: %s\n", strerror(errno));
			return FILL_ERROR;
		}
		if (p[0].revents & (POLLERR | POLLNVAL)) {
			fprintf(stderr,
				"ember-uffd: the userfaultfd reports an error "
				"(not initialised with UFFDIO_API?)\n");
			return FILL_ERROR;
		}
		if (p[0].revents & POLLHUP)
			return FILL_GONE;
		if (p[0].revents & POLLIN || x->nr_deferred)
			f = drain(x);
		if (f == FILL_DONE && p[1].revents)
			f = check_peer(x, p[1].revents);
		if (f == FILL_DONE && prefetching(x))
			f = prefetch_some(x);
		if (f != FILL_DONE)
			return f;
	}
}

int uffd_serve_run(struct uffd_serve *s)
{
	struct session *x = calloc(1, sizeof(*x));
	enum fill f = FILL_ERROR;
	uint64_t zsize = 0;

	if (!x)
		goto err_nomem;
	x->s = s;
	for (unsigned i = 0; i < s->nr_regs; i++) {
		uint64_t pages = s->regs[i].size / s->regs[i].page_size;

		x->removed[i] = calloc((pages + 63) / 64, sizeof(uint64_t));
		if (!x->removed[i])
			goto err_nomem;
		if (s->regs[i].page_size > zsize)
			zsize = s->regs[i].page_size;
	}
	if (zsize > 4096) {
		x->zeros = mmap(NULL, zsize, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (x->zeros == MAP_FAILED) {
			x->zeros = NULL;
			goto err_nomem;
		}
	}
	f = loop(x);
	if (s->verbose)
		printf("ember-uffd: served %" PRIu64 " faults: %" PRIu64 " pages copied, %" PRIu64
		       " zero-filled, %" PRIu64 " removes, %" PRIu64 " retries, %" PRIu64
		       " prefetched\n",
			x->faults, x->copied, x->zeroed, x->removes, x->retries, x->prefetched);
	fflush(stdout);
	goto out;
err_nomem:
	fprintf(stderr, "ember-uffd: out of memory for %u regions\n", s->nr_regs);
out:
	if (x) {
		for (unsigned i = 0; i < s->nr_regs; i++)
			free(x->removed[i]);
		if (x->zeros)
			munmap(x->zeros, zsize);
	}
	free(x);
	return f == FILL_ERROR ? -1 : 0;
}
