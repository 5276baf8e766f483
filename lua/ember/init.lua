-- ember: the Lua side of the module: the machine-definition DSL and small helpers.
local core = ...

local policy = require "ember.policy"

local ember = {
  policy = policy,
  linux = require "ember.linux",
  spawn = core.spawn,
  version = core.version,
  guest = core.guest,
  host = core.host,
  sleep = core.sleep,
  now = core.now,
  log = core.log,
  merge_memory = core.merge_memory,
  hexdump = function(...) return require("ember.repl").hexdump(...) end,
  connect = function(path) return require("ember.client").connect(core.http_request, path) end,
}

-- Keys a definition may hold, with their Lua types ("integer" means a whole number).
local schema = {
  name = "string",
  vcpus = "integer",
  memory_mib = "integer",
  memory_backing = "string",
  kernel = "string",
  initrd = "string",
  cmdline = "string",
  console = "string",
  console_log = "string",
  track_dirty_pages = "boolean",
  drives = "table",
  pmem = "table",
  net = "table",
  vsock = "table",
  entropy = "table",
  balloon = "table",
  memory_hotplug = "table",
  mmds = "table",
  device_discovery = "string",
  smt = "boolean",
  cpu_template = "any", -- a static template's name, a template file or table: checked in C
  on_boot = "function",
  on_exit = "function",
}

-- Keys of ember.restore { ... }.
local restore_schema = {
  state = "string",
  mem = "string",
  uffd = "string",
  resume = "boolean",
  track_dirty_pages = "boolean",
  console = "string",
  net = "table",
  drives = "table",
  vsock = "string",
  clock_realtime = "boolean",
  on_boot = "function",
  on_exit = "function",
}

local function type_of(v)
  if math.type(v) == "integer" then return "integer" end
  return type(v)
end

local function check(def, keys, what)
  if type(def) ~= "table" then
    core.config_error(what .. ": expects a table, got " .. type(def))
  end
  for k, v in pairs(def) do
    local want = keys[k]
    if type(k) ~= "string" or not want then
      core.config_error(string.format("unknown key '%s' in %s", tostring(k),
        what == "ember.vm" and "the vm definition" or what))
    end
    if want ~= "any" and type_of(v) ~= want then
      core.config_error(string.format("%s: expected %s, got %s", k,
        want == "integer" and "an integer" or "a " .. want, type_of(v)))
    end
  end
end

--- Define a VM. It is checked at once; nothing is built until vm:start().
-- Callbacks named in a definition become event handlers.
local function attach_callbacks(vm, def)
  if vm and def.on_boot then vm:on("boot", def.on_boot) end
  if vm and def.on_exit then vm:on("exit", def.on_exit) end
  return vm
end

function ember.vm(def)
  check(def, schema, "ember.vm")
  return attach_callbacks(core.vm_new(def), def)
end

--- Restore a VM from a snapshot: { state = PATH, mem = PATH | uffd = SOCKET,
--- resume = bool, track_dirty_pages = bool, net = { iface = "tap" }, console = ... }.
--- Returns the VM (paused unless resume) or nil, message.
function ember.restore(def)
  check(def, restore_schema, "ember.restore")
  local vm, err = core.restore(def)
  return attach_callbacks(vm, def), err
end

--- Make a VM shell now for a later File restore of a snapshot of memory_mib MiB (same
--- track_dirty_pages): VM, memory slots, irqchip; that restore then skips building them.
--- { memory_mib = N, track_dirty_pages = bool, mem = PATH (the memory file, mapped now:
--- a restore of that file then maps nothing) }. Returns true or nil, message.
function ember.prewarm(def)
  check(def, { memory_mib = "integer", track_dirty_pages = "boolean", mem = "string" },
    "ember.prewarm")
  return core.prewarm(def)
end

policy.install(ember, core)

return ember
