"""The Linux rows of `make bench` where Linux user space runs (hardware KVM, the KVM
sandbox): the microVM kernel with the busybox initramfs, driven at its shell over the
serial console as the integration tests drive it (tests/integration/linux_shell.py),
beside QEMU's microvm machine on the same KVM booting the same kernel and initramfs with
the same command line (qemu_linux.py). Every figure is timed from here, the same way for
both: from process spawn to the shell's answer to `echo $((6*7))`. Snapshots go through
Lua (linux_snapshot.lua), where ember reports its fsync apart; QEMU's `migrate` to a file
has no fsync, so it stands beside ember's time without its fsync.

Differences kept: ember's VM has the devices linux_shell gives it (a scratch and a
read-only drive, vsock, entropy, balloon), QEMU's has only its serial port; the API
socket is polled every 20 ms (linux_shell), QEMU's QMP socket every 10 ms."""
import argparse
import datetime
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "integration"))
import run as harness  # noqa: E402 (the integration harness linux_shell runs under)
import linux_shell  # noqa: E402
import bench_targets  # noqa: E402
import bench_linux_net  # noqa: E402
import qemu_compare  # noqa: E402
from qemu_linux import QemuShell  # noqa: E402
from smaps import mappings  # noqa: E402

MIB = 256
CLONES = 5


def answered(shell):
    """The shell's first answer: `echo $((6*7))` prints 42."""
    out = shell.sh("echo $((6*7))")
    if out.strip() != "42":
        raise SystemExit("bench: %s answered %r to echo $((6*7))" % (shell.name, out))


def rss_beyond_mib(pid, guest_bytes):
    """The RSS of process `pid` less that of its guest memory: the mapping exactly the
    guest's size (ember's anonymous memory or its memory file, QEMU's RAM)."""
    maps = mappings(pid)
    if not any(size == guest_bytes for size, _, _ in maps):
        raise SystemExit("bench: process %d maps no %d-byte guest memory" % (pid, guest_bytes))
    return sum(f.get("Rss", 0) for size, _, f in maps if size != guest_bytes) / 1024


def note(what, ms):
    """A progress line on stderr: a run that fails later still shows what it measured."""
    print("  linux bench: %s %.1f ms" % (what, ms), file=sys.stderr, flush=True)


def timed(start):
    """(ms from now until start() returns a shell that answered, that shell)."""
    t0 = time.perf_counter()
    shell = start()
    answered(shell)
    ms = (time.perf_counter() - t0) * 1000
    note(shell.name, ms)
    return ms, shell


def at_once(start, n):
    """ms from starting n shells at once (start(i)) to the last one answering."""
    shells, errors = [None] * n, []

    def one(i):
        try:
            shells[i] = start(i)
            answered(shells[i])
        except BaseException as e:  # noqa: B036 (raised again below, after the others)
            errors.append(e)
    threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    ms = (time.perf_counter() - t0) * 1000
    note("%d at once" % n, ms)
    for s in shells:
        if s:
            s.close()
    if errors:
        raise errors[0]
    return ms


class Ember:
    """ember's side: boots through the API (linux_shell.start_shell), snapshots through
    Lua, restores through the API (linux_shell.restore), File and ember-uffd."""

    def __init__(self, ember, tmp, linux):
        self.ember, self.tmp, self.linux = ember, tmp, linux
        self.scratch = os.path.join(tmp, "scratch.ext4")
        subprocess.run(["mkfs.ext4", "-q", "-F", "-E", "lazy_itable_init=0,lazy_journal_init=0",
                        self.scratch, "%dM" % linux_shell.SCRATCH_MIB], check=True,
                       stdout=subprocess.DEVNULL)
        self.ro = os.path.join(tmp, "ro.img")
        with open(self.ro, "wb") as f:
            f.write(os.urandom(linux_shell.RO_BYTES))
        self.seq = 0

    def name(self, what):
        self.seq += 1
        return "%s%d" % (what, self.seq)

    def boot(self):
        return timed(lambda: linux_shell.start_shell(
            self.tmp, self.name("boot"), self.linux, self.scratch, self.ro, vcpus=1,
            mem_mib=MIB))

    def snapshot(self, shell):
        """The paused shell's snapshot, which the restores load."""
        self.state, self.mem = (os.path.join(self.tmp, "linux." + x) for x in ("state", "mem"))
        shell.snapshot(self.state, self.mem)

    def snapshots(self, mib, runs):
        return bench_targets.lua(self.ember, [os.path.join(HERE, "linux_snapshot.lua"),
                                              self.tmp, str(mib), str(runs), self.linux])

    def restore(self, uffd=None):
        """A restored shell (its own copy of the scratch drive, made beforehand)."""
        name = self.name("restore")
        scratch = os.path.join(self.tmp, name + ".scratch.ext4")
        linux_shell.copy(self.scratch, scratch)
        return lambda: linux_shell.restore(self.tmp, name, self.state, self.mem, uffd=uffd,
                                           scratch=scratch, g={"scratch": self.scratch})

    def restore_file(self):
        ms, s = timed(self.restore())
        rss = rss_beyond_mib(s.p.pid, MIB << 20)
        s.close()
        return ms, rss

    def restore_uffd(self):
        def through(args):  # bench_targets' ember-uffd serving self.mem on args[2]
            ms, s = timed(self.restore(uffd=args[2]))
            rss = rss_beyond_mib(s.p.pid, MIB << 20)
            s.close()
            return ms, rss
        return bench_targets.uffd_restore(self.ember, self.tmp, self.state, self.mem, through)

    def clones(self):
        starts = [self.restore() for _ in range(CLONES)]
        return at_once(lambda i: starts[i](), CLONES)


