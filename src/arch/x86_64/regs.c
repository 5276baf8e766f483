/* Registers of a parked vCPU for people (the REPL's vm:regs): general, control, segments. */
#include "ember/arch.h"

#include <errno.h>
#include <sys/ioctl.h>

#include <linux/kvm.h>

#include "ember/vm.h"

static void put(struct vm_reg *regs, unsigned cap, unsigned *n, const char *name,
	uint64_t value)
{
	if (*n < cap)
		regs[*n] = (struct vm_reg){ .name = name, .value = value };
	(*n)++;
}

int arch_vcpu_regs(int vcpu_fd, struct vm_reg *regs, unsigned cap, unsigned *count)
{
	struct kvm_regs r;
	struct kvm_sregs s;
	unsigned n = 0;

	if (ioctl(vcpu_fd, KVM_GET_REGS, &r) < 0 || ioctl(vcpu_fd, KVM_GET_SREGS, &s) < 0)
		return -errno;
	put(regs, cap, &n, "rax", r.rax);
	put(regs, cap, &n, "rbx", r.rbx);
	put(regs, cap, &n, "rcx", r.rcx);
	put(regs, cap, &n, "rdx", r.rdx);
	put(regs, cap, &n, "rsi", r.rsi);
	put(regs, cap, &n, "rdi", r.rdi);
	put(regs, cap, &n, "rbp", r.rbp);
	put(regs, cap, &n, "rsp", r.rsp);
	put(regs, cap, &n, "r8", r.r8);
	put(regs, cap, &n, "r9", r.r9);
	put(regs, cap, &n, "r10", r.r10);
	put(regs, cap, &n, "r11", r.r11);
	put(regs, cap, &n, "r12", r.r12);
	put(regs, cap, &n, "r13", r.r13);
	put(regs, cap, &n, "r14", r.r14);
	put(regs, cap, &n, "r15", r.r15);
	put(regs, cap, &n, "rip", r.rip);
	put(regs, cap, &n, "rflags", r.rflags);
	put(regs, cap, &n, "cr0", s.cr0);
	put(regs, cap, &n, "cr2", s.cr2);
	put(regs, cap, &n, "cr3", s.cr3);
	put(regs, cap, &n, "cr4", s.cr4);
	put(regs, cap, &n, "cr8", s.cr8);
	put(regs, cap, &n, "efer", s.efer);
	put(regs, cap, &n, "cs", s.cs.selector);
	put(regs, cap, &n, "ds", s.ds.selector);
	put(regs, cap, &n, "es", s.es.selector);
	put(regs, cap, &n, "fs", s.fs.selector);
	put(regs, cap, &n, "gs", s.gs.selector);
	put(regs, cap, &n, "ss", s.ss.selector);
	put(regs, cap, &n, "tr", s.tr.selector);
	put(regs, cap, &n, "fs_base", s.fs.base);
	put(regs, cap, &n, "gs_base", s.gs.base);
	*count = n;
	return n > cap ? -E2BIG : 0;
}
