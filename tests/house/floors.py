#!/usr/bin/env python3
"""The include floors of the house: no `#include "..."` from a lower floor to a higher one.

Each file of src/, tools/ and include/ sits on the floor of its folder (FLOORS). A header
of include/ember/ sits on the floor of the module that implements it (OWNERS); one that
declares only types, constants and inline helpers is ground (GROUND) and anyone may
include it. An include is fine when the included file's floor is at or below the
including file's floor. Exit status 1, naming file and line, on any other include, on a
header of include/ember/ listed nowhere, and on an include that names no file.

    python3 tests/house/floors.py [ROOT]      check the tree at ROOT (default: the repo)
    python3 tests/house/floors.py --self-test plant a bad include in a copy; it must fail
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile

# Floor of each folder, the longest matching prefix wins (docs/ARCHITECTURE.md "Floors").
FLOORS = {
    "include": 1,
    "src/util": 2,
    "src/security": 3,
    "src/cli": 3,
    "src/kvm": 4,
    "src/snapshot": 5,
    "src/devices": 6,
    "src/arch": 6,
    "tools": 6,
    "src/vmm": 7,
    "src/api": 8,
    "src/lua": 8,
    "src/main.c": 9,
}

# include/ember/<name>.h -> the folder of the module that implements it.
OWNERS = {
    "acpi": "src/arch",
    "api": "src/api",
    "arch": "src/arch",
    "balloon": "src/devices",
    "virtio_mem": "src/devices",
    "block": "src/devices",
    "pmem": "src/devices",
    "bus": "src/kvm",
    "config": "src/vmm",
    "console": "src/vmm",
    "cpuid": "src/arch",
    "cpu_template": "src/arch",
    "crc64": "src/util",
    "devices": "src/devices",
    "emulate": "src/arch",
    "guest_mem": "src/kvm",
    "log": "src/util",
    "log_ratelimit": "src/util",
    "lua_host": "src/lua",
    "lua_pattern": "src/lua",
    "memory_file": "src/snapshot",
    "metrics": "src/util",
    "mmds": "src/devices",
    "net": "src/devices",
    "page_scan": "src/snapshot",
    "rate_limiter": "src/util",
    "seccomp": "src/security",
    "seccomp_file": "src/security",
    "seccomp_rules": "src/security",
    "snapshot": "src/vmm",
    "snapshot_file": "src/snapshot",
    "snapshot_id": "src/snapshot",
    "snapshot_publish": "src/snapshot",
    "term_queries": "src/util",
    "uffd": "src/snapshot",
    "thread": "src/util",
    "unix_socket": "src/util",
    "vcpu": "src/kvm",
    "virtio": "src/devices",
    "virtio_devices": "src/devices",
    "vm": "src/vmm",
    "vm_fd": "src/kvm",
    "vm_metrics": "src/vmm",
    "vsock": "src/devices",
    "x86_boot": "src/arch",
}

# Headers of types, constants and inline helpers only: the ground under every floor.
GROUND = {"byteorder", "clock", "layout", "version", "vm_exit"}

# Upward includes not fixed yet: (including file, included file) -> one-line reason.
KNOWN = {}

SCAN = ("src", "tools", "include")
INCLUDE_RE = re.compile(r'^\s*#\s*include\s+"([^"]+)"')


def floor_of_path(rel):
    best = None
    for prefix, floor in FLOORS.items():
        if rel == prefix or rel.startswith(prefix + "/"):
            if best is None or len(prefix) > len(best[0]):
                best = (prefix, floor)
    return best


def floor_of_file(rel, problems):
    """(floor, where) of a repo-relative file, or None if it is outside the house."""
    if rel.startswith("include/ember/"):
        name = os.path.splitext(os.path.basename(rel))[0]
        if name in GROUND:
            return FLOORS["include"], "ground"
        if name in OWNERS:
            owner = OWNERS[name]
            return FLOORS[owner], owner
        problems.append("%s: header on no floor: add it to OWNERS or GROUND in %s"
                        % (rel, os.path.relpath(__file__)))
        return None
    found = floor_of_path(rel)
    return (found[1], found[0]) if found else None


def resolve(root, rel, target):
    """Repo-relative path of an include as the compiler finds it (-Iinclude)."""
    for base in (os.path.dirname(rel), "include"):
        cand = os.path.normpath(os.path.join(base, target))
        if os.path.isfile(os.path.join(root, cand)):
            return cand
    return None


def check(root):
    problems = []
    for top in SCAN:
        for dirpath, _, files in os.walk(os.path.join(root, top)):
            for name in sorted(files):
                if not name.endswith((".c", ".h")):
                    continue
                rel = os.path.relpath(os.path.join(dirpath, name), root)
                here = floor_of_file(rel, problems)
                if here is None:
                    continue
                with open(os.path.join(root, rel), encoding="utf-8", errors="replace") as f:
                    for lineno, line in enumerate(f, 1):
                        m = INCLUDE_RE.match(line)
                        if not m:
                            continue
                        target = resolve(root, rel, m.group(1))
                        if target is None:
                            problems.append('%s:%d: "%s" names no file' % (rel, lineno, m.group(1)))
                            continue
                        there = floor_of_file(target, [])
                        if there is None or there[0] <= here[0]:
                            continue
                        if (rel, target) in KNOWN:
                            continue
                        problems.append('%s:%d: includes "%s" (%s, floor %d) from floor %d (%s)'
                                        % (rel, lineno, m.group(1), there[1], there[0],
                                           here[0], here[1]))
    for rel, target in KNOWN:
        if not os.path.isfile(os.path.join(root, rel)):
            problems.append("known exception for a file that is gone: %s" % rel)
    return sorted(set(problems))


def self_test(root):
    """A copy of the tree with an upward include planted: the check must name it."""
    with tempfile.TemporaryDirectory() as tmp:
        for top in SCAN:
            shutil.copytree(os.path.join(root, top), os.path.join(tmp, top))
        clean = check(tmp)
        if clean:
            print("self-test: the copy fails before planting:\n  " + "\n  ".join(clean))
            return 1
        planted = os.path.join(tmp, "src", "util", "log.c")
        with open(planted, "a", encoding="utf-8") as f:
            f.write('#include "ember/vm.h"\n')
        lines = sum(1 for _ in open(planted, encoding="utf-8"))
        want = 'src/util/log.c:%d: includes "ember/vm.h"' % lines
        got = check(tmp)
        if len(got) != 1 or not got[0].startswith(want):
            print("self-test: planted include not caught as expected: %r" % got)
            return 1
        # The script as a program: exit status 1 and the line on stdout.
        run = subprocess.run([sys.executable, os.path.abspath(__file__), tmp],
                             capture_output=True, text=True)
        if run.returncode != 1 or want not in run.stdout:
            print("self-test: the program did not fail on the planted include")
            return 1
    print("floors self-test: planted upward include caught")
    return 0


def main(argv):
    root = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
    if argv[1:] == ["--self-test"]:
        return self_test(root)
    if len(argv) == 2:
        root = argv[1]
    elif len(argv) > 2:
        print(__doc__)
        return 2
    problems = check(root)
    for p in problems:
        print(p)
    if problems:
        print("floors: %d include(s) against the floors (tests/house/floors.py)" % len(problems))
        return 1
    print("floors: every include runs down or across")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
