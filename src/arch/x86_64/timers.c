/* The VM's PIT, created beside the rest of the build. KVM_CREATE_PIT2 makes the PIT's
 * kernel worker thread and waits until the scheduler has run it: 0.1 ms on a quiet host,
 * 1-5 ms on a busy one (strace of restores on the shared development machine), the
 * largest single step of a restore. KVM holds the VM's lock meanwhile, which creating a
 * vCPU takes too, so the PIT is made after the vCPUs, on a helper thread, while the
 * control thread sets their state; KVM lets the PIT come after the vCPUs (QEMU makes
 * its i8254 after its CPUs). */
#include "ember/arch.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include <linux/kvm.h>

struct arch_vm_timers {
	pthread_t tid;
	int vm_fd;
	int ret; /* the ioctl's -errno, read after the join */
};

static int create_pit(int vm_fd)
{
	struct kvm_pit_config pit = { .flags = KVM_PIT_SPEAKER_DUMMY };

	return ioctl(vm_fd, KVM_CREATE_PIT2, &pit) < 0 ? -errno : 0;
}

static void *run(void *arg)
{
	struct arch_vm_timers *t = arg;

	t->ret = create_pit(t->vm_fd);
	return NULL;
}

int arch_vm_timers_start(int vm_fd, struct arch_vm_timers **out, char *err, size_t errlen)
{
	struct arch_vm_timers *t = calloc(1, sizeof(*t));
	sigset_t all, old;
	int ret;

	*out = NULL;
	if (t) {
		t->vm_fd = vm_fd;
		/* No signal is ever handled on it: the control thread's stay with it. */
		sigfillset(&all);
		pthread_sigmask(SIG_SETMASK, &all, &old);
		ret = pthread_create(&t->tid, NULL, run, t);
		pthread_sigmask(SIG_SETMASK, &old, NULL);
		if (!ret) {
			*out = t;
			return 0;
		}
		free(t);
	}
	/* No helper: the same ioctl here, only without the overlap. */
	ret = create_pit(vm_fd);
	if (ret)
		snprintf(err, errlen, "KVM_CREATE_PIT2: %s", strerror(-ret));
	return ret;
}

int arch_vm_timers_wait(struct arch_vm_timers **pt, char *err, size_t errlen)
{
	struct arch_vm_timers *t = *pt;
	int ret;

	if (!t)
		return 0;
	pthread_join(t->tid, NULL);
	ret = t->ret;
	free(t);
	*pt = NULL;
	if (ret)
		snprintf(err, errlen, "KVM_CREATE_PIT2: %s", strerror(-ret));
	return ret;
}
