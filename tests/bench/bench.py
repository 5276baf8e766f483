#!/usr/bin/env python3
"""ember benchmarks: start-up, readiness, memory overhead, page-touch rate.

Prints a table of median, min and max over --runs runs (default 10)."""
import argparse
import os
import re
import statistics
import subprocess
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def run_ready(ember, tmp):
    """Spawn ember on a guest that powers off right after its ready line.
    Returns (ms from spawn to the ready line, ms from ember's main to first KVM_RUN)."""
    d = os.path.join(tmp, "ready.lua")
    with open(d, "w") as f:
        f.write('return ember.vm { kernel = ember.guest.test_kernel, cmdline = "poweroff",\n'
                '  on_exit = function(vm) io.stderr:write(string.format(\n'
                '    "BENCH first_run_ms %.3f\\n", vm:times().first_run_ms)) end }\n')
    t0 = time.perf_counter()
    p = subprocess.Popen([ember, "run", d], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    ready = None
    buf = b""
    while True:
        chunk = p.stdout.read1(4096)
        if not chunk:
            break
        buf += chunk
        if ready is None and b"ready cpus=" in buf:
            ready = (time.perf_counter() - t0) * 1000
    err = p.stderr.read().decode()
    p.wait()
    m = re.search(r"BENCH first_run_ms ([\d.]+)", err)
    if p.returncode != 0 or ready is None or not m:
        raise SystemExit("bench: ready run failed (%d): %s" % (p.returncode, err))
    return ready, float(m.group(1))


def run_script(ember, mib, pages):
    r = subprocess.run([ember, "run", os.path.join(HERE, "guest.lua"), str(mib), str(pages)],
                       capture_output=True, text=True, timeout=120)
    if r.returncode != 0:
        raise SystemExit("bench: guest.lua failed: %s" % r.stderr)
    return {k: float(v) for k, v in re.findall(r"BENCH (\S+) ([\d.]+)", r.stdout)}


def run_snapshot_bench(ember, tmp, runs):
    r = subprocess.run([ember, "run", os.path.join(HERE, "snapshot.lua"), tmp, str(runs)],
                       capture_output=True, text=True, timeout=600)
    if r.returncode != 0:
        raise SystemExit("bench: snapshot.lua failed: %s" % r.stderr)
    out = {}
    for k, v in re.findall(r"BENCH (\S+) ([\d.]+)", r.stdout):
        out.setdefault(k, []).append(float(v))
    return out


def row(name, values, unit):
    return "| %-46s | %10.2f | %10.2f | %10.2f | %-8s |" % (
        name, statistics.median(values), min(values), max(values), unit)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ember", required=True)
    ap.add_argument("--runs", type=int, default=10)
    args = ap.parse_args()
    ember = os.path.abspath(args.ember)
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.runs):
            ready, first = run_ready(ember, tmp)
            results.setdefault("ready", []).append(ready)
            results.setdefault("first_run", []).append(first)
        snap = run_snapshot_bench(ember, tmp, args.runs)
    for mib in (128, 1024):
        for _ in range(args.runs):
            for k, v in run_script(ember, mib, 16384).items():
                results.setdefault(k + ("" if k.endswith(str(mib)) else "@%d" % mib),
                                   []).append(v)
    print("ember benchmarks, %d runs each (test guest, this host's KVM)" % args.runs)
    print("| %-46s | %10s | %10s | %10s | %-8s |" % ("measure", "median", "min", "max", "unit"))
    print("|" + "-" * 48 + "|" + ("-" * 12 + "|") * 3 + "-" * 10 + "|")
    print(row("ember main() to first KVM_RUN", results["first_run"], "ms"))
    print(row("spawn to test guest ready line", results["ready"], "ms"))
    for mib in (128, 1024):
        print(row("ember RSS beyond guest memory, %d MiB guest" % mib,
                  results["overhead_mib_%d" % mib], "MiB"))
    print(row("guest page touch rate (64 MiB, 4 KiB pages)",
              [v / 1000 for v in results["touch_pages_per_s@128"]], "kpage/s"))
    print(row("full snapshot, 256 MiB guest, 128 MiB touched", snap["full_snapshot_ms"], "ms"))
    print(row("snapshot write rate (touched memory, fsync)", snap["snapshot_mib_per_s"],
              "MiB/s"))
    print(row("diff snapshot, 4 MiB dirtied", snap["diff_snapshot_4mib_ms"], "ms"))
    print(row("restore from file (state + mmap + KVM)", snap["restore_file_ms"], "ms"))
    print(row("first guest answer after restore (sum 16)",
              snap["first_sum16_after_restore_ms"], "ms"))


if __name__ == "__main__":
    main()
