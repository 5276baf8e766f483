/* API router: method and path to handler, body rules, id checks, request metrics. */
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ember/log.h"
#include "json.h"

#define MAX_TOKENS 4

struct route {
	const char *seg; /* first path segment; "" for / */
	const char *sub; /* fixed second segment, or NULL */
	/* false, true (the second segment is a resource id), or TAIL: after the fixed
	 * `sub` the next segment, which the handler gets as call->id ("" when there is none)
	 * and answers for, segments after it ignored, and a PATCH may come without a body,
	 * as Firecracker's /balloon/hinting/. */
	int id;
	enum metrics_method method;
	enum metrics_endpoint ep;
	api_handler_fn *fn;
};

#define TAIL 2

static const struct route routes[] = {
	{ "", NULL, false, METRICS_GET, METRICS_EP_INSTANCE_INFO, api_get_instance_info },
	{ "version", NULL, false, METRICS_GET, METRICS_EP_VERSION, api_get_version },
	{ "machine-config", NULL, false, METRICS_GET, METRICS_EP_MACHINE_CFG,
		api_get_machine_config },
	{ "machine-config", NULL, false, METRICS_PUT, METRICS_EP_MACHINE_CFG,
		api_put_machine_config },
	{ "machine-config", NULL, false, METRICS_PATCH, METRICS_EP_MACHINE_CFG,
		api_patch_machine_config },
	{ "boot-source", NULL, false, METRICS_PUT, METRICS_EP_BOOT_SOURCE, api_put_boot_source },
	{ "cpu-config", NULL, false, METRICS_PUT, METRICS_EP_CPU_CFG, api_put_cpu_config },
	{ "drives", NULL, true, METRICS_PUT, METRICS_EP_DRIVE, api_put_drive },
	{ "drives", NULL, true, METRICS_PATCH, METRICS_EP_DRIVE, api_patch_drive },
	{ "drives", NULL, true, METRICS_DELETE, METRICS_EP_DRIVE, api_delete_drive },
	{ "network-interfaces", NULL, true, METRICS_PUT, METRICS_EP_NETWORK, api_put_net },
	{ "network-interfaces", NULL, true, METRICS_PATCH, METRICS_EP_NETWORK, api_patch_net },
	{ "network-interfaces", NULL, true, METRICS_DELETE, METRICS_EP_NETWORK, api_delete_net },
	{ "pmem", NULL, true, METRICS_PUT, METRICS_EP_PMEM, api_put_pmem },
	{ "pmem", NULL, true, METRICS_PATCH, METRICS_EP_PMEM, api_patch_pmem },
	{ "vsock", NULL, false, METRICS_PUT, METRICS_EP_VSOCK, api_put_vsock },
	{ "entropy", NULL, false, METRICS_PUT, METRICS_EP_ENTROPY, api_put_entropy },
	{ "serial", NULL, false, METRICS_PUT, METRICS_EP_SERIAL, api_put_serial },
	{ "balloon", NULL, false, METRICS_GET, METRICS_EP_BALLOON, api_get_balloon },
	{ "balloon", NULL, false, METRICS_PUT, METRICS_EP_BALLOON, api_put_balloon },
	{ "balloon", NULL, false, METRICS_PATCH, METRICS_EP_BALLOON, api_patch_balloon },
	{ "balloon", "statistics", false, METRICS_GET, METRICS_EP_BALLOON, api_get_balloon_stats },
	{ "balloon", "statistics", false, METRICS_PATCH, METRICS_EP_BALLOON,
		api_patch_balloon_stats },
	{ "balloon", "hinting", TAIL, METRICS_GET, METRICS_EP_BALLOON, api_get_balloon_hinting },
	{ "balloon", "hinting", TAIL, METRICS_PATCH, METRICS_EP_BALLOON,
		api_patch_balloon_hinting },
	{ "hotplug", "memory", false, METRICS_GET, METRICS_EP_HOTPLUG_MEMORY,
		api_get_hotplug_memory },
	{ "hotplug", "memory", false, METRICS_PUT, METRICS_EP_HOTPLUG_MEMORY,
		api_put_hotplug_memory },
	{ "hotplug", "memory", false, METRICS_PATCH, METRICS_EP_HOTPLUG_MEMORY,
		api_patch_hotplug_memory },
	{ "logger", NULL, false, METRICS_PUT, METRICS_EP_LOGGER, api_put_logger },
	{ "metrics", NULL, false, METRICS_PUT, METRICS_EP_METRICS, api_put_metrics },
	{ "mmds", NULL, false, METRICS_GET, METRICS_EP_MMDS, api_get_mmds },
	{ "mmds", NULL, false, METRICS_PUT, METRICS_EP_MMDS, api_put_mmds },
	{ "mmds", NULL, false, METRICS_PATCH, METRICS_EP_MMDS, api_patch_mmds },
	{ "mmds", "config", false, METRICS_PUT, METRICS_EP_MMDS, api_put_mmds_config },
	{ "actions", NULL, false, METRICS_PUT, METRICS_EP_ACTIONS, api_put_actions },
	{ "vm", NULL, false, METRICS_PATCH, METRICS_EP_VM_STATE, api_patch_vm },
	{ "vm", "config", false, METRICS_GET, METRICS_EP_VM_CONFIG, api_get_vm_config },
	{ "snapshot", "create", false, METRICS_PUT, METRICS_EP_SNAPSHOT_CREATE,
		api_put_snapshot_create },
	{ "snapshot", "load", false, METRICS_PUT, METRICS_EP_SNAPSHOT_LOAD, api_put_snapshot_load },
};

