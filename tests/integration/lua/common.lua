-- Helpers shared by the integration scripts: a test-guest VM and checked commands.
local M = {}

--- Timeouts are written for an ordinary KVM host; run.py measures how much slower this
--- one is and passes the factor in EMBER_TEST_TIME_SCALE.
M.scale = tonumber(os.getenv("EMBER_TEST_TIME_SCALE")) or 1
function M.secs(seconds) return seconds * M.scale end

--- The io_engine every drive gets unless it names one: EMBER_TEST_IO_ENGINE (run.py runs
--- the block scripts again with "Async"), or ember's default.
M.io_engine = os.getenv("EMBER_TEST_IO_ENGINE")

--- A test-guest VM (not started). `opts` may override any definition key.
function M.guest(opts)
  local def = {
    kernel = ember.guest.test_kernel,
    vcpus = 1,
    memory_mib = 128,
    console = "none",
  }
  for k, v in pairs(opts or {}) do def[k] = v end
  for _, d in ipairs(def.drives or {}) do
    if d.io_engine == nil then d.io_engine = M.io_engine end
  end
  return ember.vm(def)
end

--- Start `vm` and wait for the guest's readiness line; returns cpus, mem.
function M.boot(vm)
  assert(vm:start())
  local cpus, mem = vm:wait_for("ember%-test%-guest ready cpus=(%d+) mem=(%d+) apic=%d+\n", M.secs(10))
  assert(cpus, mem)
  return tonumber(cpus), tonumber(mem)
end

--- Send one command line and return the guest's answer (the text after "OK ").
function M.cmd(vm, line, timeout)
  assert(vm:send(line .. "\n"))
  local status, rest = vm:wait_for("\n?(%u+) ?([^\n]*)\n", timeout or M.secs(10))
  assert(status, rest)
  if status ~= "OK" then error(string.format("%s -> %s %s", line, status, rest), 2) end
  return rest
end

-- ---- drives: the guest's pattern and checksum, image files ----

M.SECTOR = 512

--- The guest's pattern (xorshift64*, one little-endian word at a time), `bytes` long, as
--- tests/guest/README.md defines it.
function M.pattern(seed, bytes)
  local x = seed ~= 0 and seed or 0x9e3779b97f4a7c15
  local words = {}
  for i = 1, bytes // 8 do
    x = x ~ (x >> 12); x = x ~ (x << 25); x = x ~ (x >> 27)
    words[i] = string.pack("<i8", x * 0x2545f4914f6cdd1d)
  end
  return table.concat(words)
end

--- The guest's checksum of `bytes` (FNV-1a 64 per word), as `blk read` prints it.
function M.fnv(bytes)
  local h = 0xcbf29ce484222325
  for i = 1, #bytes, 8 do
    h = (h ~ string.unpack("<i8", bytes, i)) * 0x100000001b3
  end
  return string.format("%016x", h)
end

--- Write an image of `sectors` sectors: `fill`, or zeros.
function M.make_image(path, sectors, fill)
  local f = assert(io.open(path, "wb"))
  f:write(fill or string.rep("\0", sectors * M.SECTOR))
  f:close()
end

function M.eq(got, want, what)
  if got ~= want then
    error(string.format("%s: got %s, want %s", what, tostring(got), tostring(want)), 2)
  end
end

return M
