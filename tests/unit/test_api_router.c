/* Unit tests for the API router and handlers, on a fake VM: every endpoint's answers as
 * tables of request -> status and body fragment, pre-boot and post-boot rules, snapshot
 * calls, the MMDS store, metrics counting and the JSON config file. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <ev.h>

#include "ember/api.h"
#include "ember/config.h"
#include "ember/metrics.h"
#include "fake_vm.h"

struct call {
	const char *method, *path, *body;
	int status;
	const char *want; /* a fragment of the answer, or NULL */
};

static struct api *api;

static int setup(void **state)
{
	char err[128];

	(void)state;
	fake_vm_reset();
	metrics_reset();
	api = api_new(ev_default_loop(0), NULL, err, sizeof(err));
	return api ? 0 : -1;
}

static int teardown(void **state)
{
	(void)state;
	api_free(api);
	metrics_reset();
	assert_int_equal(fake_vm.vms_alive, 0);
	return 0;
}

static char *request(const char *method, const char *path, const char *body, int *status)
{
	struct api_response r;

	api_handle(api, method, path, body, body ? strlen(body) : 0, &r);
	*status = r.status;
	return r.body;
}

static void expect(const struct call *c)
{
	int status;
	char *body = request(c->method, c->path, c->body, &status);

	if (status != c->status || (c->want && (!body || !strstr(body, c->want))))
		fail_msg("%s %s %s: got %d %s, want %d with '%s'", c->method, c->path,
			c->body ? c->body : "", status, body ? body : "(no body)", c->status,
			c->want ? c->want : "");
	if (status == 204)
		assert_null(body);
	else
		assert_non_null(body);
	free(body);
}

static void run_table(const struct call *calls, size_t n)
{
	for (size_t i = 0; i < n; i++)
		expect(&calls[i]);
}

#define RUN(t) run_table(t, sizeof(t) / sizeof(t[0]))
#define DESER "An error occurred when deserializing the json body of a request: "

static void test_api_router_paths_methods_and_bodies(void **state)
{
	static const struct call t[] = {
		{ "GET", "/", NULL, 200, "\"state\":\"Not started\"" },
		{ "GET", "/", NULL, 200, "\"app_name\":\"ember\"" },
		{ "GET", "http://localhost/version", NULL, 200, "\"firecracker_version\":" },
		{ "GET", "/version?x=1", NULL, 200, "firecracker_version" },
		{ "GET", "//machine-config/", NULL, 200, "\"vcpu_count\":1" },
		{ "GET", "/", "{}", 400, "GET request cannot have a body." },
		{ "PUT", "/machine-config", NULL, 400, "Empty PUT request." },
		{ "PATCH", "/machine-config", NULL, 400, "Empty PATCH request." },
		{ "DELETE", "/drives/x", "{}", 400, "DELETE request cannot have a body." },
		{ "POST", "/actions", "{}", 400, "Invalid request method and/or path: POST /actions." },
		{ "GET", "/nope", NULL, 400, "Invalid request method and/or path: GET /nope." },
		{ "GET", "/machine-config/extra", NULL, 400, "Invalid request method and/or path" },
		{ "PUT", "/version", "{}", 400, "Invalid request method and/or path: PUT /version." },
		{ "GET", "*", NULL, 400, "Invalid request method and/or path" },
		{ "PUT", "/drives", "{}", 400, "The ID cannot be empty." },
		{ "PUT", "/drives/", "{}", 400, "The ID cannot be empty." },
		{ "PUT", "/drives/a-b", "{}", 400, "API Resource IDs can only contain alphanumeric "
			"characters and underscores." },
		{ "PUT", "/drives/a/b", "{}", 400, "Invalid request method and/or path" },
		{ "PUT", "/machine-config", "{\"vcpu_count\":", 400, DESER "EOF while parsing" },
		{ "PUT", "/machine-config", "nonsense", 400, DESER "invalid JSON at line 1 column 1." },
	};

	(void)state;
	RUN(t);
}