class Qemu:
    """QEMU's side: boots, `migrate` to a file of the stopped guest, `-incoming` from it."""

    def __init__(self, tmp, linux):
        self.tmp, self.linux, self.seq = tmp, linux, 0
        self.state = os.path.join(tmp, "qemu-linux.state")

    def shell(self, mib, incoming=False):
        self.seq += 1
        return QemuShell(self.tmp, "qemu%d" % self.seq, self.linux, mib, incoming=incoming)

    def boot(self, mib=MIB):
        def start():
            q = self.shell(mib)
            q.wait_output(linux_shell.PROMPT_LINE, timeout=20)
            return q
        return timed(start)

    def migrations(self, q, runs, keep=None):
        """runs migrations of the booted q: (ms each, file MiB); the last file kept as
        `keep` (the restores' state)."""
        out, path = [], os.path.join(self.tmp, "qemu-migrate")
        # QEMU caps a migration's bandwidth unless told otherwise: uncapped, as ember is.
        q.cmd("migrate-set-parameters", **{"max-bandwidth": 1 << 40})
        for _ in range(runs):
            if os.path.exists(path):
                os.unlink(path)
            out.append(q.migrate_stopped(path))
        mib = os.stat(path).st_size / 2**20
        note("QEMU migrations %s, file MiB" % out, mib)
        if keep:
            os.rename(path, keep)
        else:
            os.unlink(path)
        return out, mib

    def incoming(self):
        q = self.shell(MIB, incoming=True)
        q.incoming(self.state)
        return q

    def restore(self):
        ms, q = timed(self.incoming)
        rss = rss_beyond_mib(q.p.pid, MIB << 20)
        q.close()
        return ms, rss

    def clones(self):
        return at_once(lambda i: self.incoming(), CLONES)


def host_kind():
    if os.environ.get("EMBER_IN_SANDBOX"):
        return ("the KVM sandbox (QEMU TCG, AMD SVM without nested paging, kvm_amd) on a host "
                "whose own KVM emulates (kvm_pvm)")
    return "hardware KVM"


def qemu_version():
    r = subprocess.run(["qemu-system-x86_64", "--version"], capture_output=True, text=True)
    return r.stdout.split("\n")[0].replace("QEMU emulator version ", "QEMU ")


def cell(values, fmt="%.1f"):
    if not values:
        return "-"
    return (fmt + " (" + fmt + "-" + fmt + ")") % (statistics.median(values), min(values),
                                                   max(values))


def table_row(name, ember, unit, qemu=None, why=""):
    """One row: ember's and QEMU's median (min-max) in `unit`, ember/QEMU of the medians."""
    ratio = "%.2f" % (statistics.median(ember) / statistics.median(qemu)) if qemu else ""
    print("| %s | %s %s | %s | %s |" % (name, cell(ember), unit,
                                       cell(qemu) + " " + unit if qemu else why, ratio))


