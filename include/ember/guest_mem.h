/* Guest RAM: regions of host memory mapped into the guest-physical address space. */
#ifndef EMBER_GUEST_MEM_H
#define EMBER_GUEST_MEM_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* RAM takes at most two regions (below and above the MMIO gap); device memory that is
 * guest memory all the same (virtio-mem's hotplug area) comes after them. */
#define GUEST_MEM_MAX_REGIONS 3

enum guest_mem_backing {
	GUEST_MEM_ANON,     /* private anonymous memory (default) */
	GUEST_MEM_MEMFD,    /* shared memfd: another process may map the same RAM */
	GUEST_MEM_HUGETLB,  /* memfd on 2 MiB hugetlbfs pages */
	GUEST_MEM_ANON_THP, /* private anonymous memory the kernel may back with transparent
	                      * huge pages (Firecracker's huge_pages: Transparent) */
	GUEST_MEM_FILE,     /* MAP_PRIVATE of a memory file (snapshot restore) */
};

struct guest_mem_region {
	uint64_t gpa;         /* guest-physical base */
	uint64_t size;        /* bytes, multiple of page_size */
	uint64_t file_offset; /* offset of this region in the memory file / memfd */
	uint8_t *host;        /* host virtual base */
};

struct guest_mem {
	struct guest_mem_region regions[GUEST_MEM_MAX_REGIONS];
	/* Pages written by ember itself (devices: used rings, read data), one bit per 4 KiB
	 * page per region; NULL until guest_mem_track_dirty. KVM's dirty log only sees the
	 * guest CPU's writes, so diff snapshots OR these in. */
	_Atomic unsigned long *dirty[GUEST_MEM_MAX_REGIONS];
	unsigned nr_regions;
	/* The last nr_device regions are device memory, whose device owns their KVM slots
	 * (guest_mem_add_device); the others are RAM (e820, KVM slot i). Counted this way
	 * round so that a guest_mem set up by hand is all RAM. */
	unsigned nr_device;
	enum guest_mem_backing backing;
	uint64_t total;       /* sum of region sizes */
	uint64_t page_size;   /* 4096, or 2 MiB for hugetlb */
	int fd;               /* memfd or memory file, -1 for anon */
	bool handler_served;  /* pages come from a page-fault handler (userfaultfd), which
	                      * may go away: see guest_mem_revoke */
	_Atomic bool revoked; /* guest_mem_revoke: no pointer is handed out any more */
};

/* The regions that are RAM: [0, guest_mem_nr_ram). */
static inline unsigned guest_mem_nr_ram(const struct guest_mem *gm)
{
	return gm->nr_regions - gm->nr_device;
}

/* Split `size` bytes of RAM around the MMIO gap into regions (gpa, size, file_offset
 * set, host NULL). Pure: used by guest_mem_map and by unit tests. Returns the count. */
unsigned guest_mem_layout(uint64_t size, struct guest_mem_region out[GUEST_MEM_MAX_REGIONS]);

/* Map `size` bytes (multiple of page size) with the given backing. `path` is the
 * memory file for GUEST_MEM_FILE, else NULL. On failure fills err and returns -errno. */
__attribute__((warn_unused_result)) int guest_mem_map(struct guest_mem *gm, uint64_t size,
	enum guest_mem_backing backing, const char *path, char *err, size_t errlen);
/* The same, each region mapped over at[i] (MAP_FIXED: a range reserved before, whose
 * memory slots KVM already holds; guest_mem_layout(size) gives the regions). */
__attribute__((warn_unused_result)) int guest_mem_map_at(struct guest_mem *gm, uint64_t size,
	enum guest_mem_backing backing, const char *path, void *const at[GUEST_MEM_MAX_REGIONS],
	char *err, size_t errlen);

/* Append `size` bytes of device memory at guest-physical `gpa` (above RAM) as the next
 * region, backed as RAM is and placed after it in the memory file / memfd (file_offset =
 * total so far; total grows): snapshots, dirty tracking, restores and guest_mem_ptr
 * cover it as they cover RAM. KVM slots and the e820 map are its device's business. With
 * GUEST_MEM_FILE the file (the one guest_mem_map opened) must hold it. -errno with err. */
__attribute__((warn_unused_result)) int guest_mem_add_device(struct guest_mem *gm, uint64_t gpa,
	uint64_t size, char *err, size_t errlen);

/* The memory can no longer be trusted (the page-fault handler serving it went away,
 * and its unserved pages will read as zeros once its faults are woken): from now on
 * guest_mem_ptr and guest_mem_ptr_mut give NULL (devices fail the request as for any
 * bad address), and guest_mem_revoked says so to whoever copies guest memory outside
 * them (the block I/O worker checks it after copying a write, before the disk sees it).
 * Any thread; call it before waking the faults. */
void guest_mem_revoke(struct guest_mem *gm);
bool guest_mem_revoked(const struct guest_mem *gm);

/* Unmap and close. Safe on a zeroed or already unmapped guest_mem. */
void guest_mem_unmap(struct guest_mem *gm);

/* Host pointer for reading [gpa, gpa+len) if that range lies inside one region, else
 * NULL. Overflow-safe. With guest_mem_ptr_mut, the only way to reach guest memory. */
const void *guest_mem_ptr(const struct guest_mem *gm, uint64_t gpa, uint64_t len);
/* The same, for writing: the range is marked dirty (guest_mem_mark_dirty) here, so that
 * no device, loader or worker can write guest memory behind the diff snapshots' back
 * (KVM's dirty log sees only the guest's own writes). A write through the pointer that
 * completes later (an I/O worker reading a disk into guest memory) must be finished
 * before a snapshot takes the marks: devices drain their workers in their save. */
void *guest_mem_ptr_mut(const struct guest_mem *gm, uint64_t gpa, uint64_t len);

/* Copy into / out of guest memory; -EFAULT if the range is not inside one region. */
__attribute__((warn_unused_result)) int guest_mem_write(const struct guest_mem *gm, uint64_t gpa,
	const void *src, size_t len);
__attribute__((warn_unused_result)) int guest_mem_read(const struct guest_mem *gm, uint64_t gpa,
	void *dst, size_t len);

/* Bytes of a page bitmap for a region of `size` bytes: one bit per 4 KiB page, in whole
 * longs. The layout of KVM's dirty log, of guest_mem_take_dirty and of the memory file
 * writer's diff bitmaps alike. */
size_t guest_mem_bitmap_bytes(uint64_t size);

/* Start recording pages ember writes (guest_mem_mark_dirty). -ENOMEM on failure. */
__attribute__((warn_unused_result)) int guest_mem_track_dirty(struct guest_mem *gm);
/* Record that ember wrote [gpa, gpa+len). Any thread, lock-free; a no-op when not
 * tracking or outside RAM. */
void guest_mem_mark_dirty(const struct guest_mem *gm, uint64_t gpa, uint64_t len);
/* Move region i's recorded pages into `bitmap` (OR), clearing them. */
void guest_mem_take_dirty(struct guest_mem *gm, unsigned i, unsigned long *bitmap);

/* Highest guest-physical address + 1 of RAM below the MMIO gap. */
uint64_t guest_mem_low_end(const struct guest_mem *gm);
/* Where device memory (virtio-mem, pmem) may begin: the first LAYOUT_DEVICE_MEM_ALIGN
 * boundary at or above 4 GiB and the end of RAM. */
uint64_t guest_mem_device_base(const struct guest_mem *gm);
/* The first such boundary above every region, device memory's included: where memory
 * outside guest_mem (pmem's mapped files) goes. */
uint64_t guest_mem_free_base(const struct guest_mem *gm);
/* The first device region (guest_mem_add_device), or NULL if there is none. */
const struct guest_mem_region *guest_mem_device_region(const struct guest_mem *gm);

#endif
