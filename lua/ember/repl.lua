-- ember.repl: the Lua side of `ember repl`: evaluation, printing, completion, help, hexdump.
local M = {}

local MAX_DEPTH = 4   -- nested tables deeper than this print as {...}
local MAX_ITEMS = 100 -- entries printed per table
local WIDTH = 78      -- a table that fits on one line this wide is printed on one line

local registry = debug.getregistry()

local KEYWORDS = {}
for w in ([[and break do else elseif end false for function goto if in local nil not or
    repeat return then true until while]]):gmatch("%a+") do
  KEYWORDS[w] = true
end

-- ---- help: one line per function or method, with its contract ----

M.help_text = {
  vm = {
    { "start()", "configured -> running: build the machine and boot it; true | nil, msg" },
    { "pause()", "running -> paused, every vCPU parked on return; true | nil, msg" },
    { "resume()", "paused -> running; true | nil, msg" },
    { "stop()", "end the VM now (running or paused -> exited); true" },
    { "state()", "\"configured\", \"running\", \"paused\" or \"exited\"" },
    { "exit()", "reason, status, detail once exited (\"poweroff\", 0, ...); nothing before" },
    { "wait([timeout])", "wait until the VM exits; reason, status | nil, msg on timeout" },
    { "wait_for(pattern [, timeout=30])",
      "wait for console output matching a Lua pattern; the match or captures | nil, msg" },
    { "send(s)", "type s into the serial console (queued while the FIFO is full); true" },
    { "send_keys(s)", "the same as send(s)" },
    { "console()", "attach this terminal to the serial console until Ctrl-]; true | nil, msg" },
    { "console_since([pos])", "console text from stream offset pos on, and the new offset" },
    { "hotplug_memory(mib)", "ask the guest to plug mib MiB of its hotplug area (memory_hotplug)" },
    { "hotplug_memory_status()", "the hotplug area: total, block, slot, plugged and requested MiB" },
    { "balloon(mib)", "ask the guest's balloon to hold mib MiB (given back to the host)" },
    { "balloon_stats()", "balloon target, actual and the guest's latest memory statistics" },
    { "balloon_hinting(op [, ack=true])",
      "free page hinting: op start, stop or status; {host_cmd, guest_cmd, ...} | nil, msg" },
    { "update_drive{id=, path=, rate_limit=}",
      "serve a drive from another file and/or change its limit; true | nil, msg" },
    { "update_net{id=, rx_rate_limit=, tx_rate_limit=}",
      "change an interface's rate limits; true | nil, msg" },
    { "update_pmem{id=, rate_limit=}",
      "change a pmem device's FLUSH rate limit; true | nil, msg" },
    { "mem(addr, len)", "guest-physical bytes as a string (see ember.hexdump) | nil, msg" },
    { "regs([n=0])", "registers of paused vCPU n (rip, rflags, cr0..., cs...) | nil, msg" },
    { "msrs([n=0])", "{[index] = value} of every MSR of paused vCPU n | nil, msg" },
    { "set_msrs(n, t)", "write MSRs {[index] = value} of paused vCPU n; true | nil, msg" },
    { "vcpu_count()", "number of vCPUs" },
    { "exits([n=0])", "VM exit counters of vCPU n by kind: io, mmio, intr, hlt, other" },
    { "devices()", "{ {name, kind, bus, base, len, stats}... } while running or paused" },
    { "memory_stats()", "guest_kib, guest_resident_kib, guest_private_kib, process_rss_kib" },
    { "times()", "start_ms, first_run_ms, boot_ms, snapshot_ms, restore_ms (since start)" },
    { "snapshot{state=, mem= [, type=\"full\"|\"diff\"]}",
      "write a snapshot of the paused VM; true | nil, msg" },
    { "ctrl_alt_del()", "send Ctrl-Alt-Del to the guest's i8042; true | nil, msg" },
    { "on(event, fn) / on(\"console\", pattern, fn)",
      "run fn(vm, ...) on start, boot, pause, resume, exit or console matches; handle" },
    { "every(interval, fn)", "run fn(vm) every interval (\"30s\", 0.5) while running; handle" },
  },
  ember = {
    { "vm{...}", "define a VM (checked at once, nothing built until start); the vm" },
    { "restore{state=, mem= | uffd=, resume=...}", "restore a snapshot; the vm | nil, msg" },
    { "connect(path)", "a client of the API socket of another ember or Firecracker" },
    { "sleep(seconds)", "wait on the control loop; VMs and the prompt's VMs run on" },
    { "now()", "seconds since the process started" },
    { "log(level, msg)", "log at \"error\", \"warn\", \"info\" or \"debug\"" },
    { "spawn(fn, ...)", "run fn(...) as a task of its own" },
    { "merge_memory(base, diff)", "apply a diff memory file onto its base; true | nil, msg" },
    { "hexdump(s [, base=0])", "s as hex and ASCII lines, addresses starting at base" },
    { "guest", "paths of the guests built with ember: guest.test_kernel, guest.dir" },
    { "policy", "snapshot policies: policy.keep_last(vm, {...}), policy.diff_chain(vm, {...})" },
    { "version", "the ember version" },
  },
  client = {
    { "state()", "the VM's state as the API reports it | nil, msg" },
    { "pause()", "PATCH /vm {state = Paused}; true | nil, msg" },
    { "resume()", "PATCH /vm {state = Resumed}; true | nil, msg" },
    { "snapshot{state=, mem= [, type=\"full\"|\"diff\"]}",
      "PUT /snapshot/create; true | nil, msg" },
    { "stop()", "PUT /actions SendCtrlAltDel; true | nil, msg" },
    { "request(method, url [, body])", "any API call; status, body | nil, msg" },
  },
}

