/* Unit tests for boot_tables.c: GDT, IDT, identity page tables and boot registers. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ember/byteorder.h"
#include "ember/guest_mem.h"
#include "ember/layout.h"
#include "ember/x86_boot.h"
#include "guest_mem_fixture.h"

#define MIB (1ULL << 20)

struct fixture {
	struct guest_mem gm;
	char err[256];
};

static int setup(void **state)
{
	*state = mapped_fixture_new(sizeof(struct fixture), 16 * MIB);
	return *state ? 0 : -1;
}

static int teardown(void **state)
{
	mapped_fixture_free(*state);
	return 0;
}

static uint64_t rd64(const struct guest_mem *gm, uint64_t gpa)
{
	const uint8_t *p = guest_mem_ptr(gm, gpa, 8);

	assert_non_null(p);
	return get_le64(p);
}

/* Walk PML4 -> PDPT -> PD as the MMU does for a 2 MiB page; returns the physical address. */
static uint64_t translate(const struct guest_mem *gm, uint64_t cr3, uint64_t va)
{
	uint64_t pml4e = rd64(gm, cr3 + ((va >> 39) & 511) * 8);
	uint64_t pdpte, pde;

	assert_true(pml4e & 1);
	pdpte = rd64(gm, (pml4e & 0x000ffffffffff000ULL) + ((va >> 30) & 511) * 8);
	assert_true(pdpte & 1);
	assert_false(pdpte & 0x80); /* not a 1 GiB page */
	pde = rd64(gm, (pdpte & 0x000ffffffffff000ULL) + ((va >> 21) & 511) * 8);
	assert_true(pde & 1);
	assert_true(pde & 0x80);
	return (pde & 0x000fffffffe00000ULL) | (va & 0x1fffff);
}

static void test_boot_tables_gdt_bytes(void **state)
{
	struct fixture *f = *state;
	static const uint8_t expected[32] = {
		0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0x00, 0x00, 0x00, 0x9b,
		0xaf, 0x00,                                     /* 0x10: code64 */
		0xff, 0xff, 0x00, 0x00, 0x00, 0x93, 0xcf, 0x00, /* 0x18: data */
	};
	uint8_t *gdt = guest_mem_ptr_mut(&f->gm, LAYOUT_GDT, sizeof(expected));

	assert_non_null(gdt);
	memset(gdt, 0xcc, sizeof(expected));
	assert_int_equal(x86_boot_tables_setup(&f->gm), 0);
	assert_memory_equal(gdt, expected, sizeof(expected));
	assert_int_equal(rd64(&f->gm, LAYOUT_GDT + 0x10), 0x00af9b000000ffffULL);
	assert_int_equal(rd64(&f->gm, LAYOUT_GDT + 0x18), 0x00cf93000000ffffULL);
}

static void test_boot_tables_idt_is_empty(void **state)
{
	struct fixture *f = *state;
	uint8_t *idt = guest_mem_ptr_mut(&f->gm, LAYOUT_IDT, 16);
	static const uint8_t zero[16];

	assert_non_null(idt);
	memset(idt, 0xcc, 16);
	assert_int_equal(x86_boot_tables_setup(&f->gm), 0);
	assert_memory_equal(idt, zero, sizeof(zero));
}

static void test_boot_tables_page_table_entries(void **state)
{
	struct fixture *f = *state;

	memset(guest_mem_ptr_mut(&f->gm, LAYOUT_PML4, 0x6000), 0xcc, 0x6000);
	assert_int_equal(x86_boot_tables_setup(&f->gm), 0);

	assert_int_equal(rd64(&f->gm, LAYOUT_PML4), LAYOUT_PDPT | 0x3);
	for (unsigned i = 1; i < 512; i++)
		assert_int_equal(rd64(&f->gm, LAYOUT_PML4 + i * 8), 0);
	for (unsigned i = 0; i < 4; i++)
		assert_int_equal(rd64(&f->gm, LAYOUT_PDPT + i * 8), (LAYOUT_PD + i * 0x1000) | 0x3);
	for (unsigned i = 4; i < 512; i++)
		assert_int_equal(rd64(&f->gm, LAYOUT_PDPT + i * 8), 0);
	/* 4 directories x 512 entries: 2 MiB pages, present | writable | page size. */
	for (uint64_t i = 0; i < 2048; i++)
		assert_int_equal(rd64(&f->gm, LAYOUT_PD + i * 8), (i << 21) | 0x83);
	assert_int_equal(rd64(&f->gm, LAYOUT_PD + 2047 * 8), 0xffe00083ULL);
}

