-- Benchmark script: full snapshots of the Linux guest at its shell, for
-- bench_linux_shell.py (through Lua, where ember reports the fsync apart: vm:times()).
-- arg[1] = directory for files, arg[2] = guest MiB, arg[3] = snapshots, arg[4] = the
-- Linux guest's folder. 1 vCPU, the kernel and initramfs linux_shell.py boots; the shell
-- answers once, then the VM is paused and snapshotted arg[3] times (two pairs of files in
-- turn: no unlink in the timing). Prints "BENCH <name> <value>" lines.
local dir, mib = assert(arg[1]), assert(math.tointeger(tonumber(arg[2])))
local runs, linux = assert(tonumber(arg[3])), assert(arg[4])
local scale = tonumber(os.getenv("EMBER_TEST_TIME_SCALE") or "1")

local vm = ember.linux.vm {
  vcpus = 1, memory_mib = mib, console = "none",
  kernel = linux .. "/vmlinux", initrd = linux .. "/initramfs.cpio.gz",
  cmdline = "console=ttyS0 reboot=k panic=1 pci=off",
}
assert(vm:start())
assert(vm:wait_for("shell on the console", 20 * scale))
-- The typed line echoes "$((6*7))", the answer is 42 on a line of its own.
assert(vm:send("echo $((6*7))\n"))
assert(vm:wait_for("\n42\r?\n", 10 * scale))
assert(vm:pause())
for i = 1, runs do
  local name = string.format("%s/linux%d.%d", dir, mib, i % 2)
  os.remove(name .. ".mem"); os.remove(name .. ".state")
  assert(vm:snapshot { state = name .. ".state", mem = name .. ".mem" })
  local t = vm:times()
  print(string.format("BENCH full_ms %.3f", t.snapshot_ms))
  print(string.format("BENCH full_sync_ms %.3f", t.snapshot_sync_ms))
  print(string.format("BENCH full_mib %.1f", t.snapshot_bytes / 2 ^ 20))
end
vm:stop()
for i = 0, 1 do
  os.remove(string.format("%s/linux%d.%d.mem", dir, mib, i))
  os.remove(string.format("%s/linux%d.%d.state", dir, mib, i))
end
