"""ember-jailer: Firecracker's jailer command line around ember.

Each jail lives under a chroot base the test makes in its own temporary directory; the
VMM runs there as uid:gid 1234 and is checked from outside (/proc/PID/root is the jail,
its ids, its cgroup, its rlimits, an empty environment). Snapshots are taken and loaded
inside jails with paths relative to the chroot, as with Firecracker: the files are copied
from one jail into the next. Cgroups (a parent named after the test's pid), network
namespaces (`ip netns add`, one per test) and the jails are removed by name at the end;
where no cgroup2 file system is mounted (the KVM sandbox) the test mounts one and
unmounts it afterwards. Processes are ended by the pid the jailer wrote."""
import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time

import run
import test_api
from run import Skip, check, guest_kernel, secs, test

UID = GID = 1234
MAC = "06:00:ac:10:00:02"


def jailer_bin():
    path = os.path.join(os.path.dirname(run.ARGS.ember), "ember-jailer")
    if not os.path.exists(path):
        raise Skip("no %s: run `make`" % path)
    if os.geteuid() != 0:
        raise Skip("the jailer needs root")
    return path


def jail_root(base, jail_id):
    return os.path.join(base, "ember", jail_id, "root")


def put_in_jail(root, *paths):
    """Each file into the jail's root under its own name: a hard link where it can be,
    else a copy (Firecracker's rule: what the VMM opens must be inside)."""
    os.makedirs(root, exist_ok=True)
    for p in paths:
        dst = os.path.join(root, os.path.basename(p))
        try:
            os.link(p, dst)
        except OSError:
            shutil.copyfile(p, dst)
        os.chmod(dst, 0o644)


class VmmProcess:
    """The VMM behind --new-pid-ns: not our child, so followed through /proc (its exit
    status is not ours to see); its stdio are still the jailer's pipes."""

    def __init__(self, jailer, pid):
        self.stdin, self.stdout, self.stderr = jailer.stdin, jailer.stdout, jailer.stderr
        self.pid = pid
        self.returncode = None

    def poll(self):
        try:
            with open("/proc/%d/stat" % self.pid) as f:
                alive = f.read().rsplit(")", 1)[1].split()[0] != "Z"
        except OSError:
            alive = False
        if not alive:
            self.returncode = "ended"
        return self.returncode

    def wait(self, timeout=None):
        end = time.time() + (timeout or 1e9)
        while self.poll() is None:
            if time.time() > end:
                raise subprocess.TimeoutExpired("ember %d" % self.pid, timeout)
            time.sleep(0.05)
        return self.returncode

    def kill(self):
        with contextlib.suppress(OSError):
            os.kill(self.pid, signal.SIGKILL)


class Jailed(test_api.Ember):
    """ember started by ember-jailer with `-- --api-sock /api.sock ARGS`; the API socket
    is reached at ROOT/api.sock. Ended by the pid in ROOT/ember.pid."""

    def __init__(self, base, jail_id, *jailer_args, vmm_args=()):
        self.root = jail_root(base, jail_id)
        self.sock = os.path.join(self.root, "api.sock")
        self.out, self.err = b"", b""
        self.lock = threading.Lock()
        cmd = [jailer_bin(), "--id", jail_id, "--exec-file", run.ARGS.ember,
               "--uid", str(UID), "--gid", str(GID), "--chroot-base-dir", base,
               *jailer_args, "--", "--api-sock", "/api.sock", *vmm_args]
        self.p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE)
        for target in (self._read, self._read_err):
            threading.Thread(target=target, daemon=True).start()
        end = time.time() + secs(20)
        while not os.path.exists(self.sock):
            # With --new-pid-ns the jailer's own process ends at once, with status 0.
            if self.p.poll() not in (None, 0) or time.time() > end:
                raise run.Fail("no API socket in the jail: status %s, stderr %s" %
                               (self.p.poll(), self.stderr()))
            time.sleep(0.02)
        if self.p.poll() == 0:
            self.p = VmmProcess(self.p, self.pid())

    def pid(self):
        with open(os.path.join(self.root, "ember.pid")) as f:
            return int(f.read())

    def close(self):
        with contextlib.suppress(OSError, ValueError):
            os.kill(self.pid(), signal.SIGKILL)
        super().close()


