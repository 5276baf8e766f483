/* virtio-pmem device model (virtio 1.2, 5.19): the backing file mapped into a KVM slot
 * above RAM, config space {start, size}, one queue whose FLUSH msyncs the file. */
#include "ember/virtio_devices.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "ember/byteorder.h"
#include "ember/clock.h"
#include "ember/guest_mem.h"
#include "ember/log_ratelimit.h"
#include "ember/pmem.h"
#include "ember/virtio.h"
#include "ember/vm_fd.h"
#include "pmem_internal.h"

/* Map `file_size` bytes of `fd` over an anonymous private region of `size` bytes (the
 * padding to PMEM_ALIGN never reaches the file, as Firecracker). MAP_FAILED on failure. */
static void *map_region(int fd, uint64_t file_size, uint64_t size, bool read_only)
{
	int prot = PROT_READ | (read_only ? 0 : PROT_WRITE);
	void *base = mmap(NULL, size, prot, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);

	if (base == MAP_FAILED)
		return base;
	if (mmap(base, file_size, prot, MAP_SHARED | MAP_NORESERVE | MAP_FIXED, fd, 0) ==
		MAP_FAILED) {
		int e = errno;

		munmap(base, size);
		errno = e;
		return MAP_FAILED;
	}
	return base;
}

/* Give a FLUSH its answer: the status, then the used ring. False if the queue is gone
 * (reset) or the status is outside guest memory. */
static bool answer(struct virtq *q, const struct pmem_chain *c, uint32_t status)
{
	struct virtq_elem e = { .head = c->head, .write_len = 4 };
	uint8_t *p = guest_mem_ptr_mut(q->mem, c->status_gpa, 4);

	if (!q->ready || !p)
		return false;
	put_le32(p, status);
	return virtq_push(q, &e, 4) == 0;
}

/* Start an msync for every waiting FLUSH, unless one runs or the limiter says wait (one op
 * and the file's bytes per msync, as Firecracker). Transport lock held. */
static void start_flush(struct pmem *p)
{
	uint64_t wait;

	if (p->flushing || !p->nr_waiting || ev_is_active(&p->throttle))
		return;
	wait = rate_limiter_consume(&p->rl, p->file_size, 1, mono_ns());
	if (wait) {
		p->throttled++;
		ev_timer_set(&p->throttle, (double)wait / 1e9, 0.);
		ev_timer_start(p->loop, &p->throttle);
		return;
	}
	memcpy(p->covered, p->waiting, p->nr_waiting * sizeof(p->waiting[0]));
	p->nr_covered = p->nr_waiting;
	p->nr_waiting = 0;
	p->flushing = true;
	p->flushes++;
	pmem_flusher_request(p->flusher);
}

/* The msync for the covered FLUSH requests ended with `result`: answer them, start the
 * next one for those that came meanwhile. Device loop, no lock held. */
static void flush_done(void *ctx, int result)
{
	struct pmem *p = ctx;
	struct virtq *q;
	bool pushed = false;

	virtio_lock(p->vd);
	q = virtio_queue(p->vd, 0);
	if (result) {
		p->flush_errors++;
		log_warn_ratelimited("pmem '%s': msync: %s", p->id, strerror(-result));
	}
	for (unsigned i = 0; i < p->nr_covered; i++)
		pushed |= answer(q, &p->covered[i],
			result ? VIRTIO_PMEM_RESP_TYPE_EIO : VIRTIO_PMEM_RESP_TYPE_OK);
	p->nr_covered = 0;
	p->flushing = false;
	if (pushed)
		virtio_notify(p->vd, 0);
	start_flush(p);
	virtio_unlock(p->vd);
}

/* Take every chain on the queue: a bad one is answered with nothing at once, a FLUSH
 * waits for the next msync. Transport lock held. */
