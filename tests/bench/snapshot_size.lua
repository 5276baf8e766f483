-- Benchmark script: full and diff snapshots of a test guest of arg[2] MiB with half its
-- memory filled. Prints "BENCH <name> <value>" lines for tests/bench/bench.py.
-- arg[1] = directory for files, arg[2] = guest MiB, arg[3] = full snapshots to take,
-- arg[4] = diff snapshots to take of each size.
-- Files left in arg[1] for bench.py: full.state/full.mem (the last full snapshot, also
-- what the restore runs load), diff1.mem and diff10.mem (the last diffs of 1% and 10%).
local dir, mib = assert(arg[1]), tonumber(arg[2] or "128")
local full_runs, runs = tonumber(arg[3] or "10"), tonumber(arg[4] or "10")
local fill = mib // 2
local pages = mib * 256 -- 4 KiB guest pages

local vm = ember.vm { kernel = ember.guest.test_kernel, memory_mib = mib, console = "none",
  track_dirty_pages = true }
assert(vm:start())
assert(vm:wait_for("ready cpus=%d+[^\n]*\n", 10))
assert(vm:send(string.format("fill %d 7\n", fill)))
assert(vm:wait_for("OK fill[^\n]*\n", 120))
assert(vm:pause())
for _ = 1, full_runs do
  assert(vm:snapshot { state = dir .. "/full.state", mem = dir .. "/full.mem" })
  print(string.format("BENCH full_ms %.3f", vm:times().snapshot_ms))
end
-- Diffs: the previous snapshot (full, or the diff before) reset the dirty log; dirty a
-- known share of the guest's pages (touch writes each page from the work area's start),
-- then take a diff. The guest's own few pages (stack, serial loop) come on top.
for _, pct in ipairs { 1, 10 } do
  local n = pages * pct // 100
  for _ = 1, runs do
    assert(vm:resume())
    assert(vm:send(string.format("touch %d\n", n)))
    assert(vm:wait_for("OK touch[^\n]*\n", 60))
    assert(vm:pause())
    assert(vm:snapshot { state = string.format("%s/diff%d.state", dir, pct),
      mem = string.format("%s/diff%d.mem", dir, pct), type = "diff" })
    print(string.format("BENCH diff%d_ms %.3f", pct, vm:times().snapshot_ms))
  end
end
vm:stop()
