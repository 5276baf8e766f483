/* ember-jailer's private contract: its command line, the cgroup, chroot and process steps. */
#ifndef EMBER_JAILER_H
#define EMBER_JAILER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define JAIL_MAX_CGROUPS 32
#define JAIL_DEFAULT_BASE "/srv/jailer"
#define JAIL_DEFAULT_NOFILE 2048

#if defined(__GNUC__)
#define JAIL_MUST_CHECK __attribute__((warn_unused_result))
#else
#define JAIL_MUST_CHECK
#endif

/* The command line, as Firecracker's jailer takes it. Strings point into argv. */
struct jail_args {
	const char *id;
	const char *exec_file;
	const char *exec_name; /* the file name of exec_file */
	uid_t uid;
	gid_t gid;
	const char *chroot_base;
	const char *netns;
	const char *cgroups[JAIL_MAX_CGROUPS]; /* "FILE=VALUE", checked */
	unsigned nr_cgroups;
	const char *parent_cgroup; /* NULL: none given */
	uint64_t no_file;
	uint64_t fsize;
	bool has_fsize;
	bool daemonize;
	bool new_pid_ns;
	bool help;
	char **vmm_argv; /* what follows "--" */
	int vmm_argc;
};

/* args.c: fills *a from argv[1..argc-1] (no file is looked at). 0, or -EINVAL with one
 * line for a person in err (the caller exits 2). help set: print the usage, nothing else
 * is checked. */
int jail_args_parse(struct jail_args *a, int argc, char **argv, char *err,
	size_t errlen) JAIL_MUST_CHECK;
/* 1 to 64 of A-Z a-z 0-9 -, as Firecracker's --id. */
bool jail_id_valid(const char *id);

/* cgroup_path.c: pure helpers, no system calls. */
/* "FILE=VALUE" with FILE a single name of [a-z0-9_.] holding a '.', not starting with
 * one: 0, or -EINVAL with the reason in err. */
int cgroup_setting_check(const char *setting, char *err, size_t errlen) JAIL_MUST_CHECK;
/* The controller FILE belongs to ("memory" for memory.max) into out; "" for the core
 * files (cgroup.*), which need none. -ENAMETOOLONG if out is too small. */
int cgroup_controller(const char *setting, char *out, size_t len) JAIL_MUST_CHECK;
/* A relative cgroup path (--parent-cgroup): no leading '/', no "." or ".." component,
 * no empty component. */
bool cgroup_parent_valid(const char *parent);
/* The mount point of the first cgroup2 file system in a /proc/mounts text into out
 * (octal escapes decoded). 0, -ENOENT when there is none, -ENAMETOOLONG. */
int cgroup_mount_find(const char *mounts, char *out, size_t len) JAIL_MUST_CHECK;
/* Is word one of the space-separated words of list (cgroup.controllers)? */
bool cgroup_list_has(const char *list, const char *word);

/* cgroup.c: the cgroup v2 step. Creates <mount>/<parent>/<id> (parent: --parent-cgroup,
 * else the exec file's name), enables the controllers the settings need in every
 * ancestor's cgroup.subtree_control, writes the settings and moves this process in.
 * Without settings only moves into an existing --parent-cgroup; with neither does
 * nothing. 0 or -errno with err filled. */
int jail_cgroup_setup(const struct jail_args *a, char *err, size_t errlen) JAIL_MUST_CHECK;

/* elf.c: what the dynamic loader needs to run an ELF file. */
#define ELF_MAX_NEEDED 64
struct elf_deps {
	char interp[256];                 /* PT_INTERP, "" for a static file */
	char needed[ELF_MAX_NEEDED][128]; /* DT_NEEDED names, in order */
	unsigned nr_needed;
	char runpath[512]; /* DT_RUNPATH, else DT_RPATH, else "" */
	uint16_t machine;  /* e_machine */
};
/* Reads a 64-bit little-endian ELF file's program headers and dynamic section. 0, or
 * -errno / -ENOEXEC with err naming the file. */
int elf_deps_read(const char *path, struct elf_deps *d, char *err, size_t errlen) JAIL_MUST_CHECK;

/* libs.c: copies exec's interpreter and every shared library it needs (transitively) to
 * the same absolute paths under root. Nothing for a static file. */
int jail_copy_libs(const char *exec, const char *root, unsigned *copied, char *err,
	size_t errlen) JAIL_MUST_CHECK;

/* chroot.c */
/* mkdir -p of path, each new directory 0755 root-owned. Below the prefix `trusted` (NULL:
 * none), what exists must be a directory, never a symbolic link: a jail an earlier VM
 * owned may hold links planted to send the jailer's writes onto the host. */
int jail_mkdirs(const char *path, const char *trusted, char *err, size_t errlen) JAIL_MUST_CHECK;
/* A private copy of src at dst (never a link or reflink: no page sharing between VMs). */
int jail_copy_file(const char *src, const char *dst, mode_t mode, char *err,
	size_t errlen) JAIL_MUST_CHECK;
/* The minor of /dev/userfaultfd from /proc/misc, or -ENOENT when the kernel has none. */
int jail_userfaultfd_minor(void);
/* New mount namespace, root made private, pivot_root into root and chroot("."). */
int jail_enter(const char *root, char *err, size_t errlen) JAIL_MUST_CHECK;
/* Inside the jail: /dev/kvm, /dev/net/tun, /dev/urandom and (uffd_minor >= 0)
 * /dev/userfaultfd, each and "/" owned by uid:gid. */
int jail_make_devices(uid_t uid, gid_t gid, int uffd_minor, char *err,
	size_t errlen) JAIL_MUST_CHECK;

/* process.c */
int jail_close_fds(char *err, size_t errlen) JAIL_MUST_CHECK;
int jail_set_rlimits(const struct jail_args *a, char *err, size_t errlen) JAIL_MUST_CHECK;
/* Enters the network namespace netns_fd refers to. */
int jail_join_netns(int netns_fd, char *err, size_t errlen) JAIL_MUST_CHECK;
/* setsid and stdio onto devnull_fd. Returns 0 in the process that goes on; a process
 * group leader forks first and gets the child's pid (> 0): it only exits. */
pid_t jail_daemonize(int devnull_fd, char *err, size_t errlen) JAIL_MUST_CHECK;
/* A new pid namespace: returns 0 in its first process, or the child's pid (> 0) in the
 * jailer, which then only writes the pid file and exits. */
pid_t jail_new_pid_ns(char *err, size_t errlen) JAIL_MUST_CHECK;
/* "<exec-name>.pid" in the current directory, holding pid. */
int jail_write_pid_file(const char *exec_name, pid_t pid, char *err, size_t errlen) JAIL_MUST_CHECK;
/* setgroups(0), then the gid, then the uid. */
int jail_drop_ids(uid_t uid, gid_t gid, char *err, size_t errlen) JAIL_MUST_CHECK;
/* Microseconds of CLOCK_MONOTONIC and of this process's CPU time. */
uint64_t jail_monotonic_us(void);
uint64_t jail_cpu_us(void);

#endif
