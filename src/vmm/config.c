/* Machine configuration: defaults, copies and the checks made before a VM is built. */
#include "ember/config.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ember/cpu_template.h"
#include "ember/layout.h"
#include "ember/rate_limiter.h"

void vm_config_init(struct vm_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->vcpus = 1;
	cfg->mem_mib = 128;
	cfg->mem_backing = GUEST_MEM_ANON;
	cfg->console = CONSOLE_STDIO;
}

/* Every string a configuration owns, so copy and free cannot miss one. */
static unsigned strings(struct vm_config *c, char **out[])
{
	unsigned n = 0;

	out[n++] = &c->kernel;
	out[n++] = &c->initrd;
	out[n++] = &c->cmdline;
	out[n++] = &c->console_log;
	for (unsigned i = 0; i < VM_MAX_DRIVES; i++) {
		out[n++] = &c->drives[i].id;
		out[n++] = &c->drives[i].path;
	}
	for (unsigned i = 0; i < VM_MAX_NETS; i++) {
		out[n++] = &c->nets[i].id;
		out[n++] = &c->nets[i].tap;
	}
	out[n++] = &c->vsock.uds_path;
	for (unsigned i = 0; i < VM_MAX_PMEM; i++) {
		out[n++] = &c->pmem[i].id;
		out[n++] = &c->pmem[i].path;
	}
	return n;
}

#define MAX_STRINGS (5 + 2 * VM_MAX_DRIVES + 2 * VM_MAX_NETS + 2 * VM_MAX_PMEM)

void vm_config_deinit(struct vm_config *cfg)
{
	char **s[MAX_STRINGS];
	unsigned n = strings(cfg, s);

	for (unsigned i = 0; i < n; i++)
		free(*s[i]);
	for (unsigned i = 0; i < VM_MAX_NETS; i++)
		if (cfg->nets[i].has_fd)
			close(cfg->nets[i].tap_fd);
	free(cfg->cpu_template);
	vm_config_init(cfg);
}

int vm_config_copy(struct vm_config *dst, const struct vm_config *src)
{
	char **d[MAX_STRINGS], **from[MAX_STRINGS];
	unsigned n;
	bool failed = false;

	*dst = *src;
	n = strings(dst, d);
	strings((struct vm_config *)src, from);
	for (unsigned i = 0; i < n; i++) {
		*d[i] = *from[i] && !failed ? strdup(*from[i]) : NULL;
		failed |= *from[i] && !*d[i];
	}
	for (unsigned i = 0; i < VM_MAX_NETS; i++) {
		/* A tap opened at PUT: each configuration holds its own descriptor. */
		struct net_config *net = &dst->nets[i];
		if (net->has_fd)
			net->tap_fd = failed ? -1 : fcntl(net->tap_fd, F_DUPFD_CLOEXEC, 0);
		net->has_fd = net->has_fd && net->tap_fd >= 0;
		failed |= src->nets[i].has_fd && !net->has_fd;
	}
	dst->cpu_template = NULL;
	if (src->cpu_template && !failed) {
		dst->cpu_template = malloc(sizeof(*dst->cpu_template));
		if (dst->cpu_template)
			memcpy(dst->cpu_template, src->cpu_template, sizeof(*dst->cpu_template));
		failed = !dst->cpu_template;
	}
	if (failed) {
		vm_config_deinit(dst);
		return -ENOMEM;
	}
	return 0;
}

uint64_t vm_config_host_mem_mib(void)
{
	long pages = sysconf(_SC_PHYS_PAGES), size = sysconf(_SC_PAGE_SIZE);

	if (pages <= 0 || size <= 0)
		return 0;
	return (uint64_t)pages * (uint64_t)size >> 20;
}

static int check_file(const char *key, const char *path, char *err, size_t errlen)
{
	if (access(path, R_OK) < 0) {
		snprintf(err, errlen, "%s %s: %s", key, path, strerror(errno));
		return -errno;
	}
	return 0;
}

static int check_id(const char *what, const char *id, char *err, size_t errlen)
{
	if (!id || !id[0] || strlen(id) > 64) {
		snprintf(err, errlen, "%s: an id of 1 to 64 characters is required", what);
		return -EINVAL;
	}
	for (const char *p = id; *p; p++) {
		if (!isalnum((unsigned char)*p) && *p != '_') {
			snprintf(err, errlen, "%s '%s': ids may hold only letters, digits and _",
				what, id);
			return -EINVAL;
		}
	}
	return 0;
}

/* A FIFO, socket or character device is refused here, where a definition is read, with
 * the block backend's words. stat() does not open, so it cannot wait on a FIFO; the
 * backend checks again on the descriptor it opens, in case the path changes meanwhile. */
static int check_drive_kind(const struct drive_config *d, char *err, size_t errlen)
{
	struct stat st;

	if (stat(d->path, &st) < 0) {
		snprintf(err, errlen, "drive '%s': %s: %s", d->id, d->path, strerror(errno));
		return -errno;
	}
	if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode)) {
		snprintf(err, errlen,
			"drive '%s': the block device backing file %s is not a "
			"regular file or a block device",
			d->id, d->path);
		return -EINVAL;
	}
	return 0;
}

