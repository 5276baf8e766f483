/* MSR access: KVM's full index list, and chunked get/set on a vCPU. */
#include "ember/arch.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include <linux/kvm.h>

#define MSR_CHUNK 64

int arch_msr_list(int kvm_fd, const uint32_t **indices, unsigned *count)
{
	static struct kvm_msr_list *cached;
	struct kvm_msr_list probe = { .nmsrs = 0 }, *list;

	if (!cached) {
		/* The first call fails with E2BIG and reports the count. */
		if (ioctl(kvm_fd, KVM_GET_MSR_INDEX_LIST, &probe) < 0 && errno != E2BIG)
			return -errno;
		list = calloc(1, sizeof(*list) + probe.nmsrs * sizeof(uint32_t));
		if (!list)
			return -ENOMEM;
		list->nmsrs = probe.nmsrs;
		if (ioctl(kvm_fd, KVM_GET_MSR_INDEX_LIST, list) < 0) {
			free(list);
			return -errno;
		}
		cached = list;
	}
	*indices = cached->indices;
	*count = cached->nmsrs;
	return 0;
}

static int msr_chunk(int vcpu_fd, unsigned long op, const uint32_t *indices, uint64_t *values,
	unsigned n)
{
	struct {
		struct kvm_msrs hdr;
		struct kvm_msr_entry entries[MSR_CHUNK];
	} buf;
	int done;

	memset(&buf, 0, sizeof(buf));
	buf.hdr.nmsrs = n;
	for (unsigned i = 0; i < n; i++) {
		buf.entries[i].index = indices[i];
		buf.entries[i].data = op == KVM_SET_MSRS ? values[i] : 0;
	}
	done = ioctl(vcpu_fd, op, &buf);
	if (done < 0)
		return -errno;
	if ((unsigned)done != n)
		return -EIO;
	if (op == KVM_GET_MSRS)
		for (unsigned i = 0; i < n; i++)
			values[i] = buf.entries[i].data;
	return 0;
}

static int msr_all(int vcpu_fd, unsigned long op, const uint32_t *indices, uint64_t *values,
	unsigned count)
{
	for (unsigned off = 0; off < count; off += MSR_CHUNK) {
		unsigned n = count - off < MSR_CHUNK ? count - off : MSR_CHUNK;
		int ret = msr_chunk(vcpu_fd, op, indices + off, values + off, n);
		if (ret)
			return ret;
	}
	return 0;
}

int arch_msrs_get(int vcpu_fd, const uint32_t *indices, uint64_t *values, unsigned count)
{
	return msr_all(vcpu_fd, KVM_GET_MSRS, indices, values, count);
}

int arch_msrs_set(int vcpu_fd, const uint32_t *indices, const uint64_t *values, unsigned count)
{
	return msr_all(vcpu_fd, KVM_SET_MSRS, indices, (uint64_t *)values, count);
}

int arch_msrs_get_readable(int vcpu_fd, const uint32_t *indices, unsigned count,
	uint32_t *out_indices, uint64_t *values, unsigned *got)
{
	struct {
		struct kvm_msrs hdr;
		struct kvm_msr_entry entries[MSR_CHUNK];
	} buf;
	unsigned pos = 0, n = 0;

	/* KVM stops at the first MSR it cannot read and returns how many it did: keep
	 * those, skip the failing one, go on. */
	while (pos < count) {
		unsigned chunk = count - pos < MSR_CHUNK ? count - pos : MSR_CHUNK;
		int done;

		memset(&buf, 0, sizeof(buf));
		buf.hdr.nmsrs = chunk;
		for (unsigned i = 0; i < chunk; i++)
			buf.entries[i].index = indices[pos + i];
		done = ioctl(vcpu_fd, KVM_GET_MSRS, &buf);
		if (done < 0)
			return -errno;
		for (int i = 0; i < done; i++) {
			out_indices[n] = buf.entries[i].index;
			values[n++] = buf.entries[i].data;
		}
		pos += (unsigned)done + ((unsigned)done < chunk ? 1 : 0);
	}
	*got = n;
	return 0;
}
