/* Constructors of the virtio device models, each on its own virtio-mmio transport.
 *
 * Every constructor: control thread, before vCPUs run; places the device's window at
 * `base` (LAYOUT_VIRTIO_MMIO_SIZE bytes) on env->mmio, raising `gsi`; returns the
 * transport (free with virtio_free, which releases the model and its backend), or NULL
 * with a message in err naming the device. */
#ifndef EMBER_VIRTIO_DEVICES_H
#define EMBER_VIRTIO_DEVICES_H

#include <stddef.h>
#include <stdint.h>

struct balloon_config;
struct drive_config;
struct net_config;
struct pmem_config;
struct rate_limit;
struct virtio_dev;
struct virtio_env;
struct vsock_config;
struct mem_hotplug_config;

/* ---- entropy (virtio-rng) ---- */

/* Fills the driver's buffers from getrandom(2), at most 64 KiB per request. `limit`
 * (copied; NULL for none) throttles bytes and requests per second; a throttled request
 * waits on a timer on env->loop. */
struct virtio_dev *virtio_rng_new(const struct virtio_env *env, uint64_t base, uint32_t gsi,
	const struct rate_limit *limit, char *err, size_t errlen);

/* ---- block (virtio-blk) ---- */

/* A raw image per drive: `cfg` (copied) gives the id (also the serial), the path (opened
 * O_RDONLY when read_only), and the bandwidth/ops limits. I/O runs on a worker thread of
 * its own; completions come back on env->loop. "drive 'rootfs': cannot open /x.img: No
 * such file or directory". */
struct virtio_dev *virtio_block_new(const struct virtio_env *env, uint64_t base, uint32_t gsi,
	const struct drive_config *cfg, char *err, size_t errlen);

/* ---- network (virtio-net) ---- */

/* A host TAP device per interface, opened by name (cfg->tap) with IFF_VNET_HDR; the
 * guest MAC (cfg->mac when has_mac) in config space; rx/tx bandwidth and ops limits.
 * Frames the guest has no buffer for stay in the tap (ember stops reading it until the
 * next RX kick). "net 'eth0': cannot open tap 'tap0': Operation not permitted". */
struct virtio_dev *virtio_net_new(const struct virtio_env *env, uint64_t base, uint32_t gsi,
	const struct net_config *cfg, char *err, size_t errlen);

/* ---- vsock (virtio-vsock, host side on Unix sockets; see ember/vsock.h) ---- */

/* Listens on cfg->uds_path (which must not exist; removed again by virtio_free) for
 * host-initiated connections ("CONNECT <port>\n"); guest-initiated ones go to
 * "<uds_path>_<port>". After a restore the guest gets a transport reset event.
 * "vsock: cannot listen on /tmp/v.sock: Address already in use". */
struct virtio_dev *virtio_vsock_new(const struct virtio_env *env, uint64_t base, uint32_t gsi,
	const struct vsock_config *cfg, char *err, size_t errlen);

/* ---- balloon (virtio-balloon; runtime target and statistics in ember/balloon.h) ---- */

/* Inflate/deflate (pages given back to the host as the memory backing requires), stats
 * polled every cfg->stats_polling_interval_s on env->loop (0: no stats queue),
 * deflate-on-OOM and free page reporting as configured; the initial target is
 * cfg->amount_mib. "balloon: amount_mib 512 is more than guest memory (256 MiB)". */
struct virtio_dev *virtio_balloon_new(const struct virtio_env *env, uint64_t base, uint32_t gsi,
	const struct balloon_config *cfg, char *err, size_t errlen);

/* ---- pmem (virtio-pmem; configuration and request in ember/pmem.h) ---- */

/* cfg->path (opened read-only when cfg->read_only) mapped shared at guest-physical `gpa`
 * (PMEM_ALIGN aligned) as KVM slot `slot` (read-only too), its size rounded up to
 * PMEM_ALIGN; FLUSH requests msync the file on env->loop, limited by cfg->limit. The
 * region's size: virtio_pmem_info. "pmem 'p0': Error backing file size is 0". */
struct virtio_dev *virtio_pmem_new(const struct virtio_env *env, uint64_t base, uint32_t gsi,
	const struct pmem_config *cfg, uint64_t gpa, unsigned slot, char *err, size_t errlen);

/* ---- memory hotplug (virtio-mem; run-time calls in ember/virtio_mem.h) ---- */

/* The hotplug area of `cfg` (checked again here), which must be env->mem's device region
 * already (guest_mem_add_device, the same size): all of it unplugged, requested size 0;
 * KVM slots on env->vm_fd as blocks get plugged.
 * "memory hotplug: Block size must be a power of 2". */
struct virtio_dev *virtio_mem_new(const struct virtio_env *env, uint64_t base, uint32_t gsi,
	const struct mem_hotplug_config *cfg, char *err, size_t errlen);

#endif
