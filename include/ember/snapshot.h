/* Snapshot and restore of a whole VM: state file + memory file, full or diff, restored
 * from the file (MAP_PRIVATE) or through a userfaultfd page-fault handler. Control
 * thread only. */
#ifndef EMBER_SNAPSHOT_H
#define EMBER_SNAPSHOT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

struct ev_loop;
struct mmds;
struct vm;

enum snapshot_type { SNAPSHOT_FULL, SNAPSHOT_DIFF };

struct snapshot_params {
	const char *state_path;
	const char *mem_path;
	enum snapshot_type type;
};

/* Write a snapshot of a paused VM. -EBUSY unless paused; a diff needs dirty tracking.
 * The snapshot gets a fresh random id, recorded in the state file and on the memory file
 * (snapshot_id.h). Both files are written and synced under temporary names first, so a
 * failure while writing leaves the previous pair untouched; then the memory file is
 * renamed into place and the state file last (the commit point). A crash between the
 * two renames leaves the old state file with the new memory file, which restore refuses
 * by their ids. */
__attribute__((warn_unused_result)) int vm_snapshot(struct vm *vm, const struct snapshot_params *p,
	char *err, size_t errlen);

struct net_override {
	const char *iface_id;
	const char *host_dev_name;
};

struct drive_override {
	const char *drive_id;
	const char *path_on_host; /* the image at its new place */
};

enum mem_backend { MEM_BACKEND_FILE, MEM_BACKEND_UFFD };

struct restore_params {
	const char *state_path;
	enum mem_backend backend;
	const char *backend_path; /* memory file, or the handler's Unix socket */
	bool resume;              /* run at once instead of staying paused */
	bool track_dirty_pages;   /* allow diff snapshots of the restored VM */
	const struct net_override *net_overrides;
	unsigned nr_net_overrides;
	const struct drive_override *drive_overrides; /* snapshots moved between hosts/dirs */
	unsigned nr_drive_overrides;
	const char *vsock_uds_path; /* NULL: keep the saved one */
	bool clock_realtime;        /* kvmclock jumps to wall time (saved with REALTIME) */
	bool console_stdio;         /* guest serial on this process's stdin/stdout */
	struct mmds *mmds;          /* the store for interfaces with MMDS (vm_config.mmds) */
};

/* Build a new VM from a snapshot. It is paused (or running if p->resume). NULL on
 * failure with err set; nothing is left allocated. With the File backend a memory file
 * that belongs to another snapshot (or is an unmerged diff, or an interrupted merge) is
 * refused before anything is built, the message naming both files; one without an id is
 * accepted. With Uffd ember never learns the memory file's name: the handler checks
 * (ember-uffd --state STATE). */
struct vm *vm_restore(const struct restore_params *p, struct ev_loop *loop, char *err,
	size_t errlen);

/* Make a VM shell now for a later File restore of a mem_mib MiB snapshot: the VM, its
 * memory slots (over reserved address space, or over mem_path mapped now when not NULL),
 * irqchip and PIT. A restore whose memory size and track_dirty_pages match takes it
 * (and maps its memory file into the slots, unless it is mem_path's file, still the
 * same inode) instead of building those; any other restore builds as usual. One shell
 * per process: a new call replaces it. 0, or -errno with err. */
__attribute__((warn_unused_result)) int vm_prewarm(uint64_t mem_mib, bool track_dirty_pages,
	const char *mem_path, char *err, size_t errlen);

/* The format version of a state file (--describe-snapshot): 0, or -errno with err. */
__attribute__((warn_unused_result)) int vm_snapshot_format(const char *state_path, unsigned *major,
	unsigned *minor, char *err, size_t errlen);
/* Print what a state file holds (format version, machine, boot source, sections) to
 * `out`; the file is fully checked first. */
__attribute__((warn_unused_result)) int vm_snapshot_describe(const char *state_path, FILE *out,
	char *err, size_t errlen);

#endif
