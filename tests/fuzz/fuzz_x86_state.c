/* libFuzzer harness for the x86_64 state sections of a state file (state_parse.c): the
 * first input byte picks the section (even: vCPU 0's, odd: the VM's), the rest is its
 * payload. `make fuzz` builds it; `make fuzz-seeds` rewrites its seeds.
 * An accepted vCPU section has every KVM struct at its exact size, an xsave area of
 * 4 KiB to 64 KiB and MSR entries inside the payload, a CPUID of at most
 * CPUID_MAX_ENTRIES entries; restore's early check (arch_state_check) then refuses it
 * only for the reasons it names: another CPU vendor, no leaf 0, or (a state file of one
 * section) no VM section. An accepted VM section has its three irqchips in order. Every
 * refusal says why, starting "state file: ". Any violation traps. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ember/arch.h"
#include "ember/cpuid.h"
#include "ember/snapshot_file.h"

#include "../../src/arch/x86_64/state_internal.h"
#include "fuzz.h"
#include "one_section.h"

#define HOST "GenuineIntel"

/* [p, p + len) lies inside the section's payload (the reader's copy of it). */
static bool inside(const void *p, size_t len, const struct snap_cursor *section)
{
	return (const uint8_t *)p >= section->p &&
		(const uint8_t *)p + len <= section->p + section->left;
}

static void check_vcpu(const struct snap_reader *r)
{
	struct snap_cursor c, whole;
	struct vcpu_image img;
	char err[512] = "", vendor[13];
	bool has_vendor;
	int ret;

	CHECK(snap_reader_find(r, SNAP_SEC_VCPU, 0, &c) == 0);
	whole = c;
	ret = state_vcpu_parse(&c, 0, &img, err, sizeof(err));
	if (ret) {
		CHECK(ret == -ENOMEM || strncmp(err, "state file: ", 12) == 0);
		CHECK(img.cpuid == NULL);
		return;
	}
	CHECK(img.xsave_len >= sizeof(struct kvm_xsave) && img.xsave_len <= 64u << 10);
	CHECK(inside(img.xsave, img.xsave_len, &whole));
	CHECK(img.nr_msrs <= STATE_MSRS_MAX);
	CHECK(inside(img.msrs, (size_t)img.nr_msrs * STATE_MSR_ENTRY, &whole));
	CHECK(img.cpuid && img.cpuid->nent <= CPUID_MAX_ENTRIES);
	has_vendor = cpuid_vendor(img.cpuid, vendor);
	state_vcpu_image_free(&img);
	err[0] = '\0';
	CHECK(arch_state_check(r, 1, HOST, err, sizeof(err)) == -EINVAL);
	if (!has_vendor)
		CHECK(strstr(err, "no leaf 0") != NULL);
	else if (strcmp(vendor, HOST) != 0)
		CHECK(strstr(err, "differs from this host's") != NULL);
	else
		CHECK(strcmp(err, "state file: no vm state section") == 0);
}

static void check_vm(const struct snap_reader *r)
{
	struct snap_cursor c;
	struct vm_image img;
	char err[512] = "";

	CHECK(snap_reader_find(r, SNAP_SEC_VM_STATE, 0, &c) == 0);
	if (state_vm_parse(&c, &img, err, sizeof(err)) != 0) {
		CHECK(strncmp(err, "state file: ", 12) == 0);
		return;
	}
	for (unsigned i = 0; i < 3; i++)
		CHECK(img.chips[i].chip_id == i);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	bool vm;
	struct snap_reader *r;

	if (size < 1)
		return 0;
	vm = data[0] & 1;
	r = fuzz_one_section(vm ? SNAP_SEC_VM_STATE : SNAP_SEC_VCPU, 1, data + 1, size - 1);
	if (!r)
		return 0;
	if (vm)
		check_vm(r);
	else
		check_vcpu(r);
	snap_reader_free(r);
	return 0;
}

#ifdef FUZZ_SEED_MAIN
static int put_zero(struct snap_writer *w, unsigned tag, size_t len)
{
	void *zero = calloc(1, len);
	int ret = zero ? state_put_item(w, tag, zero, len) : -1;

	free(zero);
	return ret;
}

/* vCPU 0 as arch_vcpu_save lays it out, zeroed but for CPUID leaf 0 (`vendor`) and two
 * MSRs. */
static int vcpu_section(const void *vendor, struct snap_writer *w)
{
	struct {
		struct kvm_cpuid2 head;
		struct kvm_cpuid_entry2 e[1];
	} cpuid = { .head.nent = 1 };
	uint8_t msrs[4 + 2 * STATE_MSR_ENTRY] = { 2, 0, 0, 0, 0x10, 0, 0, 0 };

	memcpy(&cpuid.e[0].ebx, vendor, 4);
	memcpy(&cpuid.e[0].edx, (const char *)vendor + 4, 4);
	memcpy(&cpuid.e[0].ecx, (const char *)vendor + 8, 4);
	return snap_section_begin(w, SNAP_SEC_VCPU, 1) || snap_put_u32(w, 0) ||
			put_zero(w, I_MP_STATE, sizeof(struct kvm_mp_state)) ||
			put_zero(w, I_REGS, sizeof(struct kvm_regs)) ||
			put_zero(w, I_SREGS, sizeof(struct kvm_sregs)) ||
			put_zero(w, I_XSAVE, sizeof(struct kvm_xsave)) ||
			put_zero(w, I_XCRS, sizeof(struct kvm_xcrs)) ||
			put_zero(w, I_DEBUGREGS, sizeof(struct kvm_debugregs)) ||
			put_zero(w, I_LAPIC, sizeof(struct kvm_lapic_state)) ||
			put_zero(w, I_TSC_KHZ, 4) ||
			state_put_item(w, I_CPUID, &cpuid, sizeof(cpuid)) ||
			state_put_item(w, I_MSRS, msrs, sizeof(msrs)) ||
			put_zero(w, I_EVENTS, sizeof(struct kvm_vcpu_events)) || snap_section_end(w)
		? -1
		: 0;
}

static int vm_section(const void *unused, struct snap_writer *w)
{
	int ret = snap_section_begin(w, SNAP_SEC_VM_STATE, 1);

	(void)unused;
	for (unsigned i = 0; !ret && i < 3; i++) {
		struct kvm_irqchip chip = { .chip_id = i };
		ret = state_put_item(w, I_PIC_MASTER + i, &chip, sizeof(chip));
	}
	return ret || put_zero(w, I_PIT, sizeof(struct kvm_pit_state2)) ||
			put_zero(w, I_CLOCK, sizeof(struct kvm_clock_data)) || snap_section_end(w)
		? -1
		: 0;
}

int main(int argc, char **argv)
{
	const uint8_t vcpu = 0, vm = 1;
	int bad = 0;

	if (argc != 2) {
		fprintf(stderr, "usage: %s CORPUS_DIR\n", argv[0]);
		return 2;
	}
	bad |= fuzz_seed_section(argv[1], "vcpu_host_vendor", &vcpu, 1, vcpu_section, HOST);
	bad |= fuzz_seed_section(argv[1], "vcpu_other_vendor", &vcpu, 1, vcpu_section,
		"AuthenticAMD");
	bad |= fuzz_seed_section(argv[1], "vm", &vm, 1, vm_section, NULL);
	return bad ? 1 : 0;
}
#endif
