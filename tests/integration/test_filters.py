"""The seccomp filters keep a healthy VM alive: a guest flooding its console while the
control loop is stalled (its vCPU thread once grew a buffer with mmap and died of its
filter, status 148), and restored VMs stopped and continued (SIGSTOP/SIGCONT, as Ctrl-Z
and fg or a debugger do: the resumed waits are restart_syscall, once forbidden, status
159), File and Uffd."""
import os
import signal
import subprocess
import tempfile
import time

import test_uffd
import run
from run import check, ember, secs, test, wait_output, write_def

FLOOD = """
local log = arg[1] .. "/console.log"
local vm = ember.vm { kernel = ember.guest.test_kernel, memory_mib = 64, console = "none",
  console_log = log }
assert(vm:start())
assert(vm:wait_for("ready cpus=[^\\n]*\\n", 10))
vm:send("spew %(kib)d\\n")
-- The control thread takes no loop turn until the whole flood is out: every byte waits in
-- the vCPU thread's buffer. The vCPU thread writes the console log itself, so the end of
-- the flood shows there.
local deadline = os.time() + %(wait)d
local done = false
while not done and os.time() < deadline do
  local f = io.open(log)
  if f then
    local size = f:seek("end")
    f:seek("set", math.max(0, size - 64))
    done = f:read("a"):find("OK spew kib=%(kib)d", 1, true) ~= nil
    f:close()
  end
  -- Stalled, not spinning: a blocking sleep leaves the CPU to the vCPU thread.
  if not done then os.execute("sleep 0.2") end
end
assert(done, "the flood did not end")
-- The guest still answers, with the loop turning again.
vm:send("counter\\n")
assert(vm:wait_for("OK counter=[^\\n]*\\n", 10), "no answer after the flood")
vm:send("poweroff\\n")
print("EXIT", vm:wait())
"""


@test
def filters_console_flood_with_the_control_loop_stalled():
    with tempfile.TemporaryDirectory() as tmp:
        # 1 MiB; 256 KiB under the sanitizers (3 times slower; the session-4 ember died at
        # 64 KiB): each byte is an exit and a console write, 100 s for 1 MiB in the sandbox.
        kib = 256 if run.ARGS.sanitizer else 1024
        r = ember("run", write_def(tmp, FLOOD % {"kib": kib, "wait": secs(150)}), tmp,
                  timeout=secs(180))
        check(r.returncode == 0 and "EXIT\tpoweroff\t0" in r.stdout,
              "%d KiB of console output: status %d %r %r" % (kib, r.returncode, r.stdout,
                                                             r.stderr[-800:]))


SNAPSHOT = """
local vm = ember.vm { kernel = ember.guest.test_kernel, memory_mib = 64, console = "none" }
assert(vm:start())
assert(vm:wait_for("ready cpus=[^\\n]*\\n", 10))
assert(vm:pause())
assert(vm:snapshot { state = arg[1] .. "/vm.state", mem = arg[1] .. "/vm.mem" })
vm:stop()
"""


def stop_and_continue(argv):
    """A restored guest, stopped and continued twice, still answers and powers off."""
    p = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    try:
        p.stdin.write(b"counter\n")
        p.stdin.flush()
        wait_output(p.stdout.fileno(), rb"OK counter=", 20)
        for _ in range(2):
            os.kill(p.pid, signal.SIGSTOP)
            time.sleep(0.3)
            os.kill(p.pid, signal.SIGCONT)
            time.sleep(0.3)
        if p.poll() is not None:
            check(False, "ember ended after SIGSTOP/SIGCONT: status %r, %r" %
                  (p.returncode, p.stderr.read()[-800:]))
        p.stdin.write(b"counter\npoweroff\n")
        p.stdin.flush()
        wait_output(p.stdout.fileno(), rb"OK counter=", 20)
        status = p.wait(timeout=secs(30))
        if status != 0:
            check(False, "status %d after poweroff: %r" % (status, p.stderr.read()[-800:]))
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()


@test
def filters_restored_vms_survive_stop_and_continue():
    with tempfile.TemporaryDirectory() as tmp:
        r = ember("run", write_def(tmp, SNAPSHOT), tmp, timeout=30)
        check(r.returncode == 0, "snapshot: %r" % (r.stderr,))
        state, mem = os.path.join(tmp, "vm.state"), os.path.join(tmp, "vm.mem")
        stop_and_continue([run.ARGS.ember, "restore", state, mem, "--resume"])
        with test_uffd.Handler(tmp, mem) as h:
            stop_and_continue([run.ARGS.ember, "restore", state, "-", "--uffd", h.sock,
                               "--resume"])
            h.finish()


@test
def filters_bad_options_get_one_line_and_status():
    """The options a jailer or an operator passes: a bad value is named in one line, no VM;
    status 153 for the command line (Firecracker's ArgParsing), 2 for a bad filter file."""
    with tempfile.TemporaryDirectory() as tmp:
        bad_json = os.path.join(tmp, "f.json")
        with open(bad_json, "w") as f:
            f.write('{"devices": {"default_action": "trap", "filter_action": "allow", '
                    '"filter": []}}')
        cases = [
            (["--id", "no_underscores"], 153, "--id: 'no_underscores' is not 1 to 64 characters"),
            (["--id=" + "a" * 65], 153, "is not 1 to 64 characters"),
            (["--start-time-us", "soon"], 153, "--start-time-us: 'soon' is not a number"),
            (["--start-time-cpu-us=-5"], 153, "--start-time-cpu-us: '-5' is not a number"),
            (["--seccomp-filter", os.path.join(tmp, "missing.json")], 2, "--seccomp-filter"),
            (["--seccomp-filter", bad_json], 2, "vcpu"),
            (["--no-seccomp=1"], 153, "Found argument '--no-seccomp=1' which wasn't expected"),
        ]
        for args, status, want in cases:
            r = ember(*args, "run", os.path.join(tmp, "never.lua"), timeout=10)
            check(r.returncode == status and want in r.stderr.splitlines()[0],
                  "%r: status %d %r" % (args, r.returncode, r.stderr[:300]))
