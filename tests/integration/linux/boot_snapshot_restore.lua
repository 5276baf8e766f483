-- Linux, booted once per test run: the microVM kernel with an ext4 root on virtio-blk,
-- entropy and a balloon, 2 vCPUs. Part-way through the boot it is paused, snapshotted and
-- stopped; the boot then carries on in a VM restored from that snapshot. Prints what the
-- kernel said (the whole boot: before and after the snapshot) to arg[1]/kernel.log and a
-- "RESULT key value" line per fact for tests/integration/test_linux.py to check.
local dir = assert(arg[1], "usage: boot_snapshot_restore.lua TMPDIR LINUXDIR [SNAP_AT]")
local linux = assert(arg[2])
-- The mid-boot snapshot is taken once the kernel has brought its CPUs up: a point every host
-- reaches well before /init (an emulating host takes tens of seconds to get there, and /init
-- about as long after it; a fixed delay was passed by /init on faster emulating hosts).
local snap_at = arg[3] or "smp: Brought up"
local deadline = 1200 -- seconds: a Linux boot takes minutes on an emulating host

local function result(k, v) print(string.format("RESULT %s %s", k, tostring(v))) end

-- ACPI on, devices found in the DSDT (not on the command line), on every host.
local vm = ember.vm {
  vcpus = 2, memory_mib = 256,
  kernel = linux .. "/vmlinux",
  cmdline = "console=ttyS0 reboot=k panic=1 pci=off init=/init",
  device_discovery = "acpi",
  drives = { { id = "rootfs", path = linux .. "/rootfs.ext4", read_only = true, root = true } },
  entropy = {},
  balloon = { amount_mib = 0, deflate_on_oom = true },
  console = "none", console_log = dir .. "/before.log",
}
assert(vm:start())
assert(vm:wait_for("Linux version", 120), "the kernel printed nothing")
assert(vm:wait_for(snap_at, deadline), "the kernel never printed " .. snap_at)
assert(vm:pause())
assert(vm:snapshot { state = dir .. "/linux.state", mem = dir .. "/linux.mem" })
result("snapshot_ms", string.format("%.1f", vm:times().snapshot_ms))
local f = assert(io.open(dir .. "/before.log"))
local before = f:read("a")
f:close()
result("before_bytes", #before)
f = assert(io.open(dir .. "/snapshot.log", "w")) -- what the guest had said at the snapshot
f:write(before)
f:close()

-- The same VM carries on to the end of the kernel's initcalls (every driver bound, the
-- CRNG seeded) for a second snapshot, which shows a restored kernel reseeding its CRNG
-- when ember changes the VM generation id. Then it stops: one guest at a time here.
assert(vm:resume())
local late = vm:wait_for("Freeing unused kernel image %(initmem%)", deadline)
if late and vm:pause() then
  assert(vm:snapshot { state = dir .. "/late.state", mem = dir .. "/late.mem" })
end
vm:stop()

local c = assert(ember.restore { state = dir .. "/linux.state", mem = dir .. "/linux.mem",
  console = "none", resume = true })
result("restore_ms", string.format("%.2f", c:times().restore_ms))

-- Everything the restored guest prints from here on.
local after, pos = {}, select(2, c:console_since(nil))
local function drain()
  local text
  text, pos = c:console_since(pos)
  after[#after + 1] = text
end
local function seen(pattern)
  drain()
  return (before .. table.concat(after)):find(pattern)
end

local t0 = ember.now()
local target = ember.host.emulating and "Run /init as init process" or "ember%-guest: ready"
while not seen(target) and c:state() == "running" and ember.now() - t0 < deadline do
  ember.sleep(1)
end
drain()
result("reached", seen(target) and "yes" or "no")
result("after_restore_s", string.format("%.0f", ember.now() - t0))
if not ember.host.emulating and seen(target) then
  -- Hardware KVM: user space runs. Ask the shell, then power off.
  c:send("grep -c ^processor /proc/cpuinfo\n")
  result("cpuinfo_processors", (c:wait_for("\n(%d+)\r?\n", 30)))
  c:send("poweroff\n") -- as a user types it: /init (PID 1) powers off
  result("exit", (c:wait(60)))
else
  -- Emulating host: init cannot make a system call; the kernel panics and resets.
  local why, status = c:wait(120)
  result("exit", why)
  result("exit_status", status)
end
drain()
f = assert(io.open(dir .. "/kernel.log", "w"))
f:write(before, table.concat(after))
f:close()
if c:state() ~= "exited" then c:stop() end

if late then
  local g = assert(ember.restore { state = dir .. "/late.state", mem = dir .. "/late.mem",
    console = "none", resume = true })
  local reseeded = g:wait_for("crng reseeded due to virtual machine fork", 120)
  result("vmgenid_reseed", reseeded and "yes" or "no")
  if g:state() ~= "exited" then g:stop() end
end
