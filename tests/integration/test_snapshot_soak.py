"""Soak: the test guest snapshotted and restored cycle after cycle, each time from the last
restore, alternating full snapshots and diffs merged onto their base, restored through the
File backend and through userfaultfd (ember-uffd), with the guest's memory checksum equal
before and after every cycle (issue 13). EMBER_SOAK_CYCLES sets the count (the suite runs
24, 8 with sanitizers; `make soak` runs 1000)."""
import os
import re
import tempfile

import run
from run import check, ember, secs, test, write_def
from test_uffd import handler_bin

SOAK = """
local dir, uffd_bin, cycles = arg[1], arg[2], tonumber(arg[3])
local T = %(t)d
local SUM_MIB = 8

local function cmd(vm, line)
  vm:send(line .. "\\n")
  local answer = vm:wait_for("\\n?([OE][KR]R?[^\\n]*)\\n", T)
  assert(answer and answer:sub(1, 2) == "OK", line .. ": " .. tostring(answer))
  return answer
end

local function restore(state, uffd)
  if not uffd then
    return assert(ember.restore { state = state, mem = dir .. "/base.mem", console = "none",
      resume = true, track_dirty_pages = true })
  end
  local sock = dir .. "/uffd.sock"
  os.remove(sock)
  -- The handler checks the memory file against the state file, serves one VM and ends.
  assert(os.execute(string.format("%%q --socket %%q --mem-file %%q --state %%q --once " ..
    ">>%%q 2>&1 & for i in $(seq 400); do [ -S %%q ] && exit 0; sleep 0.025; done; exit 1",
    uffd_bin, sock, dir .. "/base.mem", state, dir .. "/uffd.log", sock)), "no handler")
  return assert(ember.restore { state = state, uffd = sock, console = "none",
    resume = true, track_dirty_pages = true })
end

local vm = ember.vm { kernel = ember.guest.test_kernel, memory_mib = 64, console = "none",
  track_dirty_pages = true }
assert(vm:start())
assert(vm:wait_for("ready cpus=[^\\n]*\\n", T))
local counts = { full = 0, diff = 0, file = 0, uffd = 0 }
for i = 1, cycles do
  local t0 = ember.now()
  cmd(vm, string.format("fill %%d %%d", 1 + i %% 4, i))
  local sum = cmd(vm, "sum " .. SUM_MIB):match("sum=(%%x+)")
  assert(vm:pause())
  local kind = (i %% 2 == 1) and "full" or "diff"
  local state = dir .. "/" .. kind .. ".state"
  if kind == "full" then
    assert(vm:snapshot { state = state, mem = dir .. "/base.mem" })
  else
    assert(vm:snapshot { state = state, mem = dir .. "/diff.mem", type = "diff" })
    assert(ember.merge_memory(dir .. "/base.mem", dir .. "/diff.mem"))
  end
  vm:stop()
  local uffd = (i // 2) %% 2 == 1
  vm = restore(state, uffd)
  local got = cmd(vm, "sum " .. SUM_MIB):match("sum=(%%x+)")
  assert(got == sum, string.format("cycle %%d (%%s, %%s): memory sum %%s, was %%s", i, kind,
    uffd and "uffd" or "file", got, sum))
  cmd(vm, string.format("check %%d %%d", 1 + i %% 4, i))
  -- For make bench: the cycle's time and the pages whose contents were compared (the
  -- checksum over SUM_MIB, then the filled MiB checked word by word).
  print(string.format("cycle %%d %%s %%s %%.2f ms %%d pages", i, kind, uffd and "uffd" or "file",
    (ember.now() - t0) * 1000, (SUM_MIB + 1 + i %% 4) * 256))
  counts[kind] = counts[kind] + 1
  counts[uffd and "uffd" or "file"] = counts[uffd and "uffd" or "file"] + 1
end
vm:stop()
print(string.format("soak: %%d cycles (%%d full, %%d diff; %%d file, %%d uffd), checksums equal",
  cycles, counts.full, counts.diff, counts.file, counts.uffd))
"""


@test
def snapshot_soak_cycles_keep_memory_equal():
    cycles = int(os.environ.get("EMBER_SOAK_CYCLES", "8" if run.ARGS.sanitizer else "24"))
    with tempfile.TemporaryDirectory() as tmp:
        script = write_def(tmp, SOAK % {"t": secs(10)}, "soak.lua")
        r = ember("run", script, tmp, handler_bin(), str(cycles), timeout=30 + cycles * 4)
        log = ""
        if os.path.exists(os.path.join(tmp, "uffd.log")):
            with open(os.path.join(tmp, "uffd.log")) as f:
                log = f.read()[-2000:]
        check(r.returncode == 0 and re.search(r"soak: \d+ cycles .* checksums equal", r.stdout),
              "soak: status %d\nstdout %s\nstderr %s\nhandler %s"
              % (r.returncode, r.stdout[-2000:], r.stderr[-3000:], log))
        print("  " + r.stdout.strip().splitlines()[-1])