static int check_unique(const char *what, const char *const *ids, unsigned n, char *err,
	size_t errlen)
{
	for (unsigned i = 0; i < n; i++) {
		int ret = check_id(what, ids[i], err, errlen);
		if (ret)
			return ret;
		for (unsigned k = 0; k < i; k++) {
			if (!strcmp(ids[k], ids[i])) {
				snprintf(err, errlen, "%s '%s': duplicate id", what, ids[i]);
				return -EINVAL;
			}
		}
	}
	return 0;
}

static int check_pmem_names(const struct vm_config *cfg, char *err, size_t errlen)
{
	const char *ids[VM_MAX_PMEM];
	int ret;

	if (cfg->nr_pmem > VM_MAX_PMEM) {
		snprintf(err, errlen, "pmem: at most %d devices", VM_MAX_PMEM);
		return -EINVAL;
	}
	for (unsigned i = 0; i < cfg->nr_pmem; i++)
		ids[i] = cfg->pmem[i].id;
	ret = check_unique("pmem", ids, cfg->nr_pmem, err, errlen);
	for (unsigned i = 0; !ret && i < cfg->nr_pmem; i++) {
		if (!cfg->pmem[i].path || !cfg->pmem[i].path[0]) {
			snprintf(err, errlen, "pmem '%s': no path", cfg->pmem[i].id);
			ret = -EINVAL;
		}
	}
	return ret;
}

int vm_config_check_names(const struct vm_config *cfg, char *err, size_t errlen)
{
	const char *ids[VM_MAX_DRIVES > VM_MAX_NETS ? VM_MAX_DRIVES : VM_MAX_NETS];
	int ret;

	if (cfg->nr_drives > VM_MAX_DRIVES || cfg->nr_nets > VM_MAX_NETS) {
		snprintf(err, errlen, "devices: at most %d drives and %d network interfaces",
			VM_MAX_DRIVES, VM_MAX_NETS);
		return -EINVAL;
	}
	for (unsigned i = 0; i < cfg->nr_drives; i++)
		ids[i] = cfg->drives[i].id;
	ret = check_unique("drive", ids, cfg->nr_drives, err, errlen);
	for (unsigned i = 0; !ret && i < cfg->nr_drives; i++) {
		if (!cfg->drives[i].path || !cfg->drives[i].path[0]) {
			snprintf(err, errlen, "drive '%s': no path", cfg->drives[i].id);
			ret = -EINVAL;
		}
	}
	for (unsigned i = 0; !ret && i < cfg->nr_nets; i++)
		ids[i] = cfg->nets[i].id;
	if (!ret)
		ret = check_unique("net", ids, cfg->nr_nets, err, errlen);
	for (unsigned i = 0; !ret && i < cfg->nr_nets; i++) {
		const struct net_config *n = &cfg->nets[i];
		if (!n->tap || !n->tap[0] || strlen(n->tap) >= 16) {
			snprintf(err, errlen,
				"net '%s': tap needs a device name of 1 to 15 characters", n->id);
			ret = -EINVAL;
		}
	}
	if (!ret)
		ret = check_pmem_names(cfg, err, errlen);
	if (!ret && cfg->vsock.enabled &&
		(cfg->vsock.guest_cid < 3 || !cfg->vsock.uds_path || !cfg->vsock.uds_path[0])) {
		snprintf(err, errlen,
			"vsock: guest_cid must be 3 or more and uds_path is required");
		ret = -EINVAL;
	}
	return ret;
}

/* Each backing file opens and is not empty; one root device at most, drive or pmem
 * (Firecracker's words). */
static int check_pmem(const struct vm_config *cfg, unsigned drive_roots, char *err, size_t errlen)
{
	unsigned roots = 0;

	for (unsigned i = 0; i < cfg->nr_pmem; i++) {
		const struct pmem_config *p = &cfg->pmem[i];
		uint64_t size;
		int ret = pmem_file_size(p, &size, err, errlen);

		if (ret)
			return ret;
		if (p->root && drive_roots) {
			snprintf(err, errlen,
				"pmem '%s': Attempt to add pmem as a root device while the root "
				"device defined as a block device",
				p->id);
			return -EINVAL;
		}
		if (p->root && roots++) {
			snprintf(err, errlen, "pmem '%s': A root pmem device already exist", p->id);
			return -EINVAL;
		}
	}
	return 0;
}

