"""A Linux guest's shell for tests: Linux booted once per run, snapshotted at its prompt
(the golden snapshot), restored by each test in a new ember process.

The golden VM is the microVM kernel with the busybox initramfs, 2 vCPUs and 256 MiB, a
writable ext4 scratch drive (vda), a read-only drive of random bytes (vdb), an entropy
device, a balloon and vsock on a Unix socket, all set up through the Firecracker API. At
its shell a background job writes a counter to /tmp/count every second; then the VM is
paused, snapshotted (full) and killed. A restore is an `ember --api-sock` process whose
serial console is its stdin and stdout: `Shell.sh` types a line there and returns what it
printed between two markers the typed line itself does not contain.

Each restore gets its own vsock socket and its own copy of the scratch drive (overrides
on PUT /snapshot/load), so any number of them can run at once.

A second golden, "net", booted only when a test asks for it, is the same VM with eth0 on
a tap in a network namespace of its own (Netns), an mtu of GUEST_MTU, MMDS V2 on eth0 and
the guest at GUEST_IP with a route to MMDS; its restores run in a namespace of theirs and
get that namespace's tap through `network_overrides`. The plain golden has no network
device, so its restores need neither root nor namespaces."""
import atexit
import os
import re
import shutil
import socket
import subprocess
import tempfile
import threading
import time

from contextlib import nullcontext

from run import Fail, Skip, check, secs
from test_api import Ember
from test_devices_net import ip, net_skip_reason
from test_linux import needs_linux_user_space

CMDLINE = "console=ttyS0 reboot=k panic=1 pci=off"
SCRATCH_MIB = 16
RO_BYTES = 1 << 20
PROMPT_LINE = "ember-guest: shell on the console"
BOOT_TRIES = 2
# Shell.power's name for Firecracker's SendCtrlAltDel action (not a shell command).
CTRL_ALT_DEL = "SendCtrlAltDel"
# The net golden's link: the guest's eth0 and the host's tap in each test's namespace.
GUEST_MAC = "06:00:ac:10:00:02"
GUEST_IP, HOST_IP, MMDS_IP = "10.0.0.2", "10.0.0.1", "169.254.169.254"
# Advertised to the guest (VIRTIO_NET_F_MTU); below the tap's 1500, so nothing else changes.
GUEST_MTU = 1400
KERNEL_LINE = re.compile(rb"\[ *\d+\.\d{6}\] [^\n]*\n")
_golden = {}
_seq = [0]


