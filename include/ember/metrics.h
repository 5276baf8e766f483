/* Metrics: counters and latencies, flushed as one JSON line per flush to a file or FIFO,
 * as Firecracker's are. Control thread only (the API and Lua run there).
 *
 * Counters are deltas: each flush writes what happened since the previous flush, then
 * starts again from zero (Firecracker's SharedIncMetric). Latencies keep the last value
 * measured. Before metrics_open() nothing is written, but counting goes on. The VM's
 * sections (vCPU exits, boot times, devices) come from a source, src/vmm/vm_metrics.c:
 * this module knows no VM. */
#ifndef EMBER_METRICS_H
#define EMBER_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct cJSON;

enum metrics_method { METRICS_GET, METRICS_PUT, METRICS_PATCH, METRICS_DELETE, METRICS_METHODS };

/* API endpoints, by the resource they name (the key prefix in the JSON). */
enum metrics_endpoint {
	METRICS_EP_INSTANCE_INFO, /* GET / */
	METRICS_EP_VERSION,
	METRICS_EP_MACHINE_CFG,
	METRICS_EP_BOOT_SOURCE,
	METRICS_EP_CPU_CFG,
	METRICS_EP_DRIVE,
	METRICS_EP_NETWORK,
	METRICS_EP_VSOCK,
	METRICS_EP_ENTROPY,
	METRICS_EP_SERIAL,
	METRICS_EP_BALLOON,
	METRICS_EP_LOGGER,
	METRICS_EP_METRICS,
	METRICS_EP_MMDS,
	METRICS_EP_ACTIONS,
	METRICS_EP_VM_STATE,
	METRICS_EP_VM_CONFIG,
	METRICS_EP_SNAPSHOT_CREATE,
	METRICS_EP_SNAPSHOT_LOAD,
	METRICS_EP_PMEM,
	METRICS_EP_HOTPLUG_MEMORY,
	METRICS_EP_OTHER, /* unknown path or method */
	METRICS_ENDPOINTS
};

enum metrics_latency {
	METRICS_LAT_PAUSE_VM,
	METRICS_LAT_RESUME_VM,
	METRICS_LAT_FULL_CREATE_SNAPSHOT,
	METRICS_LAT_DIFF_CREATE_SNAPSHOT,
	METRICS_LAT_LOAD_SNAPSHOT,
	METRICS_LAT_START_VM,
	METRICS_LATENCIES
};

enum metrics_counter {
	METRICS_API_CONNECTIONS,      /* connections accepted */
	METRICS_API_BAD_REQUESTS,     /* requests that were not valid HTTP, or too large */
	METRICS_API_EVICTED,          /* idle connections closed to make room */
	METRICS_DEPRECATED_API_CALLS, /* requests that used a deprecated field */
	METRICS_MISSED_WRITES,        /* flushes that could not be written */
	METRICS_COUNTERS
};

/* One API request answered; `failed` for a 4xx/5xx answer. */
void metrics_api_request(enum metrics_method method, enum metrics_endpoint ep, bool failed);
void metrics_inc(enum metrics_counter c);
/* Record the duration of an operation, in microseconds. */
void metrics_latency(enum metrics_latency l, uint64_t us);

/* Startup figures, as Firecracker's api_server.process_startup_time_us and _cpu_us: time
 * from a jailer's start (--start-time-us, taken as the log's start mark) to this call, and
 * CPU time since --start-time-cpu-us plus the jailer's own (--parent-cpu-time-us). Each is
 * 0 when its start was not given. Once, by main() after the command line. */
void metrics_set_startup(bool has_start, bool has_cpu, uint64_t start_cpu_us,
	uint64_t parent_cpu_us);

/* Start writing to `path` (created if missing, appended, opened non-blocking so a FIFO
 * without reader never stalls the loop). -EALREADY if metrics are already open. */
__attribute__((warn_unused_result)) int metrics_open(const char *path, char *err, size_t errlen);
bool metrics_is_open(void);
/* Put `id` (NULL: none) as a top-level "id" and a copy of `properties` (an object of
 * strings; NULL: none) as "properties" on every line from now on, as Firecracker's
 * emit_id and properties. -ENOMEM if the copy fails (nothing changed). */
__attribute__((warn_unused_result)) int metrics_label(const char *id,
	const struct cJSON *properties);
/* Stop writing and forget every count (tests, process end). */
void metrics_reset(void);

/* Another module's part of a line: `add` (may be NULL) puts its objects into the line's
 * root, after "latencies_us" and before "metrics"; `written` (may be NULL) is called by
 * metrics_flush once the line is written, so the source may count from that line. */
struct metrics_source {
	void (*add)(void *opaque, struct cJSON *root);
	void (*written)(void *opaque);
	void *opaque;
};

/* Write one JSON line (with the sections of `src`, which may be NULL) and start the
 * counters again. 0 if metrics are not open (nothing to do, as Firecracker); -errno if
 * the line could not be written (it is counted in missed_writes). */
__attribute__((warn_unused_result)) int metrics_flush(const struct metrics_source *src, char *err,
	size_t errlen);

/* The line metrics_flush would write, without resetting anything; caller frees.
 * NULL on allocation failure. For tests and GET-style inspection. */
char *metrics_render(const struct metrics_source *src);

#endif
