-- virtio-rng through the test guest's own driver: random bytes arrive, chains built wrong on
-- purpose put the device in NEEDS_RESET while ember carries on, the rate limit holds, and the
-- device works on after a snapshot and restore.
package.path = arg[0]:match("(.*/)") .. "?.lua;" .. package.path
local t = require "common"
local dir = assert(arg[1], "usage: entropy.lua TMPDIR")
local state, mem = dir .. "/vm.state", dir .. "/vm.mem"

local function read(vm, n)
  local sum = t.cmd(vm, "rng " .. n):match("^rng bytes=" .. n .. " sum=(%x+)$")
  assert(sum, "rng " .. n .. ": no sum")
  return sum
end

local vm = t.guest { entropy = {} }
t.boot(vm)
t.eq(t.cmd(vm, "virtio list"), "virtio 0:rng", "the guest finds the device")
local a, b = read(vm, 4096), read(vm, 4096)
assert(a ~= b, "two reads gave the same bytes")
read(vm, 65536) -- the largest request the device serves in one go

-- Hostile chains: the device goes to NEEDS_RESET (0x40 with ACK, DRIVER, FEATURES_OK,
-- DRIVER_OK still set), ember survives, and after the driver's reset the device works.
for _, kind in ipairs { "loop", "oob", "long", "jump", "nested" } do
  t.eq(t.cmd(vm, "virtio-evil " .. kind .. " 0"), "evil status=0x4f", kind)
  read(vm, 16)
end

-- Snapshot with the device live; the restored guest reads on from the same rings.
assert(vm:pause())
assert(vm:snapshot { state = state, mem = mem })
vm:stop()
local c = assert(ember.restore { state = state, mem = mem, console = "none", resume = true })
t.eq(t.cmd(c, "virtio list"), "virtio 0:rng", "device after restore")
assert(read(c, 256) ~= read(c, 256), "restored device repeats itself")
c:send("poweroff\n")
t.eq(c:wait(t.secs(10)), "poweroff", "restored vm exit")

-- Rate limit: 512-byte bucket refilled in 250 ms. 2560 bytes are one full bucket at once,
-- then four refills: about a second, never much less.
local slow = t.guest { entropy = { rate_limit = { bandwidth = { size = 512, refill_time = 250 } } } }
t.boot(slow)
local t0 = ember.now()
read(slow, 2560)
local took = ember.now() - t0
assert(took >= 0.9 and took < 5, string.format("2560 bytes at 2 KiB/s took %.3f s", took))
slow:send("poweroff\n")
t.eq(slow:wait(t.secs(10)), "poweroff", "rate-limited vm exit")

-- An operations limit: 2 requests per 200 ms, a token every 100 ms. Five requests: two at
-- once, then one per refill: about 300 ms.
local ops = t.guest { entropy = { rate_limit = { ops = { size = 2, refill_time = 200 } } } }
t.boot(ops)
t0 = ember.now()
for _ = 1, 5 do read(ops, 8) end
took = ember.now() - t0
assert(took >= 0.27 and took < 5, string.format("5 requests at 10/s took %.3f s", took))
ops:send("poweroff\n")
t.eq(ops:wait(t.secs(10)), "poweroff", "ops-limited vm exit")
print("entropy ok")