static const char *const method_names[METRICS_METHODS] = { "GET", "PUT", "PATCH", "DELETE" };

static int parse_method(const char *m)
{
	for (int i = 0; i < METRICS_METHODS; i++)
		if (strcmp(m, method_names[i]) == 0)
			return i;
	return -1;
}

/* The path of a request target: "/a/b?q" -> "/a/b"; "http://host/a" -> "/a". Copied into
 * `out`; false if the target is not a path or an absolute URL, or is too long. */
static bool target_path(const char *target, char *out, size_t outlen)
{
	const char *p = target, *end;
	size_t n;

	if (strncmp(p, "http://", 7) == 0 || strncmp(p, "https://", 8) == 0) {
		p = strstr(p, "//") + 2;
		p += strcspn(p, "/?#");
		if (*p != '/') {
			snprintf(out, outlen, "/");
			return true;
		}
	}
	if (*p != '/')
		return false;
	end = p + strcspn(p, "?#");
	n = (size_t)(end - p);
	if (n >= outlen)
		return false;
	memcpy(out, p, n);
	out[n] = '\0';
	return true;
}

/* Split "/a/b/c" into tokens as Firecracker does: leading slashes dropped, a trailing
 * slash ignored. Tokens point into `path`, which is modified. Returns the count, or -1 if
 * there are too many. */
static int split(char *path, char *tok[MAX_TOKENS])
{
	char *p = path;
	int n = 0;

	while (*p == '/')
		p++;
	if (!*p) {
		tok[0] = p;
		return 1;
	}
	while (*p) {
		char *slash = strchr(p, '/');
		if (n == MAX_TOKENS)
			return -1;
		tok[n++] = p;
		if (!slash)
			break;
		*slash = '\0';
		p = slash + 1;
	}
	return n;
}

static bool valid_id(const char *id)
{
	for (const char *p = id; *p; p++) {
		char c = *p;
		if (!(c == '_' || (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
			    (c >= 'A' && c <= 'Z')))
			return false;
	}
	return true;
}

static const struct route *find(int method, char *tok[], int ntok)
{
	for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
		const struct route *rt = &routes[i];
		if ((int)rt->method != method || strcmp(rt->seg, tok[0]) != 0)
			continue;
		if (rt->id == true && ntok <= 2)
			return rt;
		if (rt->sub && (ntok == 2 || (rt->id == TAIL && ntok >= 3)) &&
			strcmp(rt->sub, tok[1]) == 0)
			return rt;
		if (!rt->id && !rt->sub && ntok == 1)
			return rt;
	}
	return NULL;
}

