"""Snapshot ids: a state file restores only with its own memory file.

Three snapshots of one test guest: A (full, fill seed 5), B (full, seed 6) and C (a diff
after B, seed 7). A's state with B's memory file is refused with a message naming both
files, through the File backend (ember) and the Uffd backend (ember-uffd --state); the
right pair, and a Firecracker-style memory file without the id, still restore. A diff
is refused until it is merged, a merge gives the base the diff's id, and an interrupted
merge is refused."""
import os
import re
import shutil
import subprocess
import tempfile

import test_uffd
from run import Skip, check, ember, test, write_def

XATTR = "user.ember.snapshot"

# A booted test guest with dirty tracking; fill(seed) fills 8 MiB and pauses it,
# snap(name, seed, kind) then takes snapshot NAME.state / NAME.mem in arg[1].
SNAPSHOT_GUEST = """
local dir = arg[1]
local vm = ember.vm { kernel = ember.guest.test_kernel, memory_mib = 128, console = "none",
  track_dirty_pages = true }
assert(vm:start())
assert(vm:wait_for("ready cpus=[^\\n]*\\n", 10))
local function fill(seed)
  if vm:state() == "paused" then assert(vm:resume()) end
  vm:send("fill 8 " .. seed .. "\\n")
  assert(vm:wait_for("OK fill[^\\n]*\\n", 10))
  assert(vm:pause())
end
local function snap(name, seed, kind)
  fill(seed)
  assert(vm:snapshot { state = dir .. "/" .. name .. ".state", mem = dir .. "/" .. name .. ".mem",
    type = kind })
end
"""

MAKE_SNAPSHOTS = SNAPSHOT_GUEST + """
snap("a", 5, "full")
snap("b", 6, "full")
snap("c", 7, "diff")
vm:stop()
"""


def make_snapshots(tmp, script=MAKE_SNAPSHOTS, names=("a", "b", "c"), timeout=60):
    """Run `script` with tmp as arg[1]; {name: (NAME.state, NAME.mem) in tmp}."""
    r = ember("run", write_def(tmp, script, "snap.lua"), tmp, timeout=timeout)
    check(r.returncode == 0, "making the snapshots failed: %s" % r.stderr)
    try:
        os.getxattr(os.path.join(tmp, names[0] + ".mem"), XATTR)
    except OSError as e:
        raise Skip("no user xattrs on the test directory's file system: %s" % e)
    return {n: (os.path.join(tmp, n + ".state"), os.path.join(tmp, n + ".mem"))
            for n in names}


def info_id(state):
    r = ember("snapshot", "info", state)
    check(r.returncode == 0, "info %s: %s" % (state, r.stderr))
    m = re.search(r"^snapshot id:   ([0-9a-f]{32})$", r.stdout, re.M)
    check(m, "info shows no snapshot id:\n%s" % r.stdout)
    return m.group(1)


def restores(state, mem, seed, mib=8, timeout=30):
    """The pair restores and the guest's first `mib` MiB hold pattern `seed`."""
    r = ember("restore", state, mem, "--resume", stdin="check %d %d\npoweroff\n" % (mib, seed),
              timeout=timeout)
    check(r.returncode == 0 and "OK check" in r.stdout,
          "restore %s + %s, check %d %d: status %d %r %r" % (state, mem, mib, seed, r.returncode,
                                                            r.stdout, r.stderr[-1000:]))


def refused(state, mem, pattern):
    r = ember("restore", state, mem, timeout=30)
    check(r.returncode == 1 and re.search(pattern, r.stderr, re.M),
          "restore %s + %s: status %d, stderr %r lacks %r" % (state, mem, r.returncode,
                                                               r.stderr, pattern))


