/* ember test guest, kernel part: entry, GDT/TSS/IDT, page tables, exception stubs, all static. */

/*
 * Kernel-mode code is emulated on our hosts (~1.5 us per instruction), so everything the
 * CPU needs is laid out at assembly time and ember's ELF loader copies it in: the boot
 * path below is 24 instructions, then the guest runs in user mode (CPL3).
 * Descriptors split their base/offset fields, which only works on absolute values, so
 * the .boot section is linked at a fixed address (guest.ld asserts it) and every
 * descriptor target in it sits at a fixed offset (.org).
 */

#define BOOT_BASE	0x100000	/* .boot is linked here */
#define GDT_OFF		0x080
#define TSS_OFF		0x100
#define IDT_OFF		0x200
#define STUBS_OFF	0x400
#define STUB_SIZE	16
#define NVEC		32		/* exceptions only: interrupts stay off (IF=0) */

#define TSS_ADDR	(BOOT_BASE + TSS_OFF)
#define TSS_SIZE	104
#define IOMAP_PORTS	0x400		/* user mode may use ports 0-0x3ff, bitmap all zeros */
#define TSS_LIMIT	(TSS_SIZE + IOMAP_PORTS / 8)	/* bitmap plus its 0xff terminator byte */
#define STUBS_ADDR	(BOOT_BASE + STUBS_OFF)

/* Selectors: kernel code/data keep ember's boot values, so CS/SS need no reload. */
#define SEL_KCODE	0x10
#define SEL_UDATA	(0x20 | 3)
#define SEL_UCODE	(0x28 | 3)
#define SEL_TSS		0x30

#define CR4_SMEP	(1 << 20)	/* kernel part runs on user pages: must be off */
#define CR4_SMAP	(1 << 21)
#define CR4_OSFXSR	(1 << 9)	/* ldmxcsr/stmxcsr raise #UD without it */
#define USER_RFLAGS	0x3002		/* IOPL=3, IF=0 (see the TSS for why IOPL is not enough) */

/* int3 (#BP) is the user part's way to run CPUID at CPL0, where kvm_pvm gives the VM's
 * CPUID rather than the host's: its stub runs cpuid and returns. */
#define VEC_CPUID	3

/* Vectors whose exceptions push an error code: 8, 10-14, 17, 21, 29, 30. */
#define ERRCODE_MASK	0x60227d00

/* Page table entry flags. */
#define PTE_P		0x01
#define PTE_RW		0x02
#define PTE_US		0x04
#define PTE_PWT		0x08
#define PTE_PCD		0x10
#define PTE_PS		0x80
#define PTE_TABLE	(PTE_P | PTE_RW | PTE_US)
#define PDE_RAM		(PTE_P | PTE_RW | PTE_US | PTE_PS)
#define PDE_MMIO	(PDE_RAM | PTE_PWT | PTE_PCD)
#define MMIO_GAP_PDE	1536		/* 3 GiB / 2 MiB: the MMIO gap is mapped uncached */

	.section .boot, "ax"
	.code64
	.globl _start
_start:	/* RSI = zero page (kept for user_main), interrupts off, ember's boot GDT and map */
	lgdt	gdt_ptr(%rip)
	lidt	idt_ptr(%rip)
	mov	$SEL_TSS, %eax
	ltr	%ax
	mov	%cr4, %rax
	and	$~(CR4_SMEP | CR4_SMAP), %rax
	or	$CR4_OSFXSR, %rax
	mov	%rax, %cr4
	jmp	mxcsr_at_cpl0			/* in .text: .boot has no room left */
mxcsr_done:
	mov	$pml4, %eax
	mov	%rax, %cr3
	/* CPUID is virtualized only at CPL0 here (kvm_pvm lets user mode run the host's
	 * CPUID), so read what user mode needs now: leaf 1 EBX, leaf 0x40000000 EBX/ECX/EDX. */
	mov	$1, %eax
	cpuid
	mov	%ebx, boot_cpuid(%rip)
	mov	$0x40000000, %eax
	cpuid
	mov	%ebx, boot_cpuid + 4(%rip)
	mov	%ecx, boot_cpuid + 8(%rip)
	mov	%edx, boot_cpuid + 12(%rip)
	mov	%rsi, %rdi			/* user_entry passes it on to user_main */
	pushq	$SEL_UDATA			/* iretq frame: SS, RSP, RFLAGS, CS, RIP */
	pushq	$user_stack_top
	pushq	$USER_RFLAGS
	pushq	$SEL_UCODE
	pushq	$user_entry
	iretq

	.org	GDT_OFF
gdt:
	.quad	0			/* 0x00 null */
	.quad	0			/* 0x08 unused */
	.quad	0x00af9b000000ffff	/* 0x10 kernel code, 64-bit */
	.quad	0x00cf93000000ffff	/* 0x18 kernel data */
	.quad	0x00cff3000000ffff	/* 0x20 user data, DPL 3 */
	.quad	0x00affb000000ffff	/* 0x28 user code, 64-bit, DPL 3 */
	.word	TSS_LIMIT		/* 0x30 64-bit TSS, 16 bytes */
	.word	TSS_ADDR & 0xffff
	.byte	(TSS_ADDR >> 16) & 0xff
	.byte	0x89			/* present, DPL 0, available 64-bit TSS */
	.byte	0
	.byte	(TSS_ADDR >> 24) & 0xff
	.long	TSS_ADDR >> 32
	.long	0