def proc_status(pid):
    with open("/proc/%d/status" % pid) as f:
        return dict(line.rstrip("\n").split(":\t", 1) for line in f if ":\t" in line)


def check_confined(j, limits):
    """What Firecracker's jailer promises, seen from outside."""
    pid = j.pid()
    check(os.path.samefile("/proc/%d/root" % pid, j.root),
          "/proc/%d/root is not the jail %s" % (pid, j.root))
    st = proc_status(pid)
    check(st["Uid"].split() == [str(UID)] * 4 and st["Gid"].split() == [str(GID)] * 4,
          "ids: Uid %s Gid %s" % (st["Uid"], st["Gid"]))
    check(st["Groups"].strip() == "", "supplementary groups left: %r" % st["Groups"])
    with open("/proc/%d/environ" % pid, "rb") as f:
        check(f.read() == b"", "the environment was not cleared")
    with open("/proc/%d/limits" % pid) as f:
        text = f.read()
    for name, value in limits.items():
        check(re.search(r"^%s\s+%s\s+%s\s" % (name, value, value), text, re.M),
              "%s is not %s:\n%s" % (name, value, text))
    for node in ("dev/kvm", "dev/net/tun", "dev/urandom"):
        s = os.stat(os.path.join(j.root, node))
        check(s.st_uid == UID and s.st_mode & 0o777 == 0o600, "%s: %o uid %d" %
              (node, s.st_mode, s.st_uid))
    return pid


# ---- cgroup v2 and network namespaces, made and removed by the test ----

@contextlib.contextmanager
def memory_cgroup():
    """Yields the cgroup2 mount point if its root offers the memory controller (mounting
    one where none is, as in the KVM sandbox), else None."""
    mount = None
    with open("/proc/mounts") as f:
        for line in f:
            fields = line.split()
            if fields[2] == "cgroup2":
                mount = fields[1]
                break
    ours = None
    if mount is None:
        ours = tempfile.mkdtemp(prefix="ember-cgroup2-")
        r = subprocess.run(["mount", "-t", "cgroup2", "none", ours], capture_output=True)
        mount = ours if r.returncode == 0 else None
    try:
        with open(os.path.join(mount or "/nonexistent", "cgroup.controllers")) as f:
            has_memory = "memory" in f.read().split()
    except OSError:
        has_memory = False
    try:
        yield mount if has_memory else None
    finally:
        if ours:
            subprocess.run(["umount", ours], capture_output=True)
            os.rmdir(ours)


def remove_cgroups(mount, parent, *ids):
    """The VMs' cgroups, then their parent; a killed VMM leaves its cgroup a moment later."""
    end = time.time() + secs(10)
    for name in [*("%s/%s" % (parent, i) for i in ids), parent]:
        while True:
            try:
                os.rmdir(os.path.join(mount, name))
            except FileNotFoundError:
                pass
            except OSError:
                if time.time() < end:
                    time.sleep(0.05)
                    continue
                raise
            break


@contextlib.contextmanager
def netns_with_tap():
    """A network namespace of the test's own with an up tap0; its /var/run/netns path."""
    if not shutil.which("ip"):
        raise Skip("the ip command is missing")
    name = "ember-jail-%d" % os.getpid()
    r = subprocess.run(["ip", "netns", "add", name], capture_output=True, text=True)
    if r.returncode:
        raise Skip("cannot make a network namespace: %s" % r.stderr.strip())
    try:
        for args in (["link", "set", "lo", "up"],
                     ["tuntap", "add", "dev", "tap0", "mode", "tap"],
                     ["link", "set", "tap0", "up"]):
            subprocess.run(["ip", "-n", name, *args], check=True, timeout=20)
        yield "/var/run/netns/" + name
    finally:
        subprocess.run(["ip", "netns", "delete", name], capture_output=True)


