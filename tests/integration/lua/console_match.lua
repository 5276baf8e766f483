-- Console matching searches new output plus an overlap, not all of it again: what it
-- finds must be what a search of everything finds. A waiter that saw half a match in
-- one piece of output finds the whole when the rest comes in another.
package.path = arg[0]:match("(.*/)") .. "?.lua;" .. package.path
local t = require "common"

local vm = t.guest {}
t.boot(vm)

-- `pattern`, waited for in a task of its own while the guest answers `first`, then, a
-- moment later, `second`. Returns what wait_for returned.
local function split_wait(pattern, first, second)
  local got
  ember.spawn(function() got = table.pack(vm:wait_for(pattern, t.secs(10))) end)
  assert(vm:send(first .. "\n"))
  ember.sleep(t.secs(0.3)) -- the first answer arrives and is searched alone
  assert(got == nil, pattern .. ": matched before the second half came")
  assert(vm:send(second .. "\n"))
  for _ = 1, 100 do
    if got then return table.unpack(got, 1, got.n) end
    ember.sleep(t.secs(0.05))
  end
  error(pattern .. ": never matched")
end

-- Plain text across the two answers.
t.eq(split_wait("abc\nOK def", "echo one-abc", "echo def"), "abc\nOK def", "plain")
-- Bounded items, a frontier and a '?' across them.
t.eq(split_wait("%f[%w]ghi\nOK j%a?k", "echo two ghi", "echo jk"), "ghi\nOK jk", "items")
-- A repetition (unbounded: searched with a window well past this).
t.eq(split_wait("lmn\nOK o+p", "echo three-lmn", "echo ooooop"), "lmn\nOK ooooop", "repeat")
-- Captures, and positions counted from the unconsumed text as before.
local a, b = split_wait("()qrs\nOK (tu)", "echo four-qrs", "echo tu")
t.eq(a, 10, "position capture") -- "\nOK four-" was left unconsumed before "qrs"
t.eq(b, "tu", "string capture")
-- Anchored: only at the start of what is not consumed yet.
assert(vm:send("echo anchor\n"))
assert(vm:wait_for("^\nOK anchor", t.secs(10)), "anchored at the unconsumed start")
assert(vm:send("echo xanchor\n"))
assert(vm:wait_for("xanchor", t.secs(10)))
assert(vm:send("echo after\n"))
assert(not vm:wait_for("^OK after", t.secs(0.5)), "'^' matched past the start")

-- A script that ran a while without giving the loop a turn: its next wait still waits
-- (the loop's clock was stale, and the timeout expired at once).
local busy = ember.now()
while ember.now() - busy < t.secs(1) * 1.2 do end -- longer than the wait's timeout
local t0 = ember.now()
assert(vm:send("echo after-busy\n"))
assert(vm:wait_for("OK after%-busy", t.secs(1)), "a wait right after busy Lua timed out")
assert(not vm:wait_for("never printed", 0.5))
assert(ember.now() - t0 >= 0.5, "a 0.5 s wait returned early")

vm:send("poweroff\n")
t.eq(vm:wait(t.secs(10)), "poweroff", "exit reason")
print("console_match ok")
