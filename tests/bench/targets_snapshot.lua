-- Benchmark script for the issue-17 targets: full snapshots of a 2 GiB test guest with
-- 1 GiB touched (fsync timed apart, the process's peak RSS beyond guest memory while
-- snapshotting), diffs of 1% of a 1 GiB guest, and the snapshots the restore rows load
-- (128 MiB and 4 GiB guests, 16 MiB filled). Prints "BENCH <name> <value>" lines.
-- arg[1] = directory for files, arg[2] = full snapshots, arg[3] = diff snapshots.
local dir, full_runs, runs = assert(arg[1]), tonumber(arg[2] or "10"), tonumber(arg[3] or "10")

local function boot(mib, fill)
  local vm = ember.vm { kernel = ember.guest.test_kernel, memory_mib = mib, console = "none",
    track_dirty_pages = true }
  assert(vm:start())
  assert(vm:wait_for("ready cpus=%d+[^\n]*\n", 10))
  assert(vm:send(string.format("fill %d 7\n", fill)))
  assert(vm:wait_for("OK fill[^\n]*\n", 300))
  assert(vm:pause())
  return vm
end

-- Peak resident set of this process since the last reset (clear_refs 5), in KiB.
local function reset_peak()
  local f = assert(io.open("/proc/self/clear_refs", "w"))
  assert(f:write("5")); f:close()
end
local function peak_kib()
  local f = assert(io.open("/proc/self/status"))
  local s = f:read("a"); f:close()
  return tonumber(assert(s:match("VmHWM:%s*(%d+) kB")))
end

local vm = boot(2048, 1024)
for i = 1, full_runs do
  local name = string.format("%s/full%d", dir, i % 2) -- two pairs: no unlink in the timing
  os.remove(name .. ".mem"); os.remove(name .. ".state")
  reset_peak()
  assert(vm:snapshot { state = name .. ".state", mem = name .. ".mem" })
  local t, st = vm:times(), assert(vm:memory_stats())
  print(string.format("BENCH full_ms %.3f", t.snapshot_ms))
  print(string.format("BENCH full_sync_ms %.3f", t.snapshot_sync_ms))
  print(string.format("BENCH full_mib %.1f", t.snapshot_bytes / 2^20))
  print(string.format("BENCH snapshotting_overhead_mib %.2f",
    (peak_kib() - st.guest_resident_kib) / 1024))
end
vm:stop()
os.remove(dir .. "/full0.mem"); os.remove(dir .. "/full1.mem")

vm = boot(1024, 16)
assert(vm:snapshot { state = dir .. "/base.state", mem = dir .. "/base.mem" })
local n = 1024 * 256 // 100 -- 1% of the 4 KiB pages
for _ = 1, runs do
  assert(vm:resume())
  assert(vm:send(string.format("touch %d\n", n)))
  assert(vm:wait_for("OK touch[^\n]*\n", 60))
  assert(vm:pause())
  os.remove(dir .. "/diff.mem"); os.remove(dir .. "/diff.state")
  assert(vm:snapshot { state = dir .. "/diff.state", mem = dir .. "/diff.mem", type = "diff" })
  local t = vm:times()
  print(string.format("BENCH diff1_ms %.3f", t.snapshot_ms))
  print(string.format("BENCH diff1_sync_ms %.3f", t.snapshot_sync_ms))
end
vm:stop()

for _, mib in ipairs { 128, 4096 } do
  vm = boot(mib, 16)
  assert(vm:snapshot { state = string.format("%s/r%d.state", dir, mib),
    mem = string.format("%s/r%d.mem", dir, mib) })
  vm:stop()
  local f = assert(io.open(string.format("%s/r%d.state.mib", dir, mib), "w"))
  f:write(mib); f:close()
end
