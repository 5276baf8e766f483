/* API routes for the machine: instance info, version, machine-config, boot-source,
 * and the full configuration export (GET /vm/config). */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ember/cpu_template.h"
#include "ember/log.h"
#include "ember/version.h"
#include "ember/vm.h"
#include "json.h"

/* Firecracker's kernel command line when boot_args is not given. */
#define DEFAULT_BOOT_ARGS \
	"reboot=k panic=1 nomodule 8250.nr_uarts=0 i8042.noaux i8042.nomux " \
	"i8042.dumbkbd swiotlb=noforce"

static const char *const huge_page_names[] = { "None", "Transparent", "2M", NULL };
static const char *const cpu_templates[] = { "C3", "T2", "T2S", "T2CL", "T2A", "V1N1", "None",
	NULL };

/* ---- GET / and GET /version ---- */

static const char *instance_state(const struct api *api)
{
	if (!api->vm)
		return "Not started";
	switch (vm_state(api->vm)) {
	case VM_CONFIGURED:
		return "Not started";
	case VM_RUNNING:
		return "Running";
	case VM_PAUSED:
		return "Paused";
	case VM_EXITED:
		break;
	}
	return "Exited";
}

static const char *instance_id = "anonymous-instance";

void api_set_instance_id(const char *id)
{
	instance_id = id;
}

const char *api_instance_id(void)
{
	return instance_id;
}

/* --firecracker-version-compat: a Firecracker version for clients that check it. */
static const char *version_shown = EMBER_VERSION;

void api_set_version_compat(const char *version)
{
	version_shown = version;
}

void api_get_instance_info(struct api *api, const struct api_call *call, struct api_resp *r)
{
	cJSON *o = cJSON_CreateObject();

	(void)call;
	cJSON_AddStringToObject(o, "id", instance_id);
	cJSON_AddStringToObject(o, "state", instance_state(api));
	cJSON_AddStringToObject(o, "vmm_version", version_shown);
	cJSON_AddStringToObject(o, "app_name", "ember");
	resp_json(r, o);
}

void api_get_version(struct api *api, const struct api_call *call, struct api_resp *r)
{
	cJSON *o = cJSON_CreateObject();

	(void)api;
	(void)call;
	cJSON_AddStringToObject(o, "firecracker_version", version_shown);
	resp_json(r, o);
}

/* ---- /machine-config ---- */

static const struct jfield machine_put_fields[] = {
	JF_U8("vcpu_count", J_REQUIRED),
	JF_UINT("mem_size_mib", J_REQUIRED, "usize", UINT64_MAX),
	JF_BOOL("smt", J_DEFAULT),
	JF_ENUM("cpu_template", J_OPTIONAL, cpu_templates),
	JF_BOOL("track_dirty_pages", J_DEFAULT),
	JF_ENUM("huge_pages", J_DEFAULT, huge_page_names),
	JF_END,
};
static const struct jschema machine_put = { "MachineConfig", machine_put_fields };

static const struct jfield machine_patch_fields[] = {
	JF_U8("vcpu_count", J_OPTIONAL),
	JF_UINT("mem_size_mib", J_OPTIONAL, "usize", UINT64_MAX),
	JF_BOOL("smt", J_OPTIONAL),
	JF_ENUM("cpu_template", J_OPTIONAL, cpu_templates),
	JF_BOOL("track_dirty_pages", J_OPTIONAL),
	JF_ENUM("huge_pages", J_OPTIONAL, huge_page_names),
	JF_END,
};
static const struct jschema machine_patch = { "MachineConfigUpdate", machine_patch_fields };

static cJSON *machine_config_json(const struct api *api)
{
	const struct vm_config *c = api->vm ? vm_config(api->vm) : &api->cfg;
	cJSON *o = cJSON_CreateObject();
	enum huge_pages hp = c->mem_backing == GUEST_MEM_HUGETLB ? HUGE_PAGES_2M : api->huge_pages;

	cJSON_AddNumberToObject(o, "vcpu_count", c->vcpus);
	cJSON_AddNumberToObject(o, "mem_size_mib", (double)c->mem_mib);
	cJSON_AddBoolToObject(o, "smt", c->smt);
	if (c->static_template != CPU_STATIC_NONE) /* Firecracker shows only a static one */
		cJSON_AddStringToObject(o, "cpu_template", cpu_static_name(c->static_template));
	cJSON_AddBoolToObject(o, "track_dirty_pages", c->track_dirty_pages);
	cJSON_AddStringToObject(o, "huge_pages", huge_page_names[hp]);
	return o;
}

void api_get_machine_config(struct api *api, const struct api_call *call, struct api_resp *r)
{
	(void)call;
	resp_json(r, machine_config_json(api));
}

