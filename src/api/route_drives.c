/* API routes for drives (/drives/{id}): Firecracker's BlockDeviceConfig checked, kept in
 * the vm_config InstanceStart builds (root drive first), echoed by GET /vm/config; after
 * boot, PATCH swaps a drive's file or changes its rate limiter through vm.h. */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ember/block.h"
#include "ember/rate_limiter.h"
#include "ember/vm.h"
#include "json.h"

/* ---- /drives/{id} ---- */

static const char *const cache_types[] = { "Unsafe", "Writeback", NULL };
static const char *const io_engines[] = { "Sync", "Async", NULL };

static const struct jfield drive_fields[] = {
	JF_STR("drive_id", J_REQUIRED),
	JF_STR("partuuid", J_OPTIONAL),
	JF_BOOL("is_root_device", J_REQUIRED),
	JF_ENUM("cache_type", J_DEFAULT, cache_types),
	JF_BOOL("is_read_only", J_OPTIONAL),
	JF_STR("path_on_host", J_OPTIONAL),
	JF_OBJ("rate_limiter", J_OPTIONAL, &api_limiter),
	JF_ENUM("io_engine", J_OPTIONAL, io_engines),
	JF_STR("socket", J_OPTIONAL),
	JF_END,
};
static const struct jschema drive = { "BlockDeviceConfig", drive_fields };

static const struct jfield drive_update_fields[] = {
	JF_STR("drive_id", J_REQUIRED),
	JF_STR("path_on_host", J_OPTIONAL),
	JF_OBJ("rate_limiter", J_OPTIONAL, &api_limiter),
	JF_END,
};
static const struct jschema drive_update = { "BlockDeviceUpdateConfig", drive_update_fields };

#define DRIVE_ERR "Drive config error: "

static int find_drive(const struct vm_config *c, const char *id)
{
	for (unsigned i = 0; i < c->nr_drives; i++)
		if (strcmp(c->drives[i].id, id) == 0)
			return (int)i;
	return -1;
}

/* The backing file must open as the guest will use it (read-write unless read-only), and
 * be a regular file or a block device. O_NONBLOCK: a FIFO must not stall the loop. */
static bool backing_opens(const char *path, bool read_only, struct api_resp *r)
{
	int fd = open(path, (read_only ? O_RDONLY : O_RDWR) | O_NONBLOCK | O_CLOEXEC);
	struct stat st;
	bool ok;

	if (fd < 0) {
		resp_fault(r, 400,
			DRIVE_ERR "Unable to open the block device backing file %s: %s "
				  "(os error %d)",
			path, strerror(errno), errno);
		return false;
	}
	ok = fstat(fd, &st) == 0 && (S_ISREG(st.st_mode) || S_ISBLK(st.st_mode));
	close(fd);
	if (!ok)
		resp_fault(r, 400,
			DRIVE_ERR "The block device backing file %s is not a regular file "
				  "or a block device",
			path);
	return ok;
}

/* Async needs io_uring on this host: refused as Firecracker does when the device cannot be
 * made (its PUT builds the device; ember builds it at boot, so it asks the kernel now). */
static bool uring_works(struct api_resp *r)
{
	char why[200];

	if (!block_uring_check(why, sizeof(why)))
		return true;
	resp_fault(r, 400,
		DRIVE_ERR "Unable to create the virtio block device: Virtio backend error: Error "
			  "coming from the IO engine: Async error: IoUring: %s",
		why);
	return false;
}

void api_drive_extra_deinit(struct api *api, unsigned i)
{
	free(api->drive_extra[i].partuuid);
	memset(&api->drive_extra[i], 0, sizeof(api->drive_extra[i]));
}

/* The root drive goes first, as in Firecracker, so the guest sees it as /dev/vda. */
static void root_first(struct api *api, unsigned i)
{
	struct drive_config d = api->cfg.drives[i];
	struct api_drive_extra x = api->drive_extra[i];

	memmove(&api->cfg.drives[1], &api->cfg.drives[0], i * sizeof(d));
	memmove(&api->drive_extra[1], &api->drive_extra[0], i * sizeof(x));
	api->cfg.drives[0] = d;
	api->drive_extra[0] = x;
}

