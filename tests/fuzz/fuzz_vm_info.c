/* libFuzzer harness for the VM info section of a state file (snapshot_load_vm_info): the
 * input is the section's payload. `make fuzz` builds it; `make fuzz-seeds` rewrites its
 * seeds from sections snapshot_save_vm_info writes.
 * What it loads must be a machine this host can build: 1 to VM_MAX_VCPUS vCPUs, memory
 * from VM_MIN_MEM_MIB to the host's size, a backing ember knows other than a file, and
 * boot strings within their limits (pointing into the reader). A refusal says why,
 * starting "state file: ". Any violation traps. */
#include <stdio.h>
#include <string.h>

#include "ember/snapshot_file.h"

#include "../../src/vmm/vm_internal.h"
#include "fuzz.h"
#include "one_section.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct snap_reader *r = fuzz_one_section(SNAP_SEC_VM_INFO, 1, data, size);
	struct vm_config c;
	char err[512] = "";

	if (!r)
		return 0;
	vm_config_init(&c);
	c.kernel = c.initrd = c.cmdline = NULL;
	if (snapshot_load_vm_info(r, &c, err, sizeof(err)) == 0) {
		CHECK(c.vcpus >= 1 && c.vcpus <= VM_MAX_VCPUS);
		CHECK(c.mem_mib >= VM_MIN_MEM_MIB && c.mem_mib <= vm_config_host_mem_mib());
		CHECK(c.mem_backing < GUEST_MEM_FILE);
		CHECK(!c.kernel || strlen(c.kernel) <= SNAP_PATH_MAX);
		CHECK(!c.initrd || strlen(c.initrd) <= SNAP_PATH_MAX);
		CHECK(!c.cmdline || strlen(c.cmdline) <= 4096);
	} else {
		CHECK(strncmp(err, "state file: ", 12) == 0);
	}
	snap_reader_free(r);
	return 0;
}

#ifdef FUZZ_SEED_MAIN
static int save(const void *vm, struct snap_writer *w)
{
	return snapshot_save_vm_info(vm, w);
}

int main(int argc, char **argv)
{
	static struct vm vm;
	int bad = 0;

	if (argc != 2) {
		fprintf(stderr, "usage: %s CORPUS_DIR\n", argv[0]);
		return 2;
	}
	vm_config_init(&vm.cfg);
	vm.cfg.kernel = "/boot/vmlinux";
	bad |= fuzz_seed_section(argv[1], "minimal", NULL, 0, save, &vm);
	vm.cfg.vcpus = 2;
	vm.cfg.mem_mib = 256;
	vm.cfg.mem_backing = GUEST_MEM_HUGETLB;
	vm.cfg.initrd = "/boot/initrd.img";
	vm.cfg.cmdline = "console=ttyS0 reboot=k panic=1";
	bad |= fuzz_seed_section(argv[1], "hugetlb_initrd", NULL, 0, save, &vm);
	vm.cfg.vcpus = VM_MAX_VCPUS + 1;
	bad |= fuzz_seed_section(argv[1], "too_many_vcpus", NULL, 0, save, &vm);
	return bad ? 1 : 0;
}
#endif
