#!/usr/bin/env python3
"""Linux boots, ember beside QEMU's microvm machine on the same KVM, to tell ember's early
boot failures from the host's: N rounds, each starting an ember boot and a QEMU boot of
the same kernel and initramfs at once (a loaded host), alternating 1 and 2 vCPUs and the
ELF and bzImage kernels. Prints how each boot ended, per VMM.

  python3 tests/bench/boot_compare.py --ember build/ember [--rounds 10]
  (where the host has no usable KVM: tests/sandbox/sandbox.py with-kvm -- python3 ...)"""
import argparse
import os
import sys
import tempfile
import threading

import bench_linux

GOAL = "ember-guest: ready"


def ember_argv(ember, tmp, linux, image, vcpus):
    path = os.path.join(tmp, "vm-%s-%d.lua" % (image, vcpus))
    with open(path, "w") as f:
        f.write('return ember.vm { vcpus = %d, memory_mib = 256, kernel = "%s/%s", '
                'initrd = "%s/initramfs.cpio", console = "stdio", '
                'cmdline = "console=ttyS0 reboot=k panic=1 pci=off" }\n'
                % (vcpus, linux, image, linux))
    return [ember, "run", path]


def qemu_argv(linux, image, vcpus):
    argv = bench_linux.qemu_argv(linux, "kvm")
    argv[argv.index("-smp") + 1] = str(vcpus)
    argv[argv.index("-kernel") + 1] = os.path.join(linux, image)
    return argv


def outcome(seen, status):
    if "ready" in seen and status == 0:
        return "ready"
    if status == 3:
        return "reset before ready" if "ready" not in seen else "reset"
    return "status %s%s" % (status, "" if "ready" in seen else ", never ready")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ember", required=True)
    ap.add_argument("--rounds", type=int, default=10)
    args = ap.parse_args()
    linux = os.environ.get("EMBER_LINUX_DIR") or os.path.join(
        os.path.dirname(os.path.abspath(args.ember)), "linux")
    kinds = [("vmlinux", 1), ("vmlinux", 2), ("bzImage", 2), ("bzImage", 1)]
    tally = {"ember": {}, "qemu": {}}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds):
            image, vcpus = kinds[r % len(kinds)]
            runs = {"ember": ember_argv(os.path.abspath(args.ember), tmp, linux, image, vcpus),
                    "qemu": qemu_argv(linux, image, vcpus)}
            ends = {}

            def one(who):
                seen, status = bench_linux.timed_marks(runs[who], 120)
                ends[who] = outcome(seen, status)
            threads = [threading.Thread(target=one, args=(w,)) for w in runs]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            for who, end in ends.items():
                tally[who][end] = tally[who].get(end, 0) + 1
            print("round %d (%s, %d vCPU): ember %s, qemu %s" % (
                r + 1, image, vcpus, ends["ember"], ends["qemu"]), flush=True)
    for who, ends in tally.items():
        print("%-6s %s" % (who, ", ".join("%d %s" % (n, e) for e, n in sorted(ends.items()))))
    return 0


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    sys.exit(main())
