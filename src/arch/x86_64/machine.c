/* x86_64 machine set-up through KVM: irqchip, PIT, vCPU CPUID/MSRs/LAPIC, boot loading. */
#include "ember/arch.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <linux/kvm.h>

#include "ember/acpi.h"
#include "ember/cpu_template.h"
#include "ember/cpuid.h"
#include "ember/emulate.h"
#include "ember/guest_mem.h"
#include "ember/layout.h"
#include "ember/vcpu.h"
#include "ember/x86_boot.h"

/* KVM needs three pages for the TSS and one for the EPT identity map below 4 GiB, outside
 * RAM: the top of the MMIO gap below the IOAPIC is free. */
#define KVM_TSS_ADDR 0xfffbd000ULL
#define KVM_IDENTITY_MAP_ADDR 0xfffbc000ULL

#define MSR_IA32_MISC_ENABLE 0x1a0
#define MSR_IA32_MISC_ENABLE_FAST_STRING 1ULL
#define MSR_MTRR_DEF_TYPE 0x2ff
#define MTRR_ENABLE (1ULL << 11)
#define MTRR_TYPE_WRBACK 6ULL

#define APIC_LVT0 0x350
#define APIC_LVT1 0x360
#define APIC_MODE_NMI 0x4
#define APIC_MODE_EXTINT 0x7

int arch_vm_setup(int vm_fd, char *err, size_t errlen)
{
	struct kvm_pit_config pit = { .flags = KVM_PIT_SPEAKER_DUMMY };
	uint64_t identity = KVM_IDENTITY_MAP_ADDR;

	if (ioctl(vm_fd, KVM_SET_TSS_ADDR, (unsigned long)KVM_TSS_ADDR) < 0) {
		snprintf(err, errlen, "KVM_SET_TSS_ADDR: %s", strerror(errno));
		return -errno;
	}
	if (ioctl(vm_fd, KVM_SET_IDENTITY_MAP_ADDR, &identity) < 0) {
		snprintf(err, errlen, "KVM_SET_IDENTITY_MAP_ADDR: %s", strerror(errno));
		return -errno;
	}
	if (ioctl(vm_fd, KVM_CREATE_IRQCHIP, 0) < 0) {
		snprintf(err, errlen, "KVM_CREATE_IRQCHIP: %s", strerror(errno));
		return -errno;
	}
	if (ioctl(vm_fd, KVM_CREATE_PIT2, &pit) < 0) {
		snprintf(err, errlen, "KVM_CREATE_PIT2: %s", strerror(errno));
		return -errno;
	}
	return 0;
}

/* KVM's supported CPUID list, read once. */
static struct kvm_cpuid2 *supported_cpuid(int kvm_fd)
{
	static struct kvm_cpuid2 *cached;
	struct kvm_cpuid2 *c;

	if (cached)
		return cached;
	c = calloc(1, sizeof(*c) + CPUID_MAX_ENTRIES * sizeof(c->entries[0]));
	if (!c)
		return NULL;
	c->nent = CPUID_MAX_ENTRIES;
	if (ioctl(kvm_fd, KVM_GET_SUPPORTED_CPUID, c) < 0) {
		free(c);
		return NULL;
	}
	cached = c;
	return cached;
}

/* KVM's list made into what vCPU `index` sees: normalized, then SMT, then the template. */
static int build_cpuid(struct kvm_cpuid2 *c, unsigned index, unsigned count, bool smt,
	const struct cpu_template *t, char *err, size_t errlen)
{
	if (cpuid_normalize(c, index, count)) {
		snprintf(err, errlen, "vcpu %u: cannot build CPUID for %u vCPUs", index, count);
		return -EINVAL;
	}
	if (smt && cpuid_apply_smt(c, index, count)) {
		snprintf(err, errlen, "smt: %u vCPUs is not 1 or an even number", count);
		return -EINVAL;
	}
	return t ? cpu_template_apply_cpuid(t, c, err, errlen) : 0;
}

