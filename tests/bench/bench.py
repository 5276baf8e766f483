#!/usr/bin/env python3
"""ember benchmarks: start-up, readiness, memory overhead, page-touch rate, snapshots,
and the Linux boot (bench_linux.py).

Prints a table of median, min and max over --runs runs (default 10); rows measured over
fewer runs (the 1 GiB full snapshots) say how many."""
import argparse
import glob
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

import bench_linux
import bench_targets

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "integration"))
import test_snapshot_soak  # noqa: E402 (the soak's script, timed here)


def run_soak(ember, tmp, cycles):
    """The suite's soak script (fill, checksum, snapshot full or diff + merge, restore
    through File or Uffd, checksum and check) for `cycles` cycles: {kind: [ms per cycle]}
    and the pages compared per cycle."""
    script = os.path.join(tmp, "soak.lua")
    with open(script, "w") as f:
        f.write(test_snapshot_soak.SOAK % {"t": 30})
    uffd = os.path.join(os.path.dirname(ember), "ember-uffd")
    r = subprocess.run([ember, "run", script, tmp, uffd, str(cycles)], capture_output=True,
                       text=True, timeout=60 + cycles * 10)
    if r.returncode != 0:
        raise SystemExit("soak: status %d: %s" % (r.returncode, r.stderr[-2000:]))
    out, pages = {}, []
    for m in re.finditer(r"^cycle \d+ (\w+) (\w+) ([\d.]+) ms (\d+) pages$", r.stdout, re.M):
        out.setdefault("%s, %s" % (m.group(1), m.group(2)), []).append(float(m.group(3)))
        pages.append(int(m.group(4)))
    return out, pages


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


SIZES = ((128, None), (1024, None))  # guest MiB, cap on full-snapshot runs (None: --runs)


def bench_lua(ember, args, timeout):
    r = subprocess.run([ember, "run", *args], capture_output=True, text=True, timeout=timeout)
    if r.returncode != 0:
        raise SystemExit("bench: %s failed (%d): %s" % (os.path.basename(args[0]),
                                                       r.returncode, r.stderr))
    out = {}
    for k, v in re.findall(r"BENCH (\S+) ([\d.]+)", r.stdout):
        out.setdefault(k, []).append(float(v))
    return out


def restore_once(ember, tmp, state, mem, kind):
    """One restore in a fresh ember process; for uffd through ember-uffd."""
    script = os.path.join(HERE, "restore.lua")
    if kind == "file":
        return bench_lua(ember, [script, state, mem, "file"], 60)
    return bench_targets.uffd_restore(ember, tmp, state, mem, lambda a: bench_lua(ember, a, 60))


def file_sizes(path):
    st = os.stat(path)
    return st.st_size / 2**20, st.st_blocks * 512 / 2**20


def run_snapshot_sizes(ember, mib, runs, full_runs):
    """Full snapshots (full_runs), diff snapshots and File / Uffd restores (runs each) of a
    mib MiB test guest with half its memory filled, and the sizes of the memory files."""
    res = {}
    with tempfile.TemporaryDirectory() as tmp:
        # Full snapshots first (the slow part), then the diffs of 1% and 10%.
        out = bench_lua(ember, [os.path.join(HERE, "snapshot_size.lua"), tmp, str(mib),
                                str(full_runs), str(runs)], 600)
        res.update(out)
        res["full_mem"] = file_sizes(os.path.join(tmp, "full.mem"))
        for pct in (1, 10):
            res["diff%d_mem" % pct] = file_sizes(os.path.join(tmp, "diff%d.mem" % pct))
        # Data written: the allocated blocks of the full memory file (never-touched pages
        # are holes), over each full snapshot's time.
        res["full_rate"] = [res["full_mem"][1] / (ms / 1000) for ms in res["full_ms"]]
        state, mem = os.path.join(tmp, "full.state"), os.path.join(tmp, "full.mem")
        for kind in ("file", "uffd"):
            for _ in range(runs):
                for k, v in restore_once(ember, tmp, state, mem, kind).items():
                    res.setdefault("%s_%s" % (kind, k), []).extend(v)
        left = [f for f in glob.glob(os.path.join(tmp, "*")) if ".tmp." in f]
        if left:
            raise SystemExit("bench: temporary files left behind: %s" % left)
    return res


def row(name, values, unit):
    return "| %-56s | %10.2f | %10.2f | %10.2f | %-8s |" % (
        name, statistics.median(values), min(values), max(values), unit)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ember", required=True)
    ap.add_argument("--runs", type=int, default=10)
    args = ap.parse_args()
    ember = os.path.abspath(args.ember)
    bench_targets.run(ember, args.runs)
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.runs):
            ready, first = run_ready(ember, tmp)
            results.setdefault("ready", []).append(ready)
            results.setdefault("first_run", []).append(first)
        snap = run_snapshot_bench(ember, tmp, args.runs)
        soak, soak_pages = run_soak(ember, tmp, 4 * args.runs)
    sizes = {}
    for mib, cap in SIZES:
        sizes[mib] = run_snapshot_sizes(ember, mib, args.runs, min(args.runs, cap or args.runs))
    for mib in (128, 1024):
        for _ in range(args.runs):
            for k, v in run_script(ember, mib, 16384).items():
                results.setdefault(k + ("" if k.endswith(str(mib)) else "@%d" % mib),
                                   []).append(v)
    print("ember benchmarks, %d runs each (test guest, this host's KVM)" % args.runs)
    print("| %-56s | %10s | %10s | %10s | %-8s |" % ("measure", "median", "min", "max", "unit"))
    print("|" + "-" * 58 + "|" + ("-" * 12 + "|") * 3 + "-" * 10 + "|")
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
    for kind in ("full, file", "full, uffd", "diff, file", "diff, uffd"):
        print(row("soak cycle, 64 MiB guest, %s (sums equal)" % kind.replace(
            "diff", "diff + merge"), soak[kind], "ms"))
    print(row("  pages compared per soak cycle (%d cycles)" % len(soak_pages), soak_pages,
              "pages"))
    for mib, _ in SIZES:
        r = sizes[mib]
        g = "%d MiB guest" % mib
        n = len(r["full_ms"])
        runs = "" if n == args.runs else ", %d runs" % n
        print(row("full snapshot, %s, %d MiB filled%s" % (g, mib // 2, runs), r["full_ms"],
                  "ms"))
        print(row("  data written per second (allocated / time)%s" % runs, r["full_rate"],
                  "MiB/s"))
        print(row("  memory file, apparent size (st_size)", [r["full_mem"][0]], "MiB"))
        print(row("  memory file, allocated (st_blocks * 512)", [r["full_mem"][1]], "MiB"))
        for pct in (1, 10):
            print(row("diff snapshot, %s, %d%% of pages dirtied" % (g, pct),
                      r["diff%d_ms" % pct], "ms"))
            print(row("  diff memory file, allocated (st_blocks * 512)",
                      [r["diff%d_mem" % pct][1]], "MiB"))
        for kind, name in (("file", "File"), ("uffd", "Uffd")):
            print(row("restore, %s, %s: load call to vCPUs ready" % (g, name),
                      r[kind + "_restore_ms"], "ms"))
            print(row("restore, %s, %s: load call to first answer" % (g, name),
                      r[kind + "_first_answer_ms"], "ms"))
    bench_linux.run(ember, args.runs, row)


if __name__ == "__main__":
    main()
