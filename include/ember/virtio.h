/* virtio 1.x over MMIO: the transport, split virtqueues, and the contract every device
 * model fills (struct virtio_dev_ops). Devices never touch transport registers; the
 * transport owns the register file, feature negotiation, queue addresses, interrupt
 * status, ioeventfd/irqfd wiring and NEEDS_RESET.
 *
 * Threads: register accesses arrive on vCPU threads (under the transport's lock); queue
 * notifications (ioeventfd) and all queue processing run on the control thread's loop.
 * A device's ops are called with the transport lock held: on the control thread, except
 * config_read/config_write, which come from vCPU threads and must not block. A model that
 * touches its queues outside an op (a timer, a completion) takes the lock with
 * virtio_lock/virtio_unlock. */
#ifndef EMBER_VIRTIO_H
#define EMBER_VIRTIO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct bus;
struct ev_loop;
struct guest_mem;
struct mmds;
struct snap_cursor;
struct snap_writer;

/* Device ids (virtio 1.x, 5). */
#define VIRTIO_ID_NET 1
#define VIRTIO_ID_BLOCK 2
#define VIRTIO_ID_RNG 4
#define VIRTIO_ID_BALLOON 5
#define VIRTIO_ID_VSOCK 19

/* Feature bits the transport itself handles. */
#define VIRTIO_F_RING_INDIRECT_DESC 28
#define VIRTIO_F_RING_EVENT_IDX 29
#define VIRTIO_F_VERSION_1 32

#define VIRTQ_MAX_SIZE 256    /* largest queue a device offers */
#define VIRTQ_MAX_SEGMENTS 64 /* a chain with more descriptors is refused */
#define VIRTIO_MAX_QUEUES 8

/* ---- split virtqueue ---- */

struct virtq {
	/* Set by the driver through the transport; checked when the queue becomes ready. The
	 * transport sets `ready` only while the device is live (after activate, until reset
	 * or NEEDS_RESET): virtq_pop on a queue that is not ready finds nothing. */
	uint16_t size; /* power of two, <= max_size */
	uint16_t max_size;
	bool ready;
	uint64_t desc_gpa, avail_gpa, used_gpa;
	/* Device-side indices, saved in snapshots. */
	uint16_t next_avail;     /* next avail ring entry to take */
	uint16_t next_used;      /* next used ring entry to fill */
	uint16_t signalled_used; /* next_used when the driver was last notified (event idx) */
	bool event_idx;          /* VIRTIO_F_RING_EVENT_IDX negotiated */
	bool indirect;           /* VIRTIO_F_RING_INDIRECT_DESC negotiated */
	const struct guest_mem *mem;
};

/* One segment of a descriptor chain: guest-physical range, device-writable or not. */
struct virtq_seg {
	uint64_t gpa;
	uint32_t len;
	bool write;
};

/* A request taken from the avail ring. Readable segments come before writable ones
 * (virtio 2.7.4.2); the walker refuses chains that interleave them. */
struct virtq_elem {
	uint16_t head;
	unsigned nsegs;
	unsigned nread; /* the first nread segments are device-readable */
	struct virtq_seg segs[VIRTQ_MAX_SEGMENTS];
	uint64_t read_len, write_len;
};

/* Check a queue's size (power of two, 1..max_size, max_size <= VIRTQ_MAX_SIZE) and that
 * its three rings are aligned and lie inside guest memory. 0, or -EINVAL with err
 * ("virtq: used ring at 0x... (2054 bytes) is outside guest memory"). Any thread. */
__attribute__((warn_unused_result)) int virtq_validate(const struct virtq *q, char *err,
	size_t errlen);
/* Take the next available chain. 0 with *e filled; -ENOENT if the ring is empty or the
 * queue is not ready; -EINVAL (with err: "virtq: descriptor 7 points outside guest
 * memory") for a hostile or broken chain: loops, out-of-range indices or addresses, more
 * than VIRTQ_MAX_SEGMENTS, an avail index that moved more than the queue size, readable
 * after writable, bad indirect tables. Every guest address is checked with guest_mem_ptr.
 * Zero-length descriptors are skipped (no segment). On -EINVAL nothing is consumed: the
 * queue is broken and the device should go to NEEDS_RESET (virtio_needs_reset). With
 * event idx, an empty ring leaves avail_event = next_avail (the driver kicks on the next
 * chain). */
