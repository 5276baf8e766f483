"""A snapshot killed while writing leaves the previous snapshot at the same paths whole.

Snapshot A of a 512 MiB test guest filled with a pattern is written to P.state / P.mem.
A second ember process then takes a full snapshot of a freshly filled guest to the same
paths and is SIGKILLed (by its pid) as soon as its temporary memory file P.mem.tmp.<pid>
appears, i.e. while it writes guest memory. Afterwards `ember snapshot info P.state`
still describes A (the same output as before, A's command line), restoring P.state /
P.mem gives a guest whose `check` of A's pattern passes, neither file was replaced, and
the only files left besides them are temporaries named *.tmp.* (the killed writer's).

If the kill lands after the second snapshot was renamed into place (its write was too
fast for the poll), the attempt is repeated from a fresh A with a bigger fill; after
three such attempts the test fails and says so."""
import os
import signal
import subprocess
import tempfile
import time

import run
from run import Fail, check, ember, test, write_def, secs

MEM_MIB = 512
A_FILL, A_SEED = 128, 11
B_SEED = 22
B_FILLS = (192, 352, 510)  # MiB per attempt; 510 is the whole work area of 512 MiB

SNAPSHOT = """
local state, mem, tag, fill, seed = arg[1], arg[2], arg[3], arg[4], arg[5]
local vm = ember.vm { kernel = ember.guest.test_kernel, memory_mib = %d, console = "none",
  cmdline = tag }
assert(vm:start())
assert(vm:wait_for("ready cpus=[^\\n]*\\n", 10))
assert(vm:send(string.format("fill %%s %%s\\n", fill, seed)))
assert(vm:wait_for("OK fill[^\\n]*\\n", 60))
assert(vm:pause())
assert(vm:snapshot { state = state, mem = mem, type = "full" })
vm:stop()
""" % MEM_MIB


def identity(path):
    st = os.stat(path)
    return st.st_ino, st.st_size, st.st_mtime_ns


def make_a(script, state, mem):
    r = ember("run", script, state, mem, "kill-test-a", str(A_FILL), str(A_SEED), timeout=60)
    check(r.returncode == 0, "snapshot A failed (%d): %s" % (r.returncode, r.stderr))
    info = ember("snapshot", "info", state)
    check(info.returncode == 0 and "kill-test-a" in info.stdout,
          "info on snapshot A: %r" % (info,))
    return info.stdout


def kill_while_writing(script, state, mem, fill):
    """Start snapshot B to the same paths and SIGKILL it once its memory temporary
    appears. Returns (whether it was killed before finishing, its stderr)."""
    snapdir, base = os.path.split(mem)
    prefix = base + ".tmp."
    p = subprocess.Popen([run.ARGS.ember, "run", script, state, mem, "kill-test-b", str(fill),
                          str(B_SEED)], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE)
    try:
        end = time.time() + secs(60)
        while time.time() < end:
            if any(f.startswith(prefix) for f in os.listdir(snapdir)):
                os.kill(p.pid, signal.SIGKILL)
                break
            if p.poll() is not None:
                break
            time.sleep(0.0005)
        else:
            raise Fail("snapshot B neither wrote %s* nor ended within 60 s" % prefix)
        p.wait(secs(10))
        err = p.stderr.read().decode(errors="replace")
    finally:
        if p.poll() is None:
            os.kill(p.pid, signal.SIGKILL)
            p.wait()
        p.stderr.close()
    if p.returncode == -signal.SIGKILL:
        return True, err
    check(p.returncode == 0, "snapshot B failed by itself (%d): %s" % (p.returncode, err))
    return False, err


@test
def snapshot_killed_while_writing_keeps_the_previous_one():
    with tempfile.TemporaryDirectory() as tmp:
        script = write_def(tmp, SNAPSHOT, "snap.lua")
        snapdir = os.path.join(tmp, "snap")
        os.mkdir(snapdir)
        state, mem = os.path.join(snapdir, "P.state"), os.path.join(snapdir, "P.mem")
        late = []
        for fill in B_FILLS:
            info_a = make_a(script, state, mem)
            ids = identity(state), identity(mem)
            killed, _ = kill_while_writing(script, state, mem, fill)
            replaced = identity(state) != ids[0], identity(mem) != ids[1]
            if killed and not any(replaced):
                break
            # The state file is renamed into place before the memory file: a kill
            # between the two leaves a pair that does not belong together.
            check(replaced[0] == replaced[1] or not killed,
                  "killed between the renames: P.state %s replaced, P.mem %s replaced" %
                  ("was" if replaced[0] else "was not", "was" if replaced[1] else "was not"))
            late.append("fill %d MiB: %s" % (fill, "killed after the renames" if killed
                                            else "finished before the kill"))
            for f in os.listdir(snapdir):
                os.unlink(os.path.join(snapdir, f))
        else:
            raise Fail("the kill never landed while snapshot B was writing (%s); the "
                       "memory file was written faster than this test can poll" %
                       "; ".join(late))

        info = ember("snapshot", "info", state)
        check(info.returncode == 0, "info after the kill failed: %s" % info.stderr)
        check(info.stdout == info_a, "info after the kill does not describe A:\n%s\n"
              "before:\n%s" % (info.stdout, info_a))
        left = sorted(f for f in os.listdir(snapdir) if f not in ("P.state", "P.mem"))
        check(left and all(".tmp." in f for f in left),
              "files left besides P.state and P.mem: %r (want only *.tmp.*, at least the "
              "killed writer's P.mem.tmp.<pid>)" % left)
        r = ember("restore", state, mem, "--resume",
                  stdin="check %d %d\npoweroff\n" % (A_FILL, A_SEED), timeout=60)
        check("OK check" in r.stdout, "restored guest does not hold A's pattern: %r %r" %
              (r.stdout, r.stderr[-1000:]))
        check(r.returncode == 0, "restore: status %d: %s" % (r.returncode, r.stderr))
