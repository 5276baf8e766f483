/* x86_64 snapshot state, read and checked without KVM: a vCPU section and the VM section
 * become plain structs (what state.c and state_vm.c hand to KVM), and restore's early
 * check walks every section of a state file before anything is built. */
#include "state_internal.h"

#include <cpuid.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ember/arch.h"
#include "ember/cpuid.h"
#include "ember/snapshot_file.h"

/* KVM's xsave area is 4 KiB, or KVM_CAP_XSAVE2 bytes with AMX; nothing larger exists. */
#define XSAVE_MAX (64u << 10)

static int malformed(char *err, size_t errlen, unsigned index, const char *what)
{
	snprintf(err, errlen, "state file: vcpu %u %s is malformed", index, what);
	return -EINVAL;
}

/* Copied before use: items are not aligned inside the state file. */
static int parse_cpuid(struct snap_cursor *c, struct vcpu_image *img, char *err, size_t errlen)
{
	const void *saved;
	uint32_t len, nent;
	int ret = state_get_item(c, I_CPUID, &saved, &len, err, errlen);

	if (ret)
		return ret;
	if (len < sizeof(*img->cpuid))
		return malformed(err, errlen, img->index, "cpuid");
	memcpy(&nent, saved, sizeof(nent)); /* kvm_cpuid2 starts with nent */
	if (nent > CPUID_MAX_ENTRIES ||
		len != sizeof(*img->cpuid) + nent * sizeof(img->cpuid->entries[0]))
		return malformed(err, errlen, img->index, "cpuid");
	img->cpuid = malloc(len);
	if (!img->cpuid) {
		snprintf(err, errlen, "vcpu %u: out of memory", img->index);
		return -ENOMEM;
	}
	memcpy(img->cpuid, saved, len);
	return 0;
}

static int parse_msrs(struct snap_cursor *c, struct vcpu_image *img, char *err, size_t errlen)
{
	const uint8_t *p;
	uint32_t len, n = 0;
	int ret = state_get_item(c, I_MSRS, (const void **)&p, &len, err, errlen);

	if (ret)
		return ret;
	if (len >= 4)
		memcpy(&n, p, 4);
	if (len < 4 || n > STATE_MSRS_MAX || len != 4 + n * STATE_MSR_ENTRY)
		return malformed(err, errlen, img->index, "msrs");
	img->msrs = p + 4;
	img->nr_msrs = n;
	return 0;
}

int state_vcpu_parse(struct snap_cursor *c, unsigned index, struct vcpu_image *img, char *err,
	size_t errlen)
{
	uint32_t saved_index = 0;
	int ret;

	memset(img, 0, sizeof(*img));
	img->index = index;
	if (snap_get_u32(c, &saved_index) || saved_index != index) {
		snprintf(err, errlen, "state file: vcpu section %u holds vcpu %u", index,
			saved_index);
		return -EINVAL;
	}
	ret = state_get_fixed(c, I_MP_STATE, &img->mp, sizeof(img->mp), err, errlen);
	if (!ret)
		ret = state_get_fixed(c, I_REGS, &img->regs, sizeof(img->regs), err, errlen);
	if (!ret)
		ret = state_get_fixed(c, I_SREGS, &img->sregs, sizeof(img->sregs), err, errlen);
	if (!ret)
		ret = state_get_item(c, I_XSAVE, &img->xsave, &img->xsave_len, err, errlen);
	if (!ret && (img->xsave_len < sizeof(struct kvm_xsave) || img->xsave_len > XSAVE_MAX)) {
		snprintf(err, errlen, "state file: vcpu %u xsave is %u bytes, not %zu to %u", index,
			img->xsave_len, sizeof(struct kvm_xsave), XSAVE_MAX);
		ret = -EINVAL;
	}
	if (!ret)
		ret = state_get_fixed(c, I_XCRS, &img->xcrs, sizeof(img->xcrs), err, errlen);
	if (!ret)
		ret = state_get_fixed(c, I_DEBUGREGS, &img->dregs, sizeof(img->dregs), err, errlen);
	if (!ret)
		ret = state_get_fixed(c, I_LAPIC, &img->lapic, sizeof(img->lapic), err, errlen);
	if (!ret)
		ret = state_get_fixed(c, I_TSC_KHZ, &img->tsc_khz, sizeof(img->tsc_khz), err,
			errlen);
	if (!ret)
		ret = parse_cpuid(c, img, err, errlen);
	if (!ret)
		ret = parse_msrs(c, img, err, errlen);
	if (!ret)
		ret = state_get_fixed(c, I_EVENTS, &img->events, sizeof(img->events), err, errlen);
	if (ret)
		state_vcpu_image_free(img);
	return ret;
}

