"""A page-fault handler that dies while a disk write from unserved guest memory is in
flight: the write must fail, never put zeros into the disk image (issue 13 item 7).

The test guest writes a known pattern to its drive and is snapshotted with the pattern
still in its block buffer. The image then gets another pattern from the host. The
snapshot is restored through a handler written here from Firecracker's protocol, which
serves every fault except one inside that buffer (past its first page): there it exits.
The guest's `blk put` has the device write the buffer without the guest touching it, so
the I/O worker is the thread that meets the unserved page. Every 4 KiB of the image must
afterwards hold the host's pattern or the buffer's, and ember must end saying why."""
import ctypes
import fcntl
import json
import mmap
import os
import re
import select
import socket
import struct
import subprocess
import tempfile
import threading

from run import check, ember, secs, test, write_def

PAGE = 4096
SECTOR = 512
UFFDIO_COPY = 0xC028AA03  # _IOWR(0xAA, 0x03, struct uffdio_copy), 40 bytes
UFFD_EVENT_PAGEFAULT = 0x12
SECTORS = 64  # the buffer written: 32 KiB, eight pages

SNAPSHOT = """
local dir = arg[1]
local vm = ember.vm { kernel = ember.guest.test_kernel, memory_mib = 128, console = "none",
  drives = { { id = "data", path = dir .. "/disk.img" } } }
assert(vm:start())
assert(vm:wait_for("ready cpus=[^\\n]*\\n", %(t)d))
vm:send("blk write 0 %(n)d 5\\n")
assert(vm:wait_for("OK blk written\\n", %(t)d))
vm:send("blk sum 1\\n")
local buf = vm:wait_for("OK blk sum=%%x+ buf=(0x%%x+)\\n", %(t)d)
local f = assert(io.open(dir .. "/buf", "w")); f:write(buf); f:close()
assert(vm:pause())
assert(vm:snapshot { state = dir .. "/vm.state", mem = dir .. "/vm.mem" })
vm:stop()
"""


def pattern(seed, nbytes):
    """The test guest's fill pattern (tests/guest/README.md)."""
    x, out = seed or 0x9e3779b97f4a7c15, bytearray()
    mask = (1 << 64) - 1
    for _ in range(nbytes // 8):
        x ^= x >> 12
        x = (x ^ (x << 25)) & mask
        x ^= x >> 27
        out += struct.pack("<Q", (x * 0x2545f4914f6cdd1d) & mask)
    return bytes(out)


class DyingHandler(threading.Thread):
    """Serves faults from the memory file until one lands in [die_lo, die_hi) of it; then
    closes its socket and userfaultfd and ends, as a crashed handler would."""

    def __init__(self, sock_path, mem_path, die_lo, die_hi):
        super().__init__(daemon=True)
        self.die_lo, self.die_hi = die_lo, die_hi
        self.lst = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.lst.bind(sock_path)
        self.lst.listen(1)
        with open(mem_path, "rb") as f:
            self.mem = mmap.mmap(f.fileno(), 0, flags=mmap.MAP_PRIVATE,
                                 prot=mmap.PROT_READ | mmap.PROT_WRITE)
        self.src = ctypes.addressof(ctypes.c_char.from_buffer(self.mem))
        self.served, self.died_at, self.error = 0, None, None

    def run(self):
        try:
            self.serve()
        except Exception as e:  # noqa: BLE001 - the test reports it
            self.error = e

    def serve(self):
        conn, _ = self.lst.accept()
        msg, fds, _, _ = socket.recv_fds(conn, 65536, 1)
        regions, uffd = json.loads(msg), fds[0]
        try:
            while True:
                r, _, _ = select.select([uffd, conn], [], [], secs(30))
                if conn in r and not conn.recv(1, socket.MSG_PEEK):
                    return  # the VM ended first
                if uffd not in r:
                    continue
                try:
                    ev = os.read(uffd, 32)
                except BlockingIOError:
                    continue
                if ev[0] != UFFD_EVENT_PAGEFAULT:
                    continue
                addr = struct.unpack_from("<Q", ev, 16)[0] & ~(PAGE - 1)
                reg = next(g for g in regions if g["base_host_virt_addr"] <= addr <
                           g["base_host_virt_addr"] + g["size"])
                off = addr - reg["base_host_virt_addr"] + reg["offset"]
                if self.die_lo <= off < self.die_hi:
                    self.died_at = off
                    return
                copy = bytearray(struct.pack("<QQQQq", addr, self.src + off, PAGE, 0, 0))
                try:
                    fcntl.ioctl(uffd, UFFDIO_COPY, copy, True)
                    self.served += 1
                except FileExistsError:
                    pass
        finally:
            os.close(uffd)
            conn.close()
            self.lst.close()


@test
def uffd_handler_dying_during_a_disk_write_never_writes_zeros():
    with tempfile.TemporaryDirectory() as tmp:
        disk = os.path.join(tmp, "disk.img")
        with open(disk, "wb") as f:
            f.write(bytes(2 * SECTORS * SECTOR))
        script = write_def(tmp, SNAPSHOT % {"t": secs(10), "n": SECTORS}, "snap.lua")
        r = ember("run", script, tmp, timeout=60)
        check(r.returncode == 0, "making the snapshot failed: %s" % r.stderr)
        with open(os.path.join(tmp, "buf")) as f:
            buf = int(f.read(), 16)
        theirs, ours = pattern(5, SECTORS * SECTOR), pattern(9, SECTORS * SECTOR)
        with open(disk, "r+b") as f:
            f.write(ours)
        sock = os.path.join(tmp, "uffd.sock")
        h = DyingHandler(sock, os.path.join(tmp, "vm.mem"), buf + PAGE,
                         buf + SECTORS * SECTOR)
        h.start()
        r = ember("restore", os.path.join(tmp, "vm.state"), os.path.join(tmp, "vm.mem"),
                  "--uffd", sock, "--resume",
                  stdin="blk put 0 %d\n" % SECTORS, timeout=60)
        h.join(secs(10))
        check(h.error is None, "the handler failed: %r" % h.error)
        check(h.died_at is not None, "the handler was never asked for the buffer (served "
              "%d pages); ember: status %d %r" % (h.served, r.returncode, r.stderr))
        check(r.returncode != 0 and re.search(r"page-fault handler went away", r.stderr),
              "ember did not end on the lost handler: status %d, stderr %r"
              % (r.returncode, r.stderr))
        with open(disk, "rb") as f:
            image = f.read(SECTORS * SECTOR)
        for off in range(0, len(image), PAGE):
            page = image[off:off + PAGE]
            check(page in (ours[off:off + PAGE], theirs[off:off + PAGE]),
                  "disk bytes %d..%d are neither the image's nor the guest's (%s): the "
                  "device wrote memory the handler never served"
                  % (off, off + PAGE, "zeros" if not any(page) else "other bytes"))