static void dispatch(struct api *api, const char *mname, int method, char *path, const char *body,
	size_t len, struct api_resp *r, enum metrics_endpoint *ep)
{
	char *tok[MAX_TOKENS];
	char shown[256], err[512];
	int ntok;
	const struct route *rt = NULL;
	bool has_body = body && len > 0;
	struct api_call call = { 0 };
	cJSON *json = NULL;

	/* Firecracker names the first segment only: "GET nowhere." */
	snprintf(shown, sizeof(shown), "%.*s", (int)strcspn(path + strspn(path, "/"), "/"),
		path + strspn(path, "/"));
	ntok = split(path, tok);
	if (method >= 0 && ntok > 0)
		rt = find(method, tok, ntok);
	*ep = rt ? rt->ep : METRICS_EP_OTHER;
	/* Body rules first, for every path, as Firecracker checks them. */
	if (method == METRICS_GET && has_body) {
		resp_fault(r, 400, "GET request cannot have a body.");
		return;
	}
	if (method == METRICS_DELETE && has_body) {
		resp_fault(r, 400, "DELETE request cannot have a body.");
		return;
	}
	if ((method == METRICS_PUT || method == METRICS_PATCH) && !has_body &&
		!(rt && rt->id == TAIL)) {
		resp_fault(r, 400, "Empty %s request.", method_names[method]);
		return;
	}
	if (!rt) {
		resp_fault(r, 400, "Invalid request method and/or path: %.16s %s.", mname, shown);
		return;
	}
	if (rt->id == TAIL)
		call.id = ntok >= 3 ? tok[2] : "";
	if (rt->id == true) {
		call.id = ntok == 2 ? tok[1] : "";
		if (!call.id[0]) {
			resp_fault(r, 400, "The ID cannot be empty.");
			return;
		}
		if (!valid_id(call.id)) {
			resp_fault(r, 400,
				"API Resource IDs can only contain alphanumeric characters "
				"and underscores.");
			return;
		}
	}
	if (has_body) {
		json = json_parse(body, len, err, sizeof(err));
		if (!json) {
			resp_bad_body(r, err);
			return;
		}
	}
	call.body = json;
	rt->fn(api, &call, r);
	cJSON_Delete(json);
}

void api_handle(struct api *api, const char *method, const char *target, const char *body,
	size_t len, struct api_response *resp)
{
	struct api_resp *r = calloc(1, sizeof(*r));
	char path[1024];
	int m = parse_method(method);
	enum metrics_endpoint ep = METRICS_EP_OTHER;

	memset(resp, 0, sizeof(*resp));
	if (!r) {
		resp->status = 500;
		return;
	}
	if (!target_path(target, path, sizeof(path))) {
		resp_fault(r, 400, "Invalid request method and/or path: %.8s %.200s.", method,
			target);
	} else {
		dispatch(api, method, m, path, body, len, r, &ep);
	}
	if (m >= 0)
		metrics_api_request((enum metrics_method)m, ep, resp_failed(r));
	if (r->deprecation)
		metrics_inc(METRICS_DEPRECATED_API_CALLS);
	resp_finish(r);
	if (resp_failed(r))
		log_info("api: %.8s %.200s: %d %s", method, target, r->status, r->fault);
	else
		log_debug("api: %.8s %.200s: %d", method, target, r->status);
	resp->status = r->status;
	resp->body = r->body;
	resp->deprecation = r->deprecation;
	free(r);
}

void api_response_deinit(struct api_response *resp)
{
	free(resp->body);
	resp->body = NULL;
}
