-- make demo: boot the test guest, fill memory, snapshot it, restore three clones, show
-- that each carries on from the same state, and print the timings.
local dir = arg[1] or os.getenv("TMPDIR") or "/tmp"
local state, mem = dir .. "/ember-demo.state", dir .. "/ember-demo.mem"
local MIB = 64

local function cmd(vm, line)
  assert(vm:send(line .. "\n"))
  local status, rest = vm:wait_for("\n?(%u+) ([^\n]*)\n", 20)
  assert(status == "OK", line .. ": " .. tostring(status) .. " " .. tostring(rest))
  return rest
end

local t0 = ember.now()
local vm = ember.vm { kernel = ember.guest.test_kernel, vcpus = 2, memory_mib = 256,
  console = "none" }
assert(vm:start())
assert(vm:wait_for("ember%-test%-guest ready[^\n]*\n", 10))
local boot_ms = (ember.now() - t0) * 1000
print(string.format("booted the test guest (2 vCPUs, 256 MiB) in %.1f ms", boot_ms))

local sum = cmd(vm, string.format("fill %d 42", MIB)):match("sum=(%x+)")
print(string.format("guest filled %d MiB with a seeded pattern, checksum %s", MIB, sum))
local counter_addr = tonumber(cmd(vm, "counter"):match("addr=0x(%x+)"), 16)

assert(vm:pause())
local counter = string.unpack("<I8", vm:mem(counter_addr, 8))
assert(vm:snapshot { state = state, mem = mem })
local snap_ms = vm:times().snapshot_ms
print(string.format("paused at counter %d, snapshot written in %.1f ms", counter, snap_ms))
vm:stop()

local rows = {}
for i = 1, 3 do
  local r0 = ember.now()
  local c = assert(ember.restore { state = state, mem = mem, console = "none", resume = true })
  local restore_ms = (ember.now() - r0) * 1000
  local csum = cmd(c, string.format("sum %d", MIB)):match("sum=(%x+)")
  local now = tonumber(cmd(c, "counter"):match("counter=(%d+)"))
  local st = assert(c:memory_stats())
  rows[i] = { clone = i, restore_ms = restore_ms, sum = csum, counter = now,
    resident = st.guest_resident_kib / 1024, private = st.guest_private_kib / 1024 }
  rows[i].vm = c
end

print()
print("| clone | restore (ms) | checksum         | same memory | counter went on | guest RAM mapped | private to clone |")
print("|-------|--------------|------------------|-------------|-----------------|------------------|------------------|")
for _, r in ipairs(rows) do
  print(string.format("| %5d | %12.2f | %s | %-11s | %-15s | %12.1f MiB | %12.2f MiB |",
    r.clone, r.restore_ms, r.sum, tostring(r.sum == sum), tostring(r.counter > counter),
    r.resident, r.private))
  r.vm:stop()
end
print()
print("Clones map the memory file copy-on-write: pages they only read are shared page")
print("cache; 'private' is what each clone wrote since its restore.")
os.remove(state)
os.remove(mem)
for _, r in ipairs(rows) do
  if r.sum ~= sum or r.counter <= counter then error("a clone did not carry on") end
end