static void test_api_router_machine_config(void **state)
{
	static const struct call t[] = {
		{ "GET", "/machine-config", NULL, 200, "{\"vcpu_count\":1,\"mem_size_mib\":128,"
			"\"smt\":false,\"track_dirty_pages\":false,\"huge_pages\":\"None\"}" },
		{ "PUT", "/machine-config", "{\"vcpu_count\": 2, \"mem_size_mib\": 256}", 204, NULL },
		{ "GET", "/machine-config", NULL, 200, "{\"vcpu_count\":2,\"mem_size_mib\":256," },
		{ "PATCH", "/machine-config", "{\"track_dirty_pages\": true}", 204, NULL },
		{ "GET", "/machine-config", NULL, 200, "\"vcpu_count\":2,\"mem_size_mib\":256,"
			"\"smt\":false,\"track_dirty_pages\":true" },
		{ "PATCH", "/machine-config", "{\"huge_pages\": \"2M\"}", 204, NULL },
		{ "GET", "/machine-config", NULL, 200, "\"huge_pages\":\"2M\"" },
		{ "PATCH", "/machine-config", "{\"mem_size_mib\": 255}", 400, "The memory size (MiB) "
			"is either 0, or not a multiple of the configured page size." },
		{ "PUT", "/machine-config", "{\"vcpu_count\": 1}", 400, DESER "missing field "
			"`mem_size_mib`." },
		{ "PUT", "/machine-config", "{\"vcpu_count\": 1, \"mem_size_mib\": 64, \"vcpus\": 1}",
			400, DESER "unknown field `vcpus`, expected one of `vcpu_count`, `mem_size_mib`" },
		{ "PUT", "/machine-config", "{\"vcpu_count\": \"2\", \"mem_size_mib\": 64}", 400,
			"invalid type for field `vcpu_count`: string \\\"2\\\", expected u8" },
		{ "PUT", "/machine-config", "{\"vcpu_count\": 300, \"mem_size_mib\": 64}", 400,
			"invalid value for field `vcpu_count`: integer `300`, expected u8" },
		{ "PUT", "/machine-config", "{\"vcpu_count\": 33, \"mem_size_mib\": 64}", 400,
			"Machine config error: The number of vCPUs must be greater than 0, less than 32" },
		{ "PUT", "/machine-config", "{\"vcpu_count\": 0, \"mem_size_mib\": 64}", 400,
			"The number of vCPUs" },
		{ "PUT", "/machine-config", "{\"vcpu_count\": 1, \"mem_size_mib\": 0}", 400,
			"The memory size (MiB) is either 0" },
		{ "PUT", "/machine-config", "{\"vcpu_count\": 1, \"mem_size_mib\": 8}", 400,
			"mem_size_mib: 8 MiB is less than the minimum (16 MiB)" },
		{ "PUT", "/machine-config", "{\"vcpu_count\": 1, \"mem_size_mib\": 100000000}", 400,
			"MiB is more than this host has" },
		{ "PUT", "/machine-config", "{\"vcpu_count\": 2, \"mem_size_mib\": 64, \"smt\": true}",
			400, "smt: simultaneous multithreading is not supported by this ember yet" },
		{ "PUT", "/machine-config", "{\"vcpu_count\": 3, \"mem_size_mib\": 64, \"smt\": true}",
			400, "1 or an even number if SMT is enabled" },
		{ "PUT", "/machine-config", "{\"vcpu_count\": 1, \"mem_size_mib\": 64, \"huge_pages\":"
			" \"Transparent\"}", 400, "huge_pages: Transparent is not supported" },
		{ "PUT", "/machine-config", "{\"vcpu_count\": 1, \"mem_size_mib\": 64, \"huge_pages\":"
			" \"1G\"}", 400, "unknown variant `1G` for field `huge_pages`, expected one of "
			"`None`, `Transparent`, `2M`" },
		{ "PUT", "/machine-config", "{\"vcpu_count\": 1, \"mem_size_mib\": 64, "
			"\"cpu_template\": \"T2\"}", 400, "static CPU template T2 is not supported" },
		{ "PATCH", "/machine-config", "{}", 400, "Empty PATCH request." },
		{ "PATCH", "/machine-config", "{\"smt\": null}", 400, "Empty PATCH request." },
		/* A failed update changes nothing; PUT resets what it does not name. */
		{ "GET", "/machine-config", NULL, 200, "\"vcpu_count\":2,\"mem_size_mib\":256," },
		{ "PUT", "/machine-config", "{\"vcpu_count\": 4, \"mem_size_mib\": 64}", 204, NULL },
		{ "GET", "/machine-config", NULL, 200, "\"track_dirty_pages\":false,\"huge_pages\":"
			"\"None\"" },
	};

	(void)state;
	RUN(t);
}

static void test_api_router_deprecated_fields_are_flagged(void **state)
{
	struct api_response r;
	static const char body[] = "{\"vcpu_count\": 1, \"mem_size_mib\": 64, \"cpu_template\": "
		"\"None\"}";

	(void)state;
	api_handle(api, "PUT", "/machine-config", body, strlen(body), &r);
	assert_int_equal(r.status, 204);
	assert_true(r.deprecation);
	api_response_deinit(&r);
	api_handle(api, "GET", "/", NULL, 0, &r);
	assert_false(r.deprecation);
	api_response_deinit(&r);
}

