-- Full snapshot of a running guest, restored in this process from the memory file: the
-- guest's memory, counter and answers carry on; three clones run side by side.
package.path = arg[0]:match("(.*/)") .. "?.lua;" .. package.path
local t = require "common"
local dir = assert(arg[1], "usage: snapshot_restore.lua TMPDIR")
local state, mem = dir .. "/vm.state", dir .. "/vm.mem"

local vm = t.guest { vcpus = 2, memory_mib = 256 }
t.boot(vm)
local sum = t.cmd(vm, "fill 32 7"):match("sum=(%x+)")
local addr = tonumber(t.cmd(vm, "counter"):match("addr=0x(%x+)"), 16)

-- Only a paused VM can be snapshotted.
local ok, err = vm:snapshot { state = state, mem = mem }
assert(not ok and err:find("must be paused"), err)
assert(vm:pause())
local counter = string.unpack("<I8", vm:mem(addr, 8))
local VMGENID = 0xf0000
local generation = vm:mem(VMGENID, 16)
assert(generation ~= string.rep("\0", 16), "no vm generation id at boot")
assert(vm:snapshot { state = state, mem = mem })
-- A diff needs dirty tracking.
ok, err = vm:snapshot { state = dir .. "/d.state", mem = dir .. "/d.mem", type = "diff" }
assert(not ok and err:find("track_dirty_pages"), err)
vm:stop()

local function restore(resume)
  local c = assert(ember.restore { state = state, mem = mem, console = "none", resume = resume })
  return c
end

local c = restore(false)
t.eq(c:state(), "paused", "a restored vm starts paused")
t.eq(c:vcpu_count(), 2, "vcpus restored")
t.eq(string.unpack("<I8", c:mem(addr, 8)), counter, "counter in restored memory")
assert(c:resume())
t.eq(t.cmd(c, "sum 32"):match("sum=(%x+)"), sum, "memory checksum after restore")
t.eq(t.cmd(c, "check 32 7"), "check", "pattern after restore")
local info = t.cmd(c, "info")
assert(info:find("cpus=2", 1, true), info)
local after = tonumber(t.cmd(c, "counter"):match("counter=(%d+)"))
assert(after > counter, "counter did not carry on after restore")
c:stop()

-- Overrides name what the snapshot lacks; a malformed one raises.
local none, why = ember.restore { state = state, mem = mem, net = { eth0 = "tap9" } }
assert(not none and why:find("Unknown Network Device", 1, true), why)
none, why = ember.restore { state = state, mem = mem, drives = { data = "/x.img" } }
assert(not none and why:find("Unknown Block Device", 1, true), why)
assert(not pcall(ember.restore, { state = state, mem = mem, net = { eth0 = 5 } }))

-- Three clones from the same files, each its own machine.
local clones, seen = {}, { [generation] = true }
for i = 1, 3 do
  clones[i] = restore(true)
  local id = clones[i]:mem(VMGENID, 16)
  assert(not seen[id], "clone " .. i .. " kept an old vm generation id")
  seen[id] = true
end
for i, k in ipairs(clones) do
  t.eq(t.cmd(k, "check 32 7"), "check", "clone " .. i .. " pattern")
  t.cmd(k, "fill 8 " .. (100 + i))
end
for i, k in ipairs(clones) do
  t.eq(t.cmd(k, "check 8 " .. (100 + i)), "check", "clone " .. i .. " kept its own writes")
  k:send("poweroff\n")
  t.eq(k:wait(t.secs(10)), "poweroff", "clone " .. i .. " exit")
end
print("snapshot_restore ok")