class Shell(Ember):
    """An ember process serving the API, its serial console a Linux shell."""

    def __init__(self, tmp, name, ns=None):
        self.dir = tmp
        self.name = name
        super().__init__(tmp, sock_name=name + ".api.sock", prefix=ns.prefix if ns else ())

    def sh(self, line, timeout=30):
        """Type `line` at the shell; return what it printed (without carriage returns)."""
        _seq[0] += 1
        a = 1000 + 2 * _seq[0]
        with self.lock:
            mark = len(self.out)
        # $((N+0)): the echo of the typed line holds the sum, the output its value.
        sep = " " if line.rstrip().endswith("&") else "; "
        self.send("echo @@$((%d+0))@@; %s%secho @@$((%d+0))@@\n" % (a, line, sep, a + 1))
        want = re.compile(rb"@@%d@@\r?\n(.*?)@@%d@@" % (a, a + 1), re.S)
        end = time.time() + secs(timeout)
        while time.time() < end:
            with self.lock:
                # The kernel's own console lines (a clone's "crng reseeded due to virtual
                # machine fork") may land anywhere in the shell's output, even mid-line.
                m = want.search(KERNEL_LINE.sub(b"", self.out[mark:]))
            if m:
                return m.group(1).decode(errors="replace").replace("\r", "")
            if self.p.poll() is not None:
                break
            time.sleep(0.02)
        raise Fail("%s: no answer to %r (ember status %s); console: %r; stderr: %s" % (
            self.name, line, self.p.poll(), self.out[-600:], self.stderr()[-1000:]))

    def value(self, line, pattern, timeout=30):
        """The first match of `pattern` (one group) in what `line` printed."""
        out = self.sh(line, timeout)
        m = re.search(pattern, out, re.M)
        check(m, "%s: %r printed %r, no /%s/" % (self.name, line, out, pattern))
        return m.group(1)

    def count(self):
        return int(self.value("cat /tmp/count", r"^(\d+)$"))

    def carries_on_from(self, n, timeout=15):
        """The guest's counter read n before a snapshot: check it did not go back, wait for
        it to go past n; returns its value then."""
        c = self.count()
        check(c >= n, "%s: the counter went back: %d, it was %d before the snapshot" %
              (self.name, c, n))
        end = time.time() + secs(timeout)
        while c <= n and time.time() < end:
            time.sleep(0.5)
            c = self.count()
        check(c > n, "%s: the counter stayed at %d, not past %d" % (self.name, c, n))
        return c

    def snapshot(self, state, mem, kind="Full"):
        """Pause, then write a snapshot (the VM stays paused)."""
        self.expect("PATCH", "/vm", {"state": "Paused"}, 204)
        self.expect("PUT", "/snapshot/create", {"snapshot_type": kind, "snapshot_path": state,
                                                "mem_file_path": mem}, 204)

    def power(self, command, timeout=60):
        """Type a power command (poweroff, reboot), or press Ctrl-Alt-Del through the API
        (CTRL_ALT_DEL); return ember's exit status."""
        if command == CTRL_ALT_DEL:
            self.expect("PUT", "/actions", {"action_type": "SendCtrlAltDel"}, 204)
        else:
            self.send(command + "\n")
        try:
            return self.wait(timeout)
        except subprocess.TimeoutExpired:
            raise Fail("%s: ember still runs %d s after %r; console: %r" % (
                self.name, secs(timeout), command, self.out[-600:]))


def golden(kind="plain"):
    """The golden snapshot of this run for `kind` ("plain"; "net": the same VM with eth0 on
    a tap, MMDS V2 on it, the guest at GUEST_IP): booted on the first call. A dict: kind,
    dir, state, mem, scratch (the pristine image), ro (path), ro_bytes, count (the counter
    just before the snapshot), boot_s."""
    g = _golden.setdefault(kind, {})
    if g.get("error"):
        raise Fail("the %s golden boot failed earlier in this run: %s" % (kind, g["error"]))
    if g:
        return g
    d = needs_linux_user_space()
    tmp = tempfile.mkdtemp(prefix="ember-linux-shell-")
    atexit.register(shutil.rmtree, tmp, True)
    scratch, ro = os.path.join(tmp, "scratch.ext4"), os.path.join(tmp, "ro.img")
    # Inode tables and journal written now: the guest's ext4 has nothing to do lazily.
    subprocess.run(["mkfs.ext4", "-q", "-F", "-E", "lazy_itable_init=0,lazy_journal_init=0",
                    scratch, "%dM" % SCRATCH_MIB], check=True, stdout=subprocess.DEVNULL)
    ro_bytes = os.urandom(RO_BYTES)
    with open(ro, "wb") as f:
        f.write(ro_bytes)
    t0 = time.time()
    # A second try if the first boot does not reach the shell: in the KVM sandbox an early
    # boot sometimes stops (seen once: no kernel output after its ACPI tables), and every
    # test of the run hangs on this one boot.
    failures = []
    for attempt in range(BOOT_TRIES):
        try:
            with Netns("g%d" % attempt) if kind == "net" else nullcontext() as ns:
                b = boot_golden(tmp, "%s%d" % (kind, attempt), d, scratch, ro, ns)
            break
        except Fail as e:
            failures.append("boot %d: %s" % (attempt + 1, str(e)[:1500]))
            print("  linux shell: %s" % failures[-1], flush=True)
    else:
        g["error"] = "\n".join(failures)
        raise Fail(g["error"])
    g.update(b, kind=kind, dir=tmp, scratch=scratch, ro=ro, ro_bytes=ro_bytes,
             boot_s=time.time() - t0)
    print("  linux shell: %s golden booted and snapshotted at the prompt in %.1f s (counter "
          "at %d)" % (kind, g["boot_s"], g["count"]), flush=True)
    return g


