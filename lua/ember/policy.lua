-- ember.policy: VM events and timers (vm:on, vm:every) and snapshot retention policies.
-- Everything here runs on the control loop, in tasks; a policy's error is logged and the
-- VM carries on.
local M = {}

local EVENTS = { start = true, boot = true, pause = true, resume = true, exit = true,
  console = true }
local RESCAN_LIMIT = 64 * 1024 -- unmatched console text kept for a pattern, at most

--- Seconds from a number or a string like "250ms", "30s", "5m", "1h".
function M.seconds(v)
  if type(v) == "number" and v > 0 then return v end
  local n, unit = tostring(v):match("^(%d+%.?%d*)(%a*)$")
  local scale = ({ ms = 0.001, s = 1, [""] = 1, m = 60, h = 3600 })[unit or "?"]
  if not n or not scale or tonumber(n) <= 0 then
    error(string.format("bad interval '%s' (use a number of seconds or 250ms, 30s, 5m, 1h)",
      tostring(v)), 3)
  end
  return tonumber(n) * scale
end

function M.install(ember, core)
  local methods = core.vm_methods
  local handlers = setmetatable({}, { __mode = "k" }) -- vm -> { event -> { entry... } }

  local function run(vm, what, fn, ...)
    local ok, err = xpcall(fn, debug.traceback, vm, ...)
    if not ok then ember.log("error", string.format("policy %s: %s", what, err)) end
  end

  --- vm:on(event, fn) for "start", "boot", "pause", "resume", "exit";
  --- vm:on("console", pattern, fn) calls fn(vm, captures...) for every match in the
  --- console output that follows, matched against complete lines.
  --- Returns a handle; handle:cancel() removes it.
  function methods.on(vm, event, a, b)
    if not EVENTS[event] then
      error(string.format("on: unknown event '%s' (start, boot, pause, resume, exit, console)",
        tostring(event)), 2)
    end
    local entry = { fn = a }
    if event == "console" then
      if type(a) ~= "string" then error("on: console needs a pattern and a function", 2) end
      entry = { pattern = a, fn = b }
      entry.pos = select(2, vm:console_since(nil))
    end
    if type(entry.fn) ~= "function" then error("on: expects a function", 2) end
    local hs = handlers[vm] or {}
    handlers[vm] = hs
    hs[event] = hs[event] or {}
    table.insert(hs[event], entry)
    function entry.cancel()
      for i, e in ipairs(hs[event]) do
        if e == entry then table.remove(hs[event], i) return end
      end
    end
    return entry
  end

  --- vm:every(interval, fn): fn(vm) every interval while the VM runs. Returns a handle.
  function methods.every(vm, interval, fn)
    local secs = M.seconds(interval)
    if type(fn) ~= "function" then error("every: expects a function", 2) end
    local entry = { active = true }
    function entry.cancel() entry.active = false end
    core.spawn(function()
      while entry.active do
        ember.sleep(secs)
        local state = vm:state()
        if state == "exited" then break end
        if entry.active and state == "running" then
          run(vm, "every " .. tostring(interval), fn)
        end
      end
    end)
    return entry
  end

  -- Patterns see complete lines only, so a match never stops at a half-printed word.
  local function console_event(vm, entries)
    for _, h in ipairs(entries) do
      local text, stop = vm:console_since(h.pos)
      local start, init = stop - #text, 1
      text = text:match("^(.*\n)") or ""
      while true do
        local caps = table.pack(string.find(text, h.pattern, init))
        if not caps[1] then break end
        local s, e = caps[1], caps[2]
        if caps.n > 2 then
          run(vm, "console '" .. h.pattern .. "'", h.fn, table.unpack(caps, 3, caps.n))
        else
          run(vm, "console '" .. h.pattern .. "'", h.fn, text:sub(s, e))
        end
        init = math.max(e + 1, s + 1)
      end
      h.pos = start + init - 1
      if stop - h.pos > RESCAN_LIMIT then h.pos = stop - RESCAN_LIMIT end
    end
  end

  core.set_dispatcher(function(vm, event)
    local hs = handlers[vm]
    if not hs or not hs[event] then return end
    if event == "console" then return console_event(vm, hs.console) end
    for _, h in ipairs(hs[event]) do run(vm, event, h.fn) end
  end)
end

-- ---- snapshot retention ----

local function exists(path)
  local f = io.open(path, "r")
  if f then f:close() end
  return f ~= nil
end

--- Take a snapshot now, pausing a running VM for the time it takes.
function M.snapshot_now(vm, state, mem, kind)
  local was_running = vm:state() == "running"
  if was_running then assert(vm:pause()) end
  local ok, err = vm:snapshot { state = state, mem = mem, type = kind or "full" }
  if was_running then assert(vm:resume()) end
  if not ok then error(err, 2) end
end

--- Keep the last `keep` full snapshots, taken `every` interval, in `dir`:
--- ember.policy.keep_last(vm, { dir = "snaps", every = "30s", keep = 3 }).
--- Returns a handle: handle.latest() gives { state =, mem = } of the newest, or nil.
function M.keep_last(vm, opts)
  local dir, keep = assert(opts.dir, "keep_last: dir"), opts.keep or 3
  local taken, n = {}, 0
  local handle = {}
  function handle.latest() return taken[#taken] end
  handle.timer = vm:every(opts.every or "60s", function(v)
    n = n + 1
    local snap = { state = string.format("%s/snap-%04d.state", dir, n),
      mem = string.format("%s/snap-%04d.mem", dir, n) }
    M.snapshot_now(v, snap.state, snap.mem, "full")
    table.insert(taken, snap)
    while #taken > keep do
      local old = table.remove(taken, 1)
      os.remove(old.state)
      os.remove(old.mem)
    end
  end)
  return handle
end

--- A diff chain in `dir`: a full snapshot every `full_every` ticks, diffs in between.
--- With merge (the default) each diff is applied onto base.mem at once, so the newest
--- state file plus base.mem always restore the newest state; without merge the diffs
--- are kept (diff-NNNN.mem) until the next full snapshot prunes the chain.
--- The VM needs track_dirty_pages. A clone restored from base.mem keeps its memory
--- through later merges: each writes a new base.mem and renames it over the old one.
function M.diff_chain(vm, opts)
  local dir = assert(opts.dir, "diff_chain: dir")
  local full_every, merge = opts.full_every or 10, opts.merge ~= false
  local n, files = 0, {}
  local handle = {}
  function handle.latest() return files.latest end
  handle.timer = vm:every(opts.every or "60s", function(v)
    local state = string.format("%s/chain-%04d.state", dir, n)
    local base = dir .. "/base.mem"
    if n % full_every == 0 or not exists(base) then
      M.snapshot_now(v, state, base, "full")
      for _, f in ipairs(files) do os.remove(f) end
      files = {}
    else
      local diff = string.format("%s/diff-%04d.mem", dir, n)
      M.snapshot_now(v, state, diff, "diff")
      if merge then
        assert(ember.merge_memory(base, diff))
        os.remove(diff)
      else
        table.insert(files, diff)
      end
    end
    if files.latest then os.remove(files.latest.state) end
    files.latest = { state = state, mem = base, diffs = merge and {} or { table.unpack(files) } }
    n = n + 1
  end)
  return handle
end

return M
