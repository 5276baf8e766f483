/* x86_64 snapshot state of a vCPU: every register set KVM exposes, saved and restored in
 * Firecracker's order (the VM's interrupt controllers, PIT and clock: state_vm.c). */
#include "ember/arch.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include <linux/kvm.h>

#include "ember/cpuid.h"
#include "ember/log.h"
#include "ember/snapshot_file.h"
#include "ember/vcpu.h"
#include "state_internal.h"

#define MSR_IA32_TSC 0x10
#define MSR_IA32_TSC_DEADLINE 0x6e0
#define TSC_TOLERANCE_PPM 250

static size_t xsave_size(int kvm_fd)
{
	int size = ioctl(kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_XSAVE2);

	return size > (int)sizeof(struct kvm_xsave) ? (size_t)size : sizeof(struct kvm_xsave);
}

static int failed(char *err, size_t errlen, const char *what, unsigned index)
{
	int e = errno;

	snprintf(err, errlen, "vcpu %u: %s: %s", index, what, strerror(e));
	return -e;
}

/* A vCPU ioctl; on failure the message names it and control goes to `out`. */
#define VCPU_IOCTL(req, ptr, what) \
	do { \
		if (ioctl(v->fd, req, ptr) < 0) { \
			ret = failed(err, errlen, what, v->index); \
			goto out; \
		} \
	} while (0)

static int save_msrs(int kvm_fd, const struct vcpu *v, struct snap_writer *w, char *err,
	size_t errlen)
{
	const uint32_t *list;
	unsigned count, got = 0;
	uint32_t *idx = malloc(STATE_MSRS_MAX * sizeof(*idx));
	uint64_t *val = malloc(STATE_MSRS_MAX * sizeof(*val));
	int ret = idx && val ? arch_msr_list(kvm_fd, &list, &count) : -ENOMEM;

	if (!ret && count > STATE_MSRS_MAX)
		ret = -E2BIG;
	if (!ret)
		ret = arch_msrs_get_readable(v->fd, list, count, idx, val, &got);
	if (ret) {
		snprintf(err, errlen, "vcpu %u: cannot read MSRs: %s", v->index, strerror(-ret));
	} else {
		ret = snap_put_u32(w, I_MSRS);
		if (!ret)
			ret = snap_put_u32(w, 4 + got * STATE_MSR_ENTRY);
		if (!ret)
			ret = snap_put_u32(w, got);
		for (unsigned i = 0; !ret && i < got; i++) {
			ret = snap_put_u32(w, idx[i]);
			if (!ret)
				ret = snap_put_u64(w, val[i]);
		}
	}
	free(idx);
	free(val);
	return ret;
}

/* The fixed-size register sets of a vCPU, as KVM hands them over. */
struct fixed_state {
	struct kvm_mp_state mp;
	struct kvm_regs regs;
	struct kvm_sregs sregs;
	struct kvm_xcrs xcrs;
	struct kvm_debugregs dregs;
	struct kvm_lapic_state lapic;
	struct kvm_vcpu_events events;
};