static void process(struct pmem *p)
{
	struct virtq *q = virtio_queue(p->vd, 0);
	struct virtq_elem e;
	bool pushed = false;
	char err[160];

	for (unsigned budget = VIRTIO_KICK_BUDGET;; budget--) {
		int ret;

		if (!budget) {
			virtio_queue_yield(p->vd, 0);
			break;
		}
		if (p->nr_waiting == PMEM_QUEUE_SIZE)
			break; /* cannot happen: no more chains than the queue holds */
		ret = virtq_pop(q, &e, err, sizeof(err));
		if (ret == -ENOENT)
			break;
		if (ret) {
			p->bad++;
			virtio_needs_reset(p->vd, err);
			break;
		}
		if (pmem_req_parse(q, &e, err, sizeof(err))) {
			p->bad++;
			log_warn_ratelimited("pmem '%s': bad request: %s", p->id, err);
			if (virtq_push(q, &e, 0))
				break;
			pushed = true;
			continue;
		}
		p->waiting[p->nr_waiting++] = (struct pmem_chain){ .head = e.head,
			.status_gpa = e.segs[e.nread].gpa };
	}
	if (pushed)
		virtio_notify(p->vd, 0);
	start_flush(p);
}

static void on_throttle(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct pmem *p = w->data;

	(void)loop;
	(void)revents;
	virtio_lock(p->vd);
	start_flush(p);
	virtio_unlock(p->vd);
}

/* ---- virtio_dev_ops ---- */

static uint64_t pmem_features(void *dev)
{
	(void)dev;
	return 0;
}

/* After a restore: the answers the saved state owed, given now that the queue is live. */
static int pmem_activate(void *dev, uint64_t acked)
{
	struct pmem *p = dev;
	struct virtq *q = virtio_queue(p->vd, 0);
	bool pushed = false;

	(void)acked;
	for (unsigned i = 0; i < p->nr_replay; i++)
		pushed |= answer(q, &p->replay[i], p->replay[i].status);
	p->nr_replay = 0;
	if (pushed)
		virtio_notify(p->vd, 0);
	return 0;
}

static void pmem_reset(void *dev)
{
	struct pmem *p = dev;

	/* A running msync ends on its own; its chains are no longer the driver's. */
	ev_timer_stop(p->loop, &p->throttle);
	p->nr_covered = p->nr_waiting = p->nr_replay = 0;
}

static void pmem_queue_notify(void *dev, unsigned q)
{
	if (q == 0)
		process(dev);
}

static void pmem_config_read(void *dev, uint32_t offset, uint8_t *data, uint32_t len)
{
	const struct pmem *p = dev;
	uint8_t cs[PMEM_CONFIG_SIZE];

	put_le64(cs, p->gpa);
	put_le64(cs + 8, p->size);
	memcpy(data, cs + offset, len); /* the transport keeps offset + len within the size */
}

static void pmem_config_write(void *dev, uint32_t offset, const uint8_t *data, uint32_t len)
{
	(void)dev; /* read-only config space: writes are ignored */
	(void)offset;
	(void)data;
	(void)len;
}

static void pmem_destroy(void *dev)
{
	struct pmem *p = dev;
	char err[160];

	ev_timer_stop(p->loop, &p->throttle);
	pmem_flusher_free(p->flusher); /* no msync runs on the mapping after this */
	/* The slot goes before the memory behind it. */
	if (p->vm_fd >= 0 && p->host &&
		kvm_vm_set_device_slot(p->vm_fd, p->slot, p->gpa, 0, NULL, false, err, sizeof(err)))
		log_warn_ratelimited("pmem '%s': %s", p->id, err);
	if (p->host)
		munmap(p->host, p->size);
	free(p->id);
	free(p);
}

static void pmem_attach(void *dev, struct virtio_dev *vd)
{
	struct pmem *p = dev;

	p->vd = vd;
}

static void pmem_stats(void *dev, void (*put)(void *ctx, const char *key, uint64_t value),
	void *ctx)
{
	struct pmem *p = dev;

	put(ctx, "flushes", p->flushes);
	put(ctx, "flush_errors", p->flush_errors);
	put(ctx, "throttled", p->throttled);
	put(ctx, "bad_requests", p->bad);
}

static const struct virtio_dev_ops pmem_ops = {
	.kind = "pmem",
	.device_id = VIRTIO_ID_PMEM,
	.num_queues = 1,
	.queue_max_size = PMEM_QUEUE_SIZE,
	.config_size = PMEM_CONFIG_SIZE,
	.features = pmem_features,
	.activate = pmem_activate,
	.reset = pmem_reset,
	.queue_notify = pmem_queue_notify,
	.config_read = pmem_config_read,
	.config_write = pmem_config_write,
	.save = pmem_save,
	.restore = pmem_restore,
	.destroy = pmem_destroy,
	.attach = pmem_attach,
	.stats = pmem_stats,
};

