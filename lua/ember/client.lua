-- ember.client: a VM served on the API socket of another ember or of a Firecracker.
local M = {}

local Client = {}
local meta = {
  __index = Client,
  __name = "ember.client",
  __tostring = function(c) return "ember.client (" .. c.path .. ")" end,
}

local ESCAPES = { ['"'] = '\\"', ["\\"] = "\\\\", ["\n"] = "\\n", ["\r"] = "\\r", ["\t"] = "\\t" }

local function json_string(s)
  return '"' .. s:gsub('[%c"\\]', function(c)
    return ESCAPES[c] or string.format("\\u%04x", c:byte())
  end) .. '"'
end

-- A flat JSON object from { key, value, key, value... } with string values.
local function json_object(pairs_list)
  local out = {}
  for i = 1, #pairs_list, 2 do
    out[#out + 1] = json_string(pairs_list[i]) .. ": " .. json_string(pairs_list[i + 1])
  end
  return "{" .. table.concat(out, ", ") .. "}"
end

--- client:request(method, url [, body]) -> status, body | nil, msg: any API call.
function Client:request(method, url, body)
  return self.http(self.path, method, url, body)
end

-- A call that succeeds with a 2xx answer: its body | nil, "METHOD URL: status fault".
local function call(self, method, url, body)
  local status, text = self.http(self.path, method, url, body)
  if not status then return nil, text end
  if status < 200 or status > 299 then
    local fault = text:match('"fault_message"%s*:%s*"(.-)"%s*[,}]') or text
    return nil, string.format("%s %s: %d %s", method, url, status, fault)
  end
  return text
end

local STATES = { ["Running"] = "running", ["Paused"] = "paused",
  ["Not started"] = "configured" }

--- client:state() -> "running", "paused", "configured" (or the API's own word) | nil, msg.
function Client:state()
  local text, err = call(self, "GET", "/")
  if not text then return nil, err end
  local state = text:match('"state"%s*:%s*"([^"]*)"')
  if not state then return nil, "GET /: no state in the answer: " .. text end
  return STATES[state] or state
end

local function done(text, err)
  if not text then return nil, err end
  return true
end

function Client:pause()
  return done(call(self, "PATCH", "/vm", json_object { "state", "Paused" }))
end

function Client:resume()
  return done(call(self, "PATCH", "/vm", json_object { "state", "Resumed" }))
end

--- client:snapshot { state = PATH, mem = PATH, type = "full" | "diff" } (VM paused).
function Client:snapshot(opts)
  if type(opts) ~= "table" or type(opts.state) ~= "string" or type(opts.mem) ~= "string" then
    error("snapshot: needs { state = PATH, mem = PATH }", 2)
  end
  local kind = opts.type or "full"
  if kind ~= "full" and kind ~= "diff" then
    error("snapshot: type '" .. tostring(kind) .. "' is not full or diff", 2)
  end
  return done(call(self, "PUT", "/snapshot/create", json_object {
    "snapshot_type", kind == "full" and "Full" or "Diff",
    "snapshot_path", opts.state, "mem_file_path", opts.mem }))
end

--- client:stop(): Ctrl-Alt-Del, as Firecracker stops a guest.
function Client:stop()
  return done(call(self, "PUT", "/actions", json_object { "action_type", "SendCtrlAltDel" }))
end

--- ember.connect(path): a client of the API socket at path (nothing is sent yet).
function M.connect(http, path)
  if type(path) ~= "string" then error("connect: expects a socket path", 3) end
  return setmetatable({ path = path, http = http }, meta)
end

return M
