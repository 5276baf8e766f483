/* Unit tests for the API router and handlers, on a fake VM: every endpoint's answers as
 * tables of request -> status and body fragment, pre-boot and post-boot rules, devices,
 * snapshot calls, the MMDS store, metrics counting and the JSON config file. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <ev.h>

#include "ember/api.h"
#include "ember/config.h"
#include "ember/metrics.h"
#include "ember/mmds.h"
#include "fake_vm.h"

struct call {
	const char *method, *path, *body;
	int status;
	const char *want; /* a fragment of the answer, or NULL */
};

static struct api *api;
static struct mmds *store; /* the MMDS store the test's API is handed */

static int setup(void **state)
{
	char err[128];

	(void)state;
	fake_vm_reset();
	metrics_reset();
	store = mmds_new();
	api = store ? api_new(ev_default_loop(0), NULL, store, err, sizeof(err)) : NULL;
	return api ? 0 : -1;
}

static int teardown(void **state)
{
	(void)state;
	api_free(api);
	mmds_free(store);
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
		{ "POST", "/actions", "{}", 400,
			"Invalid request method and/or path: POST actions." },
		{ "GET", "/nope", NULL, 400, "Invalid request method and/or path: GET nope." },
		{ "GET", "/machine-config/extra", NULL, 400, "Invalid request method and/or path" },
		{ "PUT", "/version", "{}", 400,
			"Invalid request method and/or path: PUT version." },
		{ "GET", "*", NULL, 400, "Invalid request method and/or path" },
		{ "PUT", "/drives", "{}", 400, "The ID cannot be empty." },
		{ "PUT", "/drives/", "{}", 400, "The ID cannot be empty." },
		{ "PUT", "/drives/a-b", "{}", 400,
			"API Resource IDs can only contain alphanumeric "
			"characters and underscores." },
		{ "PUT", "/drives/a/b", "{}", 400, "Invalid request method and/or path" },
		{ "PUT", "/machine-config", "{\"vcpu_count\":", 400, DESER "EOF while parsing" },
		{ "PUT", "/machine-config", "nonsense", 400,
			DESER "expected ident at line 1 column 2." },
	};

	(void)state;
	RUN(t);
}