void state_vcpu_image_free(struct vcpu_image *img)
{
	free(img->cpuid);
	img->cpuid = NULL;
}

int state_vm_parse(struct snap_cursor *c, struct vm_image *img, char *err, size_t errlen)
{
	int ret = 0;

	memset(img, 0, sizeof(*img));
	for (unsigned i = 0; !ret && i < 3; i++)
		ret = state_get_fixed(c, I_PIC_MASTER + i, &img->chips[i], sizeof(img->chips[i]),
			err, errlen);
	if (!ret)
		ret = state_get_fixed(c, I_PIT, &img->pit, sizeof(img->pit), err, errlen);
	if (!ret)
		ret = state_get_fixed(c, I_CLOCK, &img->clock, sizeof(img->clock), err, errlen);
	for (unsigned i = 0; !ret && i < 3; i++) {
		if (img->chips[i].chip_id != i) {
			snprintf(err, errlen, "state file: irqchip %u has id %u", i,
				img->chips[i].chip_id);
			ret = -EINVAL;
		}
	}
	return ret;
}

/* The first vCPU's vendor against the host's. A guest's CPUID travels with it, but the
 * instructions behind it do not (SYSCALL/SYSENTER in 32-bit code, VMX against SVM for
 * nested guests, the MSRs the kernel chose at boot), so a snapshot taken on another
 * vendor's CPU is refused here rather than left to fail inside the guest. */
static int check_vendor(struct vcpu_image *img, const char *host, char *err, size_t errlen)
{
	char saved[13];

	if (!cpuid_vendor(img->cpuid, saved)) {
		snprintf(err, errlen, "state file: vcpu 0 cpuid has no leaf 0, so no CPU vendor");
		return -EINVAL;
	}
	if (strcmp(saved, host) != 0) {
		snprintf(err, errlen,
			"snapshot CPU vendor %s differs from this host's %s: a "
			"snapshot restores only on the CPU vendor it was taken on",
			saved, host);
		return -EINVAL;
	}
	return 0;
}

int arch_state_check(const struct snap_reader *r, unsigned vcpus, const char *host_vendor,
	char *err, size_t errlen)
{
	struct snap_cursor c;
	struct vcpu_image img;
	struct vm_image vm;
	int ret = 0;

	for (unsigned i = 0; !ret && i < vcpus; i++) {
		if (snap_reader_find(r, SNAP_SEC_VCPU, i, &c)) {
			snprintf(err, errlen, "state file: no state for vcpu %u", i);
			return -EINVAL;
		}
		ret = state_vcpu_parse(&c, i, &img, err, errlen);
		if (ret)
			return ret;
		if (i == 0)
			ret = check_vendor(&img, host_vendor, err, errlen);
		state_vcpu_image_free(&img);
	}
	if (ret)
		return ret;
	if (snap_reader_find(r, SNAP_SEC_VM_STATE, 0, &c)) {
		snprintf(err, errlen, "state file: no vm state section");
		return -EINVAL;
	}
	return state_vm_parse(&c, &vm, err, errlen);
}

void arch_host_vendor(char out[13])
{
	unsigned a, b, c, d;

	__cpuid(0, a, b, c, d);
	memcpy(out, &b, 4);
	memcpy(out + 4, &d, 4);
	memcpy(out + 8, &c, 4);
	out[12] = 0;
}
