/* Watching a userfaultfd page-fault handler: if it goes away, faults would block forever
 * (in the kernel, where no signal of ours reaches them). A thread of its own notices,
 * revokes guest memory (guest_mem_revoke), then unregisters it so every blocked fault
 * wakes up (on zeros), and reports it. */
#include "ember/uffd.h"

#include <errno.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ember/guest_mem.h"
#include "ember/log.h"
#include "ember/seccomp.h"
#include "ember/thread.h"

struct uffd_watch {
	pthread_t thread;
	int sock, uffd, stop_fd;
	struct guest_mem *gm;
	uffd_lost_fn lost;
	void *opaque;
};

/* True when the peer closed, failed or hung up; data it sends is read and ignored. */
static bool handler_gone(int sock)
{
	char buf[256];
	ssize_t n = recv(sock, buf, sizeof(buf), MSG_DONTWAIT);

	return n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR);
}

static void *watch(void *arg)
{
	struct uffd_watch *w = arg;
	struct pollfd fds[2] = { { .fd = w->sock, .events = POLLIN | POLLRDHUP },
		{ .fd = w->stop_fd, .events = POLLIN } };

	/* Before the first byte from the handler (another process) is read. */
	seccomp_install_thread(SECCOMP_UFFD_WATCH);
	for (;;) {
		if (poll(fds, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (fds[1].revents)
			return NULL; /* uffd_watch_stop */
		if ((fds[0].revents & (POLLRDHUP | POLLHUP | POLLERR)) || handler_gone(w->sock))
			break;
	}
	log_err("uffd: the page-fault handler went away; guest memory can no longer be served");
	/* The VM's end (and its reason) first: unregistering wakes every fault blocked on the
	 * uffd, and those vCPUs then run on zero pages, where the guest may triple-fault and
	 * report a reset before this reason is recorded (seen under ASan's timing). */
	w->lost(w->opaque);
	/* Woken faults read zeros: whoever copies guest memory must be able to tell (a disk
	 * write in flight would put them in the image). */
	guest_mem_revoke(w->gm);
	for (unsigned i = 0; i < w->gm->nr_regions; i++) {
		struct uffdio_range r = { .start = (uint64_t)(uintptr_t)w->gm->regions[i].host,
			.len = w->gm->regions[i].size };
		if (ioctl(w->uffd, UFFDIO_UNREGISTER, &r) < 0)
			log_warn("uffd: unregister region %u: %s", i, strerror(errno));
	}
	return NULL;
}

struct uffd_watch *uffd_watch_start(int sock, int uffd, struct guest_mem *gm, uffd_lost_fn lost,
	void *opaque, char *err, size_t errlen)
{
	struct uffd_watch *w = calloc(1, sizeof(*w));
	int ret;

	if (!w) {
		snprintf(err, errlen, "uffd watch: out of memory");
		return NULL;
	}
	w->sock = sock;
	w->uffd = uffd;
	w->lost = lost;
	w->opaque = opaque;
	w->gm = gm;
	w->stop_fd = eventfd(0, EFD_CLOEXEC);
	if (w->stop_fd < 0) {
		snprintf(err, errlen, "uffd watch: eventfd: %s", strerror(errno));
		free(w);
		return NULL;
	}
	/* Every signal blocked: process signals and vCPU kicks go elsewhere, and no handler
	 * (with calls outside its filter) ever runs on it. */
	ret = thread_spawn(&w->thread, watch, w, NULL);
	if (ret) {
		snprintf(err, errlen, "uffd watch: cannot start thread: %s", strerror(ret));
		close(w->stop_fd);
		free(w);
		return NULL;
	}
	return w;
}

void uffd_watch_stop(struct uffd_watch *w)
{
	uint64_t one = 1;

	if (!w)
		return;
	if (write(w->stop_fd, &one, sizeof(one)) < 0)
		log_warn("uffd watch: cannot stop: %s", strerror(errno));
	pthread_join(w->thread, NULL);
	close(w->stop_fd);
	free(w);
}