__attribute__((warn_unused_result)) int virtq_pop(struct virtq *q, struct virtq_elem *e, char *err,
	size_t errlen);
/* Give back the chain the last virtq_pop took (the next pop returns it again), e.g. when
 * a rate limiter defers it. Only right after a successful pop. */
void virtq_undo_pop(struct virtq *q);
/* Return a chain to the driver with `written` bytes written into its writable part
 * (release-ordered after those bytes). -EINVAL if the queue is not ready, the head is
 * outside it, or written > e->write_len. */
__attribute__((warn_unused_result)) int virtq_push(struct virtq *q, const struct virtq_elem *e,
	uint32_t written);
/* After pushes: whether the driver wants an interrupt (event idx aware). */
bool virtq_needs_notify(struct virtq *q);
/* Copy helpers over a chain's segments (bounds-checked through guest_mem_ptr): read from
 * the readable part at `offset`, write into the writable part at `offset`. Return the
 * bytes copied, or -EFAULT. */
long virtq_read(const struct virtq *q, const struct virtq_elem *e, uint64_t offset, void *dst,
	size_t len);
long virtq_write(const struct virtq *q, const struct virtq_elem *e, uint64_t offset,
	const void *src, size_t len);

/* ---- device models ---- */

struct virtio_dev;

struct virtio_dev_ops {
	const char *kind;   /* "block", "net", "vsock", "rng", "balloon" */
	uint32_t device_id; /* VIRTIO_ID_* */
	unsigned num_queues;
	uint16_t queue_max_size;
	uint32_t config_size; /* bytes of device config space */
	/* Device feature bits offered (VERSION_1, RING_INDIRECT_DESC and RING_EVENT_IDX are
	 * added by the transport). */
	uint64_t (*features)(void *dev);
	/* The driver set DRIVER_OK: queues are ready, `acked` holds negotiated features.
	 * Return non-zero to refuse (the transport sets NEEDS_RESET). */
	int (*activate)(void *dev, uint64_t acked);
	/* The driver reset the device: drop in-flight work and queue state the device keeps. */
	void (*reset)(void *dev);
	/* The driver kicked queue `q` (control thread, from the ioeventfd). Process it with
	 * virtio_queue(vd, q) / virtq_pop / virtq_push / virtio_notify. */
	void (*queue_notify)(void *dev, unsigned q);
	/* Config space access at `offset` (< config_size, len <= 8, within config_size). */
	void (*config_read)(void *dev, uint32_t offset, uint8_t *data, uint32_t len);
	void (*config_write)(void *dev, uint32_t offset, const uint8_t *data, uint32_t len);
	/* Persist pair: device state beyond what the transport saves (its queues and
	 * registers are saved by the transport). Paused VM, control thread. On restore the
	 * transport calls restore, then activate if the driver had set DRIVER_OK. A refused
	 * state is -errno with err saying why, naming the device. */
	int (*save)(void *dev, struct snap_writer *w);
	int (*restore)(void *dev, struct snap_cursor *c, char *err, size_t errlen);
	/* Release the backend (files, taps, sockets). */
	void (*destroy)(void *dev);
	/* Called once by virtio_mmio_new before any other op: the model keeps `vd` to call
	 * virtio_queue / virtio_notify / virtio_needs_reset. */
	void (*attach)(void *dev, struct virtio_dev *vd);
	/* Optional: key/value counters for metrics and vm:devices() (may be NULL). */
	void (*stats)(void *dev, void (*put)(void *ctx, const char *key, uint64_t value),
		void *ctx);
};

/* What the transport needs from the VM. */
struct virtio_env {
	struct ev_loop *loop;         /* the device thread's: queues, taps, sockets, timers */
	struct ev_loop *control_loop; /* the control thread's: work the device thread's filter
				       * forbids (vsock sockets); NULL: `loop` does it all */
	const struct guest_mem *mem;
	int vm_fd;         /* for KVM_IOEVENTFD / KVM_IRQFD */
	struct bus *mmio;  /* the transport registers its window here */
	struct mmds *mmds; /* net: the store MMDS answers from (not owned), or NULL */
	bool log_dirty;    /* memory slots a device gives KVM log dirty pages (virtio-mem) */
};