void api_put_drive(struct api *api, const struct api_call *call, struct api_resp *r)
{
	const char *path, *partuuid;
	struct drive_config d = { 0 };
	struct api_drive_extra x = { 0 };
	bool root;
	int at, root_at = -1;

	if (!api_body_ok(call, &drive, r) || !api_same_id(call, "drive_id", false, r) ||
		!api_pre_boot(api, r))
		return;
	path = json_get_str(call->body, "path_on_host");
	partuuid = json_get_str(call->body, "partuuid");
	root = json_get_bool(call->body, "is_root_device", false);
	d.read_only = json_get_bool(call->body, "is_read_only", false);
	d.root = root;
	d.writeback = json_get_enum(call->body, "cache_type", cache_types, 0) == 1;
	if (json_get(call->body, "socket")) {
		resp_fault(r, 400,
			DRIVE_ERR "vhost-user drives (socket) are not supported by this "
				  "ember; give path_on_host");
		return;
	}
	d.async_io = json_get_enum(call->body, "io_engine", io_engines, 0) == 1;
	if (d.async_io && !uring_works(r))
		return;
	if (!path) {
		resp_fault(r, 400, DRIVE_ERR "path_on_host is required");
		return;
	}
	if (!api_limit_of(call->body, "rate_limiter", "Drive config error", &d.limit, r))
		return;
	at = find_drive(&api->cfg, call->id);
	for (unsigned i = 0; i < api->cfg.nr_drives; i++)
		if (api->cfg.drives[i].root)
			root_at = (int)i;
	if (root && root_at >= 0 && root_at != at) {
		resp_fault(r, 400, DRIVE_ERR "A root block device already exists!");
		return;
	}
	for (unsigned i = 0; root && i < api->cfg.nr_pmem; i++) {
		if (api->cfg.pmem[i].root) {
			resp_fault(r, 400,
				DRIVE_ERR "Attempt to add block as a root device while the root "
					  "device defined as a pmem device");
			return;
		}
	}
	if (at < 0 && api->cfg.nr_drives == VM_MAX_DRIVES) {
		resp_fault(r, 400, DRIVE_ERR "at most %d drives", VM_MAX_DRIVES);
		return;
	}
	if (!backing_opens(path, d.read_only, r))
		return;
	if (!api_set_str(&d.id, call->id, r) || !api_set_str(&d.path, path, r) ||
		!api_set_str(&x.partuuid, partuuid, r)) {
		free(d.id);
		free(d.path);
		return;
	}
	if (at < 0) {
		at = (int)api->cfg.nr_drives++;
	} else {
		free(api->cfg.drives[at].id);
		free(api->cfg.drives[at].path);
		api_drive_extra_deinit(api, (unsigned)at);
	}
	api->cfg.drives[at] = d;
	api->drive_extra[at] = x;
	if (root)
		root_first(api, (unsigned)at);
	api->boot_path = true;
	resp_ok(r);
}

void api_patch_drive(struct api *api, const struct api_call *call, struct api_resp *r)
{
	const struct vm_config *c;
	struct rate_limit_update limit;
	const cJSON *limit_json;
	const char *path;
	char err[512];
	int at;

	if (!api_body_ok(call, &drive_update, r) || !api_same_id(call, "drive_id", false, r))
		return;
	if (!api_booted(api)) {
		resp_fault(r, 400, MSG_PRE_BOOT);
		return;
	}
	path = json_get_str(call->body, "path_on_host");
	limit_json = json_get(call->body, "rate_limiter");
	if (!path && !limit_json) {
		resp_fault(r, 400,
			"Please specify at least one property to patch: path_on_host, "
			"rate_limiter.");
		return;
	}
	if (!api_limit_update_of(call->body, "rate_limiter", "Drive config error", &limit, r))
		return;
	/* The file is looked at here as PUT does (same answer); the VM opens it for good. */
	c = vm_config(api->vm);
	at = find_drive(c, call->id);
	if (path && at >= 0 && !backing_opens(path, c->drives[at].read_only, r))
		return;
	if (vm_drive_update(api->vm, call->id, path, limit_json ? &limit : NULL, err, sizeof(err)))
		resp_fault(r, 400, DRIVE_ERR "%s", err);
	else
		resp_ok(r);
}

void api_delete_drive(struct api *api, const struct api_call *call, struct api_resp *r)
{
	(void)api;
	(void)call;
	resp_fault(r, 400, DRIVE_ERR "removing a drive is not supported by this ember yet");
}

cJSON *api_drives_json(const struct api *api, const struct vm_config *c)
{
	cJSON *a = cJSON_CreateArray();

	for (unsigned i = 0; i < c->nr_drives; i++) {
		const struct drive_config *d = &c->drives[i];
		int k = find_drive(&api->cfg, d->id);
		const struct api_drive_extra *x = k >= 0 ? &api->drive_extra[k] : NULL;
		cJSON *o = cJSON_CreateObject();

		cJSON_AddStringToObject(o, "drive_id", d->id);
		if (x && x->partuuid)
			cJSON_AddStringToObject(o, "partuuid", x->partuuid);
		else
			cJSON_AddNullToObject(o, "partuuid");
		cJSON_AddBoolToObject(o, "is_root_device", d->root);
		cJSON_AddStringToObject(o, "cache_type", d->writeback ? "Writeback" : "Unsafe");
		cJSON_AddBoolToObject(o, "is_read_only", d->read_only);
		cJSON_AddStringToObject(o, "path_on_host", d->path);
		cJSON_AddItemToObject(o, "rate_limiter", api_limit_json(&d->limit));
		cJSON_AddStringToObject(o, "io_engine", d->async_io ? "Async" : "Sync");
		cJSON_AddNullToObject(o, "socket");
		cJSON_AddItemToArray(a, o);
	}
	return a;
}