static bool has_any_field(const cJSON *obj)
{
	const cJSON *e;

	cJSON_ArrayForEach (e, obj)
		if (!cJSON_IsNull(e))
			return true;
	return false;
}

static void update_machine(struct api *api, const cJSON *b, bool put, struct api_resp *r)
{
	unsigned vcpus = (unsigned)json_get_uint(b, "vcpu_count", api->cfg.vcpus);
	uint64_t mem = json_get_uint(b, "mem_size_mib", api->cfg.mem_mib);
	bool smt = json_get_bool(b, "smt", put ? false : api->smt);
	bool dirty = json_get_bool(b, "track_dirty_pages",
		put ? false : api->cfg.track_dirty_pages);
	int hp = json_get_enum(b, "huge_pages", huge_page_names,
		put ? HUGE_PAGES_NONE : (int)api->huge_pages);
	const char *tmpl = json_get_str(b, "cpu_template");
	enum cpu_static_template st = CPU_STATIC_NONE;
	uint64_t host = vm_config_host_mem_mib();

	if (api_booted(api)) {
		resp_fault(r, 400, MSG_POST_BOOT);
		return;
	}
	if (tmpl) {
		/* Deprecated in Firecracker, which says so in this line. */
		r->deprecation = true;
		log_warn("%s /machine-config: cpu_template field is deprecated.",
			put ? "PUT" : "PATCH");
	}
	if (vcpus == 0 || vcpus > VM_MAX_VCPUS || (smt && vcpus > 1 && vcpus % 2)) {
		resp_fault(r, 400,
			"Machine config error: The number of vCPUs must be greater than 0, "
			"less than %d and must be 1 or an even number if SMT is enabled.",
			VM_MAX_VCPUS);
		return;
	}
	if (mem == 0 || (hp != HUGE_PAGES_NONE && mem % 2)) {
		resp_fault(r, 400,
			"Machine config error: The memory size (MiB) is either 0, or not a "
			"multiple of the configured page size.");
		return;
	}
	if (api->cfg.balloon.enabled && mem < api->cfg.balloon.amount_mib) {
		resp_fault(r, 400,
			"Machine config error: The memory size (MiB) is smaller than the "
			"previously set balloon device target size.");
		return;
	}
	if (mem < VM_MIN_MEM_MIB || (host && mem > host)) {
		resp_fault(r, 400, "Machine config error: mem_size_mib: %llu MiB is %s (%llu MiB)",
			(unsigned long long)mem,
			mem < VM_MIN_MEM_MIB ? "less than the minimum" : "more than this host has",
			(unsigned long long)(mem < VM_MIN_MEM_MIB ? VM_MIN_MEM_MIB : host));
		return;
	}
	/* V1N1 is aarch64's; a static template's fit is checked at InstanceStart, as
	 * Firecracker does. */
	if (tmpl && cpu_static_parse(tmpl, &st)) {
		resp_fault(r, 400, "Machine config error: cpu_template: %s is an aarch64 template",
			tmpl);
		return;
	}
	if (tmpl) {
		/* As Firecracker: a static template replaces a custom one, "None" clears both,
		 * and a body without cpu_template keeps what was set. */
		api->cfg.static_template = st;
		free(api->cfg.cpu_template);
		api->cfg.cpu_template = NULL;
	}
	api->cfg.vcpus = vcpus;
	api->cfg.mem_mib = mem;
	api->cfg.mem_backing = hp == HUGE_PAGES_2M ? GUEST_MEM_HUGETLB
		: hp == HUGE_PAGES_TRANSPARENT     ? GUEST_MEM_ANON_THP
						   : GUEST_MEM_ANON;
	api->smt = smt;
	api->cfg.smt = smt;
	api->cfg.track_dirty_pages = dirty;
	api->huge_pages = (enum huge_pages)hp;
	api->boot_path = true;
	resp_ok(r);
}

void api_put_machine_config(struct api *api, const struct api_call *call, struct api_resp *r)
{
	char err[512];

	if (json_check(call->body, &machine_put, err, sizeof(err))) {
		resp_bad_body(r, err);
		return;
	}
	update_machine(api, call->body, true, r);
}

void api_patch_machine_config(struct api *api, const struct api_call *call, struct api_resp *r)
{
	char err[512];

	if (json_check(call->body, &machine_patch, err, sizeof(err))) {
		resp_bad_body(r, err);
		return;
	}
	if (!has_any_field(call->body)) {
		resp_fault(r, 400, "Empty PATCH request.");
		return;
	}
	update_machine(api, call->body, false, r);
}

/* ---- /boot-source ---- */