static void test_boot_tables_identity_maps_4gib(void **state)
{
	struct fixture *f = *state;
	static const uint64_t addrs[] = { 0, 0x7000, 0x100200, 0x1234567, 0xbfffffff, 0xc0000000,
		0xd0000000, LAYOUT_IOAPIC, LAYOUT_LAPIC + 0x30, 0xffffffff };

	assert_int_equal(x86_boot_tables_setup(&f->gm), 0);
	for (size_t i = 0; i < sizeof(addrs) / sizeof(addrs[0]); i++)
		assert_int_equal(translate(&f->gm, LAYOUT_PML4, addrs[i]), addrs[i]);
	/* Above 4 GiB nothing is mapped. */
	assert_int_equal(rd64(&f->gm, LAYOUT_PDPT + 4 * 8), 0);
}

static void test_boot_tables_rejects_too_little_memory(void **state)
{
	struct fixture *f = *state;
	struct guest_mem small;

	/* 32 KiB: the GDT fits, the page tables at 0x9000 do not. */
	assert_int_equal(guest_mem_map(&small, 0x8000, GUEST_MEM_ANON, NULL, f->err,
				 sizeof(f->err)),
		0);
	assert_int_equal(x86_boot_tables_setup(&small), -EFAULT);
	guest_mem_unmap(&small);
	/* The last page directory ends at 0xf000. */
	assert_int_equal(guest_mem_map(&small, 0xe000, GUEST_MEM_ANON, NULL, f->err,
				 sizeof(f->err)),
		0);
	assert_int_equal(x86_boot_tables_setup(&small), -EFAULT);
	guest_mem_unmap(&small);
	assert_int_equal(guest_mem_map(&small, 0xf000, GUEST_MEM_ANON, NULL, f->err,
				 sizeof(f->err)),
		0);
	assert_int_equal(x86_boot_tables_setup(&small), 0);
	guest_mem_unmap(&small);
}

/* sregs as KVM_GET_SREGS might return them, with marker values the boot must not touch. */
static void kvm_like_sregs(struct kvm_sregs *s)
{
	memset(s, 0, sizeof(*s));
	s->cs.selector = 0xf000;
	s->cs.base = 0xffff0000;
	s->cs.limit = 0xffff;
	s->cs.type = 11;
	s->cs.present = 1;
	s->cs.s = 1;
	s->tr.type = 11;
	s->tr.present = 1;
	s->tr.limit = 0xffff;
	s->ldt.type = 2;
	s->ldt.present = 1;
	s->ldt.limit = 0xffff;
	s->cr0 = 0x60000010;
	s->cr2 = 0x1234;
	s->apic_base = 0xfee00900;
	s->interrupt_bitmap[0] = 0x55;
}