BALLOON = {"amount_mib": 0, "deflate_on_oom": False, "stats_polling_interval_s": 1}


def start_shell(tmp, name, d, scratch, ro, ns=None, mmds="V2", vcpus=2, mem_mib=256,
                balloon=None, cache=None, hotplug=None, cmdline=CMDLINE, dirty=False,
                engine=None):
    """A Linux booted through the API to its shell prompt: `vcpus` vCPUs, `mem_mib` MiB,
    the scratch and read-only drives (none if `scratch` is None; `cache` maps a drive id
    to its cache_type, `engine` to its io_engine), vsock, entropy, a balloon (BALLOON
    unless `balloon` is given); with `ns` (a Netns) also eth0 on its tap, MMDS `mmds` on
    eth0 and the guest at GUEST_IP; with `hotplug` (a PUT /hotplug/memory body) a memory
    hotplug area, and `cmdline` for the boot arguments; `dirty` turns on
    track_dirty_pages. Returns the Shell; the caller closes it."""
    e = Shell(tmp, name, ns)
    try:
        machine = {"vcpu_count": vcpus, "mem_size_mib": mem_mib}
        if dirty:
            machine["track_dirty_pages"] = True
        e.expect("PUT", "/machine-config", machine, 204)
        e.expect("PUT", "/boot-source", {
            "kernel_image_path": os.path.join(d, "vmlinux"),
            "initrd_path": os.path.join(d, "initramfs.cpio.gz"), "boot_args": cmdline}, 204)
        drives = (("scratch", scratch, False), ("ro", ro, True)) if scratch else ()
        for drive_id, path, read_only in drives:
            body = {"drive_id": drive_id, "path_on_host": path, "is_root_device": False,
                    "is_read_only": read_only}
            if cache and drive_id in cache:
                body["cache_type"] = cache[drive_id]
            if engine and drive_id in engine:
                body["io_engine"] = engine[drive_id]
            e.expect("PUT", "/drives/" + drive_id, body, 204)
        e.expect("PUT", "/vsock", {"guest_cid": 3,
                                   "uds_path": os.path.join(tmp, name + ".vsock")}, 204)
        e.expect("PUT", "/entropy", {}, 204)
        # Without deflate_on_oom the guest takes ballooned pages out of MemTotal.
        e.expect("PUT", "/balloon", balloon or BALLOON, 204)
        if hotplug:
            e.expect("PUT", "/hotplug/memory", hotplug, 204)
        if ns:
            e.expect("PUT", "/network-interfaces/eth0", {
                "iface_id": "eth0", "host_dev_name": ns.tap, "guest_mac": GUEST_MAC,
                "mtu": GUEST_MTU}, 204)
            e.expect("PUT", "/mmds/config", {"version": mmds,
                                              "network_interfaces": ["eth0"]}, 204)
        e.expect("PUT", "/actions", {"action_type": "InstanceStart"}, 204)
        e.wait_output(PROMPT_LINE, timeout=20)  # under a second on hardware KVM
        if ns:
            e.sh("ip link set eth0 up && ip addr add %s/24 dev eth0 && "
                 "ip route add %s dev eth0" % (GUEST_IP, MMDS_IP))
    except BaseException:
        e.close()
        raise
    return e