int arch_vcpu_save(int kvm_fd, const struct vcpu *v, struct snap_writer *w, char *err,
	size_t errlen)
{
	struct fixed_state st;
	struct kvm_cpuid2 *cpuid = NULL;
	size_t xsize = xsave_size(kvm_fd);
	void *xsave = calloc(1, xsize);
	uint32_t khz;
	int ret = 0, tsc;

	cpuid = calloc(1, sizeof(*cpuid) + CPUID_MAX_ENTRIES * sizeof(cpuid->entries[0]));
	if (!xsave || !cpuid) {
		ret = -ENOMEM;
		snprintf(err, errlen, "vcpu %u: out of memory", v->index);
		goto out;
	}
	cpuid->nent = CPUID_MAX_ENTRIES;
	/* mp_state first: reading it makes KVM accept pending APIC events. */
	VCPU_IOCTL(KVM_GET_MP_STATE, &st.mp, "KVM_GET_MP_STATE");
	VCPU_IOCTL(KVM_GET_REGS, &st.regs, "KVM_GET_REGS");
	VCPU_IOCTL(KVM_GET_SREGS, &st.sregs, "KVM_GET_SREGS");
	VCPU_IOCTL(xsize > sizeof(struct kvm_xsave) ? KVM_GET_XSAVE2 : KVM_GET_XSAVE, xsave,
		"KVM_GET_XSAVE");
	VCPU_IOCTL(KVM_GET_XCRS, &st.xcrs, "KVM_GET_XCRS");
	VCPU_IOCTL(KVM_GET_DEBUGREGS, &st.dregs, "KVM_GET_DEBUGREGS");
	VCPU_IOCTL(KVM_GET_LAPIC, &st.lapic, "KVM_GET_LAPIC");
	tsc = ioctl(v->fd, KVM_GET_TSC_KHZ, 0);
	khz = tsc > 0 ? (uint32_t)tsc : 0;
	VCPU_IOCTL(KVM_GET_CPUID2, cpuid, "KVM_GET_CPUID2");
	ret = snap_put_u32(w, v->index);
	if (!ret)
		ret = state_put_item(w, I_MP_STATE, &st.mp, sizeof(st.mp));
	if (!ret)
		ret = state_put_item(w, I_REGS, &st.regs, sizeof(st.regs));
	if (!ret)
		ret = state_put_item(w, I_SREGS, &st.sregs, sizeof(st.sregs));
	if (!ret)
		ret = state_put_item(w, I_XSAVE, xsave, xsize);
	if (!ret)
		ret = state_put_item(w, I_XCRS, &st.xcrs, sizeof(st.xcrs));
	if (!ret)
		ret = state_put_item(w, I_DEBUGREGS, &st.dregs, sizeof(st.dregs));
	if (!ret)
		ret = state_put_item(w, I_LAPIC, &st.lapic, sizeof(st.lapic));
	if (!ret)
		ret = state_put_item(w, I_TSC_KHZ, &khz, sizeof(khz));
	if (!ret)
		ret = state_put_item(w, I_CPUID, cpuid,
			sizeof(*cpuid) + cpuid->nent * sizeof(cpuid->entries[0]));
	if (!ret)
		ret = save_msrs(kvm_fd, v, w, err, errlen);
	if (ret) {
		if (!err[0])
			snprintf(err, errlen, "vcpu %u: out of memory", v->index);
		goto out;
	}
	/* Events last: the reads above must not leave anything pending behind them. */
	VCPU_IOCTL(KVM_GET_VCPU_EVENTS, &st.events, "KVM_GET_VCPU_EVENTS");
	ret = state_put_item(w, I_EVENTS, &st.events, sizeof(st.events));
out:
	free(xsave);
	free(cpuid);
	return ret;
}

static int set_msr_list(struct vcpu *v, const uint32_t *idx, const uint64_t *val, unsigned n,
	char *err, size_t errlen)
{
	int ret = arch_msrs_set(v->fd, idx, val, n);

	if (ret)
		snprintf(err, errlen, "vcpu %u: KVM_SET_MSRS refused one of %u MSRs: %s", v->index,
			n, strerror(-ret));
	return ret;
}

static int restore_msrs(struct vcpu *v, const struct vcpu_image *img, char *err, size_t errlen)
{
	uint32_t *idx = malloc((img->nr_msrs + 1) * sizeof(*idx));
	uint64_t *val = malloc((img->nr_msrs + 1) * sizeof(*val));
	uint64_t deadline = 0, tsc = 0;
	unsigned k = 0;
	bool has_deadline = false;
	int ret;

	if (!idx || !val) {
		ret = -ENOMEM;
		goto out;
	}
	for (uint32_t i = 0; i < img->nr_msrs; i++) {
		uint32_t index;
		uint64_t value;
		memcpy(&index, img->msrs + i * STATE_MSR_ENTRY, 4);
		memcpy(&value, img->msrs + i * STATE_MSR_ENTRY + 4, 8);
		if (index == MSR_IA32_TSC)
			tsc = value;
		if (index == MSR_IA32_TSC_DEADLINE) {
			has_deadline = true;
			deadline = value;
			continue;
		}
		idx[k] = index;
		val[k++] = value;
	}
	ret = set_msr_list(v, idx, val, k, err, errlen);
	/* TSC_DEADLINE goes after the TSC it is relative to; an unarmed deadline becomes the
	 * TSC value so a timer interrupt lost at save time fires at once. */
	if (!ret && has_deadline) {
		uint32_t di = MSR_IA32_TSC_DEADLINE;
		uint64_t dv = deadline ? deadline : tsc;
		ret = set_msr_list(v, &di, &dv, 1, err, errlen);
	}
out:
	free(idx);
	free(val);
	return ret;
}

