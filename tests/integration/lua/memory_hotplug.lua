-- memory_hotplug: the definition key builds a virtio-mem device (the test guest lists it
-- and has no driver for it), vm:hotplug_memory_status() gives its sizes, and
-- vm:hotplug_memory() refuses sizes that are not whole blocks or above the total, and any
-- size while the guest's driver has not started the device (Firecracker's answer); a VM
-- without the key has no area. The Linux guest's plugging: test_linux_shell_memhotplug.py.
package.path = arg[0]:match("(.*/)") .. "?.lua;" .. package.path
local t = require "common"
local dir = assert(arg[1], "usage: memory_hotplug.lua TMPDIR")

local vm = t.guest { memory_mib = 128, track_dirty_pages = true,
  memory_hotplug = { total_mib = 512, block_mib = 4, slot_mib = 256 } }
t.boot(vm)
local listed = t.cmd(vm, "virtio list")
t.eq(listed, "virtio 0:id24", "virtio list (id 24: virtio-mem)")
local st = assert(vm:hotplug_memory_status())
t.eq(st.total_mib, 512, "total")
t.eq(st.block_mib, 4, "block")
t.eq(st.slot_mib, 256, "slot")
t.eq(st.plugged_mib, 0, "plugged")
t.eq(st.requested_mib, 0, "requested")
local ok, err = vm:hotplug_memory(6)
assert(ok == nil and err:find("Size 6291456 is invalid", 1, true), tostring(err))
ok, err = vm:hotplug_memory(1024)
assert(ok == nil and err:find("is invalid", 1, true), tostring(err))
ok, err = vm:hotplug_memory(8)
t.eq(err, "Device is not active", "no driver in the test guest")
t.eq(assert(vm:hotplug_memory_status()).requested_mib, 0, "refused sizes left no trace")
assert(not pcall(vm.hotplug_memory, vm, -1), "a negative size raises")
-- Snapshots carry the area: the memory file holds RAM and then the area, a full and a
-- diff snapshot are written, and a restore has the same device and sizes.
assert(vm:pause())
assert(vm:snapshot { state = dir .. "/hp.state", mem = dir .. "/hp.mem" })
assert(vm:snapshot { state = dir .. "/hpd.state", mem = dir .. "/hpd.mem", type = "diff" })
vm:stop()
-- The diff right after the full snapshot holds almost nothing: not the whole area.
local p = io.popen("du -k '" .. dir .. "/hpd.mem'")
local diff_kib = tonumber(p:read("l"):match("^(%d+)"))
p:close()
print(string.format("memory_hotplug: a diff after the full snapshot: %d KiB on disk", diff_kib))
assert(diff_kib < 8192, "the diff wrote " .. diff_kib .. " KiB")
local f = assert(io.open(dir .. "/hp.mem", "rb"))
t.eq(f:seek("end"), (128 + 512) * 1024 * 1024, "memory file: RAM and the area")
f:close()
local back = assert(ember.restore { state = dir .. "/hp.state", mem = dir .. "/hp.mem",
  resume = true })
st = assert(back:hotplug_memory_status())
t.eq(st.total_mib, 512, "restored total")
t.eq(st.block_mib, 4, "restored block")
t.eq(st.slot_mib, 256, "restored slot")
t.eq(st.plugged_mib, 0, "restored plugged")
t.eq(t.cmd(back, "virtio list"), "virtio 0:id24", "restored device list")
back:stop()

local plain = t.guest { memory_mib = 128 }
t.boot(plain)
ok, err = plain:hotplug_memory_status()
t.eq(err, "memory hotplug: the vm has no hotplug area", "no area")
plain:stop()
print("memory_hotplug: ok")
