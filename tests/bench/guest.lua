-- Benchmark script: boots the test guest with arg[1] MiB, measures memory overhead and
-- page-touch rate, prints "BENCH <name> <value>" lines for tests/bench/bench.py.
local mib = tonumber(arg[1] or "128")
local touch_pages = tonumber(arg[2] or "4096")

local vm = ember.vm { kernel = ember.guest.test_kernel, memory_mib = mib, console = "none" }
assert(vm:start())
assert(vm:wait_for("ready cpus=%d+[^\n]*\n", 10))

local t0 = ember.now()
assert(vm:send(string.format("touch %d\n", touch_pages)))
assert(vm:wait_for("OK touch pages=%d+[^\n]*\n", 60))
local dt = ember.now() - t0

local st = assert(vm:memory_stats())
print(string.format("BENCH touch_pages_per_s %.0f", touch_pages / dt))
print(string.format("BENCH guest_resident_mib_%d %.2f", mib, st.guest_resident_kib / 1024))
print(string.format("BENCH overhead_mib_%d %.2f", mib,
  (st.process_rss_kib - st.guest_resident_kib) / 1024))
local times = vm:times()
print(string.format("BENCH first_run_ms %.3f", times.first_run_ms))
vm:stop()
