-- Benchmark script: snapshot write rate and restore latency on the test guest. Prints
-- "BENCH <name> <value>" lines for tests/bench/bench.py. arg[1] = directory for files.
local dir, runs = assert(arg[1]), tonumber(arg[2] or "10")
local FILL = 128
local state, mem = dir .. "/bench.state", dir .. "/bench.mem"

local vm = ember.vm { kernel = ember.guest.test_kernel, memory_mib = 256, console = "none",
  track_dirty_pages = true }
assert(vm:start())
assert(vm:wait_for("ready cpus=%d+[^\n]*\n", 10))
assert(vm:send(string.format("fill %d 9\n", FILL)))
assert(vm:wait_for("OK fill[^\n]*\n", 60))
assert(vm:pause())
for _ = 1, runs do
  assert(vm:snapshot { state = state, mem = mem })
  local ms = vm:times().snapshot_ms
  print(string.format("BENCH full_snapshot_ms %.3f", ms))
  print(string.format("BENCH snapshot_mib_per_s %.1f", FILL / (ms / 1000)))
end
-- Diffs: dirty 4 MiB between snapshots.
for i = 1, runs do
  assert(vm:resume())
  assert(vm:send(string.format("fill 4 %d\n", i)))
  assert(vm:wait_for("OK fill[^\n]*\n", 60))
  assert(vm:pause())
  assert(vm:snapshot { state = dir .. "/d.state", mem = dir .. "/d.mem", type = "diff" })
  print(string.format("BENCH diff_snapshot_4mib_ms %.3f", vm:times().snapshot_ms))
end
vm:stop()
for _ = 1, runs do
  local c = assert(ember.restore { state = state, mem = mem, console = "none" })
  print(string.format("BENCH restore_file_ms %.3f", c:times().restore_ms))
  assert(c:resume())
  -- First answer after restore: the guest's pages fault in from the file.
  local t0 = ember.now()
  assert(c:send("sum 16\n"))
  assert(c:wait_for("OK sum[^\n]*\n", 30))
  print(string.format("BENCH first_sum16_after_restore_ms %.3f", (ember.now() - t0) * 1000))
  c:stop()
end