gdt_end:
gdt_ptr:
	.word	gdt_end - gdt - 1
	.quad	gdt
idt_ptr:
	.word	NVEC * 16 - 1
	.quad	idt

	.org	TSS_OFF
tss:
	.long	0
	.quad	kernel_stack_top	/* RSP0: exceptions from user mode switch here */
	.quad	0, 0, 0			/* RSP1, RSP2, reserved */
	.quad	0, 0, 0, 0, 0, 0, 0	/* IST1-7 */
	.quad	0
	.word	0
	.word	TSS_SIZE		/* I/O permission bitmap follows */
	/*
	 * On kvm_pvm, user mode entered through our iretq runs with IOPL=0 whatever the
	 * frame says (a fault frame shows RFLAGS=0x10002), but the emulator that serves
	 * user-mode IN/OUT honours the TSS I/O bitmap, as hardware does: a clear bit lets
	 * CPL3 use that port. So user mode gets ports 0-0x3ff here, on any host.
	 */
	.fill	IOMAP_PORTS / 8, 1, 0
	.byte	0xff

	.org	IDT_OFF
idt:	/* interrupt gates (IF stays clear) to the stub of each vector */
	.set	vec, 0
	.rept	NVEC
	.word	(STUBS_ADDR + vec * STUB_SIZE) & 0xffff
	.word	SEL_KCODE
	.byte	0
	.if	vec == VEC_CPUID
	.byte	0xee			/* present, DPL 3: user mode's int3 reaches it */
	.else
	.byte	0x8e			/* present, DPL 0, 64-bit interrupt gate */
	.endif
	.word	((STUBS_ADDR + vec * STUB_SIZE) >> 16) & 0xffff
	.long	(STUBS_ADDR + vec * STUB_SIZE) >> 32
	.long	0
	.set	vec, vec + 1
	.endr

	/* One stub per vector: make the frame uniform (vec, err, rip, cs, rflags, rsp, ss). */
	.set	vec, 0
	.rept	NVEC
	.org	STUBS_OFF + vec * STUB_SIZE
	.if	vec == VEC_CPUID
	cpuid				/* EAX/ECX in, EAX-EDX out, at CPL0 where it is the VM's */
	iretq
	.else
	.if	((1 << vec) & ERRCODE_MASK) == 0
	pushq	$0
	.endif
	pushq	$vec
	jmp	fault_common
	.endif
	.set	vec, vec + 1
	.endr

fault_common:
	mov	%rsp, %rdi
	and	$-16, %rsp
	call	fault_report		/* prints the FAULT line and powers off */
1:	cli
	hlt
	jmp	1b

	.text
user_entry:	/* CPL3 from here on; RDI = zero page */
	call	user_main
1:	pause				/* a port read now and then: see wait_turn in guest.h */
	inb	$0x3fd, %al			/* the serial line status register */
	jmp	1b

/*
 * Identity map of the first 4 GiB in 2 MiB pages, all user-accessible (the user part
 * does everything, including MMIO), built by the assembler: zero kernel instructions.
 * Everything above 4 GiB is unmapped (the `fault` command relies on it).
 */
	.section .pagetables, "aw"
	.balign	4096
pml4:
	.quad	pdpt + PTE_TABLE
	.fill	511, 8, 0
pdpt:
	.quad	pd + 0x0000 + PTE_TABLE
	.quad	pd + 0x1000 + PTE_TABLE
	.quad	pd + 0x2000 + PTE_TABLE
	.quad	pd + 0x3000 + PTE_TABLE
	.fill	508, 8, 0
pd:
	.set	i, 0
	.rept	2048
	.if	i < MMIO_GAP_PDE
	.quad	(i << 21) | PDE_RAM
	.else
	.quad	(i << 21) | PDE_MMIO
	.endif
	.set	i, i + 1
	.endr

	.text
	/* MXCSR at CPL0, which kvm_pvm's emulator cannot do (ember serves ldmxcsr/stmxcsr
	 * there): the value at entry, a probe value loaded through a base register and read
	 * back with a displacement, then the reset value again. User mode reports them. */
mxcsr_at_cpl0:
	stmxcsr	boot_mxcsr(%rip)
	lea	mxcsr_probe(%rip), %rbx
	ldmxcsr	(%rbx)
	lea	boot_mxcsr(%rip), %rcx
	stmxcsr	4(%rcx)
	ldmxcsr	mxcsr_reset(%rip)
	jmp	mxcsr_done

	.section .rodata
	.balign	4
mxcsr_probe:
	.long	0x7f80				/* all exceptions masked, round toward zero */
mxcsr_reset:
	.long	0x1f80

	.bss
	.balign	16
	.globl	boot_cpuid
boot_cpuid:
	.skip	16
	.globl	boot_mxcsr
boot_mxcsr:					/* at entry, probe read back */
	.skip	8
kernel_stack:
	.skip	16384
kernel_stack_top:
user_stack:
	.skip	65536
user_stack_top:

	.section .note.GNU-stack, "", @progbits