static int setup_cpuid(int kvm_fd, struct vcpu *v, unsigned count, bool smt,
	const struct cpu_template *t, char *err, size_t errlen)
{
	struct kvm_cpuid2 *sup = supported_cpuid(kvm_fd), *c;
	size_t size;
	int ret;

	if (!sup) {
		snprintf(err, errlen, "KVM_GET_SUPPORTED_CPUID: %s", strerror(errno));
		return -EIO;
	}
	/* Room for CPUID_MAX_ENTRIES: normalization and templates may add leaves. */
	size = sizeof(*sup) + sup->nent * sizeof(sup->entries[0]);
	c = calloc(1, sizeof(*c) + CPUID_MAX_ENTRIES * sizeof(c->entries[0]));
	if (!c)
		return -ENOMEM;
	memcpy(c, sup, size);
	ret = build_cpuid(c, v->index, count, smt, t, err, errlen);
	if (!ret && ioctl(v->fd, KVM_SET_CPUID2, c) < 0) {
		ret = -errno;
		snprintf(err, errlen, "vcpu %u: KVM_SET_CPUID2: %s", v->index, strerror(errno));
	}
	free(c);
	return ret;
}

/* Added capabilities must be there; removed ones take nothing off, as ember checks no
 * optional capability that a template could waive. */
static int check_caps(int kvm_fd, const struct cpu_template *t, char *err, size_t errlen)
{
	for (uint32_t i = 0; i < t->nr_caps; i++) {
		if (t->caps[i].remove || ioctl(kvm_fd, KVM_CHECK_EXTENSION, t->caps[i].cap) > 0)
			continue;
		snprintf(err, errlen,
			"Failed to get CPU template: kvm_capabilities: KVM capability "
			"%u is not supported by this host",
			t->caps[i].cap);
		return -ENOTSUP;
	}
	return 0;
}

/* The template's MSR modifiers: read, modify the chosen bits, write back. */
static int setup_template_msrs(struct vcpu *v, const struct cpu_template *t, char *err,
	size_t errlen)
{
	uint32_t idx[CPU_TEMPLATE_MAX_MSR];
	uint64_t val[CPU_TEMPLATE_MAX_MSR];
	int ret;

	for (uint32_t i = 0; i < t->nr_msr; i++)
		idx[i] = t->msr[i].addr;
	ret = t->nr_msr ? arch_msrs_get(v->fd, idx, val, t->nr_msr) : 0;
	if (!ret) {
		cpu_template_apply_msrs(t, val);
		ret = arch_msrs_set(v->fd, idx, val, t->nr_msr);
	}
	if (ret)
		snprintf(err, errlen,
			"vcpu %u: CPU template MSRs: %s (an MSR KVM does not let "
			"this vCPU read or write?)",
			v->index, strerror(-ret));
	return ret;
}

static int setup_lapic(struct vcpu *v, char *err, size_t errlen)
{
	struct kvm_lapic_state lapic;
	uint32_t *lvt0 = (uint32_t *)&lapic.regs[APIC_LVT0];
	uint32_t *lvt1 = (uint32_t *)&lapic.regs[APIC_LVT1];

	if (ioctl(v->fd, KVM_GET_LAPIC, &lapic) < 0) {
		snprintf(err, errlen, "vcpu %u: KVM_GET_LAPIC: %s", v->index, strerror(errno));
		return -errno;
	}
	/* Legacy PIC interrupts reach the CPU through LINT0, NMIs through LINT1. */
	*lvt0 = (*lvt0 & ~0x700u) | (APIC_MODE_EXTINT << 8);
	*lvt1 = (*lvt1 & ~0x700u) | (APIC_MODE_NMI << 8);
	if (ioctl(v->fd, KVM_SET_LAPIC, &lapic) < 0) {
		snprintf(err, errlen, "vcpu %u: KVM_SET_LAPIC: %s", v->index, strerror(errno));
		return -errno;
	}
	return 0;
}

static int setup_boot_msrs(struct vcpu *v, char *err, size_t errlen)
{
	static const uint32_t idx[] = { MSR_IA32_MISC_ENABLE, MSR_MTRR_DEF_TYPE };
	const uint64_t val[] = { MSR_IA32_MISC_ENABLE_FAST_STRING, MTRR_ENABLE | MTRR_TYPE_WRBACK };
	int ret = arch_msrs_set(v->fd, idx, val, 2);

	if (ret)
		snprintf(err, errlen, "vcpu %u: cannot set boot MSRs: %s", v->index,
			strerror(-ret));
	return ret;
}