def boot_golden(tmp, name, d, scratch, ro, ns):
    e = start_shell(tmp, name, d, scratch, ro, ns)
    try:
        # Written aside and renamed: a `cat` never finds the file truncated and not yet
        # written (seen once in 20 restores when it was written in place).
        e.sh("echo 0 >/tmp/count; (i=0; while :; do i=$((i+1)); echo $i >/tmp/count.new; "
             "mv /tmp/count.new /tmp/count; sleep 1; done) &")
        count = e.carries_on_from(0)
        state, mem = os.path.join(tmp, name + ".state"), os.path.join(tmp, name + ".mem")
        e.snapshot(state, mem)
        return {"state": state, "mem": mem, "count": count}
    finally:
        e.close()


def restore(tmp, name, state=None, mem=None, uffd=None, scratch=None, diff=False, g=None,
            ns=None):
    """A new ember process restored from a snapshot (the golden one unless given), resumed,
    with its own vsock socket and a scratch drive (its own copy of the pristine image
    unless given). With `ns` (a Netns; needs the net golden) it runs in that namespace
    and eth0 is overridden to the namespace's tap. Returns the Shell; the caller closes
    it."""
    g = g or golden()
    if scratch is None:
        scratch = os.path.join(tmp, name + ".scratch.ext4")
        copy(g["scratch"], scratch)
    backend = {"backend_type": "Uffd", "backend_path": uffd} if uffd else \
        {"backend_type": "File", "backend_path": mem or g["mem"]}
    s = Shell(tmp, name, ns)
    s.scratch = scratch
    body = {"snapshot_path": state or g["state"], "mem_backend": backend, "resume_vm": True,
            "enable_diff_snapshots": diff,
            "vsock_override": {"uds_path": os.path.join(tmp, name + ".vsock")},
            "drive_overrides": [{"drive_id": "scratch", "path_on_host": scratch}]}
    if ns:
        body["network_overrides"] = [{"iface_id": "eth0", "host_dev_name": ns.tap}]
    try:
        s.expect("PUT", "/snapshot/load", body, 204)
    except BaseException:
        s.close()
        raise
    return s


class Netns:
    """A network namespace of this test run with one tap in it (up), deleted on close; the
    host's end of the guest's link, at HOST_IP unless given another address."""

    def __init__(self, name, host_ip=HOST_IP):
        why = net_skip_reason()
        if why:
            raise Skip(why)
        self.name = "ember-%d-%s" % (os.getpid(), name)
        self.tap = "tap-" + name[:11]
        ip("netns", "add", self.name)
        try:
            ip("-n", self.name, "link", "set", "lo", "up")
            ip("-n", self.name, "tuntap", "add", "dev", self.tap, "mode", "tap")
            ip("-n", self.name, "addr", "add", host_ip + "/24", "dev", self.tap)
            ip("-n", self.name, "link", "set", self.tap, "up")
        except BaseException:
            self.close()
            raise
        self.prefix = ("ip", "netns", "exec", self.name)

    def run(self, *args, timeout=30):
        """A command run to its end inside the namespace."""
        return subprocess.run([*self.prefix, *args], capture_output=True, text=True,
                              timeout=secs(timeout))

    def close(self):
        ip("netns", "delete", self.name, check_rc=False)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def copy(src, dst):
    """A copy keeping holes and the snapshot id (extended attribute) of a memory file."""
    subprocess.run(["cp", "--sparse=always", "--preserve=xattr", src, dst], check=True)


def echo_listener(path, got):
    """A host listener on `path` (the guest's vsock connections to one port, at the
    vsock's uds_path + "_" + port): accepts one, echoes it back as it comes, appends what
    came to `got`. Returns its thread."""
    lst = socket.socket(socket.AF_UNIX)
    lst.bind(path)
    lst.listen(1)
    lst.settimeout(secs(30))

    def serve():
        try:
            c, _ = lst.accept()
            c.settimeout(secs(30))
            while True:
                b = c.recv(65536)
                if not b:
                    break
                got.extend(b)
                c.sendall(b)
            c.close()
        except OSError as e:
            got.extend(("listener: %s" % e).encode())
        finally:
            lst.close()
    t = threading.Thread(target=serve, daemon=True)
    t.start()
    return t
