-- ember.repl's library: printing, chunk feeding, completion, hexdump, help; vm:regs/devices.
package.path = arg[0]:match("(.*/)") .. "?.lua;" .. package.path
local t = require "common"
local repl = require "ember.repl"

-- Printing: strings raw at the top level, quoted inside; nesting, cycles, limits.
t.eq(repl.pretty("a\nb", true), "a\nb", "top-level string")
t.eq(repl.pretty({ "a\n", 1, 2.5, true }), '{ "a\\n", 1, 2.5, true }', "array")
t.eq(repl.pretty({ b = 1, a = { c = {} }, ["not id"] = 2, [10] = 3 }),
  '{ [10] = 3, a = { c = {} }, b = 1, ["not id"] = 2 }', "keys sorted by type then value")
local cyc = { 1 }
cyc.me = cyc
t.eq(repl.pretty(cyc), "{ 1, me = <cycle> }", "cycle")
local shared = { 1 }
t.eq(repl.pretty({ shared, shared }), "{ { 1 }, { 1 } }", "a shared table is no cycle")
t.eq(repl.pretty({ { { { { 1 } } } } }), "{ { { { {...} } } } }", "depth limit")
local big = {}
for i = 1, 150 do big[i] = i end
assert(repl.pretty(big):find("... (50 more)", 1, true), "item limit")
local long = {}
for i = 1, 30 do long["key" .. i] = i end
assert(repl.pretty(long):find("\n  key1 = 1,\n", 1, true), "long tables go multi-line")
t.eq(repl.pretty(setmetatable({}, { __tostring = function() return "custom" end })), "custom",
  "__tostring")

-- Feeding: incomplete chunks ask for more, expressions return values, errors say why.
t.eq(repl.feed("function f()"), "more", "incomplete function")
t.eq(repl.feed("x = [[long"), "more", "incomplete long string")
assert(type(repl.feed("1 + 1")) == "function", "expression")
assert(type(repl.feed("=1")) == "function", "=expr")
assert(type(repl.feed("local a = 1")) == "function", "statement")
local fn, err = repl.feed("1 +* 2")
assert(fn == nil and err:find("unexpected symbol"), "syntax error: " .. tostring(err))

-- Completion walks globals, fields and __index tables, never calling anything.
local vm = t.guest {}
_G.vm = vm
t.eq(table.concat(repl.complete("vm:pa"), ","), "vm:pause", "method")
t.eq(table.concat(repl.complete("ember.gu"), ","), "ember.guest", "field")
t.eq(table.concat(repl.complete("ember.guest.test_"), ","), "ember.guest.test_kernel",
  "nested field")
t.eq(table.concat(repl.complete("string.for"), ","), "string.format", "library")
assert(#repl.complete("whi") == 1, "keyword")
t.eq(#repl.complete("nosuch.x"), 0, "unknown prefix")
_G.trap = setmetatable({}, { __index = function() error("called") end })
t.eq(#repl.complete("trap.x"), 0, "__index functions are not called")

-- hexdump
t.eq(ember.hexdump("0123456789abcdefXY", 0x1000),
  "00001000  30 31 32 33 34 35 36 37  38 39 61 62 63 64 65 66  |0123456789abcdef|\n" ..
  "00001010  58 59                                             |XY|", "hexdump")
t.eq(ember.hexdump(""), "", "empty hexdump")
assert(not pcall(ember.hexdump, 5), "hexdump of a number raises")

-- Every VM method has a help line.
t.eq(table.concat(repl.undocumented(), ","), "", "undocumented vm methods")

-- regs and devices: registers only while paused; devices while running or paused.
local regs, why = vm:regs(0)
assert(not regs and why:find("paused"), "regs of a configured vm")
assert(not pcall(vm.regs, vm, 5), "regs of a missing vcpu raises")
t.boot(vm)
assert(not vm:regs(0), "regs while running")
assert(vm:pause())
regs = assert(vm:regs(0))
assert(regs.rip > 0x100000 and regs.cr0 & 1 == 1 and regs.efer & 0x400 ~= 0, "long mode")
assert(tostring(regs):find("rip=%x+"), "regs print in hex")
local devs = assert(vm:devices())
local names = {}
for _, d in ipairs(devs) do names[#names + 1] = d.name end
t.eq(table.concat(names, ","), "i8042,acpi-sleep,serial,boot-timer", "devices")
t.eq(devs[3].base, 0x3f8, "serial base")
assert(devs[3].stats.tx_bytes > 0, "serial counted the ready line")
assert(tostring(devs):find("serial +uart%-16550a +pio 0x3f8%+8"), "devices print a table")
assert(vm:resume())
t.eq(vm.send_keys, vm.send, "send_keys is send")
assert(vm:stop())
print("repl_lib ok")
