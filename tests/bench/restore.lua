-- Benchmark script: one restore, for tests/bench/bench.py (a fresh process per run, so
-- the File and Uffd restores start alike). arg[1] = state file, arg[2] = memory file or
-- page-fault handler socket, arg[3] = "file" or "uffd". Prints the restore time (load
-- call to vCPUs ready, times().restore_ms) and the time from the load call to the
-- guest's answer to its first console command.
local state, backend, kind = assert(arg[1]), assert(arg[2]), assert(arg[3])
local def = { state = state, console = "none", resume = true }
if kind == "uffd" then def.uffd = backend else def.mem = backend end
local t0 = ember.now()
local vm = assert(ember.restore(def))
assert(vm:send("echo up\n"))
assert(vm:wait_for("OK up\n", 30))
local answered = (ember.now() - t0) * 1000
print(string.format("BENCH restore_ms %.3f", vm:times().restore_ms))
print(string.format("BENCH first_answer_ms %.3f", answered))
vm:stop()
