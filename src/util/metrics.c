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
#include "ember/vcpu.h"
#include "ember/vm.h"

static const char *const method_keys[METRICS_METHODS] = {
	"get_api_requests", "put_api_requests", "patch_api_requests", "delete_api_requests",
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
	[METRICS_EP_BALLOON] = "balloon",
	[METRICS_EP_LOGGER] = "logger",
	[METRICS_EP_METRICS] = "metrics",
	[METRICS_EP_MMDS] = "mmds",
	[METRICS_EP_ACTIONS] = "actions",
	[METRICS_EP_VM_STATE] = "vm_state",
	[METRICS_EP_VM_CONFIG] = "vm_config",
	[METRICS_EP_SNAPSHOT_CREATE] = "snapshot_create",
	[METRICS_EP_SNAPSHOT_LOAD] = "snapshot_load",
	[METRICS_EP_OTHER] = "other",
};

#define EP(x) (1u << METRICS_EP_##x)
/* Which endpoints each method has, so a line lists only counters that can move. */
static const uint32_t method_endpoints[METRICS_METHODS] = {
	[METRICS_GET] = EP(INSTANCE_INFO) | EP(VERSION) | EP(MACHINE_CFG) | EP(BALLOON) |
		EP(MMDS) | EP(VM_CONFIG) | EP(OTHER),
	[METRICS_PUT] = EP(MACHINE_CFG) | EP(BOOT_SOURCE) | EP(CPU_CFG) | EP(DRIVE) |
		EP(NETWORK) | EP(VSOCK) | EP(ENTROPY) | EP(BALLOON) | EP(LOGGER) | EP(METRICS) |
		EP(MMDS) | EP(ACTIONS) | EP(SNAPSHOT_CREATE) | EP(SNAPSHOT_LOAD) | EP(OTHER),
	[METRICS_PATCH] = EP(MACHINE_CFG) | EP(DRIVE) | EP(NETWORK) | EP(BALLOON) | EP(MMDS) |
		EP(VM_STATE) | EP(OTHER),
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
	/* vCPU exits written so far, per kind, and the VM they were read from. */
	const struct vm *exits_vm;
	uint64_t exits_seen[VCPU_EXIT_KINDS];
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

void metrics_reset(void)
{
	if (m.fd >= 0)
		close(m.fd);
	memset(&m, 0, sizeof(m));
	m.fd = -1;
}

static void add_u64(cJSON *obj, const char *key, uint64_t v)
{
	cJSON_AddNumberToObject(obj, key, (double)v);
}

#define METRICS_MAX_DEVICES 32

/* Each device's counters (virtio kicks, interrupts, needs_reset from hostile guest input,
 * the model's own), keyed "<kind>@0x<base>"; cumulative, as the device keeps them. */
static void add_devices(cJSON *obj, const struct vm *vm)
{
	struct vm_device_info dev[METRICS_MAX_DEVICES];
	/* vm_devices only reads the VM; it is not const because device stats take locks. */
	int n = vm_devices((struct vm *)vm, dev, METRICS_MAX_DEVICES);

	for (int i = 0; obj && i < n && i < METRICS_MAX_DEVICES; i++) {
		char key[64];
		cJSON *d;

		if (!dev[i].nr_stats)
			continue;
		snprintf(key, sizeof(key), "%s@0x%llx", dev[i].kind,
			(unsigned long long)dev[i].base);
		d = cJSON_AddObjectToObject(obj, key);
		for (unsigned k = 0; d && k < dev[i].nr_stats; k++)
			add_u64(d, dev[i].stats[k].name, dev[i].stats[k].value);
	}
}

/* vCPU exits of `vm` summed over its vCPUs; false if it has none running. */
static bool read_exits(const struct vm *vm, uint64_t sum[VCPU_EXIT_KINDS])
{
	uint64_t one[VCPU_EXIT_KINDS];
	unsigned n = vm ? vm_vcpu_count(vm) : 0;
	bool any = false;

	memset(sum, 0, sizeof(uint64_t) * VCPU_EXIT_KINDS);
	for (unsigned i = 0; i < n; i++) {
		if (vm_vcpu_exits(vm, i, one, VCPU_EXIT_KINDS))
			continue;
		any = true;
		for (unsigned k = 0; k < VCPU_EXIT_KINDS; k++)
			sum[k] += one[k];
	}
	return any;
}

static cJSON *render(const struct vm *vm, uint64_t exits_now[VCPU_EXIT_KINDS], bool *have_exits)
{
	cJSON *root = cJSON_CreateObject(), *o;
	struct timespec ts;
	char key[64];

	if (!root)
		return NULL;
	clock_gettime(CLOCK_REALTIME, &ts);
	add_u64(root, "utc_timestamp_ms",
		(uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u);

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

	/* Exits: since the last flush. A new VM (restore) starts its counts from zero. */
	*have_exits = read_exits(vm, exits_now);
	o = cJSON_AddObjectToObject(root, "vcpu");
	for (unsigned k = 0; k < VCPU_EXIT_KINDS; k++) {
		uint64_t seen = vm == m.exits_vm ? m.exits_seen[k] : 0;

		if (!*have_exits)
			exits_now[k] = seen;
		snprintf(key, sizeof(key), "exit_%s", vcpu_exit_kind_name(k));
		add_u64(o, key, exits_now[k] >= seen ? exits_now[k] - seen : exits_now[k]);
	}

	o = cJSON_AddObjectToObject(root, "vmm");
	if (vm) {
		struct vm_times t;
		vm_times(vm, &t);
		add_u64(o, "start_us", t.start_us);
		add_u64(o, "first_run_us", t.first_run_us);
		add_u64(o, "boot_us", t.boot_us);
		add_u64(o, "boot_time_us", t.boot_us > t.start_us && t.start_us ?
			t.boot_us - t.start_us : 0);
		cJSON_AddStringToObject(o, "state", vm_state_name(vm_state(vm)));
	} else {
		cJSON_AddStringToObject(o, "state", "none");
	}

	if (vm)
		add_devices(cJSON_AddObjectToObject(root, "devices"), vm);

	o = cJSON_AddObjectToObject(root, "metrics");
	add_u64(o, "flushes", m.flushes);
	add_u64(o, "missed_writes", m.counters[METRICS_MISSED_WRITES]);
	return root;
}

char *metrics_render(const struct vm *vm)
{
	uint64_t exits[VCPU_EXIT_KINDS];
	bool have;
	cJSON *root = render(vm, exits, &have);
	char *s = root ? cJSON_PrintUnformatted(root) : NULL;

	cJSON_Delete(root);
	return s;
}

int metrics_flush(const struct vm *vm, char *err, size_t errlen)
{
	uint64_t exits[VCPU_EXIT_KINDS];
	bool have;
	cJSON *root;
	char *line;
	size_t len;
	ssize_t n;
	int ret = 0;

	if (m.fd < 0)
		return 0;
	m.flushes++;
	root = render(vm, exits, &have);
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
		snprintf(err, errlen, "Failed to write metrics: %s", n < 0 ? strerror(errno) :
			"short write");
		return ret;
	}
	/* Written: the counters start again from zero; latencies keep their last value. */
	memset(m.requests, 0, sizeof(m.requests));
	memset(m.fails, 0, sizeof(m.fails));
	memset(m.counters, 0, sizeof(m.counters));
	m.exits_vm = vm;
	memcpy(m.exits_seen, exits, sizeof(exits));
	return 0;
}