static int check_devices(const struct vm_config *cfg, char *err, size_t errlen)
{
	unsigned roots = 0;
	char why[160];
	int ret = vm_config_check_names(cfg, err, errlen);

	for (unsigned i = 0; !ret && i < cfg->nr_drives; i++) {
		const struct drive_config *d = &cfg->drives[i];
		if (access(d->path, d->read_only ? R_OK : R_OK | W_OK) < 0) {
			snprintf(err, errlen, "drive '%s': %s: %s", d->id, d->path,
				strerror(errno));
			return -EINVAL;
		}
		ret = check_drive_kind(d, err, errlen);
		roots += d->root;
	}
	if (ret)
		return ret;
	if (roots > 1) {
		snprintf(err, errlen, "drives: only one drive can be the root device");
		return -EINVAL;
	}
	ret = check_pmem(cfg, roots, err, errlen);
	if (ret)
		return ret;
	if (cfg->mem_hotplug.enabled &&
		mem_hotplug_config_check(&cfg->mem_hotplug, why, sizeof(why))) {
		snprintf(err, errlen, "memory_hotplug: %s", why);
		return -EINVAL;
	}
	if (cfg->balloon.enabled && cfg->balloon.amount_mib > cfg->mem_mib) {
		snprintf(err, errlen, "balloon: amount_mib %u is more than the vm's %llu MiB",
			cfg->balloon.amount_mib, (unsigned long long)cfg->mem_mib);
		return -EINVAL;
	}
	return 0;
}

static int check(const struct vm_config *cfg, bool boot_source, char *err, size_t errlen)
{
	uint64_t host = vm_config_host_mem_mib();
	int ret;

	if (cfg->vcpus < 1 || cfg->vcpus > VM_MAX_VCPUS) {
		snprintf(err, errlen, "vcpus: %u is out of range 1..%d", cfg->vcpus, VM_MAX_VCPUS);
		return -EINVAL;
	}
	if (cfg->smt && cfg->vcpus > 1 && cfg->vcpus % 2) {
		snprintf(err, errlen, "vcpus: %u with smt: must be 1 or an even number",
			cfg->vcpus);
		return -EINVAL;
	}
	if (cfg->mem_mib < VM_MIN_MEM_MIB) {
		snprintf(err, errlen, "memory_mib: %llu MiB is less than the minimum %d MiB",
			(unsigned long long)cfg->mem_mib, VM_MIN_MEM_MIB);
		return -EINVAL;
	}
	if (host && cfg->mem_mib > host) {
		snprintf(err, errlen, "memory_mib: %llu MiB is more than this host has (%llu MiB)",
			(unsigned long long)cfg->mem_mib, (unsigned long long)host);
		return -EINVAL;
	}
	if (cfg->mem_backing == GUEST_MEM_HUGETLB && cfg->mem_mib % 2) {
		snprintf(err, errlen, "memory_mib: %llu MiB is not a multiple of 2 MiB huge pages",
			(unsigned long long)cfg->mem_mib);
		return -EINVAL;
	}
	if (cfg->mem_backing == GUEST_MEM_FILE) {
		snprintf(err, errlen, "memory_backing: file memory comes only from a snapshot");
		return -EINVAL;
	}
	if (boot_source && (!cfg->kernel || !cfg->kernel[0])) {
		snprintf(err, errlen, "kernel: missing (path of an ELF vmlinux or a bzImage)");
		return -EINVAL;
	}
	ret = boot_source ? check_file("kernel", cfg->kernel, err, errlen) : 0;
	if (!ret && boot_source && cfg->initrd)
		ret = check_file("initrd", cfg->initrd, err, errlen);
	if (ret)
		return ret;
	ret = check_devices(cfg, err, errlen);
	if (ret)
		return ret;
	if (cfg->cmdline && strlen(cfg->cmdline) >= LAYOUT_CMDLINE_MAX) {
		snprintf(err, errlen, "cmdline: %zu bytes, the limit is %llu", strlen(cfg->cmdline),
			LAYOUT_CMDLINE_MAX - 1);
		return -EINVAL;
	}
	return 0;
}

static const char *const backing_names[] = {
	[GUEST_MEM_ANON] = "anon",
	[GUEST_MEM_MEMFD] = "memfd",
	[GUEST_MEM_HUGETLB] = "hugetlb",
	[GUEST_MEM_ANON_THP] = "thp",
	[GUEST_MEM_FILE] = "file",
};

int vm_config_parse_backing(const char *name, enum guest_mem_backing *out)
{
	if (strcmp(name, "2M") == 0) {
		*out = GUEST_MEM_HUGETLB;
		return 0;
	}
	for (unsigned i = 0; i < GUEST_MEM_FILE; i++) {
		if (strcmp(name, backing_names[i]) == 0) {
			*out = (enum guest_mem_backing)i;
			return 0;
		}
	}
	return -EINVAL;
}

const char *vm_config_backing_name(enum guest_mem_backing b)
{
	return b <= GUEST_MEM_FILE ? backing_names[b] : "?";
}

int vm_config_check(const struct vm_config *cfg, char *err, size_t errlen)
{
	return check(cfg, true, err, errlen);
}

int vm_config_check_restored(const struct vm_config *cfg, char *err, size_t errlen)
{
	return check(cfg, false, err, errlen);
}