static void test_api_router_boot_source_and_unsupported_devices(void **state)
{
	static const struct call t[] = {
		{ "PUT", "/boot-source", "{\"kernel_image_path\": \"/nonexistent/vmlinux\"}", 400,
			"Boot source error: The kernel file cannot be opened: No such file or directory "
			"(os error 2)" },
		{ "PUT", "/boot-source", "{\"kernel_image_path\": \"/dev/null\", \"initrd_path\": "
			"\"/nonexistent/initrd\"}", 400, "The initrd file cannot be opened due to invalid "
			"path or invalid permissions. No such file or directory (os error 2)" },
		{ "PUT", "/boot-source", "{\"boot_args\": \"x\"}", 400, "missing field "
			"`kernel_image_path`" },
		{ "PUT", "/boot-source", "{\"kernel_image_path\": \"/dev/null\", \"boot_args\": "
			"\"console=ttyS0\"}", 204, NULL },
		{ "GET", "/vm/config", NULL, 200, "\"boot-source\":{\"kernel_image_path\":\"/dev/null\","
			"\"initrd_path\":null,\"boot_args\":\"console=ttyS0\"}" },
		{ "GET", "/vm/config", NULL, 200, "\"drives\":[]" },
		{ "PUT", "/drives/rootfs", "{\"drive_id\": \"rootfs\", \"path_on_host\": \"/x.img\", "
			"\"is_root_device\": true, \"is_read_only\": false}", 400,
			"drives are not supported by this ember yet" },
		{ "PUT", "/drives/rootfs", "{\"drive_id\": \"other\", \"is_root_device\": true}", 400,
			"The id from the path does not match the id from the body!" },
		{ "PUT", "/drives/rootfs", "{\"drive_id\": \"rootfs\"}", 400,
			"missing field `is_root_device`" },
		{ "PUT", "/drives/rootfs", "{\"drive_id\": \"rootfs\", \"is_root_device\": true, "
			"\"cache_type\": \"Fast\"}", 400, "unknown variant `Fast` for field `cache_type`" },
		{ "PUT", "/drives/rootfs", "{\"drive_id\": \"rootfs\", \"is_root_device\": true, "
			"\"rate_limiter\": {\"bandwidth\": {\"size\": -1, \"refill_time\": 100}}}", 400,
			"invalid value for field `rate_limiter.bandwidth.size`: integer `-1`, expected u64" },
		{ "PATCH", "/drives/rootfs", "{\"drive_id\": \"rootfs\", \"path_on_host\": \"/y\"}",
			400, "drives are not supported by this ember yet" },
		{ "DELETE", "/drives/rootfs", NULL, 400, "drives are not supported" },
		{ "PUT", "/network-interfaces/eth0", "{\"iface_id\": \"eth0\", \"host_dev_name\": "
			"\"tap0\", \"guest_mac\": \"06:00:AC:10:00:02\"}", 400,
			"network interfaces are not supported by this ember yet" },
		{ "PUT", "/network-interfaces/eth0", "{\"iface_id\": \"eth1\", \"host_dev_name\": "
			"\"tap0\"}", 400, "The id from the path [eth0] does not match the id from the "
			"body [eth1]!" },
		{ "PUT", "/network-interfaces/eth0", "{\"iface_id\": \"eth0\", \"host_dev_name\": "
			"\"tap0\", \"guest_mac\": \"06:00:AC:10:00\"}", 400, "invalid MAC address" },
		{ "PUT", "/network-interfaces/eth0", "{\"iface_id\": \"eth0\", \"host_dev_name\": "
			"\"tap0\", \"mtu\": 67}", 400, "`mtu`: 67 is out of range 68..65535" },
		{ "PUT", "/network-interfaces/eth0", "{\"iface_id\": \"eth0\", \"host_dev_name\": "
			"\"tap0\", \"mtu\": 65536}", 400, "expected u16" },
		{ "PATCH", "/network-interfaces/eth0", "{\"iface_id\": \"eth0\"}", 400,
			"network interfaces are not supported" },
		{ "PUT", "/vsock", "{\"guest_cid\": 3, \"uds_path\": \"/tmp/v.sock\"}", 400,
			"vsock is not supported by this ember yet" },
		{ "PUT", "/vsock", "{\"guest_cid\": 2, \"uds_path\": \"/tmp/v.sock\"}", 400,
			"guest_cid: 2 is reserved" },
		{ "PUT", "/vsock", "{\"guest_cid\": 3}", 400, "missing field `uds_path`" },
		{ "PUT", "/entropy", "{}", 400, "the entropy device is not supported by this ember" },
		{ "PUT", "/entropy", "{\"rate_limiter\": {\"ops\": {\"size\": 1}}}", 400,
			"missing field `rate_limiter.ops.refill_time`" },
		{ "PUT", "/balloon", "{\"amount_mib\": 10, \"deflate_on_oom\": true}", 400,
			"the balloon device is not supported by this ember yet" },
		{ "PUT", "/balloon", "{\"amount_mib\": 100000, \"deflate_on_oom\": true}", 400,
			"Amount of pages requested is too large." },
		{ "PUT", "/balloon", "{\"amount_mib\": 10}", 400, "missing field `deflate_on_oom`" },
		{ "GET", "/balloon", NULL, 400, "Balloon config error: No balloon device found." },
		{ "GET", "/balloon/statistics", NULL, 400, "not supported before starting" },
		{ "PATCH", "/balloon", "{\"amount_mib\": 1}", 400, "not supported before starting" },
		{ "PATCH", "/balloon/statistics", "{\"stats_polling_interval_s\": 70000}", 400,
			"expected u16" },
		{ "PUT", "/cpu-config", "{\"cpuid_modifiers\": [{\"leaf\": \"0x1\", \"subleaf\": "
			"\"0x0\", \"flags\": 0, \"modifiers\": [{\"register\": \"eax\", \"bitmap\": "
			"\"0bxxxx1\"}]}], \"msr_modifiers\": [{\"addr\": \"0x10a\", \"bitmap\": \"0b1\"}], "
			"\"kvm_capabilities\": [\"!56\"]}", 400,
			"custom CPU templates are not supported by this ember yet" },
		{ "PUT", "/cpu-config", "{\"cpuid_modifiers\": [{\"leaf\": \"1\", \"subleaf\": "
			"\"0x0\", \"flags\": 0, \"modifiers\": []}]}", 400, "please prefix the number" },
		{ "PUT", "/cpu-config", "{\"msr_modifiers\": [{\"addr\": \"0x10a\", \"bitmap\": "
			"\"0b12\"}]}", 400, "invalid address or bitmap in `msr_modifiers[0]`" },
		{ "PUT", "/cpu-config", "{\"kvm_capabilities\": [\"x\"]}", 400,
			"invalid KVM capability `x`" },
		{ "PUT", "/cpu-config", "{\"reg_modifiers\": []}", 400, "unknown field `reg_modifiers`" },
	};

	(void)state;
	RUN(t);
}

