-- The guest's boot-timer write runs on_boot and is kept as a timing.
package.path = arg[0]:match("(.*/)") .. "?.lua;" .. package.path
local t = require "common"

local booted = false
local vm = t.guest { on_boot = function(v) booted = true; v:send("echo from on_boot\n") end }
t.boot(vm)
assert(vm:times().boot_ms == nil, "no boot time before the guest writes it")
t.eq(t.cmd(vm, "boottimer"), "boottimer", "boottimer command")
assert(vm:wait_for("OK from on_boot\n", t.secs(10)), "on_boot did not reach the guest")
assert(booted, "on_boot was not called")
local times = vm:times()
assert(times.boot_ms and times.boot_ms > 0, "boot_ms missing")
assert(times.first_run_ms and times.first_run_ms >= times.start_ms, "first_run_ms")
vm:stop()
print("boot_timer ok")