int virtio_pmem_info(struct virtio_dev *vd, struct pmem_info *out)
{
	const struct pmem *p = virtio_model(vd, &pmem_ops);

	if (!p)
		return -ENODEV;
	*out = (struct pmem_info){ .gpa = p->gpa, .size = p->size };
	return 0;
}

int virtio_pmem_set_limit(struct virtio_dev *vd, const struct rate_limit_update *u, char *err,
	size_t errlen)
{
	struct pmem *p = virtio_model(vd, &pmem_ops);
	char why[160];
	int ret;

	if (!p) {
		snprintf(err, errlen, "not a pmem device");
		return -ENODEV;
	}
	virtio_lock(vd);
	ret = rate_limiter_update(&p->rl, u, mono_ns(), why, sizeof(why));
	if (!ret && ev_is_active(&p->throttle)) {
		ev_timer_stop(p->loop, &p->throttle);
		process(p);
	}
	virtio_unlock(vd);
	if (ret)
		snprintf(err, errlen, "pmem '%s': rate_limiter: %s", p->id, why);
	return ret;
}

/* The file mapped and given to KVM as `slot` at `gpa`. 0 or -errno with err. */
static int map_into_guest(struct pmem *p, const struct pmem_config *cfg, char *err, size_t errlen)
{
	int ret = pmem_file_size(cfg, &p->file_size, err, errlen);
	int fd;
	void *host;

	if (ret)
		return ret;
	p->size = pmem_region_size(p->file_size);
	fd = open(cfg->path, (cfg->read_only ? O_RDONLY : O_RDWR) | O_CLOEXEC);
	if (fd < 0) {
		ret = -errno;
		snprintf(err, errlen, "pmem '%s': cannot open %s: %s", cfg->id, cfg->path,
			strerror(errno));
		return ret;
	}
	host = map_region(fd, p->file_size, p->size, cfg->read_only);
	ret = host == MAP_FAILED ? -errno : 0;
	close(fd); /* the mapping keeps the file */
	if (ret) {
		snprintf(err, errlen, "pmem '%s': cannot map %s: %s", cfg->id, cfg->path,
			strerror(-ret));
		return ret;
	}
	if (p->vm_fd >= 0) {
		char why[160];

		ret = kvm_vm_set_device_slot(p->vm_fd, p->slot, p->gpa, p->size, host,
			cfg->read_only, why, sizeof(why));
		if (ret) {
			snprintf(err, errlen, "pmem '%s': %s", cfg->id, why);
			munmap(host, p->size);
			return ret;
		}
	}
	p->host = host;
	return 0;
}

struct virtio_dev *virtio_pmem_new(const struct virtio_env *env, uint64_t base, uint32_t gsi,
	const struct pmem_config *cfg, uint64_t gpa, unsigned slot, char *err, size_t errlen)
{
	struct pmem *p = calloc(1, sizeof(*p));
	char why[160];

	if (!p || !(p->id = strdup(cfg->id))) {
		free(p);
		snprintf(err, errlen, "pmem '%s': out of memory", cfg->id);
		return NULL;
	}
	p->loop = env->loop;
	p->vm_fd = env->vm_fd;
	p->slot = slot;
	p->gpa = gpa;
	p->read_only = cfg->read_only;
	ev_timer_init(&p->throttle, on_throttle, 0., 0.);
	p->throttle.data = p;
	if (gpa % PMEM_ALIGN) {
		snprintf(err, errlen, "pmem '%s': region at 0x%llx is not 2 MiB aligned", cfg->id,
			(unsigned long long)gpa);
		goto err_free;
	}
	if (rate_limiter_init(&p->rl, &cfg->limit, mono_ns(), why, sizeof(why))) {
		snprintf(err, errlen, "pmem '%s': rate_limiter: %s", cfg->id, why);
		goto err_free;
	}
	if (map_into_guest(p, cfg, err, errlen))
		goto err_free;
	p->flusher = pmem_flusher_new(env->loop, p->host, p->file_size, flush_done, p, why,
		sizeof(why));
	if (!p->flusher) {
		snprintf(err, errlen, "pmem '%s': %s", cfg->id, why);
		goto err_free;
	}
	return virtio_mmio_new(env, base, gsi, &pmem_ops, p, err, errlen);
err_free:
	pmem_destroy(p);
	return NULL;
}