static void test_api_router_logger_metrics_mmds(void **state)
{
	char path[] = "/tmp/ember-test-metrics-XXXXXX";
	int fd = mkstemp(path);
	char body[256];
	static const struct call t[] = {
		{ "PUT", "/logger", "{\"level\": \"Loud\"}", 400, DESER "Invalid LevelFilter." },
		{ "PUT", "/logger", "{\"level\": \"warning\", \"show_level\": true, "
			"\"show_log_origin\": false}", 204, NULL },
		{ "PUT", "/logger", "{\"module\": \"api\"}", 400, "filtering logs by module" },
		{ "PUT", "/logger", "{\"log_path\": \"/nonexistent/dir/log\"}", 400,
			"No such file or directory (os error 2)" },
		{ "PUT", "/metrics", "{}", 400, "missing field `metrics_path`" },
		{ "PUT", "/metrics", "{\"metrics_path\": \"/nonexistent/dir/m\"}", 400,
			"Cannot initialize the metrics system due to bad user input: No such file" },
		{ "PUT", "/metrics", "{\"metrics_path\": \"/tmp/x\", \"emit_id\": true}", 400,
			"emit_id and properties are not supported" },
		{ "GET", "/mmds", NULL, 200, "{}" },
		{ "PATCH", "/mmds", "{\"a\": 1}", 400, "MMDS error: The MMDS data store is not "
			"initialized." },
		{ "PUT", "/mmds", "{\"latest\": {\"meta-data\": {\"ami-id\": \"ami-1\", \"x\": 1}}}",
			204, NULL },
		{ "GET", "/mmds", NULL, 200, "{\"latest\":{\"meta-data\":{\"ami-id\":\"ami-1\","
			"\"x\":1}}}" },
		{ "PATCH", "/mmds", "{\"latest\": {\"meta-data\": {\"x\": null, \"y\": [1]}}, "
			"\"z\": \"s\"}", 204, NULL },
		{ "GET", "/mmds", NULL, 200, "{\"latest\":{\"meta-data\":{\"ami-id\":\"ami-1\","
			"\"y\":[1]}},\"z\":\"s\"}" },
		{ "PUT", "/mmds", "[1, 2]", 204, NULL },
		{ "GET", "/mmds", NULL, 200, "[1,2]" },
		{ "PUT", "/mmds/config", "{\"network_interfaces\": []}", 400, "MMDS config error: The "
			"list of network interface IDs that allow forwarding MMDS requests is empty." },
		{ "PUT", "/mmds/config", "{\"network_interfaces\": [\"eth0\"]}", 400, "does not "
			"correspond to any existing network interface." },
		{ "PUT", "/mmds/config", "{\"network_interfaces\": [\"eth0\"], \"ipv4_address\": "
			"\"10.0.0.1\"}", 400, "The MMDS IPv4 address is not link local." },
		{ "PUT", "/mmds/config", "{\"network_interfaces\": [\"eth0\"], \"ipv4_address\": "
			"\"1.2.3\"}", 400, "invalid IPv4 address syntax" },
		{ "PUT", "/mmds/config", "{\"network_interfaces\": [\"eth0\"], \"version\": \"V3\"}",
			400, "unknown variant `V3` for field `version`, expected `V1` or `V2`" },
		{ "PUT", "/mmds/foo", "{}", 400, "Invalid request method and/or path" },
	};

	(void)state;
	assert_true(fd >= 0);
	close(fd);
	RUN(t);
	snprintf(body, sizeof(body), "{\"metrics_path\": \"%s\"}", path);
	expect(&(struct call){ "PUT", "/metrics", body, 204, NULL });
	expect(&(struct call){ "PUT", "/metrics", body, 400, "Reinitialization of metrics not "
		"allowed." });
	unlink(path);
}

static void test_api_router_mmds_store_is_limited(void **state)
{
	size_t n = 30000;
	char *big = malloc(n + 32);
	int status;
	char *body;

	(void)state;
	assert_non_null(big);
	if (!big)
		return;
	snprintf(big, n + 32, "{\"a\": \"%0*d\"}", (int)n, 0);
	body = request("PUT", "/mmds", big, &status);
	assert_int_equal(status, 204);
	free(body);
	snprintf(big, n + 32, "{\"b\": \"%0*d\"}", (int)n, 0);
	body = request("PATCH", "/mmds", big, &status);
	assert_int_equal(status, 413);
	assert_non_null(strstr(body, "MMDS limit exceeded error: The MMDS patch request doesn't "
		"fit."));
	free(body);
	/* The store kept its old content. */
	body = request("GET", "/mmds", NULL, &status);
	assert_non_null(strstr(body, "\"a\":"));
	assert_null(strstr(body, "\"b\":"));
	free(body);
	free(big);
}

