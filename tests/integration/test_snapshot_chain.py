"""Diff chains: a diff merges only onto the full memory of the snapshot it was taken after.

One test guest (128 MiB, dirty tracking) takes, in order: `boot` (a diff of the freshly
booted VM: no parent), `a` (full, fill seed 4), `base` (full, seed 5), `d1` (diff, seed
6), `d2` (diff, seed 7), `e` (full, seed 8) and then tries a diff to e's own memory path,
which must be refused and leave e whole. Each diff's memory file names its parent:
d1's is base, d2's is d1. Merges onto the wrong base, out of order or of the booted VM's
diff are refused with a message naming both files and both ids; merges in order restore
the newest state. A merge writes a new file and renames it over the base, so a clone
that maps the old base keeps its memory, and a merge killed at any point leaves either
the old base (restorable with its own state file) or the merged one."""
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time

import run
from run import Fail, check, ember, secs, test, wait_output
from test_snapshot_id import SNAPSHOT_GUEST, XATTR, info_id as snap_id, make_snapshots, \
    restores

MAKE_CHAIN = SNAPSHOT_GUEST + """
snap("boot", 3, "diff")
snap("a", 4, "full")
snap("base", 5, "full")
snap("d1", 6, "diff")
snap("d2", 7, "diff")
snap("e", 8, "full")
fill(9)
local ok, err = vm:snapshot { state = dir .. "/over.state", mem = dir .. "/e.mem", type = "diff" }
local f = assert(io.open(dir .. "/over.txt", "w"))
f:write("over: " .. (ok and "written" or err) .. "\\n")
f:close()
vm:stop()
"""


def make_chain(tmp):
    s = make_snapshots(tmp, MAKE_CHAIN, ("a", "base", "boot", "d1", "d2", "e"))
    with open(os.path.join(tmp, "over.txt")) as f:
        s["over"] = f.read()
    return s


def info(state):
    r = ember("snapshot", "info", state)
    check(r.returncode == 0, "info %s: %s" % (state, r.stderr))
    return r.stdout


def merge_refused(base, diff, pattern):
    before = os.stat(base).st_ino, os.getxattr(base, XATTR)
    r = ember("snapshot", "merge", base, diff)
    check(r.returncode == 1 and re.search(pattern, r.stderr),
          "merge %s %s: status %d, stderr %r lacks %r" % (base, diff, r.returncode, r.stderr,
                                                         pattern))
    check((os.stat(base).st_ino, os.getxattr(base, XATTR)) == before,
          "a refused merge changed %s" % base)


def merged(base, diff):
    r = ember("snapshot", "merge", base, diff)
    check(r.returncode == 0, "merge %s %s: %r" % (base, diff, r))


@test
def snapshot_chain_diffs_record_their_parent():
    with tempfile.TemporaryDirectory() as tmp:
        s = make_chain(tmp)
        ids = {n: snap_id(s[n][0]) for n in ("boot", "base", "d1", "d2")}
        want = {"boot": ids["boot"] + " diff", "d1": "%s diff %s" % (ids["d1"], ids["base"]),
                "d2": "%s diff %s" % (ids["d2"], ids["d1"]), "base": ids["base"]}
        for n, value in want.items():
            got = os.getxattr(s[n][1], XATTR).decode()
            check(got == value, "%s.mem is tagged %r, want %r" % (n, got, value))
        check(re.search(r"^parent:        %s$" % ids["d1"], info(s["d2"][0]), re.M),
              "info on d2 does not name d1 as its parent:\n%s" % info(s["d2"][0]))
        check(re.search(r"^parent:        none", info(s["boot"][0]), re.M),
              "info on the booted VM's diff names a parent:\n%s" % info(s["boot"][0]))


@test
def snapshot_chain_merge_refuses_a_wrong_base():
    with tempfile.TemporaryDirectory() as tmp:
        s = make_chain(tmp)
        a_mem, d1_mem = s["a"][1], s["d1"][1]
        a_id, base_id, d1_id = snap_id(s["a"][0]), snap_id(s["base"][0]), snap_id(s["d1"][0])
        merge_refused(a_mem, d1_mem, r"^ember: wrong base: diff %s \(snapshot %s\) was taken "
                      r"after snapshot %s, but %s holds snapshot %s" %
                      (re.escape(d1_mem), d1_id, base_id, re.escape(a_mem), a_id))
        restores(s["a"][0], a_mem, 4)


@test
def snapshot_chain_merge_refuses_diffs_out_of_order():
    with tempfile.TemporaryDirectory() as tmp:
        s = make_chain(tmp)
        base_mem, d1_mem, d2_mem = s["base"][1], s["d1"][1], s["d2"][1]
        base_id, d1_id, d2_id = (snap_id(s[n][0]) for n in ("base", "d1", "d2"))
        merge_refused(base_mem, d2_mem, r"wrong base: diff %s \(snapshot %s\) was taken after "
                      r"snapshot %s, but %s holds snapshot %s" %
                      (re.escape(d2_mem), d2_id, d1_id, re.escape(base_mem), base_id))
        restores(s["base"][0], base_mem, 5)
        merged(base_mem, d1_mem)
        merge_refused(base_mem, d1_mem, r"wrong base: diff %s .* but %s holds snapshot %s" %
                      (re.escape(d1_mem), re.escape(base_mem), d1_id))
        merged(base_mem, d2_mem)
        check(os.getxattr(base_mem, XATTR) == d2_id.encode(), "merged base is not d2's")
        restores(s["d2"][0], base_mem, 7)