# ---- bad arguments: one line, status 2 ----

BAD_ARGS = [
    (["--exec-file", "E", "--uid", "1", "--gid", "1"], r"missing --id \(see --help\)"),
    (["--id", "a/b", "--exec-file", "E", "--uid", "1", "--gid", "1"],
     r"--id: 'a/b' is not 1 to 64 characters"),
    (["--id", "x" * 65, "--exec-file", "E", "--uid", "1", "--gid", "1"], r"--id: 'x+' is not"),
    (["--id", "a", "--exec-file", "E", "--uid", "nobody", "--gid", "1"],
     r"--uid: 'nobody' is not a number"),
    (["--id", "a", "--exec-file", "/nonexistent/ember", "--uid", "1", "--gid", "1"],
     r"--exec-file /nonexistent/ember: No such file or directory"),
    (["--id", "a", "--exec-file", "E", "--uid", "1", "--gid", "1", "--cgroup-version", "1"],
     r"cgroup v1 is not supported, use --cgroup-version 2"),
    (["--id", "a", "--exec-file", "E", "--uid", "1", "--gid", "1", "--cgroup", "memory.max"],
     r"--cgroup: 'memory.max' is not FILE=VALUE"),
    (["--id", "a", "--exec-file", "E", "--uid", "1", "--gid", "1", "--netns",
      "/var/run/netns/ember-none"], r"--netns /var/run/netns/ember-none: No such file"),
    (["--id", "a", "--exec-file", "E", "--uid", "1", "--gid", "1", "--resource-limit",
      "cpu=1"], r"--resource-limit: unknown resource 'cpu'"),
    (["--id", "a", "--exec-file", "E", "--uid", "1", "--gid", "1", "--api-sock", "/s"],
     r"unknown option '--api-sock' \(VMM arguments go after --\)"),
]


@test
def jailer_bad_arguments_get_one_line_and_status_2():
    jailer = jailer_bin()
    with tempfile.TemporaryDirectory() as base:
        for args in BAD_ARGS:
            argv = [run.ARGS.ember if a == "E" else a for a in args[0]]
            r = subprocess.run([jailer, "--chroot-base-dir", base, *argv], capture_output=True,
                               text=True, timeout=secs(10))
            lines = r.stderr.splitlines()
            check(r.returncode == 2 and len(lines) == 1 and
                  lines[0].startswith("ember-jailer: ") and re.search(args[1], lines[0]),
                  "%s: status %d, stderr %r" % (" ".join(args[0]), r.returncode, r.stderr))
            check(os.listdir(base) == [], "a refused command left %s" % os.listdir(base))
        r = subprocess.run([jailer, "--help"], capture_output=True, text=True)
        check(r.returncode == 0 and "--cgroup FILE=VALUE" in r.stdout, "--help: %r" % (r,))


@test
def jailer_daemonize_passes_the_id_and_start_times():
    """--daemonize: a session of its own, stdio on /dev/null; ember gets --id and the
    jailer's start times first on its command line, and GET / answers with the id."""
    with tempfile.TemporaryDirectory() as base:
        t0 = time.monotonic()
        with Jailed(base, "daemon-1", "--daemonize") as j:
            print("  jailer: API socket up %.0f ms after the jailer started" %
                  ((time.monotonic() - t0) * 1000))
            pid = check_confined(j, {"Max open files": 2048})
            check(os.getsid(pid) == pid, "not a session leader")
            for fd in (0, 1, 2):
                check(os.readlink("/proc/%d/fd/%d" % (pid, fd)) == "/dev/null",
                      "fd %d is not /dev/null" % fd)
            with open("/proc/%d/cmdline" % pid, "rb") as f:
                argv = f.read().decode().split("\0")[:-1]
            check(argv[:3] == ["./ember", "--id", "daemon-1"] and
                  argv[3] == "--start-time-us" and argv[5] == "--start-time-cpu-us" and
                  argv[7:] == ["--api-sock", "/api.sock"] and
                  0 < int(argv[4]) <= time.clock_gettime(time.CLOCK_MONOTONIC) * 1e6,
                  "ember's command line: %r" % argv)
            check(j.request("GET", "/")[1]["id"] == "daemon-1", "GET / has not the id")


