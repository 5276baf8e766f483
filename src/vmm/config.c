/* Machine configuration: defaults, copies and the checks made before a VM is built. */
#include "ember/config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ember/layout.h"

void vm_config_init(struct vm_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->vcpus = 1;
	cfg->mem_mib = 128;
	cfg->mem_backing = GUEST_MEM_ANON;
	cfg->console = CONSOLE_STDIO;
}

void vm_config_deinit(struct vm_config *cfg)
{
	free(cfg->kernel);
	free(cfg->initrd);
	free(cfg->cmdline);
	free(cfg->console_log);
	vm_config_init(cfg);
}

static int dup_str(char **dst, const char *src)
{
	*dst = NULL;
	if (!src)
		return 0;
	*dst = strdup(src);
	return *dst ? 0 : -ENOMEM;
}

int vm_config_copy(struct vm_config *dst, const struct vm_config *src)
{
	*dst = *src;
	if (dup_str(&dst->kernel, src->kernel) || dup_str(&dst->initrd, src->initrd) ||
		dup_str(&dst->cmdline, src->cmdline) ||
		dup_str(&dst->console_log, src->console_log)) {
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

int vm_config_check(const struct vm_config *cfg, char *err, size_t errlen)
{
	uint64_t host = vm_config_host_mem_mib();
	int ret;

	if (cfg->vcpus < 1 || cfg->vcpus > VM_MAX_VCPUS) {
		snprintf(err, errlen, "vcpus: %u is out of range 1..%d", cfg->vcpus, VM_MAX_VCPUS);
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
	if (!cfg->kernel || !cfg->kernel[0]) {
		snprintf(err, errlen, "kernel: missing (path of an ELF vmlinux or a bzImage)");
		return -EINVAL;
	}
	ret = check_file("kernel", cfg->kernel, err, errlen);
	if (!ret && cfg->initrd)
		ret = check_file("initrd", cfg->initrd, err, errlen);
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
