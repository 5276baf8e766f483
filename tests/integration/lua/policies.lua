-- Policies: event handlers, timers, console patterns, retention; errors do not stop the VM.
package.path = arg[0]:match("(.*/)") .. "?.lua;" .. package.path
local t = require "common"
local dir = assert(arg[1])

local seen = { boot = 0, pause = 0, resume = 0, ticks = 0, words = {} }
local vm = t.guest { memory_mib = 128, track_dirty_pages = true,
  on_boot = function() seen.boot = seen.boot + 1 end }
vm:on("pause", function() seen.pause = seen.pause + 1 end)
vm:on("resume", function() seen.resume = seen.resume + 1 end)
vm:on("console", "OK echo (%a+)", function(_, word) table.insert(seen.words, word) end)
vm:on("console", "OK echo", function() error("a broken policy") end)
local ticker = vm:every("20ms", function() seen.ticks = seen.ticks + 1 end)
assert(not pcall(vm.every, vm, "soon", function() end), "a bad interval must raise")
assert(not pcall(vm.on, vm, "reboot", function() end), "an unknown event must raise")

t.boot(vm)
t.cmd(vm, "echo echo alpha")
t.cmd(vm, "echo echo beta")
t.cmd(vm, "boottimer")
assert(vm:pause()); assert(vm:resume())
ember.sleep(0.2)
t.eq(table.concat(seen.words, ","), "alpha,beta", "console pattern matches")
t.eq(seen.boot, 1, "on_boot")
t.eq(seen.pause, 1, "pause events")
t.eq(seen.resume, 1, "resume events")
assert(seen.ticks >= 3, "every() ticked " .. seen.ticks .. " times")
ticker.cancel()
local ticks = seen.ticks
ember.sleep(0.1)
assert(seen.ticks <= ticks + 1, "cancelled timer kept ticking")
t.eq(t.cmd(vm, "echo still here"), "still here", "the broken policy did not stop the vm")

-- keep the last 2 snapshots
local keep = ember.policy.keep_last(vm, { dir = dir, every = "30ms", keep = 2 })
ember.sleep(0.5)
keep.timer.cancel()
ember.sleep(0.1)
local p = io.popen("ls " .. dir .. " | grep -c '^snap-.*\\.state$'")
t.eq(tonumber(p:read("l")), 2, "snapshots kept")
p:close()

-- a merged diff chain: the newest state + base.mem restore the newest guest state
local chain = ember.policy.diff_chain(vm, { dir = dir, every = "30ms", full_every = 3 })
for i = 1, 4 do
  t.cmd(vm, "fill 1 " .. (200 + i))
  ember.sleep(0.06)
end
chain.timer.cancel()
ember.sleep(0.1)
local sum = t.cmd(vm, "sum 1"):match("sum=(%x+)")
assert(vm:pause())
local latest = assert(chain.latest())
-- the newest snapshot may predate the last fill: take one more by hand to compare exactly
ember.policy.snapshot_now(vm, dir .. "/final.state", dir .. "/final.diff", "diff")
assert(ember.merge_memory(latest.mem, dir .. "/final.diff"))
vm:stop()
local c = assert(ember.restore { state = dir .. "/final.state", mem = latest.mem,
  console = "none", resume = true })
t.eq(t.cmd(c, "sum 1"):match("sum=(%x+)"), sum, "diff chain restores the newest state")
c:stop()
print("policies ok")