static void test_boot_tables_regs_enter_long_mode(void **state)
{
	struct kvm_regs regs;
	struct kvm_sregs sregs;

	(void)state;
	memset(&regs, 0xaa, sizeof(regs));
	kvm_like_sregs(&sregs);
	x86_boot_regs(0x100200, &regs, &sregs);

	assert_int_equal(regs.rip, 0x100200);
	assert_int_equal(regs.rsp, LAYOUT_BOOT_STACK);
	assert_int_equal(regs.rsi, LAYOUT_ZERO_PAGE);
	assert_int_equal(regs.rflags, 2);
	assert_int_equal(regs.rax, 0);
	assert_int_equal(regs.rdi, 0);
	assert_int_equal(regs.r15, 0);

	assert_int_equal(sregs.cr0, 0x80050033); /* PG | AM | WP | NE | ET | MP | PE */
	assert_true(sregs.cr0 & 1);
	assert_true(sregs.cr0 & (1ULL << 31));
	assert_false(sregs.cr0 & (3ULL << 29)); /* caches enabled: CD and NW clear */
	assert_int_equal(sregs.cr3, LAYOUT_PML4);
	assert_true(sregs.cr4 & (1ULL << 5)); /* PAE */
	assert_int_equal(sregs.efer, 0x500);  /* LMA | LME */
	assert_int_equal(sregs.gdt.base, LAYOUT_GDT);
	assert_int_equal(sregs.gdt.limit, 31);
	assert_int_equal(sregs.idt.base, LAYOUT_IDT);
	assert_true(sregs.idt.limit < 16);

	/* Untouched: what KVM said about things the boot does not own. */
	assert_int_equal(sregs.cr2, 0x1234);
	assert_int_equal(sregs.apic_base, 0xfee00900);
	assert_int_equal(sregs.interrupt_bitmap[0], 0x55);
	assert_int_equal(sregs.tr.type, 11);
	assert_int_equal(sregs.tr.limit, 0xffff);
	assert_int_equal(sregs.ldt.type, 2);
}

static void expect_flat(const struct kvm_segment *s, uint16_t sel, uint8_t type, uint8_t l,
	uint8_t db)
{
	assert_int_equal(s->selector, sel);
	assert_int_equal(s->base, 0);
	assert_int_equal(s->limit, 0xffffffff);
	assert_int_equal(s->type, type);
	assert_int_equal(s->present, 1);
	assert_int_equal(s->dpl, 0);
	assert_int_equal(s->s, 1);
	assert_int_equal(s->l, l);
	assert_int_equal(s->db, db);
	assert_int_equal(s->g, 1);
	assert_int_equal(s->avl, 0);
	assert_int_equal(s->unusable, 0);
}

static void test_boot_tables_regs_segments(void **state)
{
	struct kvm_regs regs;
	struct kvm_sregs sregs;

	(void)state;
	kvm_like_sregs(&sregs);
	x86_boot_regs(0x1000000, &regs, &sregs);
	expect_flat(&sregs.cs, 0x10, 11, 1, 0);
	expect_flat(&sregs.ds, 0x18, 3, 0, 1);
	expect_flat(&sregs.es, 0x18, 3, 0, 1);
	expect_flat(&sregs.fs, 0x18, 3, 0, 1);
	expect_flat(&sregs.gs, 0x18, 3, 0, 1);
	expect_flat(&sregs.ss, 0x18, 3, 0, 1);
}

/* The hidden segment state and the GDT bytes in guest memory must describe the same thing. */
static void test_boot_tables_segments_match_gdt(void **state)
{
	struct fixture *f = *state;
	const struct kvm_segment *segs[2];
	struct kvm_regs regs;
	struct kvm_sregs sregs;

	assert_int_equal(x86_boot_tables_setup(&f->gm), 0);
	kvm_like_sregs(&sregs);
	x86_boot_regs(0x1000000, &regs, &sregs);
	segs[0] = &sregs.cs;
	segs[1] = &sregs.ss;
	for (unsigned i = 0; i < 2; i++) {
		const struct kvm_segment *s = segs[i];
		uint64_t d;
		uint8_t access, flags;

		assert_true(s->selector + 7u <= sregs.gdt.limit);
		d = rd64(&f->gm, sregs.gdt.base + s->selector);
		access = (uint8_t)(d >> 40);
		flags = (uint8_t)(d >> 52);
		assert_int_equal(access, s->present << 7 | s->dpl << 5 | s->s << 4 | s->type);
		assert_int_equal(flags, s->g << 3 | s->db << 2 | s->l << 1 | s->avl);
		assert_int_equal((d & 0xffff) | ((d >> 32) & 0xf0000), s->limit >> 12);
	}
}

#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_boot_tables_gdt_bytes),
		T(test_boot_tables_idt_is_empty),
		T(test_boot_tables_page_table_entries),
		T(test_boot_tables_identity_maps_4gib),
		T(test_boot_tables_rejects_too_little_memory),
		cmocka_unit_test(test_boot_tables_regs_enter_long_mode),
		cmocka_unit_test(test_boot_tables_regs_segments),
		T(test_boot_tables_segments_match_gdt),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
