-- The test guest sees the vCPUs and memory it was given, and memory round-trips exactly.
package.path = arg[0]:match("(.*/)") .. "?.lua;" .. package.path
local t = require "common"

local vm = t.guest { vcpus = 2, memory_mib = 256, cmdline = "hello=world" }
local cpus, mem = t.boot(vm)
t.eq(cpus, 2, "vcpus seen by the guest")
-- e820 RAM: all of it but the 384 KiB hole between the EBDA and 1 MiB.
assert(mem > 255 * 2^20 and mem <= 256 * 2^20, "guest memory " .. mem)

local info = t.cmd(vm, "info")
assert(info:find("cpus=2", 1, true), info)
assert(info:find("cmdline=[^\n]*hello=world"), info)
assert(info:find("hv=KVMKVMKVM", 1, true), info)

local sum = t.cmd(vm, "fill 16 0x1234"):match("sum=(%x+)")
assert(sum, "fill gave no sum")
t.eq(t.cmd(vm, "sum 16"):match("sum=(%x+)"), sum, "checksum after fill")
t.eq(t.cmd(vm, "check 16 0x1234"), "check", "pattern check")
assert(vm:send("check 16 0x1235\n"))
assert(vm:wait_for("ERR check at=0x%x+", t.secs(10)), "a wrong seed must fail the check")
t.eq(t.cmd(vm, "echo hi there"), "hi there", "echo")

assert(vm:send("nonsense\n"))
assert(vm:wait_for("ERR unknown command: nonsense", t.secs(10)))

-- ember reads the same bytes the guest wrote.
local counter_addr = tonumber(t.cmd(vm, "counter"):match("addr=0x(%x+)"), 16)
assert(#vm:mem(counter_addr, 8) == 8)
assert(vm:mem(2^40, 8) == nil, "reading outside guest memory must fail")

vm:send("poweroff\n")
local why, status = vm:wait(t.secs(10))
t.eq(why, "poweroff", "exit reason")
t.eq(status, 0, "exit status")
print("guest_basics ok")
