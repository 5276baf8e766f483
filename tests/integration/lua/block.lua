-- virtio-blk with the test guest's driver: sectors both ways between the guest and the
-- image file, a read-only drive that refuses writes, a snapshot with a drive restored and
-- read back, and hostile requests that leave ember running.
package.path = arg[0]:match("(.*/)") .. "?.lua;" .. package.path
local t = require "common"
local dir = assert(arg[1], "usage: block.lua TMPDIR")

local SECTOR = t.SECTOR
local pattern, fnv, make_image = t.pattern, t.fnv, t.make_image

local function read_image(path, sector, count)
  local f = assert(io.open(path, "rb"))
  f:seek("set", sector * SECTOR)
  local s = f:read(count * SECTOR)
  f:close()
  return s
end

local function write_image(path, sector, bytes)
  local f = assert(io.open(path, "r+b"))
  f:seek("set", sector * SECTOR)
  f:write(bytes)
  f:close()
end

local function device_stats(vm, kind)
  for _, d in ipairs(assert(vm:devices())) do
    if d.name:find(kind, 1, true) and d.stats then return d.stats end
  end
end

local disk, ro = dir .. "/data.img", dir .. "/ro.img"
make_image(disk, 2048)                       -- 1 MiB
local ro_bytes = pattern(4242, 64 * SECTOR)  -- 32 KiB the guest may only read
make_image(ro, 64, ro_bytes)

local vm = t.guest {
  drives = {
    { id = "data", path = disk },
    { id = "ro", path = ro, read_only = true },
  },
}
t.boot(vm)

-- The first drive: size, writability and serial as the guest sees them.
t.eq(t.cmd(vm, "blk info"), "blk capacity=2048 ro=0 serial=data", "blk info")

-- Guest writes, the host reads the same bytes in the image.
t.eq(t.cmd(vm, "blk write 10 4 77"), "blk written", "guest write")
t.eq(t.cmd(vm, "blk flush"), "blk flushed", "flush")
t.eq(read_image(disk, 10, 4), pattern(77, 4 * SECTOR), "image bytes after a guest write")
t.eq(t.cmd(vm, "blk read 10 4"), "blk sum=" .. fnv(pattern(77, 4 * SECTOR)), "read back")

-- The host writes the image, the guest reads the same bytes.
write_image(disk, 100, pattern(99, 8 * SECTOR))
t.eq(t.cmd(vm, "blk read 100 8"), "blk sum=" .. fnv(pattern(99, 8 * SECTOR)), "host write")
t.eq(t.cmd(vm, "blk read 2047 1"), "blk sum=" .. fnv(string.rep("\0", SECTOR)), "last sector")

-- Hostile requests: each fails alone, the device and ember carry on.
t.eq(t.cmd(vm, "blk evil short-header"), "blk evil status=1", "short header: IOERR")
t.eq(t.cmd(vm, "blk evil oob"), "blk evil status=1", "past the end: IOERR")
t.eq(t.cmd(vm, "blk evil unaligned"), "blk evil status=1", "unaligned length: IOERR")
t.eq(t.cmd(vm, "blk evil unsupported"), "blk evil status=2", "unknown type: UNSUPP")
assert(vm:send("blk write 2047 2 1\n"))
assert(vm:wait_for("ERR blk write status=1\n", t.secs(10)), "a write past the end must fail")
-- A chain without a status byte breaks the device (NEEDS_RESET); the driver resets it.
t.eq(t.cmd(vm, "blk evil no-status"), "blk evil status=needs-reset", "no status byte")
t.eq(t.cmd(vm, "blk read 10 4"), "blk sum=" .. fnv(pattern(77, 4 * SECTOR)), "after reset")
t.eq(t.cmd(vm, "echo still here"), "still here", "guest alive")

-- Device counters, where vm:devices() reports the model's (virtio_stats).
local st = device_stats(vm, "block")
if st and st.writes then
  assert(st.writes >= 1 and st.reads >= 3 and st.flushes >= 1, "block stats")
  assert(st.write_bytes >= 4 * SECTOR and st.errors >= 4, "block byte and error counts")
end

-- The read-only drive: reads work, writes are refused and never reach the file.
t.eq(t.cmd(vm, "blk use 1"), "blk use window=1", "select the second drive")
t.eq(t.cmd(vm, "blk info"), "blk capacity=64 ro=1 serial=ro", "read-only drive info")
t.eq(t.cmd(vm, "blk read 0 64"), "blk sum=" .. fnv(ro_bytes), "read-only drive data")
t.eq(t.cmd(vm, "blk evil ro-write"), "blk evil status=1", "write to a read-only drive")
assert(vm:send("blk write 3 1 5\n"))
assert(vm:wait_for("ERR blk write status=1\n", t.secs(10)), "a read-only drive must refuse writes")
t.eq(read_image(ro, 0, 64), ro_bytes, "read-only image untouched")

-- Snapshot with drives: the restored guest reads its data back through the restored
-- device (queues, indices and the image by path).
t.eq(t.cmd(vm, "blk use 0"), "blk use window=0", "back to the first drive")
t.eq(t.cmd(vm, "blk write 200 16 55"), "blk written", "write before the snapshot")
assert(vm:pause())
assert(vm:snapshot { state = dir .. "/vm.state", mem = dir .. "/vm.mem" })
vm:stop()

local c = assert(ember.restore { state = dir .. "/vm.state", mem = dir .. "/vm.mem",
  console = "none", resume = true })
local want = "blk sum=" .. fnv(pattern(55, 16 * SECTOR))
t.eq(t.cmd(c, "blk read 200 16"), want, "data read back after restore")
t.eq(t.cmd(c, "blk write 300 2 66"), "blk written", "write after restore")
t.eq(read_image(disk, 300, 2), pattern(66, 2 * SECTOR), "restored device writes the image")
t.eq(t.cmd(c, "blk evil oob"), "blk evil status=1", "hostile request after restore")
c:send("poweroff\n")
t.eq(c:wait(t.secs(10)), "poweroff", "restored vm exit")

-- Rate limits hold the guest back: 2 operations per 100 ms, then 64 KiB per 100 ms.
local function timed_reads(limit, count, sectors)
  local v = t.guest { drives = { { id = "slow", path = disk, rate_limit = limit } } }
  t.boot(v)
  local t0 = ember.now()
  for _ = 1, count do t.cmd(v, "blk read 0 " .. sectors) end
  local took = ember.now() - t0
  v:send("poweroff\n")
  t.eq(v:wait(t.secs(10)), "poweroff", "throttled vm exit")
  return took
end
local took = timed_reads({ ops = { size = 2, refill_time = 100 } }, 10, 1)
assert(took >= 0.35, string.format("10 reads at 2 ops/100 ms took only %.3f s", took))
took = timed_reads({ bandwidth = { size = 65536, refill_time = 100 } }, 10, 64)
assert(took >= 0.35, string.format("320 KiB at 64 KiB/100 ms took only %.3f s", took))

-- A drive whose image is missing is named in the error, and nothing starts.
local ok, bad = pcall(t.guest, { drives = { { id = "gone", path = dir .. "/missing.img" } } })
local err = bad
if ok then ok, err = bad:start() end
assert(not ok and tostring(err):find("drive 'gone'", 1, true), "missing image: " .. tostring(err))
print("block ok")
