/* Firecracker's userfaultfd handshake: ember's side (attach) and the message both sides speak. */
#ifndef EMBER_UFFD_H
#define EMBER_UFFD_H

#include <stddef.h>
#include <stdint.h>

struct guest_mem;

/* Most regions one handshake may describe, and most bytes it may take. A Firecracker
 * handler reads at most 1024 bytes; two regions take about 250. */
#define UFFD_MAX_REGIONS 64
#define UFFD_HANDSHAKE_MAX 16384

/* One object of the handshake array, fields in Firecracker's order
 * (GuestRegionUffdMapping). `offset` is the region's offset in the memory file;
 * `page_size_kib` is, despite its name, the page size in bytes (deprecated there, still
 * sent, so ember sends it too). */
struct uffd_region {
	uint64_t base_host_virt_addr;
	uint64_t size;
	uint64_t offset;
	uint64_t page_size;
	uint64_t page_size_kib;
};

/* Write the handshake JSON for `n` regions into buf (NUL-terminated), byte for byte what
 * Firecracker's serde_json emits: [{"base_host_virt_addr":N,"size":N,"offset":N,
 * "page_size":N,"page_size_kib":N},...], no spaces, no newline. Returns the length
 * without the NUL, or -ENOSPC if buf is too small. Pure. */
__attribute__((warn_unused_result)) int uffd_handshake_encode(const struct uffd_region *r,
	unsigned n, char *buf, size_t len);

/* Parse and check a received handshake: a non-empty JSON array (at most `max` entries) of
 * objects, each with all five fields as non-negative integers below 2^53 (exact in
 * JSON's doubles), page_size a power of two >= 4096, base and size multiples of it,
 * size > 0, no wrap-around, no two regions overlapping in the address space or in the
 * file. Unknown fields are ignored (serde's default). `json` need not be NUL-terminated.
 * At most UFFD_HANDSHAKE_MAX bytes. Returns 0 with *n set, or -EINVAL (-ENOMEM) with a
 * message naming the region and field. Pure; safe on any input (fuzzed). */
__attribute__((warn_unused_result)) int uffd_handshake_parse(const char *json, size_t len,
	struct uffd_region *out, unsigned max, unsigned *n, char *err, size_t errlen);

/* Check parsed regions against a memory file of `file_size` bytes: each region lies
 * inside it and the sizes add up to exactly file_size. -EINVAL with a message. Pure. */
__attribute__((warn_unused_result)) int uffd_handshake_check_file(const struct uffd_region *r,
	unsigned n, uint64_t file_size, char *err, size_t errlen);

/* ember's side of the handshake, for restore with the Uffd memory backend. `gm` is guest
 * RAM already mapped as private anonymous memory, not yet touched. Creates a userfaultfd
 * (/dev/userfaultfd first, else the syscall; O_CLOEXEC|O_NONBLOCK; kernel-mode faults
 * included, so KVM and ember touching guest memory are served too; UFFD_FEATURE_EVENT_REMOVE
 * required), registers every region in MISSING mode, connects to the Unix stream socket
 * `socket_path` and sends one message: the JSON of uffd_handshake_encode() for gm's
 * regions with the uffd as SCM_RIGHTS.
 *
 * On success *uffd is ember's own copy of the userfaultfd and *sock the connected socket,
 * both owned by the caller for the VM's lifetime. Keep *sock open: closing it tells the
 * handler the VM is gone. Watch it: EOF or HUP on *sock means the handler died, and the
 * next fault on guest memory would block forever. On failure nothing is left open or
 * registered, and err says what, e.g. "uffd backend /x.sock: cannot connect: No such
 * file or directory". Control thread, before any vCPU runs. */
__attribute__((warn_unused_result)) int uffd_backend_attach(const struct guest_mem *gm,
	const char *socket_path, int *uffd, int *sock, char *err, size_t errlen);

/* Watch the handler's socket from a thread of its own. When the handler goes away (EOF,
 * error, hang-up) it calls lost(opaque) on that thread (the callee must only do
 * thread-safe things: request the VM's exit), revokes `gm` (guest_mem_revoke: no one
 * may take the unserved pages, which then read as zeros, for guest data, above all not a
 * disk write in flight), then unregisters it from `uffd`, so every thread blocked in a
 * fault wakes up. `gm` outlives the watch. NULL with err on failure. */
typedef void (*uffd_lost_fn)(void *opaque);
struct uffd_watch;
struct uffd_watch *uffd_watch_start(int sock, int uffd, struct guest_mem *gm, uffd_lost_fn lost,
	void *opaque, char *err, size_t errlen);
/* Stop watching (before the socket and uffd are closed). NULL is a no-op. */
void uffd_watch_stop(struct uffd_watch *w);

#endif