def run(ember, runs):
    """Measure and print the Linux table: 3 runs at most (a Linux boot takes 11-25 s in
    the sandbox, QEMU's 1 GiB migration up to 40 s)."""
    harness.ARGS = argparse.Namespace(ember=ember, sanitizer=False, k=None)
    harness.TIME_SCALE = float(os.environ.get("EMBER_TEST_TIME_SCALE") or "10")
    os.environ["EMBER_TEST_TIME_SCALE"] = "%g" % harness.TIME_SCALE
    linux = linux_shell.needs_linux_user_space()
    qemu_why = qemu_compare.available()
    n = min(runs, 3)
    r = {}
    with tempfile.TemporaryDirectory() as tmp:
        e, q = Ember(ember, tmp, linux), Qemu(tmp, linux)
        for i in range(n):
            ms, s = e.boot()
            r.setdefault("boot", []).append(ms)
            r.setdefault("rss_booted", []).append(rss_beyond_mib(s.p.pid, MIB << 20))
            if i == n - 1:
                e.snapshot(s)
            s.close()
        for mib in (MIB, 1024):
            r[mib] = e.snapshots(mib, n)
            note("ember full snapshots of %d MiB: %s, fsync %s, MiB" % (
                mib, r[mib]["full_ms"], r[mib]["full_sync_ms"]), r[mib]["full_mib"][0])
        for _ in range(n):
            for kind, restore in (("file", e.restore_file), ("uffd", e.restore_uffd)):
                ms, rss = restore()
                r.setdefault(kind, []).append(ms)
                r.setdefault("rss_" + kind, []).append(rss)
        r["clones"] = [e.clones() for _ in range(n)]
        if not qemu_why:
            for i in range(n):
                ms, s = q.boot()
                r.setdefault("q_boot", []).append(ms)
                r.setdefault("q_rss_booted", []).append(rss_beyond_mib(s.p.pid, MIB << 20))
                if i == n - 1:
                    r["q_mig", MIB] = q.migrations(s, n, keep=q.state)
                s.close()
            _, s = q.boot(1024)
            r["q_mig", 1024] = q.migrations(s, n)
            s.close()
            for _ in range(n):
                ms, rss = q.restore()
                r.setdefault("q_file", []).append(ms)
                r.setdefault("q_rss_file", []).append(rss)
            r["q_clones"] = [q.clones() for _ in range(n)]
    print_table(r, n, qemu_why)
    bench_linux_net.run(ember)  # TCP through the tap, offloads off and on


def print_table(r, n, qemu_why):
    q = (lambda k: r.get(k)) if not qemu_why else (lambda k: None)
    qname = qemu_version() + " microvm, KVM" if not qemu_why else "QEMU"
    print("\nLinux guest at its shell: microVM kernel + busybox initramfs, 1 vCPU, %d MiB unless "
          "said; on %s, %s UTC; %d runs each" % (
              MIB, host_kind(), datetime.datetime.utcnow().strftime("%Y-%m-%d %H:%M"), n))
    print("| figure: median (min-max) | ember | %s | ember/QEMU |" % qname)
    print("|---|---|---|---|")
    why = qemu_why or ""
    table_row("spawn to the shell's first answer", r["boot"], "ms", q("q_boot"), why)
    for mib in (MIB, 1024):
        s = r[mib]
        nosync = [ms - sync for ms, sync in zip(s["full_ms"], s["full_sync_ms"])]
        mig, mig_mib = q(("q_mig", mib)) or (None, None)
        table_row("full snapshot, %d MiB guest at its shell: with fsync" % mib, s["full_ms"], "ms",
                  why="")
        table_row("  without fsync (QEMU: `migrate` of the stopped guest to a file)", nosync,
                  "ms", mig, why)
        table_row("  of which fsync of memory file + directory syncs", s["full_sync_ms"], "ms")
        rate = [mb / (ms / 1000) for mb, ms in zip(s["full_mib"], nosync)]
        qrate = [mig_mib / (ms / 1000) for ms in mig] if mig else None
        table_row("  rate to the page cache (file data / time without fsync)", rate, "MiB/s",
                  qrate, why)
        table_row("  data written (ember: allocated; QEMU: file size)", s["full_mib"], "MiB",
                  [mig_mib] if mig else None, why)
    table_row("restore, File: spawn to the shell's first answer (QEMU: `-incoming`)",
              r["file"], "ms", q("q_file"), why)
    table_row("restore, Uffd (ember-uffd): spawn to first answer", r["uffd"], "ms",
              why="no such backend")
    table_row("%d clones of one snapshot started at once, to all answering" % CLONES,
              r["clones"], "ms", q("q_clones"), why)
    table_row("RSS beyond guest memory: booted", r["rss_booted"], "MiB", q("q_rss_booted"), why)
    table_row("  restored, File (QEMU: `-incoming`)", r["rss_file"], "MiB", q("q_rss_file"), why)
    table_row("  restored, Uffd", r["rss_uffd"], "MiB", why="")

