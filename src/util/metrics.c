/* Metrics: counters since the last flush, last latencies, written as JSON lines. */
#include "ember/metrics.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cJSON.h>

#include "ember/log.h"

static const char *const method_keys[METRICS_METHODS] = {
	"get_api_requests",
	"put_api_requests",
	"patch_api_requests",
	"delete_api_requests",
};

static const char *const endpoint_names[METRICS_ENDPOINTS] = {
	[METRICS_EP_INSTANCE_INFO] = "instance_info",
	[METRICS_EP_VERSION] = "vmm_version",
	[METRICS_EP_MACHINE_CFG] = "machine_cfg",
	[METRICS_EP_BOOT_SOURCE] = "boot_source",
	[METRICS_EP_CPU_CFG] = "cpu_cfg",
	[METRICS_EP_DRIVE] = "drive",
	[METRICS_EP_NETWORK] = "network",
	[METRICS_EP_VSOCK] = "vsock",
	[METRICS_EP_ENTROPY] = "entropy",
	[METRICS_EP_SERIAL] = "serial",
	[METRICS_EP_BALLOON] = "balloon",
	[METRICS_EP_LOGGER] = "logger",
	[METRICS_EP_METRICS] = "metrics",
	[METRICS_EP_MMDS] = "mmds",
	[METRICS_EP_ACTIONS] = "actions",
	[METRICS_EP_VM_STATE] = "vm_state",
	[METRICS_EP_VM_CONFIG] = "vm_config",
	[METRICS_EP_SNAPSHOT_CREATE] = "snapshot_create",
	[METRICS_EP_SNAPSHOT_LOAD] = "snapshot_load",
	[METRICS_EP_PMEM] = "pmem",
	[METRICS_EP_HOTPLUG_MEMORY] = "hotplug_memory",
	[METRICS_EP_OTHER] = "other",
};

#define EP(x) (1u << METRICS_EP_##x)
/* Which endpoints each method has, so a line lists only counters that can move. */
static const uint32_t method_endpoints[METRICS_METHODS] = {
	[METRICS_GET] = EP(INSTANCE_INFO) | EP(VERSION) | EP(MACHINE_CFG) | EP(BALLOON) | EP(MMDS) |
		EP(VM_CONFIG) | EP(HOTPLUG_MEMORY) | EP(OTHER),
	[METRICS_PUT] = EP(MACHINE_CFG) | EP(BOOT_SOURCE) | EP(CPU_CFG) | EP(DRIVE) | EP(NETWORK) |
		EP(VSOCK) | EP(ENTROPY) | EP(BALLOON) | EP(LOGGER) | EP(METRICS) | EP(MMDS) |
		EP(ACTIONS) | EP(SNAPSHOT_CREATE) | EP(SNAPSHOT_LOAD) | EP(PMEM) |
		EP(HOTPLUG_MEMORY) | EP(OTHER),
	[METRICS_PATCH] = EP(MACHINE_CFG) | EP(DRIVE) | EP(NETWORK) | EP(BALLOON) | EP(MMDS) |
		EP(VM_STATE) | EP(PMEM) | EP(HOTPLUG_MEMORY) | EP(OTHER),
	[METRICS_DELETE] = EP(DRIVE) | EP(NETWORK) | EP(OTHER),
};
#undef EP

static const char *const latency_names[METRICS_LATENCIES] = {
	[METRICS_LAT_PAUSE_VM] = "pause_vm",
	[METRICS_LAT_RESUME_VM] = "resume_vm",
	[METRICS_LAT_FULL_CREATE_SNAPSHOT] = "full_create_snapshot",
	[METRICS_LAT_DIFF_CREATE_SNAPSHOT] = "diff_create_snapshot",
	[METRICS_LAT_LOAD_SNAPSHOT] = "load_snapshot",
	[METRICS_LAT_START_VM] = "start_vm",
};

static struct {
	int fd;
	uint64_t requests[METRICS_METHODS][METRICS_ENDPOINTS];
	uint64_t fails[METRICS_METHODS][METRICS_ENDPOINTS];
	uint64_t counters[METRICS_COUNTERS];
	uint64_t latency[METRICS_LATENCIES];
	uint64_t flushes;
	char *id;          /* emit_id: the instance id, or NULL */
	cJSON *properties; /* the operator's key-value pairs, or NULL */
} m = { .fd = -1 };

/* Set once at start (metrics_set_startup); kept across metrics_reset. */
static uint64_t startup_us, startup_cpu_us;

static uint64_t process_cpu_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

void metrics_set_startup(bool has_start, bool has_cpu, uint64_t start_cpu_us,
	uint64_t parent_cpu_us)
{
	uint64_t cpu = process_cpu_us();

	startup_us = has_start ? log_uptime_us() : 0;
	startup_cpu_us = has_cpu && cpu >= start_cpu_us ? cpu - start_cpu_us + parent_cpu_us : 0;
}

void metrics_api_request(enum metrics_method method, enum metrics_endpoint ep, bool failed)
{
	if ((unsigned)method >= METRICS_METHODS || (unsigned)ep >= METRICS_ENDPOINTS)
		return;
	m.requests[method][ep]++;
	if (failed)
		m.fails[method][ep]++;
}

void metrics_inc(enum metrics_counter c)
{
	if ((unsigned)c < METRICS_COUNTERS)
		m.counters[c]++;
}

