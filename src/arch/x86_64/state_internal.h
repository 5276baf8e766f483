/* x86_64 snapshot state, shared by its files: the items of a vCPU section (state.c) and
 * of the VM section (state_vm.c), and their encoding (state_items.c). */
#ifndef EMBER_ARCH_X86_64_STATE_INTERNAL_H
#define EMBER_ARCH_X86_64_STATE_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <linux/kvm.h>

struct snap_cursor;
struct snap_writer;

#define STATE_MSRS_MAX 1024 /* MSRs in a vCPU section, at most */
#define STATE_MSR_ENTRY 12  /* u32 index, u64 value */

/* Items of a vCPU section, in save order; each is stored as tag, length, bytes. */
enum item {
	I_MP_STATE = 1,
	I_REGS,
	I_SREGS,
	I_XSAVE,
	I_XCRS,
	I_DEBUGREGS,
	I_LAPIC,
	I_TSC_KHZ,
	I_CPUID,
	I_MSRS,
	I_EVENTS,
	/* VM section */
	I_PIC_MASTER = 100,
	I_PIC_SLAVE,
	I_IOAPIC,
	I_PIT,
	I_CLOCK,
};

/* The item's name for messages ("lapic", "pic slave"); "?" for an unknown tag. */
const char *state_item_name(unsigned tag);

/* Append one item: tag, length, bytes. 0 or -errno (the writer's). */
__attribute__((warn_unused_result)) int state_put_item(struct snap_writer *w, unsigned tag,
	const void *data, size_t len);

/* The next item must carry `tag`: its bytes (inside the state image, unaligned) and length,
 * the cursor moved past it. -EINVAL with err naming the item otherwise. */
__attribute__((warn_unused_result)) int state_get_item(struct snap_cursor *c, unsigned tag,
	const void **data, uint32_t *len, char *err, size_t errlen);

/* The next item, `tag`, exactly `size` bytes, copied into `out` (a KVM struct). */
__attribute__((warn_unused_result)) int state_get_fixed(struct snap_cursor *c, unsigned tag,
	void *out, size_t size, char *err, size_t errlen);

/* A vCPU section read and checked, nothing applied yet (no KVM). The KVM structs are
 * copies; xsave and msrs point into the state file image (unaligned: memcpy them), cpuid
 * is a heap copy. Every length and count has been checked against the item's size. */
struct vcpu_image {
	unsigned index;
	struct kvm_mp_state mp;
	struct kvm_regs regs;
	struct kvm_sregs sregs;
	const void *xsave;
	uint32_t xsave_len; /* at least sizeof(struct kvm_xsave) */
	struct kvm_xcrs xcrs;
	struct kvm_debugregs dregs;
	struct kvm_lapic_state lapic;
	uint32_t tsc_khz; /* 0: not known when saved */
	struct kvm_cpuid2 *cpuid;
	const uint8_t *msrs; /* nr_msrs entries of STATE_MSR_ENTRY bytes */
	uint32_t nr_msrs;
	struct kvm_vcpu_events events;
};

/* Read vCPU `index`'s section from `c` into `img`. 0, or -EINVAL / -ENOMEM with err naming
 * the item; on failure nothing is left to free. Free a parsed image with
 * state_vcpu_image_free. */
__attribute__((warn_unused_result)) int state_vcpu_parse(struct snap_cursor *c, unsigned index,
	struct vcpu_image *img, char *err, size_t errlen);
void state_vcpu_image_free(struct vcpu_image *img);

/* The VM section: PIC master and slave, IOAPIC (each with its own chip id), PIT, clock. */
struct vm_image {
	struct kvm_irqchip chips[3];
	struct kvm_pit_state2 pit;
	struct kvm_clock_data clock;
};
__attribute__((warn_unused_result)) int state_vm_parse(struct snap_cursor *c, struct vm_image *img,
	char *err, size_t errlen);

#endif
