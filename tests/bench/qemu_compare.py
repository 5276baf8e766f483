"""QEMU's figures beside ember's in the targets table (bench_targets.py): QEMU's microvm
machine on this host's KVM, driven over QMP. The test guest cannot boot in QEMU (an ELF
without a PVH note, which QEMU's -kernel requires), so QEMU's guest here never runs
guest code: its memory is a file QEMU maps (half of it written with data beforehand), and
what is timed is QEMU's own work: `migrate` to a file, `-incoming` from it, its RSS."""
import json
import os
import shutil
import socket
import subprocess
import time

WHY_NO_BOOT = "QEMU cannot boot the test guest (ELF without a PVH note)"


def available():
    """None if QEMU can make a KVM VM here, else why not."""
    if not shutil.which("qemu-system-x86_64"):
        return "qemu-system-x86_64 not installed"
    r = subprocess.run(["qemu-system-x86_64", "-M", "microvm", "-accel", "kvm", "-S",
                        "-display", "none", "-nodefaults", "-no-user-config", "-qmp", "stdio"],
                       input='{"execute":"qmp_capabilities"}\n{"execute":"quit"}\n',
                       capture_output=True, text=True, timeout=30)
    return None if '"return"' in r.stdout else "QEMU's KVM accel fails: " + r.stderr[-200:]


class Qemu:
    """One QEMU process with a QMP socket; guest memory from `mem_file` (shared)."""

    def __init__(self, tmp, mib, mem_file, incoming=False):
        self.sock = os.path.join(tmp, "qmp.%d.sock" % time.monotonic_ns())
        argv = ["qemu-system-x86_64", "-M", "microvm,rtc=off,memory-backend=m", "-accel", "kvm",
                "-m", "%dM" % mib, "-object",
                "memory-backend-file,id=m,size=%dM,mem-path=%s,share=on" % (mib, mem_file),
                "-display", "none", "-nodefaults", "-no-user-config", "-S",
                "-qmp", "unix:%s,server=on,wait=off" % self.sock]
        if incoming:
            argv += ["-incoming", "defer"]
        self.p = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        end = time.time() + 30
        while not os.path.exists(self.sock):
            if self.p.poll() is not None or time.time() > end:
                raise SystemExit("qemu did not start: %s" % self.p.stderr.read()[-500:])
            time.sleep(0.01)
        self.s = socket.socket(socket.AF_UNIX)
        self.s.connect(self.sock)
        self.f = self.s.makefile("rw")
        self.f.readline()  # greeting
        self.cmd("qmp_capabilities")

    def cmd(self, name, **args):
        self.f.write(json.dumps({"execute": name, "arguments": args}) + "\n")
        self.f.flush()
        while True:
            msg = json.loads(self.f.readline())
            if "return" in msg:
                return msg["return"]
            if "error" in msg:
                raise SystemExit("qemu %s: %s" % (name, msg["error"]))

    def wait_migration(self, timeout=120):
        end = time.time() + timeout
        while time.time() < end:
            st = self.cmd("query-migrate").get("status")
            if st == "completed":
                return
            if st == "failed":
                raise SystemExit("qemu: migration failed")
            time.sleep(0.0005)
        raise SystemExit("qemu: migration did not end")

    def rss_mib(self, beyond):
        """RSS in MiB, less what QEMU maps of the file `beyond` (its guest memory)."""
        total, guest, in_guest = 0, 0, False
        with open("/proc/%d/smaps" % self.p.pid) as f:
            for line in f:
                head = line.split()
                if "-" in head[0] and len(head) >= 5 and not head[0].endswith(":"):
                    in_guest = len(head) >= 6 and head[5] == beyond
                elif head[0] == "Rss:":
                    total += int(head[1])
                    guest += int(head[1]) if in_guest else 0
        return (total - guest) / 1024

    def close(self):
        try:
            self.cmd("quit")
        except (OSError, ValueError, SystemExit):
            pass
        try:
            self.p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait()
        self.s.close()
        self.p.stderr.close()


def memory_file(path, mib, data_mib):
    """A guest memory file of mib MiB whose first data_mib MiB hold non-zero data."""
    with open(path, "wb") as f:
        f.truncate(mib << 20)
        chunk = os.urandom(1 << 20)
        for _ in range(data_mib):
            f.write(chunk)


def save(tmp, mib, data_mib, runs):
    """`migrate` to a file (no fsync: the page cache rate): ms per run."""
    mem = os.path.join(tmp, "qemu-guest.%d" % mib)
    memory_file(mem, mib, data_mib)
    q, out = Qemu(tmp, mib, mem), []
    # QEMU caps a migration at 128 MiB/s unless told otherwise: uncapped, as ember is.
    q.cmd("migrate-set-parameters", **{"max-bandwidth": 1 << 40})
    try:
        for i in range(runs):
            dst = os.path.join(tmp, "qemu-state.%d" % (i % 2))
            if os.path.exists(dst):
                os.unlink(dst)
            t0 = time.perf_counter()
            q.cmd("migrate", uri="exec:cat > %s" % dst)
            q.wait_migration()
            out.append((time.perf_counter() - t0) * 1000)
            q.cmd("cont")  # out of postmigrate, or the next migrate is refused
    finally:
        q.close()
        os.unlink(mem)
    return out


def restore(tmp, mib, runs):
    """`-incoming` from a migration file of a mib MiB guest with 16 MiB of data: ms from
    the migrate-incoming command to the VM running, per run, and QEMU's RSS beyond the
    guest memory it maps (ms, rss lists); also that RSS of a fresh QEMU at start."""
    mem = os.path.join(tmp, "qemu-guest.%d" % mib)
    memory_file(mem, mib, 16)
    state = os.path.join(tmp, "qemu-state.r%d" % mib)
    q = Qemu(tmp, mib, mem)
    booted = q.rss_mib(mem)  # nothing of the guest touched yet: QEMU's own memory
    q.cmd("migrate", uri="exec:cat > %s" % state)
    q.wait_migration()
    q.close()
    times, rss = [], []
    try:
        for _ in range(runs):
            q = Qemu(tmp, mib, mem, incoming=True)
            try:
                t0 = time.perf_counter()
                q.cmd("migrate-incoming", uri="exec:cat %s" % state)
                q.wait_migration()
                q.cmd("cont")
                times.append((time.perf_counter() - t0) * 1000)
                rss.append(q.rss_mib(mem))
            finally:
                q.close()
    finally:
        os.unlink(mem)
        os.unlink(state)
    return times, rss, booted
