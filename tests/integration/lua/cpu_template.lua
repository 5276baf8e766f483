-- CPU model: smt topology and a custom CPU template (table and file), seen by the guest
-- through CPUID at CPL0, before and after a snapshot restore; bad templates refused.
package.path = arg[0]:match("(.*/)") .. "?.lua;" .. package.path
local t = require "common"
local dir = assert(arg[1], "usage: cpu_template.lua TMPDIR")
local state, mem = dir .. "/vm.state", dir .. "/vm.mem"

local function cpuid(vm, leaf, sub)
  local a = t.cmd(vm, string.format("cpuid %#x %#x", leaf, sub))
  local r = {}
  for reg, v in a:gmatch("(e%ax)=0x(%x+)") do r[reg] = tonumber(v, 16) end
  assert(r.eax and r.ebx and r.ecx and r.edx, a)
  return r
end
local function bit(v, n) return (v >> n) & 1 end

-- The host's view first (no template, no smt), to know what the template changes.
local plain = t.guest { vcpus = 2 }
t.boot(plain)
t.eq(cpuid(plain, 0x40000000, 0).eax, 0x40000001, "without a template: KVM's leaf")
local host1_eax, host_ext_ecx = cpuid(plain, 1, 0).eax, cpuid(plain, 0x80000001, 0).ecx
local vendor = string.pack("<I4I4I4", cpuid(plain, 0, 0).ebx, cpuid(plain, 0, 0).edx,
  cpuid(plain, 0, 0).ecx)
t.eq(cpuid(plain, 0xb, 0).ebx, 1, "without smt one thread per core")
plain:stop()

-- kvm_pvm's emulated CPUID answers the feature bits of leaves 1 (ECX/EDX) and 7 from the
-- host whatever the vCPU's table says, so the template changes a field it does take from
-- the table on any host: leaf 0x40000000 EAX (0x40000001) gets bit 17 set and bit 0
-- cleared, the rest kept; a contracted bitmap and a separator, as Firecracker's language
-- allows.
local template = {
  kvm_capabilities = { "!56" },
  cpuid_modifiers = {
    { leaf = "0x40000000", subleaf = "0x0", flags = 0, modifiers = {
      { register = "eax", bitmap = "0b1x_xxxx_xxxx_xxxx_xxx0" } } },
  },
  msr_modifiers = {
    { addr = "0x1a0", bitmap = "0b1" }, -- IA32_MISC_ENABLE fast strings, already on
  },
}

local function check_model(vm, what)
  t.eq(cpuid(vm, 0x40000000, 0).eax, 0x40020000,
    what .. ": template set leaf 0x40000000 EAX bit 17, cleared bit 0, kept the rest")
  local smt0, smt1 = cpuid(vm, 0xb, 0), cpuid(vm, 0xb, 1)
  t.eq(smt0.ebx, 2, what .. ": leaf 0xb SMT level has 2 threads")
  t.eq(smt0.eax & 0x1f, 1, what .. ": leaf 0xb SMT shift 1")
  t.eq(smt1.ebx, 4, what .. ": leaf 0xb core level has 4 logical processors")
  t.eq(bit(cpuid(vm, 1, 0).edx, 28), 1, what .. ": leaf 1 HTT")
  t.eq((cpuid(vm, 1, 0).ebx >> 16) & 0xff, 4, what .. ": leaf 1 logical count")
  local l1 = cpuid(vm, 4, 0)
  if l1.eax & 0x1f ~= 0 then -- Intel's cache leaf; AMD's CPUs leave it empty
    t.eq((l1.eax >> 14) & 0xfff, 1, what .. ": L1 shared by the 2 threads of a core")
    t.eq((l1.eax >> 26) & 0x3f, 1, what .. ": 2 cores per package")
  end
end

local vm = t.guest { vcpus = 4, smt = true, cpu_template = template }
t.boot(vm)
check_model(vm, "table")
assert(vm:pause())
assert(vm:snapshot { state = state, mem = mem })
vm:stop()

-- The snapshot carries the CPU model: a restore sees the same CPUID.
local c = assert(ember.restore { state = state, mem = mem, console = "none", resume = true })
check_model(c, "restored")
c:stop()