@test
def snapshot_id_refuses_another_snapshots_memory_file():
    with tempfile.TemporaryDirectory() as tmp:
        s = make_snapshots(tmp)
        (a_state, a_mem), (b_state, b_mem) = s["a"], s["b"]
        a_id, b_id = info_id(a_state), info_id(b_state)
        check(a_id != b_id, "two snapshots share id %s" % a_id)
        check(os.getxattr(a_mem, XATTR) == a_id.encode(), "a.mem is not tagged %s" % a_id)
        c_tag = "%s diff %s" % (info_id(s["c"][0]), b_id)
        check(os.getxattr(s["c"][1], XATTR) == c_tag.encode(),
              "the diff is not tagged as one taken after b")
        # The pairing a crash between the two renames leaves, both ways round.
        refused(a_state, b_mem, r"^ember: snapshot mismatch: state file %s is snapshot %s, "
                r"but memory file %s belongs to snapshot %s " %
                (re.escape(a_state), a_id, re.escape(b_mem), b_id))
        refused(b_state, a_mem, r"snapshot mismatch: state file %s .* memory file %s" %
                (re.escape(b_state), re.escape(a_mem)))
        restores(a_state, a_mem, 5)
        restores(b_state, b_mem, 6)
        # Firecracker's memory files (and copies that lost their attributes) carry no id.
        plain = os.path.join(tmp, "plain.mem")
        shutil.copyfile(a_mem, plain)
        check(XATTR not in os.listxattr(plain), "copyfile kept the attribute")
        restores(a_state, plain, 5)


@test
def snapshot_id_is_checked_by_ember_uffd_given_the_state_file():
    with tempfile.TemporaryDirectory() as tmp:
        s = make_snapshots(tmp)
        (a_state, a_mem), (_, b_mem) = s["a"], s["b"]
        sock = os.path.join(tmp, "uffd.sock")
        r = subprocess.run([test_uffd.handler_bin(), "--socket", sock, "--mem-file", b_mem,
                            "--state", a_state, "--once"], capture_output=True, text=True,
                           timeout=30)
        check(r.returncode == 1 and re.search(
            r"^ember-uffd: snapshot mismatch: state file %s is snapshot [0-9a-f]{32}, but "
            r"memory file %s belongs to snapshot" % (re.escape(a_state), re.escape(b_mem)),
            r.stderr, re.M) and not os.path.exists(sock),
            "ember-uffd with the wrong memory file: %r" % (r,))
        for mem in (a_mem, os.path.join(tmp, "plain.mem")):
            if not os.path.exists(mem):
                shutil.copyfile(a_mem, mem)
            with test_uffd.Handler(tmp, mem, "--state", a_state) as h:
                r = ember("restore", a_state, "-", "--uffd", h.sock, "--resume",
                          stdin="check 8 5\npoweroff\n", timeout=30)
                status = h.finish()
            check(r.returncode == 0 and "OK check" in r.stdout,
                  "uffd restore with %s: %d %r %r" % (mem, r.returncode, r.stdout, r.stderr))
            check(status == 0, "ember-uffd with %s: status %d %r" % (mem, status, h.err))


@test
def snapshot_id_follows_a_diff_through_its_merge():
    with tempfile.TemporaryDirectory() as tmp:
        s = make_snapshots(tmp)
        (a_state, a_mem), (b_state, b_mem), (c_state, c_diff) = s["a"], s["b"], s["c"]
        c_id = info_id(c_state)
        refused(c_state, c_diff, r"memory file %s holds only the pages snapshot %s dirtied: "
                r"merge it onto its base" % (re.escape(c_diff), c_id))
        r = ember("snapshot", "merge", b_mem, a_mem)
        check(r.returncode == 1 and "is a full snapshot's memory file, not a diff" in r.stderr,
              "a full memory file merged as a diff: %r" % (r,))
        r = ember("snapshot", "merge", b_mem, c_diff)
        check(r.returncode == 0, "merge: %r" % (r,))
        check(os.getxattr(b_mem, XATTR) == c_id.encode(), "merged base is not tagged %s: %r" %
              (c_id, os.getxattr(b_mem, XATTR)))
        restores(c_state, b_mem, 7)
        refused(b_state, b_mem, r"snapshot mismatch: state file %s" % re.escape(b_state))
        # A merge cut short leaves its mark, whatever state file comes with the base.
        os.setxattr(b_mem, XATTR, b"incomplete")
        refused(c_state, b_mem, r"memory file %s is incomplete: a merge into it was "
                r"interrupted" % re.escape(b_mem))