static void test_api_router_pre_boot_refusals(void **state)
{
	static const struct call t[] = {
		{ "PATCH", "/vm", "{\"state\": \"Paused\"}", 400, "The requested operation is not "
			"supported before starting the microVM." },
		{ "PATCH", "/vm", "{\"state\": \"Stopped\"}", 400, "unknown variant `Stopped` for "
			"field `state`, expected `Paused` or `Resumed`" },
		{ "PUT", "/actions", "{\"action_type\": \"SendCtrlAltDel\"}", 400, "before starting" },
		{ "PUT", "/actions", "{\"action_type\": \"FlushMetrics\"}", 400, "before starting" },
		{ "PUT", "/actions", "{\"action_type\": \"Reboot\"}", 400, "unknown variant `Reboot` "
			"for field `action_type`, expected one of `FlushMetrics`, `InstanceStart`, "
			"`SendCtrlAltDel`" },
		{ "PUT", "/actions", "{\"action_type\": \"InstanceStart\", \"x\": 1}", 400,
			"unknown field `x`, expected `action_type`" },
		{ "PUT", "/actions", "{\"action_type\": \"InstanceStart\"}", 400, "Start microvm "
			"error: Cannot start microvm without kernel configuration." },
		{ "PUT", "/snapshot/create", "{\"snapshot_path\": \"/tmp/s\", \"mem_file_path\": "
			"\"/tmp/m\"}", 400, "before starting" },
		{ "PUT", "/snapshot/create", "{\"snapshot_path\": \"/tmp/s\"}", 400,
			"missing field `mem_file_path`" },
		{ "PUT", "/snapshot/load", "{\"snapshot_path\": \"/s\", \"mem_file_path\": \"/m\", "
			"\"mem_backend\": {\"backend_path\": \"/m\", \"backend_type\": \"File\"}}", 400,
			"too many fields: either `mem_backend` or `mem_file_path` exclusively is "
			"required" },
		{ "PUT", "/snapshot/load", "{\"snapshot_path\": \"/s\"}", 400, "missing field: either "
			"`mem_backend` or `mem_file_path` is required" },
		{ "PUT", "/snapshot/load", "{\"snapshot_path\": \"/s\", \"mem_backend\": "
			"{\"backend_path\": \"/m\", \"backend_type\": \"Disk\"}}", 400,
			"unknown variant `Disk` for field `mem_backend.backend_type`" },
		{ "PUT", "/snapshot/load", "{\"snapshot_path\": \"/s\", \"mem_file_path\": \"/m\", "
			"\"clock_realtime\": true}", 400, "clock_realtime is not supported" },
		{ "PUT", "/snapshot/load", "{\"snapshot_path\": \"/s\", \"mem_file_path\": \"/m\", "
			"\"huge_pages\": \"2M\"}", 400, "only Snapshot (the saved setting)" },
		{ "PUT", "/snapshot", "{}", 400, "Invalid request method and/or path" },
	};

	(void)state;
	RUN(t);
	assert_int_equal(fake_vm.vms_alive, 0);
}