static int setup_boot_regs(struct vcpu *v, uint64_t entry, char *err, size_t errlen)
{
	struct kvm_regs regs;
	struct kvm_sregs sregs;

	if (ioctl(v->fd, KVM_GET_SREGS, &sregs) < 0) {
		snprintf(err, errlen, "vcpu %u: KVM_GET_SREGS: %s", v->index, strerror(errno));
		return -errno;
	}
	x86_boot_regs(entry, &regs, &sregs);
	if (ioctl(v->fd, KVM_SET_SREGS, &sregs) < 0 || ioctl(v->fd, KVM_SET_REGS, &regs) < 0) {
		snprintf(err, errlen, "vcpu %u: cannot set boot registers: %s", v->index,
			strerror(errno));
		return -errno;
	}
	return 0;
}

/* The template a vCPU gets: the custom one, or the static one (built in, parsed into
 * *owned, which the caller frees) if the host CPU is one Firecracker allows for it. */
static int resolve_template(int kvm_fd, const struct cpu_model *model, struct cpu_template **owned,
	const struct cpu_template **t, char *err, size_t errlen)
{
	struct kvm_cpuid2 *sup;
	char why[256];

	*owned = NULL;
	*t = model->custom;
	if (model->static_template == CPU_STATIC_NONE)
		return 0;
	sup = supported_cpuid(kvm_fd);
	if (!sup) {
		snprintf(err, errlen, "KVM_GET_SUPPORTED_CPUID: %s", strerror(errno));
		return -EIO;
	}
	if (cpu_static_check(model->static_template, sup, why, sizeof(why))) {
		snprintf(err, errlen, "Failed to get CPU template: %s", why);
		return -EINVAL;
	}
	*owned = malloc(sizeof(**owned));
	if (!*owned)
		return -ENOMEM;
	if (cpu_template_parse(cpu_static_json(model->static_template), *owned, why, sizeof(why))) {
		snprintf(err, errlen, "static CPU template %s: %s",
			cpu_static_name(model->static_template), why);
		free(*owned);
		*owned = NULL;
		return -EINVAL;
	}
	*t = *owned;
	return 0;
}

int arch_vcpu_setup(int kvm_fd, struct vcpu *v, unsigned count, const struct cpu_model *model,
	uint64_t entry, char *err, size_t errlen)
{
	struct cpu_template *owned;
	const struct cpu_template *t;
	int ret = resolve_template(kvm_fd, model, &owned, &t, err, errlen);

	if (!ret && t)
		ret = check_caps(kvm_fd, t, err, errlen);
	if (!ret)
		ret = setup_cpuid(kvm_fd, v, count, model->smt, t, err, errlen);
	if (!ret)
		ret = setup_boot_msrs(v, err, errlen);
	/* After the boot MSRs, so that a template may change those too. */
	if (!ret && t && t->nr_msr)
		ret = setup_template_msrs(v, t, err, errlen);
	free(owned);
	if (!ret)
		ret = setup_lapic(v, err, errlen);
	/* Application processors wait for INIT/SIPI in the in-kernel LAPIC. */
	if (!ret && v->index == 0)
		ret = setup_boot_regs(v, entry, err, errlen);
	return ret;
}

bool arch_vcpu_exit(struct vcpu *v, char *detail, size_t len)
{
	if (v->run->exit_reason != KVM_EXIT_INTERNAL_ERROR)
		return false;
	/* On an emulating host some instructions reach us; emulate.c serves those. */
	return emulate_vcpu_exit(v, v->env->mem, detail, len);
}

static int vmgenid_write(struct guest_mem *gm, char *err, size_t errlen)
{
	uint8_t id[16];

	if (getrandom(id, sizeof(id), 0) != (ssize_t)sizeof(id)) {
		snprintf(err, errlen, "vmgenid: getrandom: %s", strerror(errno));
		return -EIO;
	}
	if (guest_mem_write(gm, LAYOUT_VMGENID, id, sizeof(id))) {
		snprintf(err, errlen, "vmgenid: guest memory too small");
		return -EFAULT;
	}
	return 0;
}

