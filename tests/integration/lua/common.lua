-- Helpers shared by the integration scripts: a test-guest VM and checked commands.
local M = {}

--- A test-guest VM (not started). `opts` may override any definition key.
function M.guest(opts)
  local def = {
    kernel = ember.guest.test_kernel,
    vcpus = 1,
    memory_mib = 128,
    console = "none",
  }
  for k, v in pairs(opts or {}) do def[k] = v end
  return ember.vm(def)
end

--- Start `vm` and wait for the guest's readiness line; returns cpus, mem.
function M.boot(vm)
  assert(vm:start())
  local cpus, mem = vm:wait_for("ember%-test%-guest ready cpus=(%d+) mem=(%d+) apic=%d+\n", 10)
  assert(cpus, mem)
  return tonumber(cpus), tonumber(mem)
end

--- Send one command line and return the guest's answer (the text after "OK ").
function M.cmd(vm, line, timeout)
  assert(vm:send(line .. "\n"))
  local status, rest = vm:wait_for("\n?(%u+) ?([^\n]*)\n", timeout or 10)
  assert(status, rest)
  if status ~= "OK" then error(string.format("%s -> %s %s", line, status, rest), 2) end
  return rest
end

function M.eq(got, want, what)
  if got ~= want then
    error(string.format("%s: got %s, want %s", what, tostring(got), tostring(want)), 2)
  end
end

return M