static void test_api_router_boot_pause_resume_snapshot(void **state)
{
	static const struct call t[] = {
		{ "PUT", "/machine-config", "{\"vcpu_count\": 2, \"mem_size_mib\": 64, "
			"\"track_dirty_pages\": true}", 204, NULL },
		{ "PUT", "/boot-source", "{\"kernel_image_path\": \"/dev/null\"}", 204, NULL },
		{ "PUT", "/actions", "{\"action_type\": \"InstanceStart\"}", 204, NULL },
		{ "GET", "/", NULL, 200, "\"state\":\"Running\"" },
		{ "GET", "/vm/config", NULL, 200, "\"boot_args\":\"reboot=k panic=1 nomodule "
			"8250.nr_uarts=0 i8042.noaux i8042.nomux i8042.dumbkbd swiotlb=noforce\"" },
		{ "GET", "/machine-config", NULL, 200, "\"vcpu_count\":2,\"mem_size_mib\":64,"
			"\"smt\":false,\"track_dirty_pages\":true" },
		{ "PUT", "/actions", "{\"action_type\": \"InstanceStart\"}", 400, "The requested "
			"operation is not supported after starting the microVM." },
		{ "PUT", "/machine-config", "{\"vcpu_count\": 1, \"mem_size_mib\": 64}", 400,
			"not supported after starting" },
		{ "PATCH", "/machine-config", "{\"vcpu_count\": 1}", 400, "after starting" },
		{ "PUT", "/boot-source", "{\"kernel_image_path\": \"/dev/null\"}", 400, "after "
			"starting" },
		{ "PUT", "/logger", "{\"level\": \"Info\"}", 400, "after starting" },
		{ "PUT", "/metrics", "{\"metrics_path\": \"/tmp/m\"}", 400, "after starting" },
		{ "PUT", "/vsock", "{\"guest_cid\": 3, \"uds_path\": \"/v\"}", 400, "after starting" },
		{ "PUT", "/cpu-config", "{}", 400, "after starting" },
		{ "PUT", "/mmds/config", "{\"network_interfaces\": []}", 400, "after starting" },
		{ "PUT", "/snapshot/load", "{\"snapshot_path\": \"/s\", \"mem_file_path\": \"/m\"}",
			400, "after starting" },
		{ "PUT", "/actions", "{\"action_type\": \"SendCtrlAltDel\"}", 204, NULL },
		{ "PUT", "/actions", "{\"action_type\": \"FlushMetrics\"}", 204, NULL },
		{ "PUT", "/snapshot/create", "{\"snapshot_path\": \"/tmp/s\", \"mem_file_path\": "
			"\"/tmp/m\"}", 400, "Create snapshot error: snapshot: the vm must be paused "
			"(it is running)" },
		{ "PATCH", "/vm", "{\"state\": \"Resumed\"}", 204, NULL },
		{ "PATCH", "/vm", "{\"state\": \"Paused\"}", 204, NULL },
		{ "PATCH", "/vm", "{\"state\": \"Paused\"}", 204, NULL },
		{ "GET", "/", NULL, 200, "\"state\":\"Paused\"" },
		{ "PUT", "/actions", "{\"action_type\": \"SendCtrlAltDel\"}", 400, "Internal VMM "
			"error: cannot send Ctrl-Alt-Del: the vm is paused" },
		{ "PUT", "/snapshot/create", "{\"snapshot_path\": \"/tmp/s\", \"mem_file_path\": "
			"\"/tmp/m\", \"snapshot_type\": \"Diff\"}", 204, NULL },
		{ "GET", "/balloon/statistics", NULL, 400, "No balloon device found." },
		{ "PATCH", "/vm", "{\"state\": \"Resumed\"}", 204, NULL },
		{ "GET", "/", NULL, 200, "\"state\":\"Running\"" },
	};

	(void)state;
	RUN(t);
	assert_int_equal(fake_vm.ctrl_alt_del, 1);
	assert_string_equal(fake_vm.last_snapshot_path, "/tmp/s");
	assert_int_equal(fake_vm.last_snapshot.type, SNAPSHOT_DIFF);
	assert_int_equal(vm_config(api_vm(api))->vcpus, 2);
	assert_true(vm_config(api_vm(api))->track_dirty_pages);
	fake_vm.snapshot_ret = -28;
	expect(&(struct call){ "PATCH", "/vm", "{\"state\": \"Paused\"}", 204, NULL });
	expect(&(struct call){ "PUT", "/snapshot/create", "{\"snapshot_path\": \"/a\", "
		"\"mem_file_path\": \"/b\"}", 400, "Create snapshot error: /b: No space left on "
		"device" });
	fake_vm_exit(api_vm(api), VM_EXIT_POWEROFF);
	expect(&(struct call){ "GET", "/", NULL, 200, "\"state\":\"Exited\"" });
	expect(&(struct call){ "PATCH", "/vm", "{\"state\": \"Resumed\"}", 400,
		"Internal VMM error: cannot resume: the vm is exited" });
}

static void test_api_router_failed_start_can_be_retried(void **state)
{
	static const struct call t[] = {
		{ "PUT", "/boot-source", "{\"kernel_image_path\": \"/dev/null\"}", 204, NULL },
		{ "PUT", "/actions", "{\"action_type\": \"InstanceStart\"}", 400, "Start microvm "
			"error: kernel: not a kernel (fake)" },
		{ "GET", "/", NULL, 200, "Not started" },
	};

	(void)state;
	fake_vm.start_ret = -8;
	RUN(t);
	assert_int_equal(fake_vm.vms_alive, 0);
	fake_vm.start_ret = 0;
	expect(&(struct call){ "PUT", "/actions", "{\"action_type\": \"InstanceStart\"}", 204,
		NULL });
}

static void test_api_router_snapshot_load(void **state)
{
	static const struct call t[] = {
		{ "PUT", "/logger", "{\"level\": \"Warning\"}", 204, NULL },
		{ "PUT", "/snapshot/load", "{\"snapshot_path\": \"/s\", \"mem_backend\": "
			"{\"backend_path\": \"/run/uffd.sock\", \"backend_type\": \"Uffd\"}, "
			"\"track_dirty_pages\": true, \"network_overrides\": [{\"iface_id\": \"eth0\", "
			"\"host_dev_name\": \"tap9\"}], \"vsock_override\": {\"uds_path\": \"/v2\"}}",
			204, NULL },
		{ "GET", "/", NULL, 200, "\"state\":\"Paused\"" },
		{ "GET", "/vm/config", NULL, 200, "\"boot-source\":{\"kernel_image_path\":\"\","
			"\"initrd_path\":null,\"boot_args\":null}" },
		{ "GET", "/machine-config", NULL, 200, "\"vcpu_count\":2,\"mem_size_mib\":256,"
			"\"smt\":false,\"track_dirty_pages\":true" },
		{ "PATCH", "/vm", "{\"state\": \"Resumed\"}", 204, NULL },
	};

	(void)state;
	RUN(t);
	assert_string_equal(fake_vm.last_restore_path, "/run/uffd.sock");
	assert_int_equal(fake_vm.last_restore.backend, MEM_BACKEND_UFFD);
	assert_true(fake_vm.last_restore.track_dirty_pages);
	assert_false(fake_vm.last_restore.resume);
	assert_int_equal(fake_vm.last_restore.nr_net_overrides, 1);
	assert_string_equal(fake_vm.last_restore_vsock, "/v2");
}

