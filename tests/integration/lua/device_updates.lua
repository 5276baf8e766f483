-- vm:update_drive and vm:update_net on the test guest: a drive swapped after boot serves
-- the new file (sectors and capacity); a bad path answers nil, message and leaves the old
-- file in use (a FIFO too, at once); a rate limit set and removed at run time; misuse
-- raises. The same effects as PATCH /drives and /network-interfaces
-- (test_api_updates.py), from Lua.
package.path = arg[0]:match("(.*/)") .. "?.lua;" .. package.path
local t = require "common"
local dir = assert(arg[1], "usage: device_updates.lua TMPDIR")

local SECTOR = t.SECTOR
local old, new = dir .. "/old.img", dir .. "/new.img"
local old_bytes, new_bytes = t.pattern(11, 64 * SECTOR), t.pattern(22, 128 * SECTOR)
t.make_image(old, 64, old_bytes)
t.make_image(new, 128, new_bytes)

-- "ro" is there for the FIFO: read-only, it is opened O_RDONLY, which waits for a writer.
local vm = t.guest { drives = { { id = "data", path = old },
  { id = "ro", path = old, read_only = true } } }
t.boot(vm)
t.eq(t.cmd(vm, "blk info"), "blk capacity=64 ro=0 serial=data", "before the swap")
t.eq(t.cmd(vm, "blk read 0 64"), "blk sum=" .. t.fnv(old_bytes), "old file read")

-- The swap: the guest sees the new capacity and reads the new file's sectors.
t.eq(vm:update_drive { id = "data", path = new }, true, "update_drive path")
t.eq(t.cmd(vm, "blk info"), "blk capacity=128 ro=0 serial=data", "after the swap")
t.eq(t.cmd(vm, "blk read 64 64"), "blk sum=" .. t.fnv(new_bytes:sub(64 * SECTOR + 1)),
  "new file read past the old end")

-- A path that cannot be opened: nil, message naming the drive; the new file stays.
local ok, err = vm:update_drive { id = "data", path = dir .. "/missing.img" }
assert(ok == nil and err:find("drive 'data': cannot open " .. dir .. "/missing.img", 1, true),
  "missing file: " .. tostring(err))
ok, err = vm:update_drive { id = "other", path = new }
assert(ok == nil and err:find("drive 'other': no such drive", 1, true),
  "unknown drive: " .. tostring(err))
-- A FIFO is no disk: refused at once (opening it must not wait for a writer).
local fifo = dir .. "/pipe"
assert(os.execute("mkfifo " .. fifo), "mkfifo")
local t0 = ember.now()
for _, id in ipairs { "ro", "data" } do
  ok, err = vm:update_drive { id = id, path = fifo }
  assert(ok == nil and err == "drive '" .. id .. "': the block device backing file " .. fifo ..
    " is not a regular file or a block device", "fifo: " .. tostring(err))
end
assert(ember.now() - t0 < 1, "a FIFO held update_drive up")
t.eq(t.cmd(vm, "blk info"), "blk capacity=128 ro=0 serial=data", "after a bad path")
t.eq(t.cmd(vm, "blk read 0 64"), "blk sum=" .. t.fnv(new_bytes:sub(1, 64 * SECTOR)),
  "read after a bad path")

-- A rate limit set at run time holds reads back; a bucket of size 0 removes it.
local function timed_reads(n)
  local t0 = ember.now()
  for i = 1, n do t.cmd(vm, "blk read " .. i .. " 1") end
  return ember.now() - t0
end
local free = timed_reads(4)
t.eq(vm:update_drive { id = "data", rate_limit = { ops = { size = 1, refill_time = 300 } } },
  true, "update_drive rate_limit")
local limited = timed_reads(4)
assert(limited >= 0.8, string.format("4 reads at 1 op/300 ms took only %.3f s", limited))
t.eq(vm:update_drive { id = "data", rate_limit = { ops = { size = 0 } } }, true,
  "rate limit removed")
local again = timed_reads(4)
assert(again < limited and again < free + 0.5,
  string.format("4 reads without the limit took %.3f s (%.3f s before it)", again, free))

-- Misuse raises, naming the key; nothing changes.
local function raises(want, fn, ...)
  local good, e = pcall(fn, vm, ...)
  assert(not good and tostring(e):find(want, 1, true),
    string.format("want an error with %q, got %s", want, tostring(e)))
end
raises("update_drive: give a path, a rate_limit or both", vm.update_drive, { id = "data" })
raises("update_drive: id is required", vm.update_drive, { path = new })
raises("update_drive: unknown key 'read_only'", vm.update_drive,
  { id = "data", path = new, read_only = true })
raises("update_drive.path: expected a string, got number", vm.update_drive,
  { id = "data", path = 7 })
raises("update_drive.rate_limit.ops: refill_time (ms) must be more than 0", vm.update_drive,
  { id = "data", rate_limit = { ops = { size = 1 } } })
raises("update_net: give rx_rate_limit, tx_rate_limit or both", vm.update_net, { id = "eth0" })
raises("update_net.tx_rate_limit: unknown key 'iops'", vm.update_net,
  { id = "eth0", tx_rate_limit = { iops = {} } })

-- Interfaces: this machine has none.
ok, err = vm:update_net { id = "eth0", tx_rate_limit = { ops = { size = 1, refill_time = 100 } } }
assert(ok == nil and err:find("net 'eth0': no such network interface", 1, true),
  "unknown interface: " .. tostring(err))

-- While paused the swap works too; once the VM has exited it is refused.
assert(vm:pause())
t.eq(vm:update_drive { id = "data", path = old }, true, "update_drive while paused")
assert(vm:resume())
t.eq(t.cmd(vm, "blk info"), "blk capacity=64 ro=0 serial=data", "swapped back while paused")
t.eq(t.cmd(vm, "blk read 0 64"), "blk sum=" .. t.fnv(old_bytes), "old file again")
vm:send("poweroff\n")
t.eq(vm:wait(t.secs(10)), "poweroff", "vm exit")
ok, err = vm:update_drive { id = "data", path = new }
assert(ok == nil and err, "update after exit: " .. tostring(err))
print("device updates ok")
