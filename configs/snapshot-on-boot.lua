-- Snapshot once the guest has booted, then serve clones from it: the first VM boots and
-- writes the boot timer; on_boot pauses it, snapshots it and stops it; three clones are
-- restored from that snapshot and each answers on its own console.
-- Run: build/ember run configs/snapshot-on-boot.lua [DIR]
local dir = arg[1] or "/tmp"
local state, mem = dir .. "/booted.state", dir .. "/booted.mem"

local booted = false
local vm = ember.vm {
  kernel = ember.guest.test_kernel, memory_mib = 128, console = "none", cmdline = "boottimer",
  on_boot = function(v)
    assert(v:pause())
    assert(v:snapshot { state = state, mem = mem })
    v:stop()
    booted = true
  end,
}
assert(vm:start())
while not booted do ember.sleep(0.01) end

for i = 1, 3 do
  local clone = assert(ember.restore { state = state, mem = mem, console = "none", resume = true })
  clone:send("echo clone " .. i .. "\n")
  print(assert(clone:wait_for("OK (clone %d+)")), string.format("restored in %.2f ms",
    clone:times().restore_ms))
  clone:stop()
end