int arch_vmgenid_update(struct guest_mem *gm, int vm_fd, char *err, size_t errlen)
{
	struct kvm_irq_level line = { .irq = LAYOUT_VMGENID_GSI, .level = 1 };
	int ret = vmgenid_write(gm, err, errlen);

	if (ret)
		return ret;
	/* An edge on the Generic Event Device's pin: its _EVT notifies the vmgenid device. */
	if (ioctl(vm_fd, KVM_IRQ_LINE, &line) < 0) {
		snprintf(err, errlen, "vmgenid: KVM_IRQ_LINE: %s", strerror(errno));
		return -errno;
	}
	line.level = 0;
	if (ioctl(vm_fd, KVM_IRQ_LINE, &line) < 0) {
		snprintf(err, errlen, "vmgenid: KVM_IRQ_LINE: %s", strerror(errno));
		return -errno;
	}
	return 0;
}

/* Read a whole file into memory (kernel and initrd images). */
static int read_file(const char *what, const char *path, void **data, size_t *len, char *err,
	size_t errlen)
{
	struct stat st;
	void *p;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0) {
		snprintf(err, errlen, "%s %s: %s", what, path, strerror(errno));
		return -errno;
	}
	if (fstat(fd, &st) < 0 || st.st_size == 0) {
		snprintf(err, errlen, "%s %s: empty or unreadable", what, path);
		close(fd);
		return -EINVAL;
	}
	p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
	close(fd);
	if (p == MAP_FAILED) {
		snprintf(err, errlen, "%s %s: %s", what, path, strerror(errno));
		return -errno;
	}
	*data = p;
	*len = (size_t)st.st_size;
	return 0;
}

int arch_boot_load(struct guest_mem *gm, const struct arch_boot_source *src, uint64_t *entry,
	char *err, size_t errlen)
{
	char cmdline[LAYOUT_CMDLINE_MAX];
	struct x86_kernel kernel;
	struct x86_boot_info info = { .cmdline = cmdline };
	struct acpi_config acpi = {
		.nr_vcpus = src->vcpus,
		.virtio = src->virtio,
		.nr_virtio = src->nr_virtio,
		.vmgenid = true,
		.vmgenid_gpa = LAYOUT_VMGENID,
		.vmgenid_gsi = LAYOUT_VMGENID_GSI,
	};
	void *image, *initrd;
	size_t len, initrd_len;
	unsigned tsc_khz = 0;
	bool emulating;
	int ret;

	/* The words an emulating host needs (none on hardware KVM) follow the user's. */
	emulating = emulate_host_detect();
	if (emulating) {
		ret = ioctl(src->vcpu_fd, KVM_GET_TSC_KHZ, 0);
		tsc_khz = ret > 0 ? (unsigned)ret : 0;
	}
	ret = emulate_cmdline(src->cmdline, emulating, tsc_khz, cmdline, sizeof(cmdline), err,
		errlen);
	if (ret)
		return ret;
	ret = read_file("kernel", src->kernel_path, &image, &len, err, errlen);
	if (ret)
		return ret;
	ret = x86_kernel_load(gm, image, len, &kernel, err, errlen);
	munmap(image, len);
	if (ret)
		return ret;
	if (src->initrd_path) {
		ret = read_file("initrd", src->initrd_path, &initrd, &initrd_len, err, errlen);
		if (ret)
			return ret;
		ret = x86_initrd_load(gm, &kernel, initrd, initrd_len, &info.initrd_gpa, err,
			errlen);
		munmap(initrd, initrd_len);
		if (ret)
			return ret;
		info.initrd_size = initrd_len;
	}
	ret = vmgenid_write(gm, err, errlen);
	if (!ret)
		ret = acpi_build(gm, &acpi, &info.acpi_rsdp, err, errlen);
	if (!ret)
		ret = x86_zero_page_setup(gm, &kernel, &info, err, errlen);
	if (ret)
		return ret;
	ret = x86_boot_tables_setup(gm);
	if (ret) {
		snprintf(err, errlen, "cannot write boot page tables: guest memory too small");
		return ret;
	}
	*entry = kernel.entry;
	return 0;
}
