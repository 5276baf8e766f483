-- Restores into a prewarmed VM shell (ember.prewarm): with the memory file mapped ahead,
-- with slots only, a shell of another size (not used: the restore builds as usual), and
-- a memory file replaced after the prewarm (the new file is mapped, not the old one).
-- Each clone must answer with the snapshot's memory.
package.path = arg[0]:match("(.*/)") .. "?.lua;" .. package.path
local t = require "common"
local dir = assert(arg[1], "usage: snapshot_prewarm.lua TMPDIR")
local state, mem = dir .. "/vm.state", dir .. "/vm.mem"

local vm = t.guest { memory_mib = 128 }
t.boot(vm)
local sum = t.cmd(vm, "fill 16 7"):match("sum=(%x+)")
assert(vm:pause())
assert(vm:snapshot { state = state, mem = mem })
vm:stop()

local function clone(what)
  local c = assert(ember.restore { state = state, mem = mem, console = "none", resume = true })
  t.eq(t.cmd(c, "sum 16"):match("sum=(%x+)"), sum, what .. ": memory checksum")
  t.eq(t.cmd(c, "check 16 7"), "check", what .. ": pattern")
  c:stop()
end

assert(ember.prewarm { memory_mib = 128, mem = mem })
clone("shell with the memory file mapped")
assert(ember.prewarm { memory_mib = 128 })
clone("shell with slots only")
assert(ember.prewarm { memory_mib = 256 })
clone("shell of another size")

-- The file at the path is replaced after the prewarm: the restore must see the new one.
assert(ember.prewarm { memory_mib = 128, mem = mem })
local vm2 = t.guest { memory_mib = 128 }
t.boot(vm2)
sum = t.cmd(vm2, "fill 16 9"):match("sum=(%x+)")
assert(vm2:pause())
os.remove(mem); os.remove(state)
assert(vm2:snapshot { state = state, mem = mem })
vm2:stop()
local c = assert(ember.restore { state = state, mem = mem, console = "none", resume = true })
t.eq(t.cmd(c, "sum 16"):match("sum=(%x+)"), sum, "replaced file: the new memory")
t.eq(t.cmd(c, "check 16 9"), "check", "replaced file: pattern")
c:stop()

-- Checked input.
local ok, err = pcall(ember.prewarm, { memory_mib = 0 })
assert(not ok and tostring(err):find("memory_mib"), tostring(err))
local ok2, err2 = ember.prewarm { memory_mib = 128, mem = dir .. "/missing.mem" }
assert(not ok2 and err2:find("missing.mem"), err2)
print("ok")
