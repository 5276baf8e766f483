/* x86_64 snapshot state, shared by its files: the items of a vCPU section (state.c) and
 * of the VM section (state_vm.c), and their encoding (state_items.c). */
#ifndef EMBER_ARCH_X86_64_STATE_INTERNAL_H
#define EMBER_ARCH_X86_64_STATE_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

struct snap_cursor;
struct snap_writer;

/* Items of a vCPU section, in save order; each is stored as tag, length, bytes. */
enum item {
	I_MP_STATE = 1, I_REGS, I_SREGS, I_XSAVE, I_XCRS, I_DEBUGREGS, I_LAPIC, I_TSC_KHZ,
	I_CPUID, I_MSRS, I_EVENTS,
	/* VM section */
	I_PIC_MASTER = 100, I_PIC_SLAVE, I_IOAPIC, I_PIT, I_CLOCK,
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

#endif
