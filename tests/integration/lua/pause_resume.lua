-- A paused guest makes no progress; a resumed one carries on. MSRs read and write back.
package.path = arg[0]:match("(.*/)") .. "?.lua;" .. package.path
local t = require "common"

local vm = t.guest { vcpus = 2 }
t.boot(vm)
local addr = tonumber(t.cmd(vm, "counter"):match("addr=0x(%x+)"), 16)
local function counter() return string.unpack("<I8", vm:mem(addr, 8)) end

ember.sleep(0.05)
assert(vm:pause())
t.eq(vm:state(), "paused", "state after pause")
local c1 = counter()
ember.sleep(0.2)
local c2 = counter()
t.eq(c2, c1, "counter while paused")
assert(not vm:pause(), "pausing twice must fail")

-- Every MSR KVM lists can be read and written back while paused.
local msrs = assert(vm:msrs(0))
local n = 0
for _ in pairs(msrs) do n = n + 1 end
assert(n >= 10, "KVM listed only " .. n .. " MSRs")
assert(vm:set_msrs(0, msrs))
assert(vm:msrs(1))

assert(vm:resume())
t.eq(vm:state(), "running", "state after resume")
assert(not vm:resume(), "resuming a running vm must fail")
ember.sleep(0.2)
local c3 = counter()
assert(c3 > c2, string.format("counter did not advance after resume (%d -> %d)", c2, c3))
-- The guest still answers.
t.eq(t.cmd(vm, "echo alive"), "alive", "echo after resume")
assert(vm:stop())
t.eq(vm:state(), "exited", "state after stop")
print("pause_resume ok")
