/* libFuzzer harness for every JSON body parser of the API: the input is a body sent to
 * one endpoint (picked by the first byte), before or after boot (second byte), through
 * api_handle: JSON parsing, schema checks, handlers, MMDS merge patch, fault rendering.
 * The VM is tests/unit/fake_vm.c; log and metrics files are wrapped away.
 *
 * Build with `make fuzz` (the API's files, as test_api_router links them, are listed in the
 * Makefile's fuzz_api_json_SRCS; log_set_file and metrics_open are wrapped), then run:
 *   build/fuzz/fuzz_api_json -max_total_time=60 -dict=tests/fuzz/api_json.dict \
 *     tests/fuzz/corpus/api_json
 *
 * Every answer must be a 2xx without a fault, or a 4xx/5xx whose body is valid JSON with a
 * fault_message; anything else traps. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>
#include <ev.h>

#include "api_common.h"
#include "ember/api.h"
#include "ember/log.h"
#include "ember/metrics.h"
#include "ember/mmds.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const struct {
	const char *method, *path;
} endpoints[] = {
	{ "PUT", "/machine-config" },
	{ "PATCH", "/machine-config" },
	{ "PUT", "/boot-source" },
	{ "PUT", "/cpu-config" },
	{ "PUT", "/drives/rootfs" },
	{ "PATCH", "/drives/rootfs" },
	{ "PUT", "/network-interfaces/eth0" },
	{ "PATCH", "/network-interfaces/eth0" },
	{ "PUT", "/vsock" },
	{ "PUT", "/entropy" },
	{ "PUT", "/balloon" },
	{ "PATCH", "/balloon" },
	{ "PATCH", "/balloon/statistics" },
	{ "PUT", "/logger" },
	{ "PUT", "/metrics" },
	{ "PUT", "/mmds" },
	{ "PATCH", "/mmds" },
	{ "PUT", "/mmds/config" },
	{ "PUT", "/actions" },
	{ "PATCH", "/vm" },
	{ "PUT", "/snapshot/create" },
	{ "PUT", "/snapshot/load" },
};

static void call(struct api *api, const char *method, const char *path, const char *body,
	size_t len)
{
	struct api_response r;
	cJSON *v;

	api_handle(api, method, path, body, len, &r);
	if (r.status < 200 || r.status > 599)
		__builtin_trap();
	if (r.status >= 300) {
		/* Every fault is well-formed JSON with a message. */
		v = r.body ? cJSON_Parse(r.body) : NULL;
		if (!v || !cJSON_IsString(cJSON_GetObjectItemCaseSensitive(v, "fault_message")))
			__builtin_trap();
		cJSON_Delete(v);
	} else if (r.status == 204 && r.body) {
		__builtin_trap();
	}
	api_response_deinit(&r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct mmds *store;
	static const char boot[] = "{\"kernel_image_path\": \"/dev/null\"}";
	static const char start[] = "{\"action_type\": \"InstanceStart\"}";
	struct api *api;
	char err[128], *body;
	unsigned which;

	if (size < 2)
		return 0;
	which = data[0] % (sizeof(endpoints) / sizeof(endpoints[0]));
	store = mmds_new(); /* each input starts from an empty store */
	api = store ? api_new(fuzz_loop, NULL, store, err, sizeof(err)) : NULL;
	if (!api)
		abort();
	if (data[1] & 1) {
		call(api, "PUT", "/boot-source", boot, sizeof(boot) - 1);
		call(api, "PUT", "/actions", start, sizeof(start) - 1);
	}
	if (data[1] & 2)
		call(api, "PUT", "/mmds", "{\"a\": {\"b\": [1, 2]}, \"c\": null}", 31);
	/* The body as the HTTP layer hands it over: NUL-terminated, any bytes inside. */
	body = malloc(size - 2 + 1);
	if (!body)
		abort();
	memcpy(body, data + 2, size - 2);
	body[size - 2] = '\0';
	call(api, endpoints[which].method, endpoints[which].path, body, size - 2);
	call(api, "GET", "/mmds", NULL, 0);
	call(api, "GET", "/vm/config", NULL, 0);
	call(api, "GET", "/machine-config", NULL, 0);
	free(body);
	api_free(api);
	mmds_free(store);
	metrics_reset();
	log_set_enabled(false);
	return 0;
}
