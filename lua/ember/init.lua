-- ember: the Lua side of the module: the machine-definition DSL and small helpers.
local core = ...

local ember = {
  version = core.version,
  guest = core.guest,
  sleep = core.sleep,
  now = core.now,
  log = core.log,
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
  on_boot = "function",
  on_exit = "function",
}

local function type_of(v)
  if math.type(v) == "integer" then return "integer" end
  return type(v)
end

local function check(def)
  if type(def) ~= "table" then
    core.config_error("ember.vm: expects a table, got " .. type(def))
  end
  for k, v in pairs(def) do
    local want = schema[k]
    if type(k) ~= "string" or not want then
      core.config_error(string.format("unknown key '%s' in the vm definition", tostring(k)))
    end
    if type_of(v) ~= want then
      core.config_error(string.format("%s: expected %s, got %s", k,
        want == "integer" and "an integer" or "a " .. want, type_of(v)))
    end
  end
end

--- Define a VM. It is checked at once; nothing is built until vm:start().
function ember.vm(def)
  check(def)
  return core.vm_new(def)
end

return ember