static void test_api_router_machine_config(void **state)
{
	static const struct call t[] = {
		{ "GET", "/machine-config", NULL, 200,
			"{\"vcpu_count\":1,\"mem_size_mib\":128,"
			"\"smt\":false,\"track_dirty_pages\":false,\"huge_pages\":\"None\"}" },
		{ "PUT", "/machine-config", "{\"vcpu_count\": 2, \"mem_size_mib\": 256}", 204,
			NULL },
		{ "GET", "/machine-config", NULL, 200, "{\"vcpu_count\":2,\"mem_size_mib\":256," },
		{ "PATCH", "/machine-config", "{\"track_dirty_pages\": true}", 204, NULL },
		{ "GET", "/machine-config", NULL, 200,
			"\"vcpu_count\":2,\"mem_size_mib\":256,"
			"\"smt\":false,\"track_dirty_pages\":true" },
		{ "PATCH", "/machine-config", "{\"huge_pages\": \"2M\"}", 204, NULL },
		{ "GET", "/machine-config", NULL, 200, "\"huge_pages\":\"2M\"" },
		{ "PATCH", "/machine-config", "{\"mem_size_mib\": 255}", 400,
			"The memory size (MiB) "
			"is either 0, or not a multiple of the configured page size." },
		{ "PUT", "/machine-config", "{\"vcpu_count\": 1}", 400,
			DESER "missing field "
			      "`mem_size_mib` at line 1 column 17." },
		{ "PUT", "/machine-config",
			"{\"vcpu_count\": 1, \"mem_size_mib\": 64, \"vcpus\": 1}", 400,
			DESER
			"unknown field `vcpus`, expected one of `vcpu_count`, `mem_size_mib`" },
		{ "PUT", "/machine-config", "{\"vcpu_count\": \"2\", \"mem_size_mib\": 64}", 400,
			"invalid type: string \\\"2\\\", expected u8" },
		{ "PUT", "/machine-config", "{\"vcpu_count\": 300, \"mem_size_mib\": 64}", 400,
			"invalid value: integer `300`, expected u8" },
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
		{ "PUT", "/machine-config",
			"{\"vcpu_count\": 3, \"mem_size_mib\": 64, \"smt\": true}", 400,
			"1 or an even number if SMT is enabled" },
		{ "PUT", "/machine-config",
			"{\"vcpu_count\": 1, \"mem_size_mib\": 64, \"huge_pages\":"
			" \"1G\"}",
			400,
			"unknown variant `1G`, expected one of "
			"`None`, `Transparent`, `2M`" },
		{ "PUT", "/machine-config",
			"{\"vcpu_count\": 1, \"mem_size_mib\": 64, "
			"\"cpu_template\": \"V1N1\"}",
			400, "cpu_template: V1N1 is an aarch64 template" },
		{ "PATCH", "/machine-config", "{}", 400, "Empty PATCH request." },
		{ "PATCH", "/machine-config", "{\"smt\": null}", 400, "Empty PATCH request." },
		/* A failed update changes nothing; PUT resets what it does not name. */
		{ "GET", "/machine-config", NULL, 200, "\"vcpu_count\":2,\"mem_size_mib\":256," },
		{ "PUT", "/machine-config", "{\"vcpu_count\": 4, \"mem_size_mib\": 64}", 204,
			NULL },
		{ "GET", "/machine-config", NULL, 200,
			"\"track_dirty_pages\":false,\"huge_pages\":"
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

static void test_api_router_boot_source_and_cpu_config(void **state)
{
	static const struct call t[] = {
		{ "PUT", "/boot-source", "{\"kernel_image_path\": \"/nonexistent/vmlinux\"}", 400,
			"Boot source error: The kernel file cannot be opened: No such file or directory "
			"(os error 2)" },
		{ "PUT", "/boot-source",
			"{\"kernel_image_path\": \"/dev/null\", \"initrd_path\": "
			"\"/nonexistent/initrd\"}",
			400,
			"The initrd file cannot be opened due to invalid "
			"path or invalid permissions. No such file or directory (os error 2)" },
		{ "PUT", "/boot-source", "{\"boot_args\": \"x\"}", 400,
			"missing field "
			"`kernel_image_path`" },
		{ "PUT", "/boot-source",
			"{\"kernel_image_path\": \"/dev/null\", \"boot_args\": "
			"\"console=ttyS0\"}",
			204, NULL },
		{ "GET", "/vm/config", NULL, 200,
			"\"boot-source\":{\"kernel_image_path\":\"/dev/null\","
			"\"initrd_path\":null,\"boot_args\":\"console=ttyS0\"}" },
		{ "GET", "/vm/config", NULL, 200, "\"drives\":[]" },
		{ "GET", "/vm/config", NULL, 200, "\"balloon\":null," },
		{ "GET", "/vm/config", NULL, 200,
			"\"network-interfaces\":[],\"vsock\":null,"
			"\"entropy\":null," },
		{ "PUT", "/cpu-config",
			"{\"cpuid_modifiers\": [{\"leaf\": \"0x1\", \"subleaf\": "
			"\"0x0\", \"flags\": 0, \"modifiers\": [{\"register\": \"eax\", \"bitmap\": "
			"\"0bxxxx1\"}]}], \"msr_modifiers\": [{\"addr\": \"0x10a\", \"bitmap\": \"0b1\"}], "
			"\"kvm_capabilities\": [\"!56\"]}",
			204, NULL },
		{ "PUT", "/cpu-config",
			"{\"cpuid_modifiers\": [{\"leaf\": \"1\", \"subleaf\": "
			"\"0x0\", \"flags\": 0, \"modifiers\": []}]}",
			400,
			"Make sure to prefix the number "
			"with '0x' for hexadecimal numbers" },
		{ "PUT", "/cpu-config",
			"{\"msr_modifiers\": [{\"addr\": \"0x10a\", \"bitmap\": "
			"\"0b12\"}]}",
			400,
			"msr_modifiers[0]: Failed to parse string [0b12] as a bitmap - "
			"unknown character: 50" },
		{ "PUT", "/cpu-config", "{\"kvm_capabilities\": [\"x\"]}", 400,
			"Failed to parse string [x] as a kvm capability" },
		{ "PUT", "/cpu-config", "{\"reg_modifiers\": []}", 400,
			"unknown field `reg_modifiers`" },
	};

	(void)state;
	RUN(t);
}

#define BOOT_CALLS \
	{ "PUT", "/boot-source", "{\"kernel_image_path\": \"/dev/null\"}", 204, NULL }, \
	{ \
		"PUT", "/actions", "{\"action_type\": \"InstanceStart\"}", 204, NULL \
	}

/* Drive paths are relative to the test's own directory (group_setup): disk.img is an
 * image, fifo a FIFO. */
#define ROOTFS \
	"{\"drive_id\": \"rootfs\", \"path_on_host\": \"disk.img\", " \
	"\"is_root_device\": true, \"is_read_only\": false}"

static void test_api_router_drives(void **state)
{
	static const struct call t[] = {
		{ "PUT", "/drives/rootfs", ROOTFS, 204, NULL },
		{ "GET", "/vm/config", NULL, 200,
			"\"drives\":[{\"drive_id\":\"rootfs\","
			"\"partuuid\":null,\"is_root_device\":true,\"cache_type\":\"Unsafe\","
			"\"is_read_only\":false,\"path_on_host\":\"disk.img\",\"rate_limiter\":null,"
			"\"io_engine\":\"Sync\",\"socket\":null}]" },
		{ "PUT", "/drives/data",
			"{\"drive_id\": \"data\", \"path_on_host\": \"disk.img\", "
			"\"is_root_device\": false, \"is_read_only\": true, \"partuuid\": \"0eaa91a0-01\", "
			"\"cache_type\": \"Writeback\", \"io_engine\": \"Sync\", \"rate_limiter\": "
			"{\"bandwidth\": {\"size\": 1000, \"refill_time\": 100}, \"ops\": {\"size\": 0, "
			"\"refill_time\": 5}}}",
			204, NULL },
		{ "GET", "/vm/config", NULL, 200,
			"{\"drive_id\":\"data\",\"partuuid\":\"0eaa91a0-01\","
			"\"is_root_device\":false,\"cache_type\":\"Writeback\",\"is_read_only\":true,"
			"\"path_on_host\":\"disk.img\",\"rate_limiter\":{\"bandwidth\":{\"size\":1000,"
			"\"one_time_burst\":null,\"refill_time\":100},\"ops\":null},\"io_engine\":\"Sync\"" },
		/* One root device; the same id may be put again (it replaces the drive). */
		{ "PUT", "/drives/other",
			"{\"drive_id\": \"other\", \"path_on_host\": \"disk.img\", "
			"\"is_root_device\": true}",
			400,
			"Drive config error: A root block device already "
			"exists!" },
		{ "PUT", "/drives/rootfs", ROOTFS, 204, NULL },
		{ "PUT", "/drives/rootfs",
			"{\"drive_id\": \"rootfs\", \"path_on_host\": \"disk.img\", "
			"\"is_root_device\": false}",
			204, NULL },
		/* A new root device goes first (/dev/vda), as in Firecracker. */
		{ "PUT", "/drives/data",
			"{\"drive_id\": \"data\", \"path_on_host\": \"disk.img\", "
			"\"is_root_device\": true, \"is_read_only\": true}",
			204, NULL },
		{ "GET", "/vm/config", NULL, 200,
			"\"drives\":[{\"drive_id\":\"data\",\"partuuid\":null,"
			"\"is_root_device\":true," },
		{ "GET", "/vm/config", NULL, 200, "\"socket\":null},{\"drive_id\":\"rootfs\"" },
		/* io_engine Async (io_uring works on the host running the tests), echoed. */
		{ "PUT", "/drives/rootfs",
			"{\"drive_id\": \"rootfs\", \"path_on_host\": \"disk.img\", "
			"\"is_root_device\": false, \"io_engine\": \"Async\"}",
			204, NULL },
		{ "GET", "/vm/config", NULL, 200,
			"\"path_on_host\":\"disk.img\",\"rate_limiter\":null,\"io_engine\":\"Async\"" },
		{ "PUT", "/drives/rootfs",
			"{\"drive_id\": \"rootfs\", \"path_on_host\": \"disk.img\", "
			"\"is_root_device\": false, \"io_engine\": \"async\"}",
			400, "unknown variant `async`, expected `Sync` or `Async`" },
		{ "PUT", "/drives/rootfs",
			"{\"drive_id\": \"rootfs\", \"is_root_device\": false, "
			"\"socket\": \"/tmp/vhost.sock\"}",
			400,
			"vhost-user drives (socket) are not "
			"supported" },
		{ "PUT", "/drives/rootfs", "{\"drive_id\": \"rootfs\", \"is_root_device\": false}",
			400, "Drive config error: path_on_host is required" },
		{ "PUT", "/drives/x",
			"{\"drive_id\": \"x\", \"path_on_host\": \"/nonexistent/x.img\", "
			"\"is_root_device\": false}",
			400,
			"Drive config error: Unable to open the block "
			"device backing file /nonexistent/x.img: No such file or directory (os error 2)" },
		{ "PUT", "/drives/x",
			"{\"drive_id\": \"x\", \"path_on_host\": \"fifo\", "
			"\"is_root_device\": false, \"is_read_only\": true}",
			400,
			"Drive config error: The "
			"block device backing file fifo is not a regular file or a block device" },
		{ "PUT", "/drives/x",
			"{\"drive_id\": \"x\", \"path_on_host\": \".\", "
			"\"is_root_device\": false, \"is_read_only\": true}",
			400,
			"backing file . is not a "
			"regular file" },
		{ "PUT", "/drives/x",
			"{\"drive_id\": \"x\", \"path_on_host\": \"/dev/null\", "
			"\"is_root_device\": false}",
			400, "backing file /dev/null is not a regular file" },
		{ "PUT", "/drives/x",
			"{\"drive_id\": \"x\", \"path_on_host\": \"disk.img\", "
			"\"is_root_device\": false, \"readonly\": true}",
			400,
			DESER
			"unknown field "
			"`readonly`, expected one of `drive_id`, `partuuid`, `is_root_device`" },
		{ "PUT", "/drives/x",
			"{\"drive_id\": \"x\", \"path_on_host\": \"disk.img\", "
			"\"is_root_device\": false, \"is_read_only\": \"yes\"}",
			400,
			"invalid type: "
			"string \\\"yes\\\", expected a boolean at line 1 column 92" },
		{ "PUT", "/drives/x",
			"{\"drive_id\": \"x\", \"path_on_host\": 7, \"is_root_device\": "
			"false}",
			400,
			"invalid type: integer `7`, expected a "
			"string" },
		{ "PUT", "/drives/x",
			"{\"drive_id\": \"x\", \"path_on_host\": \"disk.img\", "
			"\"is_root_device\": false, \"rate_limiter\": {\"ops\": {\"size\": "
			"1000000000000000000, \"refill_time\": 1}}}",
			400,
			"Drive config error: rate_limiter: "
			"ops: size, one_time_burst or refill_time_ms is too large" },
		{ "PUT", "/drives/rootfs", "{\"drive_id\": \"other\", \"is_root_device\": true}",
			400, "The id from the path does not match the id from the body!" },
		{ "PUT", "/drives/rootfs", "{\"drive_id\": \"rootfs\"}", 400,
			"missing field `is_root_device`" },
		{ "PUT", "/drives/rootfs",
			"{\"drive_id\": \"rootfs\", \"is_root_device\": true, "
			"\"cache_type\": \"Fast\"}",
			400,
			"unknown variant `Fast`, "
			"expected `Unsafe` or `Writeback`" },
		{ "PUT", "/drives/rootfs",
			"{\"drive_id\": \"rootfs\", \"is_root_device\": true, "
			"\"rate_limiter\": {\"bandwidth\": {\"size\": -1, \"refill_time\": 100}}}",
			400, "invalid value: integer `-1`, expected u64" },
		{ "PATCH", "/drives/rootfs", "{\"drive_id\": \"rootfs\", \"path_on_host\": \"/y\"}",
			400, "not supported before starting the microVM" },
		{ "DELETE", "/drives/rootfs", NULL, 400,
			"removing a drive is not supported by this "
			"ember yet" },
	};
	char body[160], path[32];

	(void)state;
	RUN(t);
	/* At most VM_MAX_DRIVES; failed PUTs above changed nothing. */
	for (int i = 2; i <= VM_MAX_DRIVES; i++) {
		snprintf(body, sizeof(body),
			"{\"drive_id\": \"d%d\", \"path_on_host\": \"disk.img\", "
			"\"is_root_device\": false}",
			i);
		snprintf(path, sizeof(path), "/drives/d%d", i);
		expect(&(struct call){ "PUT", path, body, i < VM_MAX_DRIVES ? 204 : 400,
			i < VM_MAX_DRIVES ? NULL : "Drive config error: at most 18 drives" });
	}
	expect(&(struct call){ "PUT", "/drives/rootfs", ROOTFS, 400,
		"A root block device "
		"already exists!" });
	expect(&(struct call){ "PUT", "/actions", "{\"action_type\": \"InstanceStart\"}", 400,
		"Start microvm error: Cannot start microvm without kernel configuration." });
}

/* As many interfaces as virtio devices may be (Firecracker's count), and no more. */
static void test_api_router_network_interfaces_up_to_the_limit(void **state)
{
	char body[160], path[48];

	(void)state;
	for (int i = 1; i <= VM_MAX_NETS + 1; i++) {
		snprintf(body, sizeof(body),
			"{\"iface_id\": \"n%d\", \"host_dev_name\": \"tap%d\"}", i, i);
		snprintf(path, sizeof(path), "/network-interfaces/n%d", i);
		expect(&(struct call){ "PUT", path, body, i <= VM_MAX_NETS ? 204 : 400,
			i <= VM_MAX_NETS
				? NULL
				: "Network interface error: at most 18 network interfaces" });
	}
}

static void test_api_router_drives_after_boot(void **state)
{
	static const struct call t[] = {
		{ "PUT", "/drives/rootfs", ROOTFS, 204, NULL },
		{ "PUT", "/drives/scratch",
			"{\"drive_id\": \"scratch\", \"path_on_host\": "
			"\"disk.img\", \"is_root_device\": false, \"partuuid\": \"p1\"}",
			204, NULL },
		BOOT_CALLS,
		{ "GET", "/vm/config", NULL, 200, "\"drive_id\":\"scratch\",\"partuuid\":\"p1\"" },
		{ "PUT", "/drives/rootfs", ROOTFS, 400,
			"The requested operation is not supported "
			"after starting the microVM." },
		{ "PUT", "/drives/new",
			"{\"drive_id\": \"new\", \"path_on_host\": \"disk.img\", "
			"\"is_root_device\": false}",
			400, "not supported after starting" },
		{ "PATCH", "/drives/rootfs",
			"{\"drive_id\": \"rootfs\", \"path_on_host\": "
			"\"/dev/null\"}",
			400,
			"Drive config error: The block device backing file "
			"/dev/null is not a regular file or a block device" },
		{ "PATCH", "/drives/rootfs",
			"{\"drive_id\": \"rootfs\", \"path_on_host\": "
			"\"nothere.img\"}",
			400,
			"Drive config error: Unable to open the block device "
			"backing file nothere.img: No such file or directory (os error 2)" },
		{ "PATCH", "/drives/rootfs", "{\"drive_id\": \"rootfs\"}", 400,
			"Please specify "
			"at least one property to patch: path_on_host, rate_limiter." },
		{ "PATCH", "/drives/rootfs", "{\"drive_id\": \"rootfs\", \"rate_limiter\": null}",
			400, "Please specify at least one property to patch" },
		{ "PATCH", "/drives/rootfs",
			"{\"drive_id\": \"rootfs\", \"rate_limiter\": "
			"{\"ops\": {\"size\": 1000000000000000000, \"refill_time\": 1}}}",
			400,
			"Drive config error: rate_limiter: ops: size, one_time_burst or refill_time_ms "
			"is too large" },
		{ "PATCH", "/drives/rootfs",
			"{\"drive_id\": \"other\", \"path_on_host\": "
			"\"disk.img\"}",
			400,
			"The id from the path does not match the id from the "
			"body!" },
		{ "PATCH", "/drives/nosuch",
			"{\"drive_id\": \"nosuch\", \"path_on_host\": "
			"\"disk.img\"}",
			400, "Drive config error: drive 'nosuch': no such drive" },
		{ "PATCH", "/drives/scratch",
			"{\"drive_id\": \"scratch\", \"path_on_host\": "
			"\"./disk.img\", \"rate_limiter\": {\"ops\": {\"size\": 5, "
			"\"refill_time\": 100}}}",
			204, NULL },
		{ "PATCH", "/drives/rootfs", "{\"drive_id\": \"rootfs\", \"is_read_only\": true}",
			400,
			"unknown field `is_read_only`, expected one of `drive_id`, `path_on_host`, "
			"`rate_limiter`" },
	};
	const struct vm_config *c;

	(void)state;
	RUN(t);
	c = vm_config(api_vm(api));
	assert_int_equal(c->nr_drives, 2);
	assert_string_equal(c->drives[0].id, "rootfs");
	assert_true(c->drives[0].root);
	assert_false(c->drives[0].read_only);
	assert_string_equal(c->drives[1].path, "./disk.img");
	assert_int_equal(fake_vm.drive_updates, 1);
	assert_string_equal(fake_vm.last_drive_path, "./disk.img");
	assert_true(fake_vm.last_drive_had_limit);
	assert_true(fake_vm.last_drive_limit.ops_set);
	assert_false(fake_vm.last_drive_limit.bandwidth_set);
	assert_int_equal(fake_vm.last_drive_limit.limit.ops.size, 5);
	assert_int_equal(fake_vm.last_drive_limit.limit.ops.refill_time_ms, 100);
	/* A limiter alone keeps the file; a bucket of size 0 is a removal. */
	expect(&(struct call){ "PATCH", "/drives/scratch",
		"{\"drive_id\": \"scratch\", "
		"\"rate_limiter\": {\"bandwidth\": {\"size\": 0, \"refill_time\": 0}}}",
		204, NULL });
	assert_int_equal(fake_vm.drive_updates, 2);
	assert_true(fake_vm.last_drive_limit.bandwidth_set);
	assert_false(fake_vm.last_drive_limit.ops_set);
	assert_int_equal(fake_vm.last_drive_limit.limit.bandwidth.size, 0);
	assert_string_equal(c->drives[1].path, "./disk.img");
}

#define ETH0 \
	"{\"iface_id\": \"eth0\", \"host_dev_name\": \"tap0\", \"guest_mac\": " \
	"\"06:00:AC:10:00:02\", \"rx_rate_limiter\": {\"ops\": {\"size\": 10, " \
	"\"refill_time\": 1000}}}"

#define PMEM_ERR "Pmem config error: "
#define PMEM_P0 "{\"id\": \"p0\", \"path_on_host\": \"disk.img\"}"

static void test_api_router_pmem(void **state)
{
	static const struct call t[] = {
		{ "PUT", "/pmem/p0", "{\"id\": \"p0\"}", 400,
			DESER "missing field `path_on_host`" },
		{ "PUT", "/pmem/p0", "{\"id\": \"p1\", \"path_on_host\": \"disk.img\"}", 400,
			"The id from the path does not match the id from the body!" },
		{ "PUT", "/pmem/p0", "{\"id\": \"p0\", \"path_on_host\": \"nothere.img\"}", 400,
			PMEM_ERR "Error accessing underlying file: No such file or directory "
				 "(os error 2)" },
		{ "PUT", "/pmem/p0", "{\"id\": \"p0\", \"path_on_host\": \"fifo\"}", 400,
			PMEM_ERR "pmem 'p0': fifo is not a regular file or a block device" },
		{ "PUT", "/pmem/p0", PMEM_P0, 204, NULL },
		{ "GET", "/vm/config", NULL, 200,
			"\"pmem\":[{\"id\":\"p0\",\"path_on_host\":\"disk.img\","
			"\"root_device\":false,\"read_only\":false,\"rate_limiter\":null}]" },
		{ "PUT", "/drives/rootfs", ROOTFS, 204, NULL },
		{ "PUT", "/pmem/p1",
			"{\"id\": \"p1\", \"path_on_host\": \"disk.img\", \"root_device\": true}",
			400,
			PMEM_ERR
			"Attempt to add pmem as a root device while the root device defined "
			"as a block device" },
		{ "PATCH", "/pmem/p0", "{\"id\": \"p0\"}", 400,
			"The requested operation is not supported before starting the microVM." },
		BOOT_CALLS,
		{ "PUT", "/pmem/p0", PMEM_P0, 400, "not supported after starting" },
		{ "PATCH", "/pmem/p0",
			"{\"id\": \"p0\", \"rate_limiter\": {\"ops\": {\"size\": 5, "
			"\"refill_time\": 100}}}",
			204, NULL },
		{ "PATCH", "/pmem/p0", "{\"id\": \"p0\", \"path_on_host\": \"x\"}", 400,
			"unknown field `path_on_host`" },
		{ "PATCH", "/pmem/nosuch", "{\"id\": \"nosuch\"}", 400,
			PMEM_ERR
			"Unable to patch the pmem device: Failed perform action on device: "
			"Device not found Please verify the request arguments." },
	};

	(void)state;
	RUN(t);
}

static void test_api_router_network_interfaces(void **state)
{
	static const struct call t[] = {
		{ "PUT", "/network-interfaces/eth0", ETH0, 204, NULL },
		{ "GET", "/vm/config", NULL, 200,
			"\"network-interfaces\":[{\"iface_id\":\"eth0\","
			"\"host_dev_name\":\"tap0\",\"guest_mac\":\"06:00:ac:10:00:02\",\"mtu\":null,"
			"\"rx_rate_limiter\":{\"bandwidth\":null,\"ops\":{\"size\":10,\"one_time_burst\":null,"
			"\"refill_time\":1000}},\"tx_rate_limiter\":null}]" },
		{ "PUT", "/network-interfaces/eth1",
			"{\"iface_id\": \"eth1\", \"host_dev_name\": "
			"\"tap1\", \"guest_mac\": \"06:00:ac:10:00:02\"}",
			400,
			"Network interface error: "
			"The MAC address is already in use: 06:00:ac:10:00:02" },
		{ "PUT", "/network-interfaces/eth1",
			"{\"iface_id\": \"eth1\", \"host_dev_name\": "
			"\"busy0\"}",
			400,
			"Network interface error: Could not create the network device: Open tap "
			"device failed: Error while creating ifreq structure: Resource busy (os error "
			"16). Invalid TUN/TAP Backend provided by busy0. Check our documentation on "
			"setting up the network devices." },
		/* The same id again replaces the interface. */
		{ "PUT", "/network-interfaces/eth0",
			"{\"iface_id\": \"eth0\", \"host_dev_name\": "
			"\"tap0\", \"guest_mac\": \"06:00:ac:10:00:03\", \"mtu\": 1500}",
			204, NULL },
		{ "PUT", "/network-interfaces/eth1",
			"{\"iface_id\": \"eth1\", \"host_dev_name\": "
			"\"tap1\", \"guest_mac\": \"06:00:ac:10:00:02\"}",
			204, NULL },
		{ "GET", "/vm/config", NULL, 200,
			"[{\"iface_id\":\"eth0\",\"host_dev_name\":\"tap0\","
			"\"guest_mac\":\"06:00:ac:10:00:03\",\"mtu\":1500,\"rx_rate_limiter\":null,"
			"\"tx_rate_limiter\":null},{\"iface_id\":\"eth1\",\"host_dev_name\":\"tap1\","
			"\"guest_mac\":\"06:00:ac:10:00:02\",\"mtu\":null," },
		{ "PUT", "/network-interfaces/eth0",
			"{\"iface_id\": \"eth1\", \"host_dev_name\": "
			"\"tap0\"}",
			400,
			"The id from the path [eth0] does not match the id from the "
			"body [eth1]!" },
		{ "PUT", "/network-interfaces/eth0",
			"{\"iface_id\": \"eth0\", \"host_dev_name\": "
			"\"tap0\", \"guest_mac\": \"06:00:AC:10:00\"}",
			400,
			DESER "invalid MAC address "
			      "`06:00:AC:10:00` for field `guest_mac`" },
		{ "PUT", "/network-interfaces/eth0",
			"{\"iface_id\": \"eth0\", \"host_dev_name\": "
			"\"tap0\", \"guest_mac\": \"06-00-ac-10-00-02\"}",
			400, "invalid MAC address" },
		{ "PUT", "/network-interfaces/eth0",
			"{\"iface_id\": \"eth0\", \"host_dev_name\": "
			"\"tap0\", \"guest_mac\": \"g6:00:ac:10:00:02\"}",
			400, "invalid MAC address" },
		{ "PUT", "/network-interfaces/eth0",
			"{\"iface_id\": \"eth0\", \"host_dev_name\": "
			"\"tap0\", \"mtu\": 67}",
			400, "`mtu`: 67 is out of range 68..65535" },
		{ "PUT", "/network-interfaces/eth0",
			"{\"iface_id\": \"eth0\", \"host_dev_name\": "
			"\"tap0\", \"mtu\": 65536}",
			400, "expected u16" },
		{ "PUT", "/network-interfaces/eth0",
			"{\"iface_id\": \"eth0\", \"host_dev_name\": "
			"\"tap0\", \"guest_mac\": \"06:00:ac:10:00:03\", \"mtu\": 9000}",
			204, NULL },
		{ "GET", "/vm/config", NULL, 200,
			"\"host_dev_name\":\"tap0\",\"guest_mac\":\"06:00:ac:10:00:03\",\"mtu\":9000," },
		{ "PUT", "/network-interfaces/eth0",
			"{\"iface_id\": \"eth0\", \"host_dev_name\": "
			"\"\"}",
			400, "host_dev_name ``: a tap device name has 1 to 15 bytes" },
		{ "PUT", "/network-interfaces/eth0",
			"{\"iface_id\": \"eth0\", \"host_dev_name\": "
			"\"tap0123456789abc\"}",
			400, "a tap device name has 1 to 15 bytes" },
		{ "PUT", "/network-interfaces/eth0",
			"{\"iface_id\": \"eth0\", \"host_dev_name\": 5}", 400,
			"invalid type: integer `5`, expected a string" },
		{ "PUT", "/network-interfaces/eth0", "{\"iface_id\": \"eth0\"}", 400,
			"missing field `host_dev_name`" },
		{ "PUT", "/network-interfaces/eth0",
			"{\"iface_id\": \"eth0\", \"host_dev_name\": "
			"\"tap0\", \"allow_mmds_requests\": true}",
			400,
			"unknown field "
			"`allow_mmds_requests`" },
		{ "PUT", "/network-interfaces/eth0",
			"{\"iface_id\": \"eth0\", \"host_dev_name\": "
			"\"tap0\", \"tx_rate_limiter\": {\"bandwidth\": {\"size\": 1}}}",
			400, "missing field `refill_time` at line 1 column 90" },
		{ "PATCH", "/network-interfaces/eth0", "{\"iface_id\": \"eth0\"}", 400,
			"not supported before starting the microVM" },
		{ "DELETE", "/network-interfaces/eth0", NULL, 400,
			"removing a network interface is "
			"not supported by this ember yet" },
		{ "PUT", "/network-interfaces/eth2",
			"{\"iface_id\": \"eth2\", \"host_dev_name\": "
			"\"tap2\"}",
			204, NULL },
		{ "PUT", "/network-interfaces/eth3",
			"{\"iface_id\": \"eth3\", \"host_dev_name\": "
			"\"tap3\"}",
			204, NULL },
		{ "PUT", "/network-interfaces/eth4",
			"{\"iface_id\": \"eth4\", \"host_dev_name\": "
			"\"tap4\"}",
			204, NULL },
		BOOT_CALLS,
		{ "PUT", "/network-interfaces/eth0", ETH0, 400, "not supported after starting" },
		{ "PATCH", "/network-interfaces/eth0",
			"{\"iface_id\": \"eth0\", \"rx_rate_limiter\": "
			"null}",
			204, NULL },
		{ "PATCH", "/network-interfaces/eth9", "{\"iface_id\": \"eth9\"}", 400,
			"Network interface error: net 'eth9': no such network interface" },
		{ "PATCH", "/network-interfaces/eth0", "{\"iface_id\": \"eth1\"}", 400,
			"The id from the path [eth0] does not match the id from the body [eth1]!" },
		{ "PATCH", "/network-interfaces/eth0",
			"{\"iface_id\": \"eth0\", \"tx_rate_limiter\": "
			"{\"ops\": {\"size\": 1000000000000000000, \"refill_time\": 1}}}",
			400,
			"Network interface error: tx_rate_limiter: ops: size, one_time_burst or "
			"refill_time_ms is too large" },
		{ "PATCH", "/network-interfaces/eth0",
			"{\"iface_id\": \"eth0\", \"host_dev_name\": "
			"\"tap9\"}",
			400, "unknown field `host_dev_name`" },
		{ "PATCH", "/network-interfaces/eth0",
			"{\"iface_id\": \"eth0\", \"rx_rate_limiter\": "
			"{\"ops\": {\"size\": 0, \"refill_time\": 0}}, \"tx_rate_limiter\": "
			"{\"bandwidth\": {\"size\": 1000, \"one_time_burst\": 10, \"refill_time\": "
			"100}}}",
			204, NULL },
	};
	const struct vm_config *c;

	(void)state;
	RUN(t);
	c = vm_config(api_vm(api));
	assert_int_equal(c->nr_nets, 5);
	assert_string_equal(c->nets[1].tap, "tap1");
	assert_true(c->nets[0].has_mac);
	assert_int_equal(c->nets[0].mac[5], 3);
	assert_false(c->nets[2].has_mac);
	assert_int_equal(fake_vm.net_updates, 2);
	assert_true(fake_vm.last_rx.ops_set);
	assert_false(fake_vm.last_rx.bandwidth_set);
	assert_int_equal(fake_vm.last_rx.limit.ops.size, 0);
	assert_true(fake_vm.last_tx.bandwidth_set);
	assert_false(fake_vm.last_tx.ops_set);
	assert_int_equal(fake_vm.last_tx.limit.bandwidth.size, 1000);
	assert_int_equal(fake_vm.last_tx.limit.bandwidth.one_time_burst, 10);
	assert_int_equal(fake_vm.last_tx.limit.bandwidth.refill_time_ms, 100);
}

static void test_api_router_vsock_and_entropy(void **state)
{
	static const struct call t[] = {
		{ "PUT", "/vsock", "{\"guest_cid\": 3, \"uds_path\": \"/tmp/v.sock\"}", 204, NULL },
		{ "GET", "/vm/config", NULL, 200,
			"\"vsock\":{\"guest_cid\":3,\"uds_path\":"
			"\"/tmp/v.sock\"}" },
		{ "PUT", "/vsock", "{\"guest_cid\": 52, \"uds_path\": \"/tmp/w.sock\"}", 204,
			NULL },
		{ "GET", "/vm/config", NULL, 200,
			"\"vsock\":{\"guest_cid\":52,\"uds_path\":"
			"\"/tmp/w.sock\"}" },
		{ "PUT", "/vsock", "{\"guest_cid\": 2, \"uds_path\": \"/tmp/v.sock\"}", 400,
			"Vsock config error: guest_cid: 2 is reserved, the guest CID must be 3 or more" },
		{ "PUT", "/vsock", "{\"guest_cid\": 3}", 400, "missing field `uds_path`" },
		{ "PUT", "/vsock", "{\"guest_cid\": \"3\", \"uds_path\": \"/v\"}", 400,
			"invalid type: string \\\"3\\\", expected u32" },
		{ "PUT", "/vsock", "{\"guest_cid\": 4294967296, \"uds_path\": \"/v\"}", 400,
			"invalid value: integer `4294967296`, expected u32" },
		{ "PUT", "/vsock", "{\"guest_cid\": 3, \"uds_path\": \"\"}", 400,
			"Vsock config error: uds_path must be 1 to 107 bytes long" },
		{ "PUT", "/vsock", "{\"guest_cid\": 3, \"uds_path\": \"/v\", \"port\": 1}", 400,
			"unknown field `port`, expected one of `vsock_id`, `guest_cid`, `uds_path`" },
		{ "PUT", "/entropy", "{}", 204, NULL },
		{ "GET", "/vm/config", NULL, 200, "\"entropy\":{\"rate_limiter\":null}" },
		{ "PUT", "/entropy",
			"{\"rate_limiter\": {\"bandwidth\": {\"size\": 4096, "
			"\"one_time_burst\": 8192, \"refill_time\": 100}}}",
			204, NULL },
		{ "GET", "/vm/config", NULL, 200,
			"\"entropy\":{\"rate_limiter\":{\"bandwidth\":"
			"{\"size\":4096,\"one_time_burst\":8192,\"refill_time\":100},\"ops\":null}}" },
		{ "PUT", "/entropy", "{\"rate_limiter\": {\"ops\": {\"size\": 1}}}", 400,
			"missing field `refill_time` at line 1 column 36" },
		{ "PUT", "/entropy",
			"{\"rate_limiter\": {\"ops\": {\"size\": 1, \"refill_time\": 1, "
			"\"burst\": 1}}}",
			400,
			"unknown field `burst`, expected one of `size`, `one_time_burst`, `refill_time`" },
		{ "PUT", "/entropy", "{\"rate_limiter\": []}", 400,
			"invalid type: sequence, "
			"expected struct RateLimiterConfig at line 1 column 19" },
		{ "PUT", "/entropy", "{\"source\": \"/dev/urandom\"}", 400,
			"unknown field `source`" },
		BOOT_CALLS,
		{ "PUT", "/vsock", "{\"guest_cid\": 3, \"uds_path\": \"/tmp/v.sock\"}", 400,
			"not supported after starting" },
		{ "PUT", "/entropy", "{}", 400, "not supported after starting" },
		{ "GET", "/vm/config", NULL, 200, "\"vsock\":{\"guest_cid\":52," },
	};
	struct api_response r;
	static const char deprecated[] = "{\"vsock_id\": \"v\", \"guest_cid\": 3, \"uds_path\": "
					 "\"/tmp/v.sock\"}";
	const struct vm_config *c;

	(void)state;
	/* vsock_id is deprecated: accepted, flagged. */
	api_handle(api, "PUT", "/vsock", deprecated, strlen(deprecated), &r);
	assert_int_equal(r.status, 204);
	assert_true(r.deprecation);
	api_response_deinit(&r);
	RUN(t);
	c = vm_config(api_vm(api));
	assert_true(c->vsock.enabled);
	assert_int_equal(c->vsock.guest_cid, 52);
	assert_string_equal(c->vsock.uds_path, "/tmp/w.sock");
	assert_true(c->entropy.enabled);
	assert_int_equal(c->entropy.limit.bandwidth.size, 4096);
	assert_int_equal(c->entropy.limit.bandwidth.refill_time_ms, 100);
}

/* The three hinting routes, each refused with `want`. */
static void expect_hinting_refused(const char *want)
{
	static const char *const routes[][2] = { { "PATCH", "/balloon/hinting/start" },
		{ "GET", "/balloon/hinting/status" }, { "PATCH", "/balloon/hinting/stop" } };

	for (unsigned i = 0; i < 3; i++)
		expect(&(struct call){ routes[i][0], routes[i][1], NULL, 400, want });
}

#define BALLOON "{\"amount_mib\": 10, \"deflate_on_oom\": true, \"stats_polling_interval_s\": 1}"

static void test_api_router_balloon(void **state)
{
	static const struct call t[] = {
		{ "GET", "/balloon", NULL, 400, "Balloon config error: No balloon device found." },
		{ "PUT", "/balloon", BALLOON, 204, NULL },
		{ "GET", "/balloon", NULL, 200,
			"{\"amount_mib\":10,\"deflate_on_oom\":true,"
			"\"stats_polling_interval_s\":1,\"free_page_hinting\":false,"
			"\"free_page_reporting\":false}" },
		{ "GET", "/vm/config", NULL, 200, "\"balloon\":{\"amount_mib\":10," },
		{ "PUT", "/machine-config", "{\"vcpu_count\": 1, \"mem_size_mib\": 9}", 400,
			"Machine config error: The memory size (MiB) is smaller than the previously set "
			"balloon device target size." },
		{ "PATCH", "/machine-config", "{\"mem_size_mib\": 9}", 400,
			"smaller than the "
			"previously set balloon device target size" },
		{ "PATCH", "/balloon/hinting/start", NULL, 400, "not supported before starting" },
		{ "PUT", "/balloon", "{\"amount_mib\": 100000, \"deflate_on_oom\": true}", 400,
			"Balloon config error: Amount of pages requested is too large." },
		{ "PUT", "/balloon", "{\"amount_mib\": 10}", 400,
			"missing field `deflate_on_oom`" },
		{ "PUT", "/balloon", "{\"amount_mib\": 10, \"deflate_on_oom\": 1}", 400,
			"invalid type: integer `1`, expected a boolean" },
		{ "PUT", "/balloon",
			"{\"amount_mib\": 10, \"deflate_on_oom\": true, "
			"\"stats_polling_interval_s\": 70000}",
			400, "expected u16" },
		{ "PUT", "/balloon",
			"{\"amount_mib\": 10, \"deflate_on_oom\": true, \"target\": 1}", 400,
			"unknown field `target`" },
		{ "GET", "/balloon/statistics", NULL, 400, "not supported before starting" },
		{ "PATCH", "/balloon", "{\"amount_mib\": 1}", 400,
			"not supported before starting" },
		{ "PATCH", "/balloon/statistics", "{\"stats_polling_interval_s\": 2}", 400,
			"not supported before starting" },
		{ "PATCH", "/balloon/statistics", "{\"stats_polling_interval_s\": 70000}", 400,
			"expected u16" },
		BOOT_CALLS,
		{ "PUT", "/balloon", BALLOON, 400, "not supported after starting" },
		{ "PATCH", "/balloon", "{\"amount_mib\": 64}", 204, NULL },
		{ "GET", "/balloon", NULL, 200,
			"{\"amount_mib\":64,\"deflate_on_oom\":true,"
			"\"stats_polling_interval_s\":1,\"free_page_hinting\":false,"
			"\"free_page_reporting\":false,\"actual_mib\":64}" },
		{ "PATCH", "/balloon", "{\"amount_mib\": 129}", 400,
			"Amount of pages requested is too "
			"large." },
		{ "PATCH", "/balloon", "{\"amount_mib\": -1}", 400, "expected u32" },
		{ "PATCH", "/balloon", "{\"amount_mib\": 1, \"deflate_on_oom\": true}", 400,
			"unknown field `deflate_on_oom`, expected `amount_mib`" },
		{ "GET", "/balloon/statistics", NULL, 200,
			"{\"target_pages\":16384,"
			"\"actual_pages\":16384,\"target_mib\":64,\"actual_mib\":64,\"swap_in\":11,"
			"\"free_memory\":1048576,\"direct_reclaim\":7}" },
		{ "PATCH", "/balloon/statistics", "{\"stats_polling_interval_s\": 5}", 204, NULL },
		{ "PATCH", "/balloon/statistics", "{\"stats_polling_interval_s\": 0}", 400,
			"Balloon config error: Cannot enable/disable the statistics after boot." },
		{ "PATCH", "/balloon/statistics", "{}", 400,
			"missing field `stats_polling_interval_s`" },
		{ "GET", "/vm/config", NULL, 200,
			"\"balloon\":{\"amount_mib\":64,\"deflate_on_oom\":true,"
			"\"stats_polling_interval_s\":5," },
	};

	(void)state;
	RUN(t);
	expect_hinting_refused(
		"Balloon update error: Balloon: Attempting to use hinting when not enabled");
	assert_true(vm_config(api_vm(api))->balloon.deflate_on_oom);
	fake_vm_exit(api_vm(api), VM_EXIT_POWEROFF);
	expect(&(struct call){ "PATCH", "/balloon", "{\"amount_mib\": 1}", 400,
		"Balloon config "
		"error: balloon: the vm is exited" });
}

/* /hotplug/memory: PUT before boot with Firecracker's defaults and checks, GET and PATCH
 * after it, its texts for each refusal (the device's answers come from the fake VM). */
static void test_api_router_hotplug_memory(void **state)
{
	static const struct call t[] = {
		{ "GET", "/hotplug/memory", NULL, 400, "not supported before starting" },
		{ "PATCH", "/hotplug/memory", "{\"requested_size_mib\": 2}", 400,
			"not supported before starting" },
		{ "PUT", "/hotplug/memory", "{}", 400, "missing field `total_size_mib`" },
		{ "PUT", "/hotplug/memory", "{\"total_size_mib\": 1024, \"slot_size_mib\": -1}",
			400, "expected u32" },
		{ "PUT", "/hotplug/memory", "{\"total_size_mib\": 1024, \"block_size_mib\": 3}",
			400,
			"{\"fault_message\":\"Memory hotplug config error: Block size must be a "
			"power of 2\"}" },
		{ "PUT", "/hotplug/memory", "{\"total_size_mib\": 100}", 400,
			"Memory hotplug config error: Total size must not be lower than slot size "
			"(128 MiB)" },
		{ "GET", "/vm/config", NULL, 200, "\"memory-hotplug\":null" },
		{ "PUT", "/hotplug/memory", "{\"total_size_mib\": 512}", 204, NULL },
		{ "GET", "/vm/config", NULL, 200,
			"\"memory-hotplug\":{\"total_size_mib\":512,\"block_size_mib\":2,"
			"\"slot_size_mib\":128}" },
		BOOT_CALLS,
		{ "PUT", "/hotplug/memory", "{\"total_size_mib\": 512}", 400,
			"not supported after starting" },
		{ "PATCH", "/hotplug/memory", "{\"requested_size_mib\": 3}", 400,
			"{\"fault_message\":\"Memory hotplug update error: Failed to create memory "
			"hotplug device: Size 3145728 is invalid: it must be a multiple of block size "
			"and less than the total size\"}" },
		{ "PATCH", "/hotplug/memory", "{\"requested_size_mib\": 64, \"x\": 1}", 400,
			"unknown field `x`" },
		{ "PATCH", "/hotplug/memory", "{\"requested_size_mib\": 64}", 204, NULL },
		{ "GET", "/hotplug/memory", NULL, 200,
			"{\"total_size_mib\":512,\"block_size_mib\":2,\"slot_size_mib\":128,"
			"\"plugged_size_mib\":0,\"requested_size_mib\":64}" },
	};

	(void)state;
	RUN(t);
	fake_vm.hotplug_driver_down = true;
	expect(&(struct call){ "PATCH", "/hotplug/memory", "{\"requested_size_mib\": 8}", 400,
		"Memory hotplug update error: Failed to create memory hotplug device: Device is "
		"not active" });
	fake_vm_exit(api_vm(api), VM_EXIT_POWEROFF);
	expect(&(struct call){ "GET", "/hotplug/memory", NULL, 400,
		"Internal VMM error: Failed perform action on device: Device not found" });
}

/* Free page hinting, Firecracker's routes: start's body optional (acknowledge_on_stop
 * true unless it says otherwise), stop's ignored, status with guest_cmd null until the
 * guest sends one; its texts before boot, for an unknown last segment, for a driver not
 * up and for a VM without a balloon. */
#define HINTING "{\"amount_mib\": 0, \"deflate_on_oom\": false, \"free_page_hinting\": true}"

static void test_api_router_balloon_hinting(void **state)
{
	static const struct call t[] = {
		{ "PATCH", "/balloon/hinting/start", NULL, 400, "not supported before starting" },
		{ "PUT", "/balloon", HINTING, 204, NULL },
		{ "GET", "/balloon", NULL, 200,
			"{\"amount_mib\":0,\"deflate_on_oom\":false,"
			"\"stats_polling_interval_s\":0,\"free_page_hinting\":true,"
			"\"free_page_reporting\":false}" },
		{ "GET", "/balloon/hinting/status", NULL, 400, "not supported before starting" },
		{ "PATCH", "/balloon/hinting/stop", NULL, 400, "not supported before starting" },
		{ "PATCH", "/balloon/hinting", NULL, 400,
			"Unrecognized PATCH request path `/hinting/`." },
		{ "PATCH", "/balloon/hinting/go", "{}", 400,
			"Unrecognized PATCH request path `/hinting/go`." },
		{ "GET", "/balloon/hinting/start", NULL, 400,
			"Unrecognized GET request path `/hinting/start`." },
		{ "GET", "/balloon/hinting", NULL, 400,
			"Unrecognized GET request path `/hinting/`." },
		/* Firecracker reads the segment after hinting/ and ignores the rest. */
		{ "PATCH", "/balloon/hinting/start/now", "{}", 400,
			"not supported before starting" },
		{ "PATCH", "/balloon/hinting/go/start", "{}", 400,
			"Unrecognized PATCH request path `/hinting/go`." },
		{ "PATCH", "/balloon", NULL, 400, "Empty PATCH request." },
		BOOT_CALLS,
		{ "GET", "/balloon/hinting/status", NULL, 200,
			"{\"host_cmd\":0,\"guest_cmd\":null}" },
		{ "GET", "/balloon/hinting/status", "{}", 400, "GET request cannot have a body." },
		{ "PATCH", "/balloon/hinting/start", NULL, 204, NULL },
		{ "GET", "/balloon/hinting/status", NULL, 200, "{\"host_cmd\":2," },
		{ "PATCH", "/balloon/hinting/start", "{\"acknowledge_on_stop\": 1}", 400,
			"invalid type: integer `1`, expected a boolean" },
		{ "PATCH", "/balloon/hinting/start", "{\"ack\": true}", 400,
			"unknown field `ack`, expected `acknowledge_on_stop`" },
		{ "PATCH", "/balloon/hinting/start", "{\"acknowledge_on_stop\": false}", 204,
			NULL },
		{ "GET", "/balloon/hinting/status", NULL, 200, "{\"host_cmd\":3," },
		{ "PATCH", "/balloon/hinting/stop", "{}", 204, NULL },
		{ "GET", "/balloon/hinting/status", NULL, 200, "{\"host_cmd\":1," },
		{ "PATCH", "/balloon/hinting/start", "{}", 204, NULL },
		{ "PATCH", "/balloon/hinting/stop", NULL, 204, NULL },
		{ "GET", "/vm/config", NULL, 200, "\"free_page_hinting\":true," },
	};

	(void)state;
	RUN(t);
	assert_true(vm_config(api_vm(api))->balloon.free_page_hinting);
	assert_false(fake_vm.hint.acknowledge_on_stop == false); /* the last start's default */
	fake_vm.hint_driver_down = true;
	expect(&(struct call){ "PATCH", "/balloon/hinting/start", NULL, 400,
		"Balloon update error: Balloon: Device not activated yet." });
	expect(&(struct call){ "GET", "/balloon/hinting/status", NULL, 200, "{\"host_cmd\":1," });
}

static void test_api_router_hinting_without_a_balloon(void **state)
{
	static const struct call t[] = { BOOT_CALLS };

	(void)state;
	RUN(t);
	expect_hinting_refused(
		"Balloon update error: Failed perform action on device: Device not found");
}

static void test_api_router_balloon_without_statistics(void **state)
{
	static const struct call t[] = {
		{ "PUT", "/machine-config", "{\"vcpu_count\": 1, \"mem_size_mib\": 64}", 204,
			NULL },
		{ "PUT", "/balloon", "{\"amount_mib\": 65, \"deflate_on_oom\": false}", 400,
			"Amount of pages requested is too large." },
		{ "PUT", "/balloon",
			"{\"amount_mib\": 0, \"deflate_on_oom\": false, "
			"\"free_page_reporting\": true}",
			204, NULL },
		BOOT_CALLS,
		{ "GET", "/balloon", NULL, 200,
			"{\"amount_mib\":0,\"deflate_on_oom\":false,"
			"\"stats_polling_interval_s\":0,\"free_page_hinting\":false,"
			"\"free_page_reporting\":true}" },
		{ "GET", "/balloon/statistics", NULL, 400,
			"Balloon config error: Statistics for the "
			"balloon device are not enabled." },
		{ "PATCH", "/balloon/statistics", "{\"stats_polling_interval_s\": 1}", 400,
			"Cannot enable/disable the statistics after boot." },
		{ "PATCH", "/balloon/statistics", "{\"stats_polling_interval_s\": 0}", 204, NULL },
		{ "PATCH", "/balloon", "{\"amount_mib\": 64}", 204, NULL },
		{ "PATCH", "/balloon", "{\"amount_mib\": 65}", 400, "too large" },
	};

	(void)state;
	RUN(t);
	assert_true(vm_config(api_vm(api))->balloon.free_page_reporting);
}

static void test_api_router_logger_metrics_mmds(void **state)
{
	char path[] = "/tmp/ember-test-metrics-XXXXXX";
	int fd = mkstemp(path);
	char body[256];
	static const struct call t[] = {
		{ "PUT", "/logger", "{\"level\": \"Loud\"}", 400, DESER "Invalid LevelFilter." },
		{ "PUT", "/logger",
			"{\"level\": \"warning\", \"show_level\": true, "
			"\"show_log_origin\": false}",
			204, NULL },
		{ "PUT", "/logger", "{\"module\": \"\"}", 400, "is not a source folder or file" },
		{ "PUT", "/logger", "{\"log_path\": \"/nonexistent/dir/log\"}", 400,
			"No such file or directory (os error 2)" },
		{ "PUT", "/metrics", "{}", 400, "missing field `metrics_path`" },
		{ "PUT", "/metrics", "{\"metrics_path\": \"/nonexistent/dir/m\"}", 400,
			"Cannot initialize the metrics system due to bad user input: No such file" },
		{ "PUT", "/metrics", "{\"metrics_path\": \"/tmp/x\", \"properties\": {\"a\": 1}}",
			400, "invalid type: integer `1`, expected a string" },
		{ "GET", "/mmds", NULL, 200, "{}" },
		{ "PATCH", "/mmds", "{\"a\": 1}", 400,
			"MMDS error: The MMDS data store is not "
			"initialized." },
		{ "PUT", "/mmds",
			"{\"latest\": {\"meta-data\": {\"ami-id\": \"ami-1\", \"x\": 1}}}", 204,
			NULL },
		{ "GET", "/mmds", NULL, 200,
			"{\"latest\":{\"meta-data\":{\"ami-id\":\"ami-1\","
			"\"x\":1}}}" },
		{ "PATCH", "/mmds",
			"{\"latest\": {\"meta-data\": {\"x\": null, \"y\": [1]}}, "
			"\"z\": \"s\"}",
			204, NULL },
		{ "GET", "/mmds", NULL, 200,
			"{\"latest\":{\"meta-data\":{\"ami-id\":\"ami-1\","
			"\"y\":[1]}},\"z\":\"s\"}" },
		{ "PUT", "/mmds", "[1, 2]", 204, NULL },
		{ "GET", "/mmds", NULL, 200, "[1,2]" },
		{ "PUT", "/mmds/config", "{\"network_interfaces\": []}", 400,
			"MMDS config error: The "
			"list of network interface IDs that allow forwarding MMDS requests is empty." },
		{ "PUT", "/mmds/config", "{\"network_interfaces\": [\"eth0\"]}", 400,
			"does not "
			"correspond to any existing network interface." },
		{ "PUT", "/mmds/config",
			"{\"network_interfaces\": [\"eth0\"], \"ipv4_address\": "
			"\"10.0.0.1\"}",
			400, "The MMDS IPv4 address is not link local." },
		{ "PUT", "/mmds/config",
			"{\"network_interfaces\": [\"eth0\"], \"ipv4_address\": "
			"\"1.2.3\"}",
			400, "invalid IPv4 address syntax" },
		{ "PUT", "/mmds/config",
			"{\"network_interfaces\": [\"eth0\"], \"version\": \"V3\"}", 400,
			"unknown variant `V3`, expected `V1` or `V2`" },
		{ "PUT", "/mmds/foo", "{}", 400, "Invalid request method and/or path" },
	};

	(void)state;
	assert_true(fd >= 0);
	close(fd);
	RUN(t);
	snprintf(body, sizeof(body), "{\"metrics_path\": \"%s\"}", path);
	expect(&(struct call){ "PUT", "/metrics", body, 204, NULL });
	expect(&(struct call){ "PUT", "/metrics", body, 400,
		"Reinitialization of metrics not "
		"allowed." });
	unlink(path);
}

/* The API reads and fills the store it was handed, hands it to the VM it boots and to
 * one it restores, and refuses to be made without one. */
static void test_api_router_mmds_store_is_the_one_given(void **state)
{
	static const struct call boot[] = { BOOT_CALLS };
	cJSON *data = cJSON_Parse("{\"from\": \"the owner\"}");
	char err[64];
	int status;
	char *body;

	(void)state;
	assert_int_equal(mmds_set_data(store, data), 0);
	body = request("GET", "/mmds", NULL, &status);
	assert_int_equal(status, 200);
	assert_non_null(strstr(body, "\"from\":\"the owner\""));
	free(body);
	body = request("PUT", "/mmds", "{\"put\": 1}", &status);
	assert_int_equal(status, 204);
	free(body);
	assert_int_equal(mmds_data_copy(store, &data), 0);
	assert_non_null(cJSON_GetObjectItem(data, "put"));
	cJSON_Delete(data);
	for (size_t i = 0; i < sizeof(boot) / sizeof(boot[0]); i++)
		expect(&boot[i]);
	assert_ptr_equal(vm_config(fake_vm.last)->mmds, store);
	assert_null(api_new(ev_default_loop(0), NULL, NULL, err, sizeof(err)));
	assert_string_equal(err, "api: no MMDS store");
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
	assert_non_null(strstr(body,
		"MMDS limit exceeded error: The MMDS patch request doesn't "
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
		{ "PATCH", "/vm", "{\"state\": \"Paused\"}", 400,
			"The requested operation is not "
			"supported before starting the microVM." },
		{ "PATCH", "/vm", "{\"state\": \"Stopped\"}", 400,
			"unknown variant `Stopped`, "
			"expected `Paused` or `Resumed` at line 1 column 19" },
		{ "PUT", "/actions", "{\"action_type\": \"SendCtrlAltDel\"}", 400,
			"before starting" },
		{ "PUT", "/actions", "{\"action_type\": \"FlushMetrics\"}", 400,
			"before starting" },
		{ "PUT", "/actions", "{\"action_type\": \"Reboot\"}", 400,
			"unknown variant `Reboot`, "
			"expected one of `FlushMetrics`, `InstanceStart`, "
			"`SendCtrlAltDel`" },
		{ "PUT", "/actions", "{\"action_type\": \"InstanceStart\", \"x\": 1}", 400,
			"unknown field `x`, expected `action_type`" },
		{ "PUT", "/actions", "{\"action_type\": \"InstanceStart\"}", 400,
			"Start microvm "
			"error: Cannot start microvm without kernel configuration." },
		{ "PUT", "/snapshot/create",
			"{\"snapshot_path\": \"/tmp/s\", \"mem_file_path\": "
			"\"/tmp/m\"}",
			400, "before starting" },
		{ "PUT", "/snapshot/create", "{\"snapshot_path\": \"/tmp/s\"}", 400,
			"missing field `mem_file_path`" },
		{ "PUT", "/snapshot/load",
			"{\"snapshot_path\": \"/s\", \"mem_file_path\": \"/m\", "
			"\"mem_backend\": {\"backend_path\": \"/m\", \"backend_type\": \"File\"}}",
			400,
			"too many fields: either `mem_backend` or `mem_file_path` exclusively is "
			"required" },
		{ "PUT", "/snapshot/load", "{\"snapshot_path\": \"/s\"}", 400,
			"missing field: either "
			"`mem_backend` or `mem_file_path` is required" },
		{ "PUT", "/snapshot/load",
			"{\"snapshot_path\": \"/s\", \"mem_backend\": "
			"{\"backend_path\": \"/m\", \"backend_type\": \"Disk\"}}",
			400, "unknown variant `Disk`, expected `File` or `Uffd`" },
		{ "PUT", "/snapshot/load",
			"{\"snapshot_path\": \"/s\", \"mem_file_path\": \"/m\", "
			"\"drive_overrides\": [{\"drive_id\": \"a\"}]}",
			400, "path_on_host" },
		{ "PUT", "/snapshot/load",
			"{\"snapshot_path\": \"/s\", \"mem_file_path\": \"/m\", "
			"\"huge_pages\": \"2M\"}",
			400, "only Snapshot (the saved setting)" },
		{ "PUT", "/snapshot", "{}", 400, "Invalid request method and/or path" },
	};

	(void)state;
	RUN(t);
	assert_int_equal(fake_vm.vms_alive, 0);
}

static void test_api_router_boot_pause_resume_snapshot(void **state)
{
	static const struct call t[] = {
		{ "PUT", "/machine-config",
			"{\"vcpu_count\": 2, \"mem_size_mib\": 64, "
			"\"track_dirty_pages\": true}",
			204, NULL },
		{ "PUT", "/boot-source", "{\"kernel_image_path\": \"/dev/null\"}", 204, NULL },
		{ "PUT", "/actions", "{\"action_type\": \"InstanceStart\"}", 204, NULL },
		{ "GET", "/", NULL, 200, "\"state\":\"Running\"" },
		{ "GET", "/vm/config", NULL, 200,
			"\"boot_args\":\"reboot=k panic=1 nomodule "
			"8250.nr_uarts=0 i8042.noaux i8042.nomux i8042.dumbkbd swiotlb=noforce\"" },
		{ "GET", "/machine-config", NULL, 200,
			"\"vcpu_count\":2,\"mem_size_mib\":64,"
			"\"smt\":false,\"track_dirty_pages\":true" },
		{ "PUT", "/actions", "{\"action_type\": \"InstanceStart\"}", 400,
			"The requested "
			"operation is not supported after starting the microVM." },
		{ "PUT", "/machine-config", "{\"vcpu_count\": 1, \"mem_size_mib\": 64}", 400,
			"not supported after starting" },
		{ "PATCH", "/machine-config", "{\"vcpu_count\": 1}", 400, "after starting" },
		{ "PUT", "/boot-source", "{\"kernel_image_path\": \"/dev/null\"}", 400,
			"after "
			"starting" },
		{ "PUT", "/logger", "{\"level\": \"Info\"}", 400, "after starting" },
		{ "PUT", "/metrics", "{\"metrics_path\": \"/tmp/m\"}", 400, "after starting" },
		{ "PUT", "/vsock", "{\"guest_cid\": 3, \"uds_path\": \"/v\"}", 400,
			"after starting" },
		{ "PUT", "/cpu-config", "{}", 400, "after starting" },
		{ "PUT", "/mmds/config", "{\"network_interfaces\": []}", 400, "after starting" },
		{ "PUT", "/snapshot/load", "{\"snapshot_path\": \"/s\", \"mem_file_path\": \"/m\"}",
			400, "after starting" },
		{ "PUT", "/actions", "{\"action_type\": \"SendCtrlAltDel\"}", 204, NULL },
		{ "PUT", "/actions", "{\"action_type\": \"FlushMetrics\"}", 204, NULL },
		{ "PUT", "/snapshot/create",
			"{\"snapshot_path\": \"/tmp/s\", \"mem_file_path\": "
			"\"/tmp/m\"}",
			400,
			"Create snapshot error: snapshot: the vm must be paused "
			"(it is running)" },
		{ "PATCH", "/vm", "{\"state\": \"Resumed\"}", 204, NULL },
		{ "PATCH", "/vm", "{\"state\": \"Paused\"}", 204, NULL },
		{ "PATCH", "/vm", "{\"state\": \"Paused\"}", 204, NULL },
		{ "GET", "/", NULL, 200, "\"state\":\"Paused\"" },
		{ "PUT", "/actions", "{\"action_type\": \"SendCtrlAltDel\"}", 400,
			"Internal VMM "
			"error: cannot send Ctrl-Alt-Del: the vm is paused" },
		{ "PUT", "/snapshot/create",
			"{\"snapshot_path\": \"/tmp/s\", \"mem_file_path\": "
			"\"/tmp/m\", \"snapshot_type\": \"Diff\"}",
			204, NULL },
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
	expect(&(struct call){ "PUT", "/snapshot/create",
		"{\"snapshot_path\": \"/a\", "
		"\"mem_file_path\": \"/b\"}",
		400,
		"Create snapshot error: /b: No space left on "
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
		{ "PUT", "/actions", "{\"action_type\": \"InstanceStart\"}", 400,
			"Start microvm "
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
		{ "PUT", "/snapshot/load",
			"{\"snapshot_path\": \"/s\", \"mem_backend\": "
			"{\"backend_path\": \"/run/uffd.sock\", \"backend_type\": \"Uffd\"}, "
			"\"track_dirty_pages\": true, \"network_overrides\": [{\"iface_id\": \"eth0\", "
			"\"host_dev_name\": \"tap9\"}], \"vsock_override\": {\"uds_path\": \"/v2\"}}",
			204, NULL },
		{ "GET", "/", NULL, 200, "\"state\":\"Paused\"" },
		{ "GET", "/vm/config", NULL, 200,
			"\"boot-source\":{\"kernel_image_path\":\"\","
			"\"initrd_path\":null,\"boot_args\":null}" },
		{ "GET", "/machine-config", NULL, 200,
			"\"vcpu_count\":2,\"mem_size_mib\":256,"
			"\"smt\":false,\"track_dirty_pages\":true" },
		{ "PATCH", "/vm", "{\"state\": \"Resumed\"}", 204, NULL },
	};

	(void)state;
	RUN(t);
	assert_string_equal(fake_vm.last_restore_path, "/run/uffd.sock");
	assert_int_equal(fake_vm.last_restore.backend, MEM_BACKEND_UFFD);
	assert_true(fake_vm.last_restore.track_dirty_pages);
	assert_ptr_equal(fake_vm.last_restore.mmds, store); /* the restored VM answers from it */
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
	expect(&(struct call){ "PUT", "/snapshot/load", load, 400,
		"Load snapshot error: Failed "
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
	api = api_new(ev_default_loop(0), NULL, store, (char[64]){ 0 }, 64);
	expect(&(struct call){ "PUT", "/machine-config",
		"{\"vcpu_count\": 1, \"mem_size_mib\": "
		"64}",
		204, NULL });
	expect(&(struct call){ "PUT", "/snapshot/load", load, 400,
		"Load snapshot error: Loading "
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
	free(request("PUT", "/machine-config",
		"{\"vcpu_count\": 1, \"mem_size_mib\": 64, "
		"\"cpu_template\": \"None\"}",
		&status));
	s = metrics_render(NULL);
	assert_non_null(s);
	assert_non_null(strstr(s,
		"\"get_api_requests\":{\"instance_info_count\":1,"
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
	expect(&(struct call){ "PUT", "/boot-source", "{\"kernel_image_path\": \"/dev/null\"}", 204,
		NULL });
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
		  "{\"vcpu_count\": 99, \"mem_size_mib\": 64}}",
			"machine-config: Machine config "
			"error: The number of vCPUs" },
		{ "{\"boot-source\": {\"kernel_image_path\": \"/dev/null\"}, \"drives\": "
		  "[{\"drive_id\": \"a\", \"is_root_device\": true, \"path_on_host\": \"disk.img\"}, "
		  "{\"drive_id\": \"b\", \"is_root_device\": true, \"path_on_host\": \"disk.img\"}]}",
			"drives: Drive config error: A root block device already exists!" },
		{ "{\"boot-source\": {\"kernel_image_path\": \"/dev/null\"}, \"drives\": "
		  "{\"drive_id\": \"a\"}}",
			"drives: expected a list" },
		{ "{\"boot-source\": {\"kernel_image_path\": \"/dev/null\"}, \"network-interfaces\": "
		  "[{\"iface_id\": \"eth0\", \"host_dev_name\": \"tap0\", \"guest_mac\": \"x\"}]}",
			"network-interfaces: An error occurred when deserializing the json body of a "
			"request: invalid MAC address `x`" },
		{ "{\"boot-source\": {\"kernel_image_path\": \"/dev/null\"}, \"vsock\": "
		  "{\"guest_cid\": 2, \"uds_path\": \"/v\"}}",
			"vsock: Vsock config error: guest_cid: 2" },
		{ "{\"boot-source\": {\"kernel_image_path\": \"/dev/null\"}, \"entropy\": "
		  "{\"rate_limiter\": 1}}",
			"entropy: An error occurred when deserializing" },
		{ "{\"boot-source\": {\"kernel_image_path\": \"/dev/null\"}, \"balloon\": "
		  "{\"amount_mib\": 1, \"deflate_on_oom\": true, \"free_page_hinting\": 1}}",
			"balloon: An error occurred when deserializing the json body of a request: "
			"invalid type: integer `1`, expected a boolean" },
		{ "{\"boot-source\": {\"kernel_image_path\": \"/dev/null\"}, \"bogus\": 1}",
			"unknown field `bogus`" },
		{ "{\"boot-source\": {\"kernel_image_path\": \"/nonexistent\"}}",
			"boot-source: Boot source error: The kernel file cannot be opened" },
	};
	const struct vm_config *c;
	FILE *f;
	int fd;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct api *a = api_new(ev_default_loop(0), NULL, store, err, sizeof(err));
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
	      " \"machine-config\": {\"vcpu_count\": 2, \"mem_size_mib\": 64},"
	      " \"drives\": [{\"drive_id\": \"data\", \"path_on_host\": \"disk.img\","
	      " \"is_root_device\": false, \"is_read_only\": true}, {\"drive_id\": \"rootfs\","
	      " \"path_on_host\": \"disk.img\", \"is_root_device\": true}],"
	      " \"network-interfaces\": [{\"iface_id\": \"eth0\", \"host_dev_name\": \"tap0\","
	      " \"guest_mac\": \"06:00:ac:10:00:02\"}],"
	      " \"vsock\": {\"guest_cid\": 3, \"uds_path\": \"/tmp/v.sock\"},"
	      " \"entropy\": {}, \"balloon\": {\"amount_mib\": 8, \"deflate_on_oom\": true},"
	      " \"pmem\": [], \"logger\": {\"level\": \"Warning\"}}",
		f);
	fclose(f);
	assert_int_equal(api_load_config_file(api, path, err, sizeof(err)), 0);
	unlink(path);
	assert_non_null(api_vm(api));
	assert_int_equal(vm_state(api_vm(api)), VM_RUNNING);
	c = vm_config(api_vm(api));
	assert_int_equal(c->vcpus, 2);
	assert_string_equal(c->cmdline, "x");
	assert_int_equal(c->nr_drives, 2);
	assert_string_equal(c->drives[0].id, "rootfs"); /* the root drive goes first */
	assert_true(c->drives[1].read_only);
	assert_int_equal(c->nr_nets, 1);
	assert_string_equal(c->nets[0].tap, "tap0");
	assert_true(c->vsock.enabled);
	assert_true(c->entropy.enabled);
	assert_int_equal(c->balloon.amount_mib, 8);
}

static char dir[] = "/tmp/ember-test-api-XXXXXX";

/* Work in a directory of our own holding a small image and a FIFO. */
static int group_setup(void **state)
{
	FILE *f;

	(void)state;
	if (!mkdtemp(dir) || chdir(dir) || mkfifo("fifo", 0600))
		return -1;
	f = fopen("disk.img", "w");
	if (!f)
		return -1;
	fseek(f, 65535, SEEK_SET);
	fputc(0, f);
	return fclose(f);
}

static int group_teardown(void **state)
{
	(void)state;
	unlink("disk.img");
	unlink("fifo");
	return chdir("/") || rmdir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_api_router_paths_methods_and_bodies, setup,
			teardown),
		cmocka_unit_test_setup_teardown(test_api_router_machine_config, setup, teardown),
		cmocka_unit_test_setup_teardown(test_api_router_deprecated_fields_are_flagged,
			setup, teardown),
		cmocka_unit_test_setup_teardown(test_api_router_boot_source_and_cpu_config, setup,
			teardown),
		cmocka_unit_test_setup_teardown(test_api_router_drives, setup, teardown),
		cmocka_unit_test_setup_teardown(test_api_router_drives_after_boot, setup, teardown),
		cmocka_unit_test_setup_teardown(test_api_router_network_interfaces_up_to_the_limit,
			setup, teardown),
		cmocka_unit_test_setup_teardown(test_api_router_pmem, setup, teardown),
		cmocka_unit_test_setup_teardown(test_api_router_network_interfaces, setup,
			teardown),
		cmocka_unit_test_setup_teardown(test_api_router_vsock_and_entropy, setup, teardown),
		cmocka_unit_test_setup_teardown(test_api_router_balloon, setup, teardown),
		cmocka_unit_test_setup_teardown(test_api_router_hotplug_memory, setup, teardown),
		cmocka_unit_test_setup_teardown(test_api_router_balloon_hinting, setup, teardown),
		cmocka_unit_test_setup_teardown(test_api_router_hinting_without_a_balloon, setup,
			teardown),
		cmocka_unit_test_setup_teardown(test_api_router_balloon_without_statistics, setup,
			teardown),
		cmocka_unit_test_setup_teardown(test_api_router_logger_metrics_mmds, setup,
			teardown),
		cmocka_unit_test_setup_teardown(test_api_router_mmds_store_is_the_one_given, setup,
			teardown),
		cmocka_unit_test_setup_teardown(test_api_router_mmds_store_is_limited, setup,
			teardown),
		cmocka_unit_test_setup_teardown(test_api_router_pre_boot_refusals, setup, teardown),
		cmocka_unit_test_setup_teardown(test_api_router_boot_pause_resume_snapshot, setup,
			teardown),
		cmocka_unit_test_setup_teardown(test_api_router_failed_start_can_be_retried, setup,
			teardown),
		cmocka_unit_test_setup_teardown(test_api_router_snapshot_load, setup, teardown),
		cmocka_unit_test_setup_teardown(test_api_router_snapshot_load_rules, setup,
			teardown),
		cmocka_unit_test_setup_teardown(test_api_router_counts_requests_in_metrics, setup,
			teardown),
		cmocka_unit_test_setup_teardown(test_api_router_metrics_lines_carry_vcpu_exits_as_deltas,
			setup, teardown),
		cmocka_unit_test_setup_teardown(test_api_router_config_file, setup, teardown),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