static const struct jfield boot_fields[] = {
	JF_STR("kernel_image_path", J_REQUIRED),
	JF_STR("initrd_path", J_OPTIONAL),
	JF_STR("boot_args", J_OPTIONAL),
	JF_END,
};
static const struct jschema boot_schema = { "BootSourceConfig", boot_fields };

static int can_open(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return -errno;
	close(fd);
	return 0;
}

static int replace(char **dst, const char *src)
{
	char *s = src ? strdup(src) : NULL;

	if (src && !s)
		return -ENOMEM;
	free(*dst);
	*dst = s;
	return 0;
}

void api_put_boot_source(struct api *api, const struct api_call *call, struct api_resp *r)
{
	const char *kernel, *initrd, *args;
	struct vm_config probe;
	char err[512];
	int ret;

	if (json_check(call->body, &boot_schema, err, sizeof(err))) {
		resp_bad_body(r, err);
		return;
	}
	if (api_booted(api)) {
		resp_fault(r, 400, MSG_POST_BOOT);
		return;
	}
	kernel = json_get_str(call->body, "kernel_image_path");
	initrd = json_get_str(call->body, "initrd_path");
	args = json_get_str(call->body, "boot_args");
	ret = can_open(kernel);
	if (ret) {
		resp_fault(r, 400,
			"Boot source error: The kernel file cannot be opened: %s (os error "
			"%d)",
			strerror(-ret), -ret);
		return;
	}
	ret = initrd ? can_open(initrd) : 0;
	if (ret) {
		resp_fault(r, 400,
			"Boot source error: The initrd file cannot be opened due to invalid "
			"path or invalid permissions. %s (os error %d)",
			strerror(-ret), -ret);
		return;
	}
	/* The rest (command line length) as every definition is checked. */
	probe = api->cfg;
	probe.kernel = (char *)kernel;
	probe.initrd = (char *)initrd;
	probe.cmdline = (char *)(args ? args : DEFAULT_BOOT_ARGS);
	if (vm_config_check(&probe, err, sizeof(err))) {
		resp_fault(r, 400, "Boot source error: The kernel command line is invalid: %s",
			err);
		return;
	}
	if (replace(&api->cfg.kernel, kernel) || replace(&api->cfg.initrd, initrd) ||
		replace(&api->cfg.cmdline, args ? args : DEFAULT_BOOT_ARGS) ||
		replace(&api->boot_args, args)) {
		resp_fault(r, 500, "Out of memory.");
		return;
	}
	api->have_boot_source = true;
	api->boot_path = true;
	resp_ok(r);
}

/* ---- GET /vm/config ---- */

void api_get_vm_config(struct api *api, const struct api_call *call, struct api_resp *r)
{
	const struct vm_config *c = api->vm ? vm_config(api->vm) : &api->cfg;
	cJSON *o = cJSON_CreateObject(), *boot;
	/* A restored VM's boot source comes from its state file, as Firecracker's does. */
	bool have_boot = api->vm || api->have_boot_source;
	struct balloon_config balloon;
	char err[256];

	(void)call;
	/* A running balloon shows its current target, as GET /balloon. */
	if (!api->vm || !c->balloon.enabled ||
		vm_balloon_config(api->vm, &balloon, err, sizeof(err)))
		balloon = c->balloon;
	cJSON_AddItemToObject(o, "balloon", api_balloon_json(&balloon));
	cJSON_AddItemToObject(o, "drives", api_drives_json(api, c));
	boot = cJSON_AddObjectToObject(o, "boot-source");
	cJSON_AddStringToObject(boot, "kernel_image_path", have_boot && c->kernel ? c->kernel : "");
	if (have_boot && c->initrd)
		cJSON_AddStringToObject(boot, "initrd_path", c->initrd);
	else
		cJSON_AddNullToObject(boot, "initrd_path");
	if (have_boot && c->cmdline)
		cJSON_AddStringToObject(boot, "boot_args", c->cmdline);
	else
		cJSON_AddNullToObject(boot, "boot_args");
	cJSON_AddItemToObject(o, "cpu-config", api_cpu_config_json(c->cpu_template));
	cJSON_AddNullToObject(o, "logger");
	cJSON_AddItemToObject(o, "machine-config", machine_config_json(api));
	cJSON_AddNullToObject(o, "metrics");
	cJSON_AddItemToObject(o, "mmds-config", api_mmds_config_json(c));
	cJSON_AddItemToObject(o, "network-interfaces", api_nets_json(c));
	cJSON_AddItemToObject(o, "vsock", api_vsock_json(c));
	cJSON_AddItemToObject(o, "entropy", api_entropy_json(c));
	cJSON_AddItemToObject(o, "pmem", api_pmem_json(c));
	cJSON_AddItemToObject(o, "memory-hotplug", api_hotplug_memory_json(&c->mem_hotplug));
	resp_json(r, o);
}
