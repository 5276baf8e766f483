"""Crash safety: an ember killed (SIGKILL) at a random moment while it loops over full
snapshots, or over diffs each merged onto their base, always leaves a pair of files that
either restores to memory the guest really had or is refused with a message: never a
restore that succeeds with wrong memory (issue 13).

The writer fills part of the test guest's memory with a new seed each turn, notes the
guest's checksum of it in a file, then snapshots. After the kill, the pair at the fixed
paths is described (`ember snapshot info` must read it whole) and restored: the restored
guest's checksum must be one the writer noted. EMBER_KILL_POINTS sets the kills per kind
(the suite runs 8, 3 with sanitizers; `make soak` runs 100)."""
import os
import random
import re
import signal
import subprocess
import tempfile
import time

import run
from run import Fail, check, ember, secs, test, write_def

SUM_MIB = 8
WRITER = """
local dir, kind = arg[1], arg[2]
local T = %(t)d
local function cmd(vm, line)
  vm:send(line .. "\\n")
  return assert(vm:wait_for("\\n?(OK[^\\n]*)\\n", T), line)
end
local vm = ember.vm { kernel = ember.guest.test_kernel, memory_mib = 64, console = "none",
  track_dirty_pages = true }
assert(vm:start())
assert(vm:wait_for("ready cpus=[^\\n]*\\n", T))
local sums = assert(io.open(dir .. "/sums", "a"))
local function note()
  sums:write(cmd(vm, "sum %(mib)d"):match("sum=(%%x+)"), "\\n")
  sums:flush()
end
local function snap(i)
  cmd(vm, string.format("fill %%d %%d", 1 + i %% 6, i))
  note()
  assert(vm:pause())
  if kind == "full" or i == 0 then
    assert(vm:snapshot { state = dir .. "/P.state", mem = dir .. "/P.mem" })
  else
    assert(vm:snapshot { state = dir .. "/D.state", mem = dir .. "/D.mem", type = "diff" })
    assert(ember.merge_memory(dir .. "/P.mem", dir .. "/D.mem"))
    -- The merged base now goes with the diff's state file.
    assert(os.rename(dir .. "/D.state", dir .. "/P.state"))
  end
  assert(vm:resume())
end
snap(0)
print("looping")
io.stdout:flush()
for i = 1, 100000 do snap(i) end
"""


def kill_at_random(script, tmp, kind, rng):
    """Start a writer, wait for its first snapshot, SIGKILL it a random moment later."""
    p = subprocess.Popen([run.ARGS.ember, "run", script, tmp, kind], stdin=subprocess.DEVNULL,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = p.stdout.readline()
        if line.strip() != "looping":
            p.kill()
            raise Fail("writer did not start looping: %r %r" % (line, p.stderr.read()[-2000:]))
        time.sleep(rng.uniform(0, 0.4) * run.TIME_SCALE)
        os.kill(p.pid, signal.SIGKILL)
        p.wait(secs(10))
        if p.returncode != -signal.SIGKILL:
            raise Fail("writer ended by itself (%d): %s" % (p.returncode, p.stderr.read()[-2000:]))
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        p.stdout.close()
        p.stderr.close()


def check_pair(tmp, point):
    """The pair left behind restores to noted memory or is refused; returns which."""
    state, mem = os.path.join(tmp, "P.state"), os.path.join(tmp, "P.mem")
    info = ember("snapshot", "info", state)
    check(info.returncode == 0, "%s: the state file is not whole: %s" % (point, info.stderr))
    with open(os.path.join(tmp, "sums")) as f:
        noted = set(f.read().split())
    r = ember("restore", state, mem, "--resume", stdin="sum %d\npoweroff\n" % SUM_MIB,
              timeout=60)
    if r.returncode != 0:
        check(re.search(r"snapshot mismatch|belongs to|diff|incomplete|merge", r.stderr),
              "%s: restore failed without saying why the pair is refused: status %d %r"
              % (point, r.returncode, r.stderr[-1500:]))
        return "refused"
    m = re.search(r"OK sum=([0-9a-f]+)", r.stdout)
    check(m, "%s: the restored guest did not answer: %r %r" % (point, r.stdout, r.stderr))
    check(m.group(1) in noted, "%s: restored memory (sum %s) is none the guest had: %s"
          % (point, m.group(1), " ".join(sorted(noted))))
    return "restored"


def crash_points(kind):
    points = int(os.environ.get("EMBER_KILL_POINTS", "3" if run.ARGS.sanitizer else "8"))
    rng = random.Random(os.environ.get("EMBER_KILL_SEED", "13"))
    outcomes = {"restored": 0, "refused": 0}
    with tempfile.TemporaryDirectory() as tmp:
        script = write_def(tmp, WRITER % {"t": secs(10), "mib": SUM_MIB}, "writer.lua")
        work = os.path.join(tmp, "work")
        for i in range(points):
            os.mkdir(work)
            kill_at_random(script, work, kind, rng)
            outcomes[check_pair(work, "%s kill %d" % (kind, i + 1))] += 1
            for f in os.listdir(work):
                os.unlink(os.path.join(work, f))
            os.rmdir(work)
    print("  %s: %d kills: %d restored noted memory, %d refused with a reason"
          % (kind, points, outcomes["restored"], outcomes["refused"]))


@test
def snapshot_killed_at_random_points_never_restores_wrong_memory():
    crash_points("full")


@test
def diff_and_merge_killed_at_random_points_never_restore_wrong_memory():
    crash_points("diff")
