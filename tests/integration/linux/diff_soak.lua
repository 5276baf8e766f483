-- Linux soak of diff snapshots (issue 13): the microVM kernel with a writable ext4 data
-- drive mounted at /mnt. After a full snapshot, each cycle writes a new file, drops the
-- page cache and reads every file back from the drive, notes the sha256sum of every file
-- and of /dev/vdb from inside the guest, takes a diff, merges it onto the base, stops the
-- VM and restores a new one from the merged base, where the same sums must come out of
-- its page cache (what the diff carried).
-- usage: diff_soak.lua TMPDIR LINUXDIR DATA_IMAGE CYCLES
local dir, linux, data = assert(arg[1]), assert(arg[2]), assert(arg[3])
local cycles = tonumber(arg[4] or "5")
local scale = tonumber(os.getenv("EMBER_TEST_TIME_SCALE")) or 1
local T = 60 * scale

local vm = ember.vm {
  vcpus = 2, memory_mib = 256,
  kernel = linux .. "/vmlinux",
  cmdline = "console=ttyS0 reboot=k panic=1 pci=off init=/init",
  drives = { { id = "rootfs", path = linux .. "/rootfs.ext4", read_only = true, root = true },
             { id = "data", path = data } },
  console = "none", track_dirty_pages = true,
}
assert(vm:start())
assert(vm:wait_for("ember%-guest: shell on the console", T), "no shell")

-- Run a shell line; its output between two markers the typed line does not contain.
local seq = 0
local function sh(v, line)
  seq = seq + 1
  local a, b = 1000 + 2 * seq, 1001 + 2 * seq
  v:send(string.format("echo @@$((%d+0))@@; %s; echo @@$((%d+0))@@\n", a, line, b))
  local out = v:wait_for(string.format("@@%d@@\r?\n(.-)@@%d@@", a, b), T)
  assert(out, "no answer to: " .. line)
  return (out:gsub("\r", ""))
end

sh(vm, "mount -t ext4 -o noatime /dev/vdb /mnt && echo mounted")
assert(vm:pause())
assert(vm:snapshot { state = dir .. "/base.state", mem = dir .. "/base.mem" })
assert(vm:resume())

local SUMS = "sha256sum /mnt/f*; sha256sum /dev/vdb"
-- Before the snapshot the files are read from the drive (the device writes them into
-- guest memory, behind KVM's dirty log); after the restore from the page cache the diff
-- carried.
local READ_SUMS = "echo 3 >/proc/sys/vm/drop_caches; cat /mnt/f* >/dev/null; " .. SUMS
-- Only sha256sum's lines: the kernel may print on the same console meanwhile.
local function sums(text)
  local lines = {}
  for line in text:gmatch("[^\n]+") do
    if line:match("^%x+  /%S+$") then lines[#lines + 1] = line end
  end
  return table.concat(lines, "\n")
end
for i = 1, cycles do
  local before = sums(sh(vm, string.format(
    "dd if=/dev/urandom of=/mnt/f%d bs=4k count=%d 2>/dev/null; sync; %s", i, 8 + i % 5,
    READ_SUMS)))
  assert(before:find("  /mnt/f" .. i .. "\n", 1, true) and before:find("  /dev/vdb", 1, true),
    "cycle " .. i .. ": " .. before)
  assert(vm:pause())
  assert(vm:snapshot { state = dir .. "/diff.state", mem = dir .. "/diff.mem", type = "diff" })
  assert(ember.merge_memory(dir .. "/base.mem", dir .. "/diff.mem"))
  vm:stop()
  vm = assert(ember.restore { state = dir .. "/diff.state", mem = dir .. "/base.mem",
    console = "none", resume = true, track_dirty_pages = true })
  local after = sums(sh(vm, SUMS))
  assert(after == before, string.format("cycle %d: sums differ after restore\nbefore:\n%s\n" ..
    "after:\n%s", i, before, after))
end
sh(vm, "umount /mnt && echo unmounted")
vm:stop()
print(string.format("linux soak: %d diff cycles, files and /dev/vdb equal each time", cycles))