# ---- VMs in jails ----

def check_cgroup(pid, mount, parent, jail_id, memory_max):
    with open("/proc/%d/cgroup" % pid) as f:
        line = [ln for ln in f.read().splitlines() if ln.startswith("0::")]
    check(line == ["0::/%s/%s" % (parent, jail_id)], "/proc/%d/cgroup: %r" % (pid, line))
    with open(os.path.join(mount, parent, jail_id, "memory.max")) as f:
        check(f.read().strip() == str(memory_max), "memory.max is not %d" % memory_max)


def cgroup_args(mount, parent, memory_max):
    return ["--cgroup", "memory.max=%d" % memory_max, "--parent-cgroup", parent,
            "--cgroup-version", "2"] if mount else []


def snapshot_in_jail(j, state, mem):
    """Pause and snapshot to paths inside the jail; the files are the VM's uid's."""
    j.expect("PATCH", "/vm", {"state": "Paused"}, 204)
    j.expect("PUT", "/snapshot/create", {"snapshot_path": "/" + state,
                                         "mem_file_path": "/" + mem}, 204)
    for name in (state, mem):
        check(os.stat(os.path.join(j.root, name)).st_uid == UID, "%s not the VM's" % name)
    return [os.path.join(j.root, name) for name in (state, mem)]


def load_in_jail(j, state, mem):
    j.expect("PUT", "/snapshot/load", {"snapshot_path": "/" + state, "resume_vm": True,
                                       "mem_backend": {"backend_path": "/" + mem,
                                                       "backend_type": "File"}}, 204)


@test
def jailer_test_guest_confined_then_restored_in_a_new_jail():
    """The test guest in a jail (rlimits given, a memory cgroup where the host has one),
    snapshotted there; the files copied into a second jail (a new pid namespace), loaded
    with the same relative paths, and the guest's memory checked."""
    parent, limit = "ember-test-%d" % os.getpid(), 256 << 20
    with tempfile.TemporaryDirectory() as base, memory_cgroup() as cg:
        put_in_jail(jail_root(base, "first"), guest_kernel())
        try:
            with Jailed(base, "first", *cgroup_args(cg, parent, limit),
                        "--resource-limit", "no-file=1024",
                        "--resource-limit=fsize=%d" % (1 << 30)) as j:
                j.expect("PUT", "/machine-config", {"vcpu_count": 1, "mem_size_mib": 128},
                         204)
                j.expect("PUT", "/boot-source", {"kernel_image_path": "/ember-test-guest"},
                         204)
                j.expect("PUT", "/actions", {"action_type": "InstanceStart"}, 204)
                j.wait_output("ember-test-guest ready")
                pid = check_confined(j, {"Max open files": 1024, "Max file size": 1 << 30})
                if cg:
                    check_cgroup(pid, cg, parent, "first", limit)
                else:
                    print("  jailer: no cgroup2 with the memory controller here; "
                          "cgroup not checked")
                j.send("fill 8 5\n")
                j.wait_output("OK fill")
                files = snapshot_in_jail(j, "vm.state", "vm.mem")
            # ember's restore opens the kernel again: it goes in too.
            put_in_jail(jail_root(base, "second"), guest_kernel(), *files)
            with Jailed(base, "second", "--new-pid-ns") as j:
                pid = check_confined(j, {"Max open files": 2048})
                nspid = proc_status(pid)["NSpid"].split()
                check(nspid == [str(pid), "1"], "not pid 1 of a new namespace: %r" % nspid)
                load_in_jail(j, "vm.state", "vm.mem")
                j.send("check 8 5\n")
                j.wait_output("OK check")
                j.send("poweroff\n")
                j.wait()
        finally:
            if cg:
                remove_cgroups(cg, parent, "first")


