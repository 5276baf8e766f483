/* virtio-balloon (virtio 1.x, 5.5): runtime target, statistics, and the pieces of the
 * device that tests and fuzzers drive directly (PFN and stats parsers, host discard).
 *
 * The device is created by virtio_balloon_new (ember/virtio_devices.h). Everything here
 * runs on the control thread unless a comment says otherwise. */
#ifndef EMBER_BALLOON_H
#define EMBER_BALLOON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct guest_mem;
struct virtio_dev;

/* The balloon as a definition describes it. */
struct balloon_config {
	bool enabled;
	uint32_t amount_mib;
	bool deflate_on_oom;
	uint32_t stats_polling_interval_s; /* 0 = off */
	bool free_page_hinting;
	bool free_page_reporting;
};

/* Feature bits (5.5.3). ember offers STATS_VQ (when a polling interval is set),
 * DEFLATE_ON_OOM, FREE_PAGE_HINT and REPORTING as configured; never MUST_TELL_HOST or
 * PAGE_POISON. */
#define VIRTIO_BALLOON_F_MUST_TELL_HOST 0
#define VIRTIO_BALLOON_F_STATS_VQ 1
#define VIRTIO_BALLOON_F_DEFLATE_ON_OOM 2
#define VIRTIO_BALLOON_F_FREE_PAGE_HINT 3
#define VIRTIO_BALLOON_F_PAGE_POISON 4
#define VIRTIO_BALLOON_F_REPORTING 5

/* Inflate and deflate buffers carry 32-bit page frame numbers of 4 KiB pages,
 * whatever the guest's own page size. */
#define BALLOON_PFN_SHIFT 12
#define BALLOON_PAGE_SIZE (1ULL << BALLOON_PFN_SHIFT)
#define BALLOON_PAGES_PER_MIB 256u

/* Statistics tags (5.5.6.3; 10-15 are the later Linux/virtio 1.3 additions). The names
 * are Firecracker's JSON field names: balloon_stat_name(BALLOON_STAT_SWAP_IN) is
 * "swap_in". */
enum balloon_stat_tag {
	BALLOON_STAT_SWAP_IN = 0,
	BALLOON_STAT_SWAP_OUT = 1,
	BALLOON_STAT_MAJFLT = 2,
	BALLOON_STAT_MINFLT = 3,
	BALLOON_STAT_MEMFREE = 4,
	BALLOON_STAT_MEMTOT = 5,
	BALLOON_STAT_AVAIL = 6,
	BALLOON_STAT_CACHES = 7,
	BALLOON_STAT_HTLB_PGALLOC = 8,
	BALLOON_STAT_HTLB_PGFAIL = 9,
	BALLOON_STAT_OOM_KILL = 10,
	BALLOON_STAT_ALLOC_STALL = 11,
	BALLOON_STAT_ASYNC_SCAN = 12,
	BALLOON_STAT_DIRECT_SCAN = 13,
	BALLOON_STAT_ASYNC_RECLAIM = 14,
	BALLOON_STAT_DIRECT_RECLAIM = 15,
	BALLOON_STAT_TAGS
};

/* What GET /balloon/statistics and vm:balloon_stats() show. A tag the guest never sent
 * has its bit clear in `present` (and value 0): show it as absent, not as zero. */
struct balloon_stats {
	uint32_t target_pages, actual_pages; /* config space num_pages / actual */
	uint32_t target_mib, actual_mib;
	uint32_t polling_interval_s;
	uint32_t updates; /* stats buffers accepted so far */
	uint64_t present; /* bit n: tag n was in the latest buffer */
	uint64_t value[BALLOON_STAT_TAGS];
};

/* "swap_in" ... "direct_reclaim"; NULL for a tag >= BALLOON_STAT_TAGS. */
const char *balloon_stat_name(unsigned tag);

/* ---- runtime control (the device's own functions; control thread) ---- */

/* Ask the guest to hold `amount_mib` MiB in its balloon: sets config num_pages and raises
 * a config-change interrupt if the driver is up (else the driver reads it when it
 * starts). -EINVAL if more than guest memory, -ENODEV if `vd` is not a balloon. */
__attribute__((warn_unused_result)) int virtio_balloon_set_target(struct virtio_dev *vd,
	uint32_t amount_mib);
/* The latest statistics with target and actual. -ENOTSUP if the balloon was configured
 * without statistics (polling interval 0), -ENODEV if not a balloon. */
__attribute__((warn_unused_result)) int virtio_balloon_stats(struct virtio_dev *vd,
	struct balloon_stats *out);
/* PATCH /balloon/statistics: change the polling interval. As Firecracker: statistics can
 * be neither turned on nor off at runtime (-ENOTSUP when going from or to 0). */
__attribute__((warn_unused_result)) int virtio_balloon_set_stats_interval(struct virtio_dev *vd,
	uint32_t seconds);

/* Free page hinting (5.5.6.6), run by the host: `start` sets a new command id in the
 * config space (2, 3, ... as Firecracker counts; 0 STOP and 1 DONE are reserved), the
 * driver answers with the id and then hints free blocks, which the device discards while
 * that id is current; the driver ends with STOP. `stop` sets DONE: the guest takes its
 * hinted pages back, and no hint is acted on from then. With acknowledge_on_stop the
 * device sets DONE itself when the driver's STOP arrives. */
