-- Benchmark script: one restore, for tests/bench/bench.py (a fresh process per run, so
-- the File and Uffd restores start alike). arg[1] = state file, arg[2] = memory file or
-- page-fault handler socket, arg[3] = "file" or "uffd". Prints the restore time (load
-- call to vCPUs ready, times().restore_ms) and the time from the load call to the
-- guest's answer to its first console command, and its RSS beyond guest memory. arg[4]
-- holds words: "prewarm" makes a VM shell with the memory file (ember.prewarm) before
-- the load call; "hold" pauses the clone after its answer and waits for stdin to close;
-- "rate" (the restores-per-second row) skips the RSS figures, which the restore rows
-- take: parsing smaps in Lua cost three times the instructions of the restore itself.
local state, backend, kind = assert(arg[1]), assert(arg[2]), assert(arg[3])
local def = { state = state, console = "none", resume = true }
if kind == "uffd" then def.uffd = backend else def.mem = backend end
local flags = arg[4] or ""
if flags:find("prewarm") then
  local f = assert(io.open(state .. ".mib")) -- the guest's MiB, written beside the state
  assert(ember.prewarm { memory_mib = math.tointeger(f:read("n")), mem = backend })
  f:close()
end
local t0 = ember.now()
local vm = assert(ember.restore(def))
assert(vm:send("echo up\n"))
assert(vm:wait_for("OK up\n", 30))
local answered = (ember.now() - t0) * 1000
print(string.format("BENCH restore_ms %.3f", vm:times().restore_ms))
print(string.format("BENCH first_answer_ms %.3f", answered))
-- RSS beyond guest memory: the process's RSS less what it maps of the memory file
-- (memory_stats' mincore count would include the file's page cache it never touched).
if kind == "file" and not flags:find("rate") then
  local f = assert(io.open("/proc/self/smaps"))
  local guest, private, in_file = 0, 0, false
  for line in f:lines() do
    local path = line:match("^%x+%-%x+ %S+ %x+ %S+ %d+%s+(.*)$")
    if path then in_file = path == backend
    elseif in_file then guest = guest + tonumber(line:match("^Rss:%s*(%d+) kB") or 0)
    else private = private + tonumber(line:match("^Private_%a+:%s*(%d+) kB") or 0) end
  end
  f:close()
  local st = assert(vm:memory_stats())
  print(string.format("BENCH restored_overhead_mib %.2f", (st.process_rss_kib - guest) / 1024))
  -- Of it, the pages this process alone holds (USS): the rest is shared libraries' pages.
  print(string.format("BENCH restored_private_mib %.2f", private / 1024))
end
if flags:find("hold") then -- a clone for the 100-clone row: paused until stdin ends
  assert(vm:pause())
  print("BENCH held 1")
  io.stdout:flush()
  io.read("a")
end
vm:stop()
