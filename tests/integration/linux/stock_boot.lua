-- Debian's stock cloud kernel (virtio as modules, no command-line virtio devices), 2 vCPUs,
-- ACPI on: its devices can only come from ember's DSDT. Prints what the kernel said to
-- arg[1]/kernel.log and a "RESULT key value" line per fact for test_linux_stock.py.
-- On an emulating host it ends at /init (ember.linux stops it there).
local dir = assert(arg[1], "usage: stock_boot.lua TMPDIR LINUXDIR")
local linux = assert(arg[2])
local deadline = 3600 -- seconds: this kernel boots in tens of minutes where emulated

local function result(k, v) print(string.format("RESULT %s %s", k, tostring(v))) end

local vm = ember.linux.vm {
  vcpus = 2, memory_mib = 256,
  kernel = linux .. "/vmlinux-cloud",
  initrd = linux .. "/initramfs-cloud.cpio",
  cmdline = "console=ttyS0 reboot=k panic=1 pci=off",
  drives = { { id = "data", path = linux .. "/rootfs.ext4", read_only = true } },
  entropy = {},
  console = "none", console_log = dir .. "/kernel.log",
}
local t0 = ember.now()
assert(vm:start())
local goal = ember.host.emulating and "Run /init as init process" or "ember%-guest: ready"
local reached = vm:wait_for(goal, deadline)
result("reached", reached and "yes" or "no")
result("boot_s", string.format("%.0f", ember.now() - t0))
if reached and not ember.host.emulating then
  vm:send("grep -c ^processor /proc/cpuinfo\n")
  result("cpuinfo_processors", (vm:wait_for("\n(%d+)\r?\n", 30)))
  vm:send("poweroff\n")
end
local why = vm:wait(120)
result("exit", why)