static void test_api_router_snapshot_load_rules(void **state)
{
	static const char load[] = "{\"snapshot_path\": \"/s\", \"mem_file_path\": \"/m\", "
		"\"resume_vm\": true}";
	struct api_response r;

	(void)state;
	fake_vm.restore_fails = true;
	expect(&(struct call){ "PUT", "/snapshot/load", load, 400, "Load snapshot error: Failed "
		"to restore from snapshot: state file /s: bad magic" });
	/* A failed load leaves nothing behind: the next one may succeed. */
	fake_vm.restore_fails = false;
	api_handle(api, "PUT", "/snapshot/load", load, strlen(load), &r);
	assert_int_equal(r.status, 204);
	assert_true(r.deprecation); /* mem_file_path */
	api_response_deinit(&r);
	assert_true(fake_vm.last_restore.resume);
	assert_string_equal(fake_vm.last_restore_path, "/m");
	expect(&(struct call){ "GET", "/", NULL, 200, "Running" });
	api_free(api);

	/* A boot resource first: loading is refused, as in Firecracker. */
	api = api_new(ev_default_loop(0), NULL, (char[64]){ 0 }, 64);
	expect(&(struct call){ "PUT", "/machine-config", "{\"vcpu_count\": 1, \"mem_size_mib\": "
		"64}", 204, NULL });
	expect(&(struct call){ "PUT", "/snapshot/load", load, 400, "Load snapshot error: Loading "
		"a microVM snapshot not allowed after configuring boot-specific resources." });
}

static void test_api_router_counts_requests_in_metrics(void **state)
{
	int status;
	char *s;

	(void)state;
	free(request("GET", "/", NULL, &status));
	free(request("PUT", "/machine-config", "{\"vcpu_count\": 1, \"mem_size_mib\": 64}",
		&status));
	free(request("PUT", "/machine-config", "{\"vcpu_count\": 0, \"mem_size_mib\": 64}",
		&status));
	free(request("PATCH", "/nowhere", "{}", &status));
	free(request("PUT", "/machine-config", "{\"vcpu_count\": 1, \"mem_size_mib\": 64, "
		"\"cpu_template\": \"None\"}", &status));
	s = metrics_render(NULL);
	assert_non_null(s);
	assert_non_null(strstr(s, "\"get_api_requests\":{\"instance_info_count\":1,"
		"\"instance_info_fails\":0"));
	assert_non_null(strstr(s, "\"machine_cfg_count\":3,\"machine_cfg_fails\":1"));
	assert_non_null(strstr(s, "\"patch_api_requests\":{\"machine_cfg_count\":0"));
	assert_non_null(strstr(s, "\"other_count\":1,\"other_fails\":1"));
	assert_non_null(strstr(s, "\"deprecated_http_api_calls\":1"));
	free(s);
}

static void test_api_router_metrics_lines_carry_vcpu_exits_as_deltas(void **state)
{
	char path[] = "/tmp/ember-test-metrics-XXXXXX", body[128], line[8192];
	int fd = mkstemp(path);
	FILE *f;

	(void)state;
	assert_true(fd >= 0);
	close(fd);
	snprintf(body, sizeof(body), "{\"metrics_path\": \"%s\"}", path);
	expect(&(struct call){ "PUT", "/metrics", body, 204, NULL });
	expect(&(struct call){ "PUT", "/boot-source", "{\"kernel_image_path\": \"/dev/null\"}",
		204, NULL });
	expect(&(struct call){ "PUT", "/actions", "{\"action_type\": \"InstanceStart\"}", 204,
		NULL });
	expect(&(struct call){ "PATCH", "/vm", "{\"state\": \"Paused\"}", 204, NULL });
	expect(&(struct call){ "PUT", "/actions", "{\"action_type\": \"FlushMetrics\"}", 204,
		NULL });
	expect(&(struct call){ "PUT", "/actions", "{\"action_type\": \"FlushMetrics\"}", 204,
		NULL });
	f = fopen(path, "r");
	assert_non_null(f);
	/* First line: the fake's counters (10, 11, ... for vCPU 0); then nothing new. */
	assert_non_null(fgets(line, sizeof(line), f));
	assert_non_null(strstr(line, "\"vcpu\":{\"exit_io\":10,\"exit_mmio\":11,\"exit_intr\":12"));
	assert_non_null(strstr(line, "\"put_api_requests\":{\"machine_cfg_count\":0"));
	/* A request is counted once answered: this line has InstanceStart, not the flush. */
	assert_non_null(strstr(line, "\"actions_count\":1,\"actions_fails\":0"));
	assert_non_null(strstr(line, "\"boot_time_us\":3000"));
	assert_non_null(strstr(line, "\"pause_vm\":"));
	assert_non_null(fgets(line, sizeof(line), f));
	assert_non_null(strstr(line, "\"vcpu\":{\"exit_io\":0,\"exit_mmio\":0"));
	assert_non_null(strstr(line, "\"actions_count\":1,"));
	assert_null(fgets(line, sizeof(line), f));
	fclose(f);
	unlink(path);
}

