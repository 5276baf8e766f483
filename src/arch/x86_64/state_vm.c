/* x86_64 snapshot state of the VM as a whole: PIC master and slave, IOAPIC, PIT and
 * kvmclock (the VM section). */
#include "ember/arch.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>

#include <linux/kvm.h>

#include "ember/snapshot_file.h"
#include "state_internal.h"

int arch_vm_save(int vm_fd, struct snap_writer *w, char *err, size_t errlen)
{
	struct kvm_irqchip chips[3];
	struct kvm_pit_state2 pit;
	struct kvm_clock_data clock;
	int ret = 0;

	for (unsigned i = 0; i < 3; i++) {
		memset(&chips[i], 0, sizeof(chips[i]));
		chips[i].chip_id = i; /* KVM_IRQCHIP_PIC_MASTER, _SLAVE, _IOAPIC */
		if (ioctl(vm_fd, KVM_GET_IRQCHIP, &chips[i]) < 0) {
			snprintf(err, errlen, "KVM_GET_IRQCHIP %s: %s",
				state_item_name(I_PIC_MASTER + i), strerror(errno));
			return -errno;
		}
	}
	if (ioctl(vm_fd, KVM_GET_PIT2, &pit) < 0 || ioctl(vm_fd, KVM_GET_CLOCK, &clock) < 0) {
		snprintf(err, errlen, "KVM_GET_PIT2/KVM_GET_CLOCK: %s", strerror(errno));
		return -errno;
	}
	for (unsigned i = 0; !ret && i < 3; i++)
		ret = state_put_item(w, I_PIC_MASTER + i, &chips[i], sizeof(chips[i]));
	if (!ret)
		ret = state_put_item(w, I_PIT, &pit, sizeof(pit));
	if (!ret)
		ret = state_put_item(w, I_CLOCK, &clock, sizeof(clock));
	return ret;
}

int arch_vm_restore(int vm_fd, struct snap_cursor *c, bool realtime, char *err, size_t errlen)
{
	struct vm_image img;
	int ret = state_vm_parse(c, &img, err, errlen);

	if (ret)
		return ret;
	/* By default kvmclock resumes where it stopped (Firecracker's default). With
	 * realtime it advances by the wall time elapsed since the snapshot. */
	if (realtime && !(img.clock.flags & KVM_CLOCK_REALTIME)) {
		/* KVM_GET_CLOCK stamps realtime only on Linux 5.16 or later and only while the
		 * host's clocksource is the TSC (KVM's master clock): a sandbox or a VM host on
		 * another clocksource gives none. */
		snprintf(err, errlen,
			"clock_realtime: the snapshot's clock has no realtime stamp "
			"(KVM gives one only when the snapshotting host's clocksource is the TSC, "
			"Linux 5.16 or later)");
		return -EINVAL;
	}
	img.clock.flags = realtime ? KVM_CLOCK_REALTIME : 0;
	if (ioctl(vm_fd, KVM_SET_PIT2, &img.pit) < 0 ||
		ioctl(vm_fd, KVM_SET_CLOCK, &img.clock) < 0) {
		snprintf(err, errlen, "KVM_SET_PIT2/KVM_SET_CLOCK: %s", strerror(errno));
		return -errno;
	}
	for (unsigned i = 0; i < 3; i++) {
		if (ioctl(vm_fd, KVM_SET_IRQCHIP, &img.chips[i]) < 0) {
			snprintf(err, errlen, "KVM_SET_IRQCHIP %s: %s",
				state_item_name(I_PIC_MASTER + i), strerror(errno));
			return -errno;
		}
	}
	return 0;
}
