/* A VM's memory hotplug area at run time: the requested size and the status, through the
 * virtio-mem device (PATCH and GET /hotplug/memory, vm:hotplug_memory()). */
#include "vm_internal.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "ember/virtio.h"
#include "ember/virtio_mem.h"

/* The running or paused VM's virtio-mem device, or NULL with the reason. */
static struct virtio_dev *live_mem(const struct vm *vm, char *err, size_t errlen)
{
	if (vm->state != VM_RUNNING && vm->state != VM_PAUSED) {
		snprintf(err, errlen, "memory hotplug: the vm is %s", vm_state_name(vm->state));
		return NULL;
	}
	for (unsigned i = 0; i < vm->nr_virtio; i++)
		if (!strcmp(virtio_kind(vm->virtio[i]), "mem"))
			return vm->virtio[i];
	snprintf(err, errlen, "memory hotplug: the vm has no hotplug area");
	return NULL;
}

int vm_mem_hotplug_set(struct vm *vm, uint32_t requested_mib, char *err, size_t errlen)
{
	struct virtio_dev *vd;
	int ret = -ENODEV;

	dev_thread_lock(&vm->devs);
	vd = live_mem(vm, err, errlen);
	if (vd)
		ret = virtio_mem_set_requested(vd, requested_mib);
	if (ret == -EINVAL)
		snprintf(err, errlen,
			"Size %llu is invalid: it must be a multiple of block size and less than "
			"the total size",
			(unsigned long long)requested_mib << 20);
	if (ret == -EAGAIN)
		snprintf(err, errlen, "Device is not active");
	dev_thread_unlock(&vm->devs);
	return ret;
}

int vm_mem_hotplug_dirty_log(struct vm *vm, unsigned long *bitmap, char *err, size_t errlen)
{
	for (unsigned i = 0; i < vm->nr_virtio; i++)
		if (!strcmp(virtio_kind(vm->virtio[i]), "mem"))
			return virtio_mem_dirty_log(vm->virtio[i], bitmap, err, errlen);
	return 0;
}

int vm_mem_hotplug_status(struct vm *vm, struct mem_hotplug_status *out, char *err, size_t errlen)
{
	struct virtio_dev *vd;

	dev_thread_lock(&vm->devs);
	vd = live_mem(vm, err, errlen);
	if (vd)
		virtio_mem_status(vd, out);
	dev_thread_unlock(&vm->devs);
	return vd ? 0 : -ENODEV;
}
