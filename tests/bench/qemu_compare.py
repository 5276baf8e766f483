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

from smaps import mappings

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
    """One QEMU process with a QMP socket; guest memory from `mem_file` (shared), or
    anonymous memory (as with a plain -m) where mem_file is None. Without `guest` (more arguments: a kernel to boot) the
    VM waits stopped (-S); with it, it runs at once."""

    def __init__(self, tmp, mib, mem_file, incoming=False, guest=()):
        self.sock = os.path.join(tmp, "qmp.%d.sock" % time.monotonic_ns())
        backend = ("memory-backend-file,id=m,size=%dM,mem-path=%s,share=on" % (mib, mem_file)
                   if mem_file else "memory-backend-ram,id=m,size=%dM" % mib)
        argv = ["qemu-system-x86_64", "-M", "microvm,rtc=off,memory-backend=m", "-accel", "kvm",
                "-m", "%dM" % mib, "-object", backend,
                "-display", "none", "-nodefaults", "-no-user-config",
                "-qmp", "unix:%s,server=on,wait=off" % self.sock, *(guest or ["-S"])]
        if incoming:
            argv += ["-incoming", "defer"]
        self.p = self.spawn(argv)
        end = time.time() + 30
        self.s = socket.socket(socket.AF_UNIX)
        while True:
            try:  # the socket's file is there a moment before QEMU listens on it
                self.s.connect(self.sock)
                break
            except (FileNotFoundError, ConnectionRefusedError):
                if self.p.poll() is not None or time.time() > end:
                    self.s.close()
                    raise SystemExit("qemu did not start: %s" % self.errors()[-500:])
            time.sleep(0.01)
        self.f = self.s.makefile("rw")
        self.f.readline()  # greeting
        self.cmd("qmp_capabilities")

    def spawn(self, argv):
        """The QEMU process (a subclass may give it a console)."""
        return subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def errors(self):
        """What QEMU wrote to stderr (once it has ended)."""
        return self.p.stderr.read().decode(errors="replace")

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
        maps = mappings(self.p.pid)
        return sum(f.get("Rss", 0) for size, path, f in maps if path != beyond) / 1024

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
        self.release()

    def release(self):
        """Close the pipes to the ended process."""
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
