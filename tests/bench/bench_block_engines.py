"""The drive rows of `make bench` where Linux user space runs (hardware KVM, the KVM
sandbox): a Linux guest (linux_shell.start_shell, 1 vCPU, 256 MiB) with a 256 MiB raw
scratch drive, once with io_engine Sync (the I/O thread) and once with Async (io_uring),
writes then reads the whole drive with dd and O_DIRECT (oflag=direct / iflag=direct), in
1 MiB and in 4 KiB requests, one request at a time as dd issues them; then four dd
readers at once (4 KiB, 16 MiB each), where several requests are in flight. MB/s (10^6
bytes): the bytes over the time from the host's typing the line at the shell to its
answer (busybox dd reports no time; a shell round trip is milliseconds, a run seconds).

  python3 tests/bench/bench_block_engines.py --ember build/ember [--runs N]
  (on an emulating host, inside the sandbox: tests/sandbox/sandbox.py with-kvm -- ...)"""
import argparse
import datetime
import os
import re
import statistics
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "integration"))
import run as harness  # noqa: E402 (the integration harness linux_shell runs under)
import linux_shell  # noqa: E402

MIB = 1 << 20
DRIVE_MIB = 256
GUEST_MIB = 256
ENGINES = ("Sync", "Async")
RECORDS = re.compile(r"^(\d+)\+0 records out$", re.M)
READERS, READER_MIB = 4, 16


def dd(s, what, nbytes):
    """Run dd in the guest: MB/s over the shell's round trip; every record must go out."""
    t0 = time.perf_counter()
    out = s.sh("dd %s 2>&1" % what, timeout=900)
    took = time.perf_counter() - t0
    m = RECORDS.search(out)
    if not m or "records out" not in out:
        raise SystemExit("bench: dd %s printed %r" % (what, out))
    return nbytes / took / 1e6


def parallel_readers(s):
    """READERS dd readers at once, 4 KiB O_DIRECT, on distinct parts of the drive: MB/s."""
    count = READER_MIB * MIB // 4096
    line = " ".join("dd if=/dev/vda of=/dev/null bs=4k count=%d skip=%d iflag=direct "
                    "2>/dev/null &" % (count, i * count) for i in range(READERS)) + " wait"
    t0 = time.perf_counter()
    s.sh(line, timeout=900)
    return READERS * READER_MIB * MIB / (time.perf_counter() - t0) / 1e6


def measure(tmp, linux, engine, seq):
    """One boot with `engine` on the scratch drive: {row: MB/s}."""
    scratch = os.path.join(tmp, "drive-%s-%d.img" % (engine, seq))
    ro = os.path.join(tmp, "ro.img")
    with open(scratch, "wb") as f:
        f.truncate(DRIVE_MIB * MIB)
    if not os.path.exists(ro):
        with open(ro, "wb") as f:
            f.write(os.urandom(MIB))
    s = linux_shell.start_shell(tmp, "%s%d" % (engine.lower(), seq), linux, scratch, ro,
                                vcpus=1, mem_mib=GUEST_MIB, engine={"scratch": engine})
    r = {}
    try:
        for bs, count in (("1M", DRIVE_MIB), ("4k", DRIVE_MIB * 256)):
            r["write", bs] = dd(s, "if=/dev/zero of=/dev/vda bs=%s count=%d oflag=direct"
                                % (bs, count), DRIVE_MIB * MIB)
            print("  block bench: %s write bs=%s %.1f MB/s" % (engine, bs, r["write", bs]),
                  file=sys.stderr, flush=True)
            r["read", bs] = dd(s, "if=/dev/vda of=/dev/null bs=%s count=%d iflag=direct"
                               % (bs, count), DRIVE_MIB * MIB)
            print("  block bench: %s read bs=%s %.1f MB/s" % (engine, bs, r["read", bs]),
                  file=sys.stderr, flush=True)
        r["readers"] = parallel_readers(s)
    finally:
        s.close()
        os.unlink(scratch)
    return r


def cell(values):
    if len(values) == 1:
        return "%.1f" % values[0]
    return "%.1f (%.1f-%.1f)" % (statistics.median(values), min(values), max(values))


def run(ember, runs):
    """Measure and print the drive table: 2 runs at most (a boot and 1 GiB of 4 KiB
    requests each in the sandbox)."""
    harness.ARGS = argparse.Namespace(ember=ember, sanitizer=False, k=None)
    harness.TIME_SCALE = float(os.environ.get("EMBER_TEST_TIME_SCALE") or "10")
    os.environ["EMBER_TEST_TIME_SCALE"] = "%g" % harness.TIME_SCALE
    linux = linux_shell.needs_linux_user_space()
    n = min(runs, 2)
    got = {e: {} for e in ENGINES}
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(n):
            for engine in ENGINES:
                for k, v in measure(tmp, linux, engine, i).items():
                    got[engine].setdefault(k, []).append(v)
    print("\nLinux guest, %d MiB raw drive, dd with O_DIRECT, MB/s: median (min-max); "
          "%s UTC; %d runs" % (DRIVE_MIB, datetime.datetime.utcnow().strftime(
              "%Y-%m-%d %H:%M"), n))
    print("| figure | io_engine Sync (I/O thread) | io_engine Async (io_uring) | Async/Sync |")
    print("|---|---|---|---|")
    rows = [(("write", "1M"), "write, bs=1M"), (("read", "1M"), "read, bs=1M"),
            (("write", "4k"), "write, bs=4k"), (("read", "4k"), "read, bs=4k"),
            ("readers", "%d readers at once, bs=4k, %d MiB each" % (READERS, READER_MIB))]
    for key, name in rows:
        a, b = got["Sync"][key], got["Async"][key]
        print("| %s | %s | %s | %.2f |" % (name, cell(a), cell(b),
                                           statistics.median(b) / statistics.median(a)))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--ember", required=True)
    p.add_argument("--runs", type=int, default=1)
    a = p.parse_args()
    run(os.path.abspath(a.ember), a.runs)


if __name__ == "__main__":
    main()