-- The same template from a file, in Firecracker's JSON.
local path = dir .. "/template.json"
local f = assert(io.open(path, "w"))
f:write([[{"cpuid_modifiers": [
  {"leaf": "0x40000000", "subleaf": "0b0", "flags": 0, "modifiers": [
    {"register": "eax", "bitmap": "0b1x_xxxx_xxxx_xxxx_xxxx"},
    {"register": "eax", "bitmap": "0b0"}]}]}]])
f:close()
local fv = t.guest { vcpus = 4, smt = true, cpu_template = path }
t.boot(fv)
check_model(fv, "file")
fv:stop()

-- Firecracker's T2 as ember builds it in (configs/cpu-templates/), given as a custom template
-- file since no static template fits this host's CPU: leaf 1 EAX becomes T2's fixed
-- signature (family 6 model 0x3f stepping 2) and leaf 0x80000001 ECX loses PREFETCHW
-- (bit 8) where the vCPU had it.
local data = arg[0]:match("(.*/)") .. "../../../configs/cpu-templates/T2.json"
local t2 = t.guest { vcpus = 2, cpu_template = data }
t.boot(t2)
assert(host1_eax ~= 0x306f2, "host already looks like T2")
t.eq(cpuid(t2, 1, 0).eax, 0x306f2, "T2 data: leaf 1 EAX")
if bit(host_ext_ecx, 8) == 1 then -- kvm_pvm's vCPU has PREFETCHW, the sandbox's AMD not
  t.eq(bit(cpuid(t2, 0x80000001, 0).ecx, 8), 0, "T2 data: leaf 0x80000001 ECX bit 8")
end
t2:stop()

-- Refused, each with what is wrong.
local function refused(def, want)
  local ok, err = pcall(t.guest, def)
  assert(not ok, "accepted: " .. want)
  assert(tostring(err):find(want, 1, true), tostring(err))
end
local function leaf7(reg, bitmap)
  return { cpuid_modifiers = { { leaf = "0x7", subleaf = "0x0", flags = 1,
    modifiers = { { register = reg, bitmap = bitmap } } } } }
end
refused({ vcpus = 3, smt = true }, "must be 1 or an even number")
refused({ cpu_template = leaf7("ebx", "0b2") },
  "Failed to parse string [0b2] as a bitmap - unknown character: 50")
refused({ cpu_template = leaf7("ebx", "0b" .. string.rep("1", 33)) },
  "as a bitmap - string is too long")
refused({ cpu_template = leaf7("esx", "0b1") }, "Invalid CPUID register")
refused({ cpu_template = { cpuid_modifier = {} } }, "unknown field `cpuid_modifier`")
refused({ cpu_template = { msr_modifiers = { { addr = "0xzz", bitmap = "0b1" } } } },
  "msr_modifiers[0].addr: Failed to parse string [0xzz] as a number for CPU template")
refused({ cpu_template = { msr_modifiers = { { addr = "266", bitmap = "0b1" } } } },
  "No supported number system prefix found in value [266]")
refused({ cpu_template = { kvm_capabilities = { "abc" } } },
  "Failed to parse string [abc] as a kvm capability")
refused({ cpu_template = dir .. "/missing.json" }, "No such file or directory")
refused({ smt = "yes" }, "smt: expected a boolean")

-- A KVM capability the host lacks is refused at start.
local nocap = t.guest { cpu_template = { kvm_capabilities = { "4000000" } } }
local ok, err = nocap:start()
assert(not ok and err:find("KVM capability 4000000 is not supported", 1, true), err)

-- Static templates: refused with Firecracker's words where the CPU does not fit (T2A is
-- AMD's, the others Intel's: each vendor gets the other's mismatch).
local other = vendor == "GenuineIntel" and "T2A" or "T2"
local sv = t.guest { cpu_template = other }
ok, err = sv:start()
assert(not ok and err:find("Failed to get CPU template: CPU vendor mismatched between "
  .. "actual CPU and CPU template.", 1, true), err)
for _, name in ipairs { "C3", "T2", "T2S", "T2CL", "T2A" } do
  ok, err = t.guest({ cpu_template = name }):start()
  assert(not ok and err:find("Failed to get CPU template: ", 1, true), name .. ": " ..
    tostring(err))
  print(string.format("static %s on %s: %s", name, vendor, err))
end
print("cpu_template ok")