static void restore_tsc(struct vcpu *v, uint32_t khz)
{
	int host;

	if (!khz)
		return;
	host = ioctl(v->fd, KVM_GET_TSC_KHZ, 0);
	/* Scale only when the host differs by more than the tolerance: scaling costs. */
	if (host > 0 &&
		(uint64_t)llabs((long long)host - khz) * 1000000 >
			(uint64_t)khz * TSC_TOLERANCE_PPM &&
		ioctl(v->fd, KVM_SET_TSC_KHZ, (unsigned long)khz) < 0)
		log_warn("vcpu %u: cannot scale TSC to %u kHz (host %d kHz): %s", v->index, khz,
			host, strerror(errno));
}

int arch_vcpu_restore(int kvm_fd, struct vcpu *v, struct snap_cursor *c, char *err, size_t errlen)
{
	struct vcpu_image img;
	size_t xsize = xsave_size(kvm_fd);
	void *xsave = NULL;
	/* Read on a copy: a malformed section leaves the caller's cursor where it was. */
	struct snap_cursor tail = *c;
	int ret = state_vcpu_parse(&tail, v->index, &img, err, errlen);

	if (ret)
		return ret;
	if (img.xsave_len != xsize) {
		snprintf(err, errlen, "state file: xsave is %u bytes, this host uses %zu",
			img.xsave_len, xsize);
		ret = -EINVAL;
		goto out;
	}
	xsave = malloc(xsize);
	if (!xsave) {
		ret = -ENOMEM;
		goto out;
	}
	memcpy(xsave, img.xsave, xsize);
	restore_tsc(v, img.tsc_khz);
	/* The CPU vendor was compared with the host's before the VM was built
	 * (arch_state_check). */
	VCPU_IOCTL(KVM_SET_CPUID2, img.cpuid, "KVM_SET_CPUID2");
	VCPU_IOCTL(KVM_SET_MP_STATE, &img.mp, "KVM_SET_MP_STATE");
	VCPU_IOCTL(KVM_SET_REGS, &img.regs, "KVM_SET_REGS");
	VCPU_IOCTL(KVM_SET_SREGS, &img.sregs, "KVM_SET_SREGS");
	/* KVM_SET_XSAVE reads as many bytes as KVM_CAP_XSAVE2 reports. */
	VCPU_IOCTL(KVM_SET_XSAVE, xsave, "KVM_SET_XSAVE");
	VCPU_IOCTL(KVM_SET_XCRS, &img.xcrs, "KVM_SET_XCRS");
	VCPU_IOCTL(KVM_SET_DEBUGREGS, &img.dregs, "KVM_SET_DEBUGREGS");
	/* The LAPIC after sregs (APIC base), the MSRs after the LAPIC (TSC deadline). */
	VCPU_IOCTL(KVM_SET_LAPIC, &img.lapic, "KVM_SET_LAPIC");
	ret = restore_msrs(v, &img, err, errlen);
	if (ret)
		goto out;
	VCPU_IOCTL(KVM_SET_VCPU_EVENTS, &img.events, "KVM_SET_VCPU_EVENTS");
	/* Tell a paravirtual-clock guest it was stopped, so it does not report soft
	 * lockups; EINVAL means the guest has no kvmclock, which is fine. */
	if (ioctl(v->fd, KVM_KVMCLOCK_CTRL, 0) < 0 && errno != EINVAL)
		log_debug("vcpu %u: KVM_KVMCLOCK_CTRL: %s", v->index, strerror(errno));
	*c = tail;
out:
	free(xsave);
	state_vcpu_image_free(&img);
	return ret;
}