@test
def snapshot_chain_merge_refuses_a_booted_vms_diff_on_a_base():
    with tempfile.TemporaryDirectory() as tmp:
        s = make_chain(tmp)
        boot_mem, base_mem = s["boot"][1], s["base"][1]
        merge_refused(base_mem, boot_mem, r"diff %s \(snapshot %s\) records no parent .*: it "
                      r"holds the pages dirtied since boot, not since snapshot %s \(%s\)" %
                      (re.escape(boot_mem), snap_id(s["boot"][0]), snap_id(s["base"][0]),
                       re.escape(base_mem)))
        # A base without an id (Firecracker's file, a copy without attributes) is
        # merged unchecked, as before ids.
        plain = os.path.join(tmp, "plain.mem")
        shutil.copyfile(base_mem, plain)
        merged(plain, s["d1"][1])
        restores(s["d1"][0], plain, 6)


@test
def snapshot_chain_diff_over_its_own_base_is_refused():
    with tempfile.TemporaryDirectory() as tmp:
        s = make_chain(tmp)
        e_state, e_mem = s["e"]
        e_id = snap_id(e_state)
        check(re.search(r"^over: snapshot: memory file %s holds snapshot %s, the one this diff "
                        r"is taken after: writing the diff there would replace its base" %
                        (re.escape(e_mem), e_id), s["over"], re.M),
              "a diff over its own base was not refused: %r" % s["over"])
        check(os.getxattr(e_mem, XATTR) == e_id.encode(), "e.mem was replaced")
        check(not os.path.exists(os.path.join(tmp, "over.state")), "over.state was written")
        restores(e_state, e_mem, 8)


@test
def snapshot_chain_clone_keeps_its_memory_through_a_merge():
    with tempfile.TemporaryDirectory() as tmp:
        s = make_chain(tmp)
        (base_state, base_mem), d1_mem = s["base"], s["d1"][1]
        p = subprocess.Popen([run.ARGS.ember, "restore", base_state, base_mem, "--resume"],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE)
        try:
            p.stdin.write(b"echo up\n")
            p.stdin.flush()
            wait_output(p.stdout.fileno(), rb"OK up\n", 30)
            # The clone has not read its work area yet: those pages still come from
            # the file it maps.
            merged(base_mem, d1_mem)
            p.stdin.write(b"check 8 5\n")
            p.stdin.flush()
            out = wait_output(p.stdout.fileno(), rb"(OK|ERR) check[^\n]*\n", 30)
            check(b"OK check" in out, "the clone's memory changed under it: %r" % out)
            p.stdin.write(b"poweroff\n")
            p.stdin.flush()
            p.wait(secs(30))
            check(p.returncode == 0, "clone: status %d" % p.returncode)
        finally:
            if p.poll() is None:
                os.kill(p.pid, signal.SIGKILL)
                p.wait()
            for f in (p.stdin, p.stdout, p.stderr):
                f.close()
        restores(s["d1"][0], base_mem, 6)


# ---- a merge killed part way ----

KILL_MIB, KILL_FILL = 512, 128

MAKE_BIG = """
local dir = arg[1]
local vm = ember.vm { kernel = ember.guest.test_kernel, memory_mib = %d, console = "none",
  track_dirty_pages = true }
assert(vm:start())
assert(vm:wait_for("ready cpus=[^\\n]*\\n", 10))
for _, s in ipairs { { "base", 5, "full" }, { "diff", 6, "diff" } } do
  if vm:state() == "paused" then assert(vm:resume()) end
  vm:send("fill %d " .. s[2] .. "\\n")
  assert(vm:wait_for("OK fill[^\\n]*\\n", 60))
  assert(vm:pause())
  assert(vm:snapshot { state = dir .. "/" .. s[1] .. ".state", mem = dir .. "/" .. s[1] .. ".mem",
    type = s[3] })
end
vm:stop()
""" % (KILL_MIB, KILL_FILL)


def kill_merge_after(base, diff, delay):
    """Start a merge and SIGKILL it `delay` seconds later; True if it was still running."""
    p = subprocess.Popen([run.ARGS.ember, "snapshot", "merge", base, diff],
                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE)
    try:
        _, err = p.communicate(timeout=delay)
    except subprocess.TimeoutExpired:
        p.kill()  # SIGKILL to the pid started here
        p.communicate()
        return True
    check(p.returncode == 0, "merge failed by itself (%d): %s" % (p.returncode, err))
    return False


@test
def snapshot_chain_merge_killed_leaves_a_restorable_base():
    with tempfile.TemporaryDirectory() as tmp:
        s = make_snapshots(tmp, MAKE_BIG, ("base", "diff"), timeout=120)
        (base_state, base_mem), (diff_state, diff_mem) = s["base"], s["diff"]
        work = os.path.join(tmp, "work.mem")
        # How long a whole merge takes here, to kill the others part way through.
        shutil.copy2(base_mem, work)
        t0 = time.time()
        merged(work, diff_mem)
        whole = time.time() - t0
        restores(diff_state, work, 6, KILL_FILL, 60)
        landed = []
        for frac in (0.1, 0.3, 0.5, 0.7, 0.9):
            os.unlink(work)
            shutil.copy2(base_mem, work)
            ino = os.stat(work).st_ino
            if not kill_merge_after(work, diff_mem, whole * frac):
                continue
            if os.stat(work).st_ino == ino:
                landed.append(frac)
                restores(base_state, work, 5, KILL_FILL, 60)
            else:
                restores(diff_state, work, 6, KILL_FILL, 60)
        if not landed:
            raise Fail("no kill landed before the merge replaced the base (a whole merge "
                       "takes %.3f s here)" % whole)
        left = [f for f in os.listdir(tmp) if f.startswith("work.mem") and f != "work.mem"]
        check(all(".tmp." in f for f in left), "files left beside the base: %r" % left)
