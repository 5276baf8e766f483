"""A full snapshot keeps guest pages that the host swapped out.

A freshly booted VM's full snapshot leaves the pages the guest never touched as holes. A
page in swap is not resident, but it is not untouched either: it must be written. The
test runs ember in a cgroup v2 whose memory.max is far below the guest's filled memory,
with swap on, so most of the filled pages are in swap when the snapshot is taken; the
restored guest must still hold the whole pattern. Once for anonymous memory and once for
a memfd.

Swap needs root: in the KVM sandbox (EMBER_IN_SANDBOX=1) the test makes a swap file on
TMPDIR (an ext4 disk there), mounts cgroup2 on a directory of its own if none is mounted,
and undoes all of it at the end. Elsewhere it runs only if the host already has swap and
lets it make a cgroup; else it is skipped, saying why."""
import os
import re
import subprocess
import tempfile

import run
from run import Skip, check, ember, secs, test, write_def

MEM_MIB, FILL_MIB, SEED = 128, 64, 41
LIMIT = 24 << 20
SWAP_MIB = 192

SNAPSHOT = """
local dir, backing, cgroup = arg[1], arg[2], arg[3]
local vm = ember.vm { kernel = ember.guest.test_kernel, memory_mib = %d, console = "none",
  memory_backing = backing }
assert(vm:start())
assert(vm:wait_for("ready cpus=[^\\n]*\\n", 30))
vm:send("fill %d %d\\n")
assert(vm:wait_for("OK fill[^\\n]*\\n", 300))
assert(vm:pause())
-- The cgroup's count, not VmSwap: a memfd's pages in swap are not the process's.
local f = assert(io.open(cgroup .. "/memory.swap.current"))
print("swapped: " .. f:read("n") .. " bytes")
f:close()
assert(vm:snapshot { state = dir .. "/s.state", mem = dir .. "/s.mem" })
vm:stop()
""" % (MEM_MIB, FILL_MIB, SEED)


def swap_total_kib():
    with open("/proc/meminfo") as f:
        return int(re.search(r"^SwapTotal:\s+(\d+)", f.read(), re.M).group(1))


def cgroup2_root(tmp, undo):
    with open("/proc/self/mounts") as f:
        for line in f:
            dev, path, kind = line.split()[:3]
            if kind == "cgroup2":
                return path
    root = tempfile.mkdtemp(prefix="cgroup2-", dir=tmp)
    subprocess.run(["mount", "-t", "cgroup2", "none", root], check=True)
    undo.append(lambda: subprocess.run(["umount", root]))
    return root


def make_cgroup(tmp, undo):
    root = cgroup2_root(tmp, undo)
    with open(os.path.join(root, "cgroup.subtree_control"), "w") as f:
        f.write("+memory")
    cg = os.path.join(root, "ember-swap-test-%d" % os.getpid())
    os.mkdir(cg)
    undo.append(lambda: os.rmdir(cg))
    with open(os.path.join(cg, "memory.max"), "w") as f:
        f.write(str(LIMIT))
    return cg


def make_swap(undo):
    swap = os.path.join(tempfile.gettempdir(), "ember-test-swap")
    with open(swap, "wb") as f:
        chunk = bytes(1 << 20)
        for _ in range(SWAP_MIB):
            f.write(chunk)
    undo.append(lambda: os.unlink(swap))
    os.chmod(swap, 0o600)
    subprocess.run(["mkswap", swap], check=True, stdout=subprocess.DEVNULL)
    subprocess.run(["swapon", swap], check=True)
    undo.append(lambda: subprocess.run(["swapoff", swap]))


def in_cgroup(cg):
    def enter():
        with open(os.path.join(cg, "cgroup.procs"), "w") as f:
            f.write("0")
    return enter


@test
def snapshot_full_keeps_swapped_out_pages():
    with tempfile.TemporaryDirectory() as tmp:
        undo = []
        try:
            if os.environ.get("EMBER_IN_SANDBOX") == "1" and os.geteuid() == 0:
                make_swap(undo)
            elif not swap_total_kib():
                raise Skip("no swap on this host (the KVM sandbox makes its own)")
            try:
                cg = make_cgroup(tmp, undo)
            except (OSError, subprocess.CalledProcessError) as e:
                raise Skip("cannot make a cgroup with a memory limit here: %s" % e)
            script = write_def(tmp, SNAPSHOT, "swap.lua")
            for backing in ("anon", "memfd"):
                d = os.path.join(tmp, backing)
                os.mkdir(d)
                r = subprocess.run([run.ARGS.ember, "run", script, d, backing, cg],
                                   capture_output=True, text=True, timeout=secs(600),
                                   preexec_fn=in_cgroup(cg))
                check(r.returncode == 0, "%s: snapshot under memory.max failed (%d): %s" %
                      (backing, r.returncode, r.stderr[-2000:]))
                m = re.search(r"swapped: (\d+) bytes", r.stdout)
                check(m, "%s: no swap report: %r" % (backing, r.stdout))
                check(int(m.group(1)) >= (FILL_MIB // 2) << 20,
                      "%s: only %s bytes of guest memory were in swap at the snapshot" %
                      (backing, m.group(1)))
                r = ember("restore", os.path.join(d, "s.state"), os.path.join(d, "s.mem"),
                          "--resume", stdin="check %d %d\npoweroff\n" % (FILL_MIB, SEED),
                          timeout=300)
                check(r.returncode == 0 and "OK check" in r.stdout,
                      "%s: restored guest lost swapped-out pages: %d %r %r" %
                      (backing, r.returncode, r.stdout, r.stderr[-1000:]))
        finally:
            for fn in reversed(undo):
                fn()