/* Create a virtio-mmio device at `base` (LAYOUT_VIRTIO_MMIO_SIZE window) raising `gsi`,
 * driving the model `dev` through `ops`. The transport owns `dev` from here on (destroy is
 * called by virtio_free, or here on failure). NULL with err on failure. Control thread,
 * before vCPUs run: registers the window on env->mmio, one eventfd per queue as a
 * KVM_IOEVENTFD on QueueNotify (datamatch: the queue index) watched by an ev_io on
 * env->loop, and an eventfd as KVM_IRQFD on `gsi` (edge: one pulse per interrupt). With
 * vm_fd < 0 (tests) the eventfds exist but are not given to KVM. */
struct virtio_dev *virtio_mmio_new(const struct virtio_env *env, uint64_t base, uint32_t gsi,
	const struct virtio_dev_ops *ops, void *dev, char *err, size_t errlen);
void virtio_free(struct virtio_dev *vd);

/* For device models, with the transport lock held (inside an op, or between
 * virtio_lock and virtio_unlock): their queue `q`; raise the used-buffer interrupt if the
 * driver wants it; bump the config generation and raise a config-change interrupt; mark
 * the device broken (NEEDS_RESET: its queues stop, the driver gets a config-change
 * interrupt) after a hostile request, with a rate-limited log line naming the device. */
struct virtq *virtio_queue(struct virtio_dev *vd, unsigned q);
void virtio_notify(struct virtio_dev *vd, unsigned q);
void virtio_config_changed(struct virtio_dev *vd);
void virtio_needs_reset(struct virtio_dev *vd, const char *why);
/* At most this many chains per queue in one call of queue_notify (or of a model's own
 * pump): a guest that refills its ring as fast as the device empties it must not hold the
 * loop, nor the device lock, from the API and the other devices. A quarter of the
 * largest ring: the loop turns at least four times per full ring. */
#define VIRTIO_KICK_BUDGET 64
/* And at most about this many bytes copied or made in one call, for models whose chains
 * can be large (entropy, transmitted frames): 64 chains of 64 KiB of random bytes took
 * over 100 ms on a slow host while the API waited for the device lock. */
#define VIRTIO_KICK_BYTES (256u << 10)
/* For device models, lock held: the model stopped at its budget with chains left on queue
 * `q`. The transport calls queue_notify(q) again on a later loop iteration, after the
 * loop has polled its other watchers; dropped if the device is reset meanwhile. */
void virtio_queue_yield(struct virtio_dev *vd, unsigned q);
/* The transport lock, for a model's own control-thread callbacks (timers, completions)
 * that touch queues or call the functions above. Never held across a blocking call. */
void virtio_lock(struct virtio_dev *vd);
void virtio_unlock(struct virtio_dev *vd);

/* Persist pair for the transport (registers, features, queues) plus the model's own.
 * Paused VM, control thread. virtio_restore goes to a device built as at boot (same
 * model, base, gsi, on the new VM's env): it checks the saved state against it (device
 * id, queue count, features offered, every ready queue re-validated), restores the
 * model, re-activates it, and kicks every live queue once (a kick may have been in
 * flight at snapshot time) and re-raises a pending interrupt. */
__attribute__((warn_unused_result)) int virtio_save(struct virtio_dev *vd, struct snap_writer *w);
__attribute__((warn_unused_result)) int virtio_restore(struct virtio_dev *vd, struct snap_cursor *c,
	char *err, size_t errlen);

/* The model behind `vd` if it is driven by `ops` (a model's own run-time functions use
 * it to find their object: virtio_block_set_path, virtio_net_set_limits), else NULL. */
void *virtio_model(struct virtio_dev *vd, const struct virtio_dev_ops *ops);

/* Window and interrupt, for ACPI and the kernel command line. */
uint64_t virtio_base(const struct virtio_dev *vd);
uint32_t virtio_gsi(const struct virtio_dev *vd);
const char *virtio_kind(const struct virtio_dev *vd);
/* Counters for metrics and vm:devices(): the transport's ("kicks", "interrupts",
 * "needs_reset"), then the model's. Control thread. */
void virtio_stats(struct virtio_dev *vd, void (*put)(void *ctx, const char *key, uint64_t value),
	void *ctx);

#endif
