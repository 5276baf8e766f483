-- Periodic diff snapshots with retention: a full snapshot every 5 ticks, diffs merged
-- into base.mem in between, so the newest chain-*.state + base.mem restore the newest
-- state. Run: build/ember run configs/periodic-diffs.lua [DIR]
local dir = arg[1] or "/tmp/ember-chain"
os.execute("mkdir -p '" .. dir .. "'")

local vm = ember.vm {
  kernel = ember.guest.test_kernel, memory_mib = 256, track_dirty_pages = true,
  cmdline = "boottimer",
}
vm:on("boot", function(v)
  local chain = ember.policy.diff_chain(v, { dir = dir, every = "2s", full_every = 5 })
  v:on("exit", function() print("newest snapshot:", chain.latest() and chain.latest().state) end)
end)
return vm