static void test_api_router_config_file(void **state)
{
	char path[] = "/tmp/ember-test-config-XXXXXX", err[512];
	static const struct {
		const char *text, *want;
	} bad[] = {
		{ "{", "EOF while parsing" },
		{ "{\"machine-config\": {\"vcpu_count\": 1, \"mem_size_mib\": 64}}",
			"missing field `boot-source`" },
		{ "{\"boot-source\": {\"kernel_image_path\": \"/dev/null\"}, \"machine-config\": "
			"{\"vcpu_count\": 99, \"mem_size_mib\": 64}}", "machine-config: Machine config "
			"error: The number of vCPUs" },
		{ "{\"boot-source\": {\"kernel_image_path\": \"/dev/null\"}, \"drives\": "
			"[{\"drive_id\": \"rootfs\", \"is_root_device\": true, \"path_on_host\": \"/r\"}]}",
			"drives: drives are not supported by this ember yet" },
		{ "{\"boot-source\": {\"kernel_image_path\": \"/dev/null\"}, \"bogus\": 1}",
			"unknown field `bogus`" },
		{ "{\"boot-source\": {\"kernel_image_path\": \"/nonexistent\"}}",
			"boot-source: Boot source error: The kernel file cannot be opened" },
	};
	FILE *f;
	int fd;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct api *a = api_new(ev_default_loop(0), NULL, err, sizeof(err));
		fd = mkstemp(path);
		assert_true(fd >= 0);
		assert_int_equal(write(fd, bad[i].text, strlen(bad[i].text)),
			(ssize_t)strlen(bad[i].text));
		close(fd);
		assert_int_equal(api_load_config_file(a, path, err, sizeof(err)), -22);
		if (!strstr(err, bad[i].want) || strncmp(err, path, strlen(path)) != 0)
			fail_msg("config %s: got '%s', want '%s'", bad[i].text, err, bad[i].want);
		unlink(path);
		strcpy(path, "/tmp/ember-test-config-XXXXXX");
		api_free(a);
	}
	assert_int_equal(api_load_config_file(api, "/nonexistent.json", err, sizeof(err)), -22);
	assert_string_equal(err, "/nonexistent.json: No such file or directory");

	fd = mkstemp(path);
	f = fdopen(fd, "w");
	fputs("{\"boot-source\": {\"kernel_image_path\": \"/dev/null\", \"boot_args\": \"x\"},"
	      " \"machine-config\": {\"vcpu_count\": 2, \"mem_size_mib\": 64}, \"drives\": [],"
	      " \"network-interfaces\": [], \"pmem\": [], \"logger\": {\"level\": \"Warning\"}}",
		f);
	fclose(f);
	assert_int_equal(api_load_config_file(api, path, err, sizeof(err)), 0);
	unlink(path);
	assert_non_null(api_vm(api));
	assert_int_equal(vm_state(api_vm(api)), VM_RUNNING);
	assert_int_equal(vm_config(api_vm(api))->vcpus, 2);
	assert_string_equal(vm_config(api_vm(api))->cmdline, "x");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_api_router_paths_methods_and_bodies, setup,
			teardown),
		cmocka_unit_test_setup_teardown(test_api_router_machine_config, setup, teardown),
		cmocka_unit_test_setup_teardown(test_api_router_deprecated_fields_are_flagged, setup,
			teardown),
		cmocka_unit_test_setup_teardown(test_api_router_boot_source_and_unsupported_devices,
			setup, teardown),
		cmocka_unit_test_setup_teardown(test_api_router_logger_metrics_mmds, setup, teardown),
		cmocka_unit_test_setup_teardown(test_api_router_mmds_store_is_limited, setup,
			teardown),
		cmocka_unit_test_setup_teardown(test_api_router_pre_boot_refusals, setup, teardown),
		cmocka_unit_test_setup_teardown(test_api_router_boot_pause_resume_snapshot, setup,
			teardown),
		cmocka_unit_test_setup_teardown(test_api_router_failed_start_can_be_retried, setup,
			teardown),
		cmocka_unit_test_setup_teardown(test_api_router_snapshot_load, setup, teardown),
		cmocka_unit_test_setup_teardown(test_api_router_snapshot_load_rules, setup, teardown),
		cmocka_unit_test_setup_teardown(test_api_router_counts_requests_in_metrics, setup,
			teardown),
		cmocka_unit_test_setup_teardown(test_api_router_metrics_lines_carry_vcpu_exits_as_deltas,
			setup, teardown),
		cmocka_unit_test_setup_teardown(test_api_router_config_file, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
