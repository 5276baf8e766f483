/* Registers of a vCPU for people: the REPL's vm:regs, and where a triple fault happened. */
#include "ember/arch.h"

#include <errno.h>
#include <stdio.h>
#include <sys/ioctl.h>

#include <linux/kvm.h>

static void put(struct vm_reg *regs, unsigned cap, unsigned *n, const char *name, uint64_t value)
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

void arch_vcpu_where(int vcpu_fd, char *out, size_t len, int used)
{
	struct kvm_regs r;
	struct kvm_sregs s;

	if (used < 0 || (size_t)used >= len || ioctl(vcpu_fd, KVM_GET_REGS, &r) < 0 ||
		ioctl(vcpu_fd, KVM_GET_SREGS, &s) < 0)
		return;
	snprintf(out + used, len - (size_t)used,
		" at rip=0x%llx (cs 0x%x) rsp=0x%llx rflags=0x%llx cr0=0x%llx cr2=0x%llx "
		"cr3=0x%llx cr4=0x%llx efer=0x%llx",
		(unsigned long long)r.rip, s.cs.selector, (unsigned long long)r.rsp,
		(unsigned long long)r.rflags, (unsigned long long)s.cr0, (unsigned long long)s.cr2,
		(unsigned long long)s.cr3, (unsigned long long)s.cr4, (unsigned long long)s.efer);
}