LINUX_FILES = ("vmlinux", "initramfs.cpio", "rootfs.ext4")


def linux_config(root, linux):
    """The default guest as a Firecracker JSON configuration with jail-relative paths."""
    put_in_jail(root, *(os.path.join(linux, f) for f in LINUX_FILES))
    config = {
        "boot-source": {"kernel_image_path": "/vmlinux", "initrd_path": "/initramfs.cpio",
                        "boot_args": "console=ttyS0 reboot=k panic=1 pci=off"},
        "drives": [{"drive_id": "data", "path_on_host": "/rootfs.ext4",
                    "is_root_device": False, "is_read_only": True}],
        "network-interfaces": [{"iface_id": "eth0", "host_dev_name": "tap0",
                                "guest_mac": MAC}],
        "machine-config": {"vcpu_count": 1, "mem_size_mib": 256},
    }
    with open(os.path.join(root, "vm.json"), "w") as f:
        json.dump(config, f)


@test
def jailer_linux_shell_in_a_jail_with_a_tap_and_a_memory_limit():
    """The default Linux guest boots to its shell inside a jail as uid 1234, in a network
    namespace of its own with a tap (the guest sees its MAC), under a cgroup with
    memory.max; snapshotted there and restored in a second jail, where the shell answers."""
    import test_linux
    if run.ARGS.sanitizer:
        raise Skip("Linux runs with the normal build")
    if test_linux.emulating():
        raise Skip("this host's KVM (kvm_pvm) cannot run guest user space; needs the KVM "
                   "sandbox or hardware KVM")
    linux = test_linux.built_linux_dir()
    parent, limit = "ember-test-%d" % os.getpid(), 512 << 20
    with tempfile.TemporaryDirectory() as base, memory_cgroup() as cg, \
            netns_with_tap() as netns:
        if not cg:
            raise Skip("no cgroup2 file system with the memory controller here")
        jail = ("--netns", netns, *cgroup_args(cg, parent, limit))
        linux_config(jail_root(base, "linux"), linux)
        try:
            t0 = time.monotonic()
            with Jailed(base, "linux", *jail, vmm_args=("--config-file", "/vm.json")) as j:
                j.wait_output("ember-guest: shell on the console", timeout=300)
                print("  jailer: Linux shell %.1f s after the jailer started" %
                      (time.monotonic() - t0))
                pid = check_confined(j, {"Max open files": 2048})
                check_cgroup(pid, cg, parent, "linux", limit)
                check(os.stat("/proc/%d/ns/net" % pid).st_ino == os.stat(netns).st_ino,
                      "ember is not in %s" % netns)
                j.send("echo mac-$(cat /sys/class/net/eth0/address)\n")
                j.wait_output("mac-" + MAC)
                files = snapshot_in_jail(j, "linux.state", "linux.mem")
            root2 = jail_root(base, "linux2")
            put_in_jail(root2, *(os.path.join(linux, f) for f in LINUX_FILES), *files)
            with Jailed(base, "linux2", *jail, "--new-pid-ns") as j:
                load_in_jail(j, "linux.state", "linux.mem")
                check_cgroup(j.pid(), cg, parent, "linux2", limit)
                j.send("echo restored-$((6*7))\n")
                j.wait_output("restored-42", timeout=60)
                j.send("poweroff\n")
                j.wait(60)
        finally:
            remove_cgroups(cg, parent, "linux", "linux2")