void metrics_latency(enum metrics_latency l, uint64_t us)
{
	if ((unsigned)l < METRICS_LATENCIES)
		m.latency[l] = us;
}

int metrics_open(const char *path, char *err, size_t errlen)
{
	int fd;

	if (m.fd >= 0) {
		snprintf(err, errlen, "Reinitialization of metrics not allowed.");
		return -EALREADY;
	}
	fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_NONBLOCK | O_CLOEXEC, 0600);
	if (fd < 0) {
		snprintf(err, errlen, "%s (os error %d)", strerror(errno), errno);
		return -errno;
	}
	m.fd = fd;
	return 0;
}

bool metrics_is_open(void)
{
	return m.fd >= 0;
}

int metrics_label(const char *id, const cJSON *properties)
{
	char *id_copy = id ? strdup(id) : NULL;
	cJSON *props_copy = properties ? cJSON_Duplicate(properties, true) : NULL;

	if ((id && !id_copy) || (properties && !props_copy)) {
		free(id_copy);
		cJSON_Delete(props_copy);
		return -ENOMEM;
	}
	free(m.id);
	cJSON_Delete(m.properties);
	m.id = id_copy;
	m.properties = props_copy;
	return 0;
}

void metrics_reset(void)
{
	if (m.fd >= 0)
		close(m.fd);
	free(m.id);
	cJSON_Delete(m.properties);
	memset(&m, 0, sizeof(m));
	m.fd = -1;
}

static void add_u64(cJSON *obj, const char *key, uint64_t v)
{
	cJSON_AddNumberToObject(obj, key, (double)v);
}

static cJSON *render(const struct metrics_source *src)
{
	cJSON *root = cJSON_CreateObject(), *o;
	struct timespec ts;
	char key[64];

	if (!root)
		return NULL;
	clock_gettime(CLOCK_REALTIME, &ts);
	add_u64(root, "utc_timestamp_ms",
		(uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u);
	if (m.id)
		cJSON_AddStringToObject(root, "id", m.id);
	if (m.properties)
		cJSON_AddItemToObject(root, "properties", cJSON_Duplicate(m.properties, true));

	o = cJSON_AddObjectToObject(root, "api_server");
	add_u64(o, "connections", m.counters[METRICS_API_CONNECTIONS]);
	add_u64(o, "bad_requests", m.counters[METRICS_API_BAD_REQUESTS]);
	add_u64(o, "evicted_connections", m.counters[METRICS_API_EVICTED]);
	add_u64(o, "process_startup_time_us", startup_us);
	add_u64(o, "process_startup_time_cpu_us", startup_cpu_us);
	for (unsigned meth = 0; meth < METRICS_METHODS; meth++) {
		o = cJSON_AddObjectToObject(root, method_keys[meth]);
		for (unsigned ep = 0; ep < METRICS_ENDPOINTS; ep++) {
			if (!(method_endpoints[meth] & (1u << ep)))
				continue;
			snprintf(key, sizeof(key), "%s_count", endpoint_names[ep]);
			add_u64(o, key, m.requests[meth][ep]);
			snprintf(key, sizeof(key), "%s_fails", endpoint_names[ep]);
			add_u64(o, key, m.fails[meth][ep]);
		}
	}
	o = cJSON_AddObjectToObject(root, "deprecated_api");
	add_u64(o, "deprecated_http_api_calls", m.counters[METRICS_DEPRECATED_API_CALLS]);

	o = cJSON_AddObjectToObject(root, "latencies_us");
	for (unsigned l = 0; l < METRICS_LATENCIES; l++)
		add_u64(o, latency_names[l], m.latency[l]);

	if (src && src->add)
		src->add(src->opaque, root);

	o = cJSON_AddObjectToObject(root, "metrics");
	add_u64(o, "flushes", m.flushes);
	add_u64(o, "missed_writes", m.counters[METRICS_MISSED_WRITES]);
	return root;
}

char *metrics_render(const struct metrics_source *src)
{
	cJSON *root = render(src);
	char *s = root ? cJSON_PrintUnformatted(root) : NULL;

	cJSON_Delete(root);
	return s;
}

int metrics_flush(const struct metrics_source *src, char *err, size_t errlen)
{
	cJSON *root;
	char *line;
	size_t len;
	ssize_t n;
	int ret = 0;

	if (m.fd < 0)
		return 0;
	m.flushes++;
	root = render(src);
	line = root ? cJSON_PrintUnformatted(root) : NULL;
	cJSON_Delete(root);
	if (!line) {
		m.counters[METRICS_MISSED_WRITES]++;
		snprintf(err, errlen, "metrics: out of memory");
		return -ENOMEM;
	}
	len = strlen(line);
	line[len++] = '\n'; /* replaces the NUL: the line is written by length */
	n = write(m.fd, line, len);
	free(line);
	if (n < 0 || (size_t)n != len) {
		ret = n < 0 ? -errno : -EIO;
		m.counters[METRICS_MISSED_WRITES]++;
		snprintf(err, errlen, "Failed to write metrics: %s",
			n < 0 ? strerror(errno) : "short write");
		return ret;
	}
	/* Written: the counters start again from zero; latencies keep their last value. */
	memset(m.requests, 0, sizeof(m.requests));
	memset(m.fails, 0, sizeof(m.fails));
	memset(m.counters, 0, sizeof(m.counters));
	if (src && src->written)
		src->written(src->opaque);
	return 0;
}
