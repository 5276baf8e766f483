-- memory_hotplug: the definition key builds a virtio-mem device (the test guest lists it
-- and has no driver for it), vm:hotplug_memory_status() gives its sizes, and
-- vm:hotplug_memory() refuses sizes that are not whole blocks or above the total, and any
-- size while the guest's driver has not started the device (Firecracker's answer); a VM
-- without the key has no area. The Linux guest's plugging: test_linux_shell_memhotplug.py.
package.path = arg[0]:match("(.*/)") .. "?.lua;" .. package.path
local t = require "common"

local vm = t.guest { memory_mib = 128,
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
vm:stop()

local plain = t.guest { memory_mib = 128 }
t.boot(plain)
ok, err = plain:hotplug_memory_status()
t.eq(err, "memory hotplug: the vm has no hotplug area", "no area")
plain:stop()
print("memory_hotplug: ok")
