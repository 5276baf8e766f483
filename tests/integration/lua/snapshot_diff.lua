-- Diff snapshots: only pages dirtied since the last snapshot are written (by the guest, by
-- a device, or before a snapshot that failed), and a diff merged onto its base restores
-- the newer state.
package.path = arg[0]:match("(.*/)") .. "?.lua;" .. package.path
local t = require "common"
local dir = assert(arg[1], "usage: snapshot_diff.lua TMPDIR")

local function size_on_disk(path)
  local p = io.popen("du -k '" .. path .. "'")
  local kib = tonumber(p:read("l"):match("^(%d+)"))
  p:close()
  return kib
end

-- A drive the guest reads before and after the base: the device writes the bytes into
-- guest memory, where KVM's dirty log does not see them (the buffer's pages are already
-- mapped in the guest by the first read, so no fault of the guest's marks them either);
-- the diff must hold them all the same.
local disk = dir .. "/disk.img"
local old_bytes, new_bytes = t.pattern(77, 64 * t.SECTOR), t.pattern(78, 64 * t.SECTOR)
t.make_image(disk, 128, old_bytes .. new_bytes)

local vm = t.guest { memory_mib = 256, track_dirty_pages = true,
  drives = { { id = "disk", path = disk } } }
t.boot(vm)
t.cmd(vm, "fill 64 1")
t.eq(t.cmd(vm, "blk read 0 64"):match("sum=(%x+)"), t.fnv(old_bytes), "disk read")
assert(vm:pause())
assert(vm:snapshot { state = dir .. "/base.state", mem = dir .. "/base.mem" })
assert(vm:resume())
t.eq(t.cmd(vm, "blk read 64 64"):match("sum=(%x+)"), t.fnv(new_bytes), "disk read")
local sum2 = t.cmd(vm, "fill 2 2"):match("sum=(%x+)")
assert(vm:pause())
-- A full snapshot that fails after reading the dirty log: the next diff still needs it.
local ok, err = vm:snapshot { state = dir .. "/missing/x.state", mem = dir .. "/missing/x.mem" }
assert(not ok and err:find("missing"), "a snapshot into a missing directory fails: " .. tostring(err))
assert(vm:snapshot { state = dir .. "/diff.state", mem = dir .. "/diff.mem", type = "diff" })
vm:stop()

local base_kib, diff_kib = size_on_disk(dir .. "/base.mem"), size_on_disk(dir .. "/diff.mem")
assert(base_kib >= 64 * 1024, "full snapshot holds the 64 MiB filled: " .. base_kib)
assert(diff_kib < 8 * 1024, "diff holds only dirtied pages: " .. diff_kib .. " KiB")
assert(diff_kib >= 2 * 1024, "diff holds the 2 MiB written: " .. diff_kib .. " KiB")

assert(ember.merge_memory(dir .. "/base.mem", dir .. "/diff.mem"))
local c = assert(ember.restore { state = dir .. "/diff.state", mem = dir .. "/base.mem",
  console = "none", resume = true })
t.eq(t.cmd(c, "sum 2"):match("sum=(%x+)"), sum2, "new pattern after merge")

t.eq(t.cmd(c, "check 2 2"), "check", "diff pages")
t.eq(t.cmd(c, "blk sum 64"):match("sum=(%x+)"), t.fnv(new_bytes),
  "what the drive read into guest memory after the base")
c:stop()

-- A merge refuses files of different sizes.
local f = io.open(dir .. "/small.mem", "w"); f:write("x"); f:close()
local ok, err = ember.merge_memory(dir .. "/base.mem", dir .. "/small.mem")
assert(not ok and err:find("differ in size"), err)
print("snapshot_diff ok")
