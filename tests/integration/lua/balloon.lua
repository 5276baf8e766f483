-- virtio-balloon: inflating gives guest memory back to the host (ember's RSS falls), deflate
-- returns it, the guest's statistics arrive, free page reporting releases memory, hostile
-- PFNs and chains leave ember running, and a restored (File-backed) VM balloons too, its
-- discarded pages reading as zeros rather than as the memory file's bytes.
package.path = arg[0]:match("(.*/)") .. "?.lua;" .. package.path
local t = require "common"
local dir = assert(arg[1], "usage: balloon.lua TMPDIR")
local MIB_KIB = 1024

local function rss(vm) return vm:memory_stats().process_rss_kib end
local function resident(vm) return vm:memory_stats().guest_resident_kib end

-- FNV-1a 64 per word (tests/guest/README.md) of `mib` MiB of zeros.
local function zero_sum(mib)
  local h = 0xcbf29ce484222325
  for _ = 1, mib * 131072 do h = h * 0x100000001b3 end
  return string.format("%016x", h)
end

-- Ask until the statistics show `n` updates (the device parses them on the loop).
local function stats_after(vm, n)
  for _ = 1, 100 do
    local st = assert(vm:balloon_stats())
    if st.updates >= n then return st end
    ember.sleep(0.02)
  end
  error("balloon statistics never reached " .. n .. " updates")
end

local vm = t.guest { memory_mib = 256,
  balloon = { amount_mib = 0, deflate_on_oom = true, stats_polling_interval_s = 1 } }
local _, mem = t.boot(vm)
local info = t.cmd(vm, "balloon info")
assert(info:find("target=0 actual=0 held=0", 1, true), info)
-- VERSION_1 | STATS_VQ | DEFLATE_ON_OOM negotiated
assert(info:find("features=0x100000006", 1, true), info)

-- 128 MiB of guest memory in use, then a 64 MiB target: the guest inflates.
t.cmd(vm, "fill 128 7")
local rss0, res0 = rss(vm), resident(vm)
assert(vm:balloon(64))
t.eq(t.cmd(vm, "balloon inflate"), "balloon pages=16384", "inflate")
local rss1, res1 = rss(vm), resident(vm)
local drop = rss0 - rss1
print(string.format("balloon: rss %d -> %d KiB (dropped %.1f MiB), guest resident %d -> %d KiB",
  rss0, rss1, drop / MIB_KIB, res0, res1))
assert(drop >= 60 * MIB_KIB and drop <= 68 * MIB_KIB, "RSS fell by " .. drop .. " KiB")
assert(res0 - res1 >= 63 * MIB_KIB, "guest resident memory fell by " .. (res0 - res1) .. " KiB")
local st = stats_after(vm, 1)
t.eq(st.target_mib, 64, "target MiB")
t.eq(st.actual_pages, 16384, "actual pages written by the guest")
t.eq(st.actual_mib, 64, "actual MiB")
-- The rest of the fill is untouched: its last 64 MiB still hold the pattern.
t.eq(t.cmd(vm, "sum 128"):match("sum=(%x+)") ~= nil, true, "sum after inflate")

-- Statistics: the guest answers the device's next request with fixed values.
local ans = t.cmd(vm, "balloon stats")
local posts, free = ans:match("posts=(%d+) free=(%d+)")
assert(posts, ans)
st = stats_after(vm, tonumber(posts))
t.eq(st.swap_in, 11, "swap_in")
t.eq(st.swap_out, 22, "swap_out")
t.eq(st.major_faults, 33, "major_faults")
t.eq(st.minor_faults, 1000 + tonumber(posts) - 1, "minor_faults (fresh values)")
t.eq(st.free_memory, tonumber(free), "free_memory")
t.eq(st.available_memory, tonumber(free), "available_memory")
t.eq(st.total_memory, mem, "total_memory")
t.eq(st.disk_caches, 55, "disk_caches")
t.eq(st.hugetlb_allocations, nil, "a tag the guest did not send is absent")

-- Deflate: the pages come back to the guest (zeros), and are usable again.
t.eq(t.cmd(vm, "balloon deflate"), "balloon pages=0", "deflate")
t.eq(stats_after(vm, 1).actual_pages, 0, "actual after deflate")
t.eq(t.cmd(vm, "sum 1"):match("sum=(%x+)"), zero_sum(1), "a deflated page reads as zeros")
t.cmd(vm, "fill 64 9")
t.eq(t.cmd(vm, "check 64 9"), "check", "deflated memory holds data again")
assert(vm:balloon(0))
t.eq(t.cmd(vm, "balloon inflate"), "balloon pages=0", "target 0")
local ok, err = vm:balloon(300)
assert(not ok and err, "a target above guest memory must be refused")

-- Snapshot with the balloon's state (target, actual, stats) for the restore below.
assert(vm:balloon(32))
assert(vm:pause())
local state, memf = dir .. "/b.state", dir .. "/b.mem"
assert(vm:snapshot { state = state, mem = memf })
assert(vm:resume())

-- Hostile input: PFNs outside RAM are refused and the device carries on; a chain outside
-- RAM breaks the device (NEEDS_RESET), not ember.
local evil = t.cmd(vm, "balloon evil pfns")
assert(evil:find("status=0xf$"), evil)
evil = t.cmd(vm, "balloon evil chain")
assert(tonumber(evil:match("status=0x(%x+)"), 16) & 0x40 ~= 0, evil)
t.eq(vm:state(), "running", "ember carries on")
info = t.cmd(vm, "balloon info") -- the guest starts the device again
assert(info:find("target=8192", 1, true), info)
t.eq(t.cmd(vm, "balloon inflate"), "balloon pages=8192", "inflate after reset")
t.eq(t.cmd(vm, "echo alive"), "alive", "guest alive")
vm:send("poweroff\n")
t.eq(vm:wait(t.secs(10)), "poweroff", "exit")

-- Restored from the memory file (MAP_PRIVATE): the state came back, and inflating
-- replaces the file pages with anonymous zero pages (never the file's bytes again).
local c = assert(ember.restore { state = state, mem = memf, console = "none", resume = true })
st = assert(c:balloon_stats())
t.eq(st.target_mib, 32, "target after restore")
t.eq(st.swap_in, 11, "stats after restore")
t.cmd(c, "touch 32768") -- 128 MiB of private copies of the file's pages
local crss0 = rss(c)
assert(c:balloon(64))
t.eq(t.cmd(c, "balloon inflate"), "balloon pages=16384", "inflate after restore")
drop = crss0 - rss(c)
print(string.format("balloon (File restore): rss dropped %.1f MiB", drop / MIB_KIB))
assert(drop >= 60 * MIB_KIB, "RSS of the restored vm fell by " .. drop .. " KiB")
t.eq(t.cmd(c, "sum 64"):match("sum=(%x+)"), zero_sum(64), "ballooned pages read as zeros")
t.eq(t.cmd(c, "balloon deflate"), "balloon pages=0", "deflate after restore")
c:send("poweroff\n")
t.eq(c:wait(t.secs(10)), "poweroff", "restored vm exit")

-- Free page reporting (without a stats queue it is the third queue).
local r = t.guest { memory_mib = 128, balloon = { amount_mib = 0, free_page_reporting = true } }
t.boot(r)
info = t.cmd(r, "balloon info")
assert(info:find("features=0x100000020", 1, true), info)
ok, err = r:balloon_stats()
assert(not ok and err, "statistics are off")
t.cmd(r, "touch 16384")
local rrss0 = rss(r)
t.eq(t.cmd(r, "balloon report 8192"), "balloon report pages=8192", "report")
drop = rrss0 - rss(r)
print(string.format("balloon reporting: rss dropped %.1f MiB", drop / MIB_KIB))
assert(drop >= 30 * MIB_KIB, "RSS after reporting fell by " .. drop .. " KiB")
r:send("poweroff\n")
t.eq(r:wait(t.secs(10)), "poweroff", "reporting vm exit")

-- Free page hinting from Lua (the test guest's driver does not take the feature, so no run
-- ends; the host's side of the controls is what is seen here).
local h = t.guest { memory_mib = 64, balloon = { amount_mib = 0, free_page_hinting = true } }
t.boot(h)
local hs = assert(h:balloon_hinting("status"))
t.eq(hs.host_cmd, 0, "hinting before a run")
assert(hs.guest_cmd == nil, "no command from the guest yet")
ok, err = h:balloon_hinting("start")
assert(not ok and err:find("driver has not started", 1, true), err)
t.cmd(h, "balloon info")
t.eq(assert(h:balloon_hinting("start")).host_cmd, 2, "first run")
t.eq(assert(h:balloon_hinting("start", false)).host_cmd, 3, "second run")
t.eq(assert(h:balloon_hinting("stop")).host_cmd, 1, "stopped: DONE")
ok, err = pcall(h.balloon_hinting, h, "pause")
assert(not ok, "an unknown op")
h:send("poweroff\n")
t.eq(h:wait(t.secs(10)), "poweroff", "hinting vm exit")
print("balloon ok")