#define BALLOON_HINT_CMD_STOP 0u
#define BALLOON_HINT_CMD_DONE 1u

/* In this order: Lua's vm:balloon_hinting names them by index. */
enum balloon_hint_op { BALLOON_HINT_STATUS, BALLOON_HINT_START, BALLOON_HINT_STOP };

struct balloon_hinting {
	uint32_t host_cmd;  /* the command id the device set last (STOP before any run) */
	bool has_guest_cmd; /* the driver has sent a command id */
	uint32_t guest_cmd; /* the last one it sent */
	bool acknowledge_on_stop;
	uint64_t hinted_bytes;  /* discarded for hints, over the device's life */
	uint64_t ignored_hints; /* hint buffers not acted on (stale or no command id) */
};

/* Start, stop, or read (`out` may be NULL for start and stop) the hinting run.
 * `acknowledge_on_stop` is read by START only. -ENOTSUP if the balloon was configured
 * without free_page_hinting, -EAGAIN for start/stop before the driver is up (Firecracker:
 * "Device not activated yet"), -ENODEV if `vd` is not a balloon. */
__attribute__((warn_unused_result)) int virtio_balloon_hinting(struct virtio_dev *vd,
	enum balloon_hint_op op, bool acknowledge_on_stop, struct balloon_hinting *out);

/* GET /balloon: the configuration as it is now (amount_mib is the current target, as
 * set by virtio_balloon_set_target; the interval as last set). -ENODEV if not a balloon. */
__attribute__((warn_unused_result)) int virtio_balloon_config(struct virtio_dev *vd,
	struct balloon_config *out);

/* ---- parsers of guest input (pure; unit tests and fuzzing) ---- */

/* Called once per run of consecutive valid pages: guest-physical start, byte length. */
typedef void (*balloon_range_fn)(void *ctx, uint64_t gpa, uint64_t len);

struct balloon_pfn_result {
	uint64_t pages;    /* valid PFNs (each one page) */
	uint64_t refused;  /* PFNs whose page is not inside guest RAM: never acted on */
	uint64_t ranges;   /* runs handed to the callback */
	uint64_t trailing; /* bytes after the last whole 32-bit PFN (malformed buffer) */
};

/* Walk `len` bytes of little-endian u32 PFNs. Each page is checked with guest_mem_ptr;
 * consecutive valid PFNs whose host memory is contiguous are merged into one run.
 * `fn` may be NULL (count only). Never fails: bad entries are counted in *res. */
void balloon_parse_pfns(const struct guest_mem *gm, const uint8_t *buf, size_t len,
	balloon_range_fn fn, void *ctx, struct balloon_pfn_result *res);

/* Parse a stats buffer: packed entries of le16 tag, le64 value (10 bytes each). Unknown
 * tags are skipped (5.5.6.3: the device ignores tags it does not know), a repeated tag
 * keeps its last value. -EINVAL if `len` is 0 or not a multiple of 10, or larger than
 * BALLOON_STATS_MAX_BYTES; then *present and values are untouched. */
#define BALLOON_STATS_ENTRY_SIZE 10
#define BALLOON_STATS_MAX_BYTES 4000
__attribute__((warn_unused_result)) int balloon_parse_stats(const uint8_t *buf, size_t len,
	uint64_t *present, uint64_t value[BALLOON_STAT_TAGS]);

/* One chain of the hinting queue as the device judges it (pure). `has_cmd`: the chain's
 * readable part held a command id `cmd`, which becomes h->guest_cmd. Returns whether the
 * chain's writable ranges may be discarded: a run is current (host_cmd neither STOP nor
 * DONE) and the driver's last id is that run's (5.5.6.6: pages given under another id are
 * ignored, and none is touched after DONE). *ack: this chain is the driver's STOP for the
 * current run and acknowledge_on_stop is set, so the device now sets DONE. */
bool balloon_hint_chain(struct balloon_hinting *h, bool has_cmd, uint32_t cmd, bool *ack);

/* ---- giving memory back to the host (balloon_memory.c) ---- */

struct balloon_discard {
	uint64_t bytes;   /* host memory released */
	uint64_t skipped; /* bytes not released: partial backing pages (2 MiB hugetlb) */
};

/* Release guest RAM [gpa, gpa+len) to the host; the guest later reads zeros there. The
 * range is trimmed inwards to whole backing pages (4 KiB, or 2 MiB for hugetlb) and must
 * lie inside one region. By backing:
 *   anonymous (also uffd-registered: its handler sees UFFD_EVENT_REMOVE): MADV_DONTNEED;
 *   memfd / hugetlb: fallocate(PUNCH_HOLE) on the file, MADV_REMOVE as a fallback;
 *   File (MAP_PRIVATE of a memory file): a fresh anonymous MAP_FIXED mapping over the
 *   range, because MADV_DONTNEED there would show the file's bytes again.
 * Released pages are marked dirty (guest_mem_mark_dirty) for diff snapshots.
 * 0 with *out filled (out may be NULL); -EFAULT if the range is not inside one region;
 * -errno of the system call, with a message in err that names no device (the balloon
 * and virtio-mem both release memory here and say which one asked). */
__attribute__((warn_unused_result)) int balloon_memory_discard(const struct guest_mem *gm,
	uint64_t gpa, uint64_t len, struct balloon_discard *out, char *err, size_t errlen);

#endif
