/* x86_64 boot GDT, empty IDT, identity page tables and the boot vCPU's long-mode registers. */
#include "ember/x86_boot.h"

#include <errno.h>
#include <string.h>

#include "boot_params.h"
#include "ember/guest_mem.h"
#include "ember/layout.h"

#define PAGE_SIZE 4096
#define PTE_PRESENT (1ULL << 0)
#define PTE_RW (1ULL << 1)
#define PTE_PS (1ULL << 7) /* in a page directory entry: a 2 MiB page */
#define PD_COUNT 4         /* four page directories of 512 x 2 MiB: 4 GiB */
#define PD_ENTRIES 512
#define HUGE_2M (2ULL << 20)

#define SEL_CODE 0x10
#define SEL_DATA 0x18
/* Flat 64-bit code (L=1, D=0, G=1, P, DPL 0, execute/read accessed) and flat data (DB=1,
 * G=1, P, DPL 0, read/write accessed), base 0, limit 0xfffff pages. */
#define DESC_CODE64 0x00af9b000000ffffULL
#define DESC_DATA 0x00cf93000000ffffULL
#define GDT_ENTRIES 4
#define IDT_BYTES 16 /* one zeroed long-mode gate: "no handlers" until the kernel loads its own */

#define CR0_PE (1ULL << 0)
#define CR0_MP (1ULL << 1)
#define CR0_ET (1ULL << 4)
#define CR0_NE (1ULL << 5)
#define CR0_WP (1ULL << 16)
#define CR0_AM (1ULL << 18)
#define CR0_PG (1ULL << 31)
#define CR4_PAE (1ULL << 5)
#define EFER_LME (1ULL << 8)
#define EFER_LMA (1ULL << 10)
#define RFLAGS_RESERVED (1ULL << 1)

static const uint64_t gdt[GDT_ENTRIES] = { 0, 0, DESC_CODE64, DESC_DATA };

int x86_boot_tables_setup(struct guest_mem *gm)
{
	uint8_t page[PAGE_SIZE];

	memset(page, 0, sizeof(page));
	for (unsigned i = 0; i < GDT_ENTRIES; i++)
		put_le64(page + i * 8, gdt[i]);
	if (guest_mem_write(gm, LAYOUT_GDT, page, GDT_ENTRIES * 8))
		return -EFAULT;
	memset(page, 0, sizeof(page));
	if (guest_mem_write(gm, LAYOUT_IDT, page, IDT_BYTES))
		return -EFAULT;

	put_le64(page, LAYOUT_PDPT | PTE_PRESENT | PTE_RW);
	if (guest_mem_write(gm, LAYOUT_PML4, page, sizeof(page)))
		return -EFAULT;
	memset(page, 0, sizeof(page));
	for (unsigned i = 0; i < PD_COUNT; i++)
		put_le64(page + i * 8, (LAYOUT_PD + i * PAGE_SIZE) | PTE_PRESENT | PTE_RW);
	if (guest_mem_write(gm, LAYOUT_PDPT, page, sizeof(page)))
		return -EFAULT;
	for (unsigned pd = 0; pd < PD_COUNT; pd++) {
		for (unsigned i = 0; i < PD_ENTRIES; i++) {
			uint64_t addr = ((uint64_t)pd * PD_ENTRIES + i) * HUGE_2M;

			put_le64(page + i * 8, addr | PTE_PRESENT | PTE_RW | PTE_PS);
		}
		if (guest_mem_write(gm, LAYOUT_PD + pd * PAGE_SIZE, page, sizeof(page)))
			return -EFAULT;
	}
	return 0;
}

/* The hidden part of a segment register, decoded from the descriptor the GDT holds, so the
 * two cannot disagree. */
static struct kvm_segment segment(uint64_t desc, uint16_t selector)
{
	uint32_t limit = (uint32_t)((desc & 0xffff) | ((desc >> 32) & 0xf0000));
	struct kvm_segment s;

	memset(&s, 0, sizeof(s));
	s.base = ((desc >> 16) & 0xffffff) | ((desc >> 32) & 0xff000000);
	s.selector = selector;
	s.type = (uint8_t)((desc >> 40) & 0xf);
	s.s = (uint8_t)((desc >> 44) & 1);
	s.dpl = (uint8_t)((desc >> 45) & 3);
	s.present = (uint8_t)((desc >> 47) & 1);
	s.avl = (uint8_t)((desc >> 52) & 1);
	s.l = (uint8_t)((desc >> 53) & 1);
	s.db = (uint8_t)((desc >> 54) & 1);
	s.g = (uint8_t)((desc >> 55) & 1);
	/* KVM takes the limit in bytes: with G set it counts 4 KiB pages. */
	s.limit = s.g ? (limit << 12) | 0xfff : limit;
	return s;
}

void x86_boot_regs(uint64_t entry, struct kvm_regs *regs, struct kvm_sregs *sregs)
{
	struct kvm_segment data = segment(DESC_DATA, SEL_DATA);

	memset(regs, 0, sizeof(*regs));
	regs->rflags = RFLAGS_RESERVED;
	regs->rip = entry;
	regs->rsp = LAYOUT_BOOT_STACK;
	regs->rsi = LAYOUT_ZERO_PAGE;

	sregs->cs = segment(DESC_CODE64, SEL_CODE);
	sregs->ds = data;
	sregs->es = data;
	sregs->fs = data;
	sregs->gs = data;
	sregs->ss = data;
	sregs->gdt.base = LAYOUT_GDT;
	sregs->gdt.limit = GDT_ENTRIES * 8 - 1;
	sregs->idt.base = LAYOUT_IDT;
	sregs->idt.limit = IDT_BYTES - 1;
	/* Caches on (CD and NW clear), write protection and FPU error reporting as Linux
	 * expects them; the kernel rewrites CR0 and CR4 itself soon after. */
	sregs->cr0 = CR0_PE | CR0_MP | CR0_ET | CR0_NE | CR0_WP | CR0_AM | CR0_PG;
	sregs->cr3 = LAYOUT_PML4;
	sregs->cr4 = CR4_PAE;
	sregs->efer = EFER_LME | EFER_LMA;
}