local OVERVIEW = [[
ember REPL: each line runs as a task on the control loop, so waits (vm:wait_for,
ember.sleep) work here and the VM keeps running while you type.
  =expr or expr         print the value(s); tables are pretty-printed
  help(vm)              the methods of a VM; help(ember) the module; help(vm.pause) one
  ember.hexdump(vm:mem(0x100000, 64), 0x100000)
  Tab                   complete globals, fields and methods (vm:pa<Tab>)
  Ctrl-C                clear the line, or abandon the line that runs
  Ctrl-]                leave vm:console()
  Ctrl-D                quit (stops the VMs started here)]]

local function vm_methods() return (registry["ember.vm"] or {}).__index or {} end

local function section_of(obj)
  local mt = getmetatable(obj)
  if mt == registry["ember.vm"] then return "vm", vm_methods() end
  if type(mt) == "table" and mt.__name == "ember.client" then return "client", mt.__index end
  if obj == package.loaded.ember then return "ember", obj end
end

local function print_section(name, prefix)
  for _, e in ipairs(M.help_text[name]) do
    io.stdout:write(string.format("  %-36s %s\n", prefix .. e[1], e[2]))
  end
end

local function print_entry(name, key)
  for _, e in ipairs(M.help_text[name]) do
    if e[1]:match("^[%w_]+") == key then
      io.stdout:write(string.format("%s%s%s  %s\n", name == "ember" and "ember." or
        name .. ":", e[1], (" "):rep(math.max(1, 28 - #e[1])), e[2]))
      return true
    end
  end
end

--- help(): an overview; help(vm), help(ember): every method; help(vm.pause), help("pause").
function M.help(obj)
  local name = section_of(obj)
  if obj == nil then
    io.stdout:write(OVERVIEW, "\n")
  elseif name then
    io.stdout:write(name == "ember" and "ember (the module):\n" or
      name == "vm" and "vm (ember.vm) methods, vm:name(...):\n" or "client methods:\n")
    print_section(name, name == "ember" and "ember." or name .. ":")
  elseif type(obj) == "string" then
    local sect, key = obj:match("^(%a+)[.:]([%w_]+)$")
    local found = false
    for _, s in ipairs { "vm", "ember", "client" } do
      if not sect or sect == s then found = print_entry(s, key or obj) or found end
    end
    if not found then io.stdout:write("no help for '", obj, "'\n") end
  elseif type(obj) == "function" then
    for s, t in pairs { vm = vm_methods(), ember = package.loaded.ember or {} } do
      for k, f in pairs(t) do
        if f == obj and print_entry(s, k) then return end
      end
    end
    io.stdout:write("no help for this function\n")
  else
    io.stdout:write("no help for a ", type(obj), " value\n")
  end
end

--- Methods of ember.vm with no help line (kept empty by the tests).
function M.undocumented()
  local known, out = {}, {}
  for _, e in ipairs(M.help_text.vm) do
    for name in e[1]:gmatch("([%a_]+)%(") do known[name] = true end
    known[e[1]:match("^[%w_]+")] = true
  end
  for k in pairs(vm_methods()) do
    if not known[k] then out[#out + 1] = k end
  end
  table.sort(out)
  return out
end

-- ---- hexdump ----

--- ember.hexdump(s [, base]): 16 bytes a line, "addr  hex hex ...  |ascii|", no final newline.
function M.hexdump(s, base)
  if type(s) ~= "string" then error("hexdump: expects a string, got " .. type(s), 2) end
  base = base or 0
  if math.type(base) ~= "integer" then error("hexdump: base must be an integer", 2) end
  local out = {}
  for off = 0, #s - 1, 16 do
    local chunk = s:sub(off + 1, off + 16)
    local hex = {}
    for i = 1, #chunk do
      hex[#hex + 1] = string.format(i == 9 and " %02x" or "%02x", chunk:byte(i))
    end
    out[#out + 1] = string.format("%08x  %-48s  |%s|", base + off, table.concat(hex, " "),
      (chunk:gsub("[^\32-\126]", ".")))
  end
  return table.concat(out, "\n")
end

-- ---- printing values ----

local ESCAPES = { ["\n"] = "\\n", ["\t"] = "\\t", ["\r"] = "\\r", ['"'] = '\\"',
  ["\\"] = "\\\\" }

local function quote(s)
  return '"' .. s:gsub('[%c"\\]', function(c)
    return ESCAPES[c] or string.format("\\%d", c:byte())
  end) .. '"'
end

local function scalar(v)
  if type(v) == "string" then return quote(v) end
  local ok, s = pcall(tostring, v)
  return ok and s or "<" .. type(v) .. ">"
end

local function key_order(a, b)
  local ta, tb = type(a), type(b)
  if ta ~= tb then return ta < tb end
  if ta == "number" or ta == "string" then return a < b end
  return tostring(a) < tostring(b)
end

-- `path` holds the tables being printed around this one: meeting one again is a cycle.
local function render(v, indent, depth, path)
  if type(v) ~= "table" then return scalar(v) end
  local mt = getmetatable(v)
  if type(mt) == "table" and rawget(mt, "__tostring") then return scalar(v) end
  if path[v] then return "<cycle>" end
  if depth >= MAX_DEPTH then return "{...}" end
  path[v] = true
  local items, inner, n = {}, indent .. "  ", rawlen(v)
  for i = 1, math.min(n, MAX_ITEMS) do
    items[#items + 1] = render(rawget(v, i), inner, depth + 1, path)
  end
  local keys = {}
  for k in next, v do
    if not (math.type(k) == "integer" and k >= 1 and k <= n) then keys[#keys + 1] = k end
  end
  table.sort(keys, key_order)
  for _, k in ipairs(keys) do
    if #items >= MAX_ITEMS then break end
    local ks = type(k) == "string" and k:match("^[%a_][%w_]*$") and not KEYWORDS[k] and k
      or "[" .. render(k, inner, depth + 1, path) .. "]"
    items[#items + 1] = ks .. " = " .. render(rawget(v, k), inner, depth + 1, path)
  end
  path[v] = nil
  local total = n + #keys
  if total > #items then items[#items + 1] = string.format("... (%d more)", total - #items) end
  if #items == 0 then return "{}" end
  local one = "{ " .. table.concat(items, ", ") .. " }"
  if #one + #indent <= WIDTH and not one:find("\n", 1, true) then return one end
  return "{\n" .. inner .. table.concat(items, ",\n" .. inner) .. "\n" .. indent .. "}"
end

--- A value as the REPL shows it: strings as they are at the top level, quoted inside
--- tables; tables nested up to 4 levels, cycles as <cycle>.
function M.pretty(v, top)
  if top and type(v) == "string" then return v end
  return render(v, "", 0, {})
end

-- ---- evaluation ----

-- The error message and the stack from where it was raised (`level` frames up).
local function traceback(e, level)
  local ok, msg = pcall(tostring, e)
  if not ok or type(msg) ~= "string" then msg = "(error object is a " .. type(e) .. " value)" end
  local tb = debug.traceback(msg, level or 2)
  -- Drop the REPL's own frames below the line that failed.
  local cut = tb:find("\n%s*%[C%]: in function 'xpcall'")
  return cut and tb:sub(1, cut - 1) or tb
end

--- Run a compiled line: print what it returns, or its error and traceback.
function M.run(fn)
  local res = table.pack(xpcall(fn, traceback))
  if not res[1] then
    io.stderr:write(tostring(res[2]), "\n")
    io.stderr:flush()
    return
  end
  if res.n > 1 then
    local out = {}
    for i = 2, res.n do out[#out + 1] = M.pretty(res[i], true) end
    io.stdout:write(table.concat(out, "\t"), "\n")
  end
  io.stdout:flush()
end

--- The chunk typed so far: "more" if it is incomplete (as lua.c tells, by a syntax error
--- at <eof>), nil and the message for a syntax error, else the function that runs it.
--- "=expr" and a bare expression print their values: "return <line>" is tried first.
function M.feed(src)
  local code = src:gsub("^%s*=", "return ", 1)
  local fn, err = load("return " .. code, "=stdin", "t")
  if not fn then fn, err = load(code, "=stdin", "t") end
  if fn then return function() return M.run(fn) end end
  if err:sub(-5) == "<eof>" then return "more" end
  return nil, err
end

-- ---- completion ----

-- v[k] through tables and __index tables only: completion never calls a function.
local function lookup(v, k)
  for _ = 1, 8 do
    if type(v) == "table" then
      local x = rawget(v, k)
      if x ~= nil then return x end
    end
    local mt = getmetatable(v)
    local idx = type(mt) == "table" and rawget(mt, "__index")
    if type(idx) ~= "table" then return nil end
    v = idx
  end
end

local function names(v, methods_only, out)
  for _ = 1, 8 do
    if type(v) == "table" then
      for k, x in next, v do
        if type(k) == "string" and k:match("^[%a_][%w_]*$") and
            (not methods_only or type(x) == "function") then
          out[k] = true
        end
      end
    end
    local mt = getmetatable(v)
    local idx = type(mt) == "table" and rawget(mt, "__index")
    if type(idx) ~= "table" then return out end
    v = idx
  end
  return out
end

--- Completions of the word before the cursor: globals and keywords, `a.b.` fields,
--- `obj:` methods (through __index tables).
function M.complete(text)
  local prefix, sep, partial = text:match("^([%a_][%w_.]*)([.:])([%w_]*)$")
  local found, out = {}, {}
  if prefix then
    local v = _G
    for part in prefix:gmatch("[^.]+") do
      v = lookup(v, part)
      if v == nil then return out end
    end
    names(v, sep == ":", found)
    prefix = prefix .. sep
  elseif text:match("^[%a_]?[%w_]*$") then
    prefix, partial = "", text
    names(_G, false, found)
    for k in pairs(KEYWORDS) do found[k] = true end
  else
    return out
  end
  for k in pairs(found) do
    if k:sub(1, #partial) == partial then out[#out + 1] = prefix .. k end
  end
  table.sort(out)
  return out
end

-- ---- start ----

local function is_vm(v) return getmetatable(v) == registry["ember.vm"] end

local function is_config_error(e)
  return type(e) == "table" and getmetatable(e) == registry["ember.config_error"]
end

-- Run the definition file; a VM it returns is started and bound to the global `vm`.
local function boot_file(path)
  arg = { [0] = path }
  local chunk, err = loadfile(path, "t") -- text only, as `ember run`
  if not chunk then return nil, err, 2 end
  local ok, v = xpcall(chunk, function(e) return is_config_error(e) and e or traceback(e, 3) end)
  if not ok then
    if is_config_error(v) then return nil, v.message, 2 end
    return nil, tostring(v), 1
  end
  local ember = require "ember"
  if not is_vm(v) then return true, "ember " .. ember.version .. ": help() for help" end
  if v:state() == "configured" then
    local started, why = v:start()
    if not started then return nil, why, 1 end
  end
  vm = v
  return true, string.format("ember %s: vm is %s; help() for help, help(vm) for its methods",
    ember.version, tostring(v))
end

local function attach_api(path)
  local ember = require "ember"
  if not ember.connect then return nil, "repl: ember.connect is missing", 1 end
  local client, err = ember.connect(path)
  if not client then return nil, err, 1 end
  local state, why = client:state()
  if not state then return nil, string.format("%s: %s", path, why), 1 end
  vm = client
  return true, string.format("ember %s: vm is the VM behind %s (%s); help(vm) for its methods",
    ember.version, path, state)
end

--- The first task of the REPL: kind "file" (a definition), "api" (a socket) or "none".
--- It returns true, banner or nil, message, exit status.
function M.boot_task(kind, target)
  _G.help = M.help
  return function()
    if kind == "file" then return boot_file(target) end
    if kind == "api" then return attach_api(target) end
    return true, "ember " .. require("ember").version .. ": help() for help, Ctrl-D to quit"
  end
end

return M
