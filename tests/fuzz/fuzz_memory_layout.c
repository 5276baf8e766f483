/* libFuzzer harness for the memory section of a state file (snapshot_check_memory_layout):
 * the input is a u32 memory size in MiB (little-endian), then the section's payload.
 * `make fuzz` builds it; `make fuzz-seeds` rewrites its seeds from sections
 * snapshot_save_memory_layout writes.
 * An accepted section lists exactly the regions this ember builds for that size
 * (guest_mem_layout): same count, addresses, sizes and file offsets, every one plugged.
 * A refusal says why, starting "state file: ". Any violation traps. */
#include <stdio.h>
#include <string.h>

#include "ember/snapshot_file.h"

#include "../../src/vmm/vm_internal.h"
#include "fuzz.h"
#include "one_section.h"

/* The section's regions, read again here, must be guest_mem_layout's. */
static void check_accepted(const uint8_t *p, size_t size, uint64_t mem_mib)
{
	struct guest_mem_region want[GUEST_MEM_MAX_REGIONS];
	unsigned n = guest_mem_layout(mem_mib << 20, want);
	uint32_t count;

	CHECK(size >= 4);
	memcpy(&count, p, 4);
	CHECK(count == n && size >= 4 + (size_t)count * 28);
	for (unsigned i = 0; i < count; i++) {
		uint64_t v[3];
		uint32_t plugged;
		memcpy(v, p + 4 + i * 28, sizeof(v));
		memcpy(&plugged, p + 4 + i * 28 + 24, 4);
		CHECK(v[0] == want[i].gpa && v[1] == want[i].size && v[2] == want[i].file_offset);
		CHECK(plugged != 0);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct snap_reader *r;
	uint32_t mib;
	char err[512] = "";

	if (size < 4)
		return 0;
	memcpy(&mib, data, 4);
	r = fuzz_one_section(SNAP_SEC_MEMORY, 1, data + 4, size - 4);
	if (!r)
		return 0;
	if (snapshot_check_memory_layout(r, mib, err, sizeof(err)) == 0)
		check_accepted(data + 4, size - 4, mib);
	else
		CHECK(strncmp(err, "state file: ", 12) == 0);
	snap_reader_free(r);
	return 0;
}

#ifdef FUZZ_SEED_MAIN
static int save(const void *vm, struct snap_writer *w)
{
	return snapshot_save_memory_layout(vm, w);
}

int main(int argc, char **argv)
{
	static struct vm vm;
	uint32_t mib[] = { 128, 8192 }; /* below the MMIO gap; one region on each side */
	int bad = 0;

	if (argc != 2) {
		fprintf(stderr, "usage: %s CORPUS_DIR\n", argv[0]);
		return 2;
	}
	for (unsigned i = 0; i < 2; i++) {
		char name[32];
		vm.mem.nr_regions = guest_mem_layout((uint64_t)mib[i] << 20, vm.mem.regions);
		snprintf(name, sizeof(name), "mib_%u", mib[i]);
		bad |= fuzz_seed_section(argv[1], name, &mib[i], 4, save, &vm);
	}
	vm.mem.regions[0].gpa = 1 << 20; /* no DRAM at 0 */
	bad |= fuzz_seed_section(argv[1], "moved", &mib[1], 4, save, &vm);
	return bad ? 1 : 0;
}
#endif
