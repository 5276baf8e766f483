-- Vsock across snapshot and restore: the restored guest hears TRANSPORT_RESET on its
-- event queue (connections are not kept, as in Firecracker), and the device listens on
-- the socket the restore names (vsock override), not the saved one.
package.path = arg[0]:match("(.*/)") .. "?.lua;" .. package.path
local t = require "common"
local dir = assert(arg[1], "usage: vsock_restore.lua TMPDIR")

local function is_socket(path)
  return os.execute("test -S '" .. path .. "'") == true
end

local vm = t.guest { vsock = { guest_cid = 7, uds_path = dir .. "/a.sock" } }
t.boot(vm)
t.eq(t.cmd(vm, "vsock cid"), "vsock cid=7", "cid")
t.eq(t.cmd(vm, "vsock event", 5), "vsock event=none", "no event before the snapshot")
assert(is_socket(dir .. "/a.sock"), "listening on uds_path")
assert(vm:pause())
assert(vm:snapshot { state = dir .. "/v.state", mem = dir .. "/v.mem" })
vm:stop()
assert(not is_socket(dir .. "/a.sock"), "socket file removed when the VM ended")

local c = assert(ember.restore { state = dir .. "/v.state", mem = dir .. "/v.mem",
  console = "none", resume = true, vsock = dir .. "/b.sock" })
assert(is_socket(dir .. "/b.sock"), "restored device listens on the override path")
t.eq(t.cmd(c, "vsock event", 5), "vsock event=0", "transport reset after restore")
t.eq(t.cmd(c, "vsock event", 5), "vsock event=none", "only one")
t.eq(t.cmd(c, "vsock cid"), "vsock cid=7", "cid after restore")
c:stop()
print("vsock_restore ok")
