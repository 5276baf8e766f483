"""Snapshot files from the command line: info, restore, merge, and every bad file refused."""
import os
import tempfile

from run import check, ember, test, write_def

MAKE_SNAPSHOT = """
local dir = arg[1]
local vm = ember.vm { kernel = ember.guest.test_kernel, memory_mib = 128, console = "none" }
assert(vm:start())
assert(vm:wait_for("ready cpus=[^\\n]*\\n", 10))
vm:send("fill 8 5\\n")
assert(vm:wait_for("OK fill[^\\n]*\\n", 10))
assert(vm:pause())
assert(vm:snapshot { state = dir .. "/vm.state", mem = dir .. "/vm.mem" })
-- A second snapshot whose memory file cannot be written must not touch the good one.
local ok, err = vm:snapshot { state = dir .. "/vm.state", mem = dir .. "/missing/vm.mem" }
assert(not ok and err:find("missing/vm.mem", 1, true), err)
vm:stop()
"""


def make_snapshot(tmp):
    r = ember("run", write_def(tmp, MAKE_SNAPSHOT, "snap.lua"), tmp, timeout=30)
    check(r.returncode == 0, "making the snapshot failed: %s" % r.stderr)
    return os.path.join(tmp, "vm.state"), os.path.join(tmp, "vm.mem")


@test
def snapshot_info_describes_the_state_file():
    with tempfile.TemporaryDirectory() as tmp:
        state, _ = make_snapshot(tmp)
        r = ember("snapshot", "info", state)
        check(r.returncode == 0, "info failed: %s" % r.stderr)
        for want in ("format:        ember snapshot v1.0", "vcpus:         1",
                     "memory:        128 MiB (anon)", "device:        serial",
                     "device:        i8042"):
            check(want in r.stdout, "info lacks %r:\n%s" % (want, r.stdout))
        check(not [f for f in os.listdir(tmp) if ".tmp." in f], "temporary files left behind")


@test
def cli_restore_resumes_the_guest():
    with tempfile.TemporaryDirectory() as tmp:
        state, mem = make_snapshot(tmp)
        r = ember("restore", state, mem, "--resume", stdin="check 8 5\npoweroff\n", timeout=30)
        check("OK check" in r.stdout, "restored guest lost its memory: %r" % r.stdout)
        check(r.returncode == 0, "restore: status %d: %s" % (r.returncode, r.stderr))


def corrupt(path, out, fn):
    with open(path, "rb") as f:
        data = bytearray(f.read())
    with open(out, "wb") as f:
        f.write(fn(data))
    return out


def flip(data, at):
    data[at] ^= 0x40
    return data


@test
def bad_state_files_are_refused_with_a_reason():
    with tempfile.TemporaryDirectory() as tmp:
        state, mem = make_snapshot(tmp)
        size = os.path.getsize(state)
        cases = [
            (lambda d: b"", "too short"),
            (lambda d: d[:30], "too short|runs past|CRC"),
            (lambda d: b"\0" * 64, "bad magic"),
            (lambda d: flip(d, size // 2), "CRC mismatch"),
            (lambda d: flip(d, 8), "format version"),
            (lambda d: d + b"junk", "CRC mismatch|trailing|past"),
        ]
        for i, (fn, want) in enumerate(cases):
            bad = corrupt(state, os.path.join(tmp, "bad%d.state" % i), fn)
            for args in (("snapshot", "info", bad), ("restore", bad, mem)):
                r = ember(*args, timeout=20)
                check(r.returncode == 1, "%s case %d: status %d" % (args[0], i, r.returncode))
                import re
                check(re.search(want, r.stderr), "%s case %d: %r lacks %r" %
                      (args[0], i, r.stderr, want))
        r = ember("restore", os.path.join(tmp, "nope.state"), mem)
        check(r.returncode == 1 and "No such file" in r.stderr, "missing state: %r" % r.stderr)
        short = os.path.join(tmp, "short.mem")
        with open(short, "wb") as f:
            f.write(b"\0" * 4096)
        r = ember("restore", state, short)
        check(r.returncode == 1 and "need" in r.stderr, "short memory file: %r" % r.stderr)
        r = ember("restore", state, mem, "--net-override", "eth0=tap9")
        check(r.returncode == 1 and "Unknown Network Device" in r.stderr,
              "unknown iface: %r" % r.stderr)
        r = ember("restore", state, mem, "--bogus")
        check(r.returncode == 2, "bad restore option: %r" % (r,))


def uffd_handler(sock, mem, mode):
    import subprocess
    import time
    import test_uffd
    exe = test_uffd.handler_bin()
    p = subprocess.Popen([exe, "--socket", sock, "--mem-file", mem, "--mode", mode, "--once", "-v"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    for _ in range(200):
        if os.path.exists(sock):
            return p
        time.sleep(0.01)
    p.kill()
    raise AssertionError("ember-uffd did not create its socket")


@test
def restore_through_userfaultfd_handler():
    for mode in ("on-demand", "all"):
        with tempfile.TemporaryDirectory() as tmp:
            state, mem = make_snapshot(tmp)
            sock = os.path.join(tmp, "uffd.sock")
            handler = uffd_handler(sock, mem, mode)
            try:
                r = ember("restore", state, "-", "--uffd", sock, "--resume",
                          stdin="check 8 5\npoweroff\n", timeout=30)
                out, err = handler.communicate(timeout=10)
            finally:
                if handler.poll() is None:
                    handler.kill()
                    handler.wait()
            check("OK check" in r.stdout, "%s: guest memory via uffd: %r %r" %
                  (mode, r.stdout, r.stderr))
            check(r.returncode == 0, "%s: restore status %d: %s" % (mode, r.returncode,
                                                                     r.stderr))
            check(handler.returncode == 0, "%s: handler status %d: %s" %
                  (mode, handler.returncode, err))


@test
def uffd_restore_without_handler_is_refused():
    with tempfile.TemporaryDirectory() as tmp:
        state, _ = make_snapshot(tmp)
        r = ember("restore", state, "-", "--uffd", os.path.join(tmp, "none.sock"))
        check(r.returncode == 1 and "cannot connect" in r.stderr and "No such file" in r.stderr,
              "missing handler socket: %r" % r.stderr)
        plain = os.path.join(tmp, "plain.sock")
        open(plain, "w").close()
        r = ember("restore", state, "-", "--uffd", plain)
        check(r.returncode == 1 and "Connection refused" in r.stderr,
              "socket nobody listens on: %r" % r.stderr)


@test
def uffd_handler_that_dies_ends_the_vm_instead_of_hanging():
    import socket
    import threading
    with tempfile.TemporaryDirectory() as tmp:
        state, _ = make_snapshot(tmp)
        path = os.path.join(tmp, "dying.sock")
        srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        srv.bind(path)
        srv.listen(1)

        def take_and_die():
            # Accept the handshake, keep the uffd a moment, then go away unserved.
            conn, _ = srv.accept()
            conn.recvmsg(4096, socket.CMSG_SPACE(4))
            conn.close()

        t = threading.Thread(target=take_and_die)
        t.start()
        r = ember("restore", state, "-", "--uffd", path, "--resume", stdin="check 8 5\n",
                  timeout=20)
        t.join()
        srv.close()
        check(r.returncode == 1, "status %d, want 1: %s" % (r.returncode, r.stderr))
        check("page-fault handler went away" in r.stderr, "no reason given: %r" % r.stderr)


MAKE_DRIVE_SNAPSHOT = """
local dir = arg[1]
local vm = ember.vm { kernel = ember.guest.test_kernel, memory_mib = 128, console = "none",
  drives = { { id = "data", path = dir .. "/a.img" } } }
assert(vm:start())
assert(vm:wait_for("ready cpus=[^\\n]*\\n", 10))
vm:send("blk write 8 16 77\\n")
assert(vm:wait_for("OK blk written\\n", 10))
vm:send("blk read 8 16\\n")
print(assert(vm:wait_for("OK blk sum=(%x+)\\n", 10)))
assert(vm:pause())
assert(vm:snapshot { state = dir .. "/d.state", mem = dir .. "/d.mem" })
vm:stop()
"""


@test
def restore_with_a_moved_drive_and_realtime_clock():
    with tempfile.TemporaryDirectory() as tmp:
        with open(os.path.join(tmp, "a.img"), "wb") as f:
            f.truncate(1 << 20)
        r = ember("run", write_def(tmp, MAKE_DRIVE_SNAPSHOT, "d.lua"), tmp, timeout=30)
        check(r.returncode == 0, "drive snapshot: %s" % r.stderr)
        want = r.stdout.strip()
        state, mem = os.path.join(tmp, "d.state"), os.path.join(tmp, "d.mem")
        moved = os.path.join(tmp, "moved.img")
        os.rename(os.path.join(tmp, "a.img"), moved)
        r = ember("restore", state, mem, "--resume")
        check(r.returncode == 1 and "a.img" in r.stderr, "missing drive not named: %r" % r.stderr)
        r = ember("restore", state, mem, "--drive-override", "nope=" + moved)
        check(r.returncode == 1 and "Unknown Block Device" in r.stderr, "unknown drive: %r" %
              r.stderr)
        r = ember("restore", state, mem, "--resume", "--drive-override", "data=" + moved,
                  "--clock-realtime", stdin="blk read 8 16\npoweroff\n", timeout=30)
        check(r.returncode == 0, "restore with override: %d %s" % (r.returncode, r.stderr))
        check("OK blk sum=%s" % want in r.stdout, "drive data after the move: %r (want %s)" %
              (r.stdout, want))


@test
def restore_needs_no_kernel_file():
    """The kernel is in guest memory: a host (or a jail) without the file restores, as
    Firecracker does; a boot without it is still refused."""
    import shutil
    import run
    with tempfile.TemporaryDirectory() as tmp:
        kernel = os.path.join(tmp, "kernel")
        shutil.copyfile(run.guest_kernel(), kernel)
        r = ember("run", write_def(tmp, MAKE_SNAPSHOT.replace("ember.guest.test_kernel",
                                                              repr(kernel)), "snap.lua"),
                  tmp, timeout=30)
        check(r.returncode == 0, "making the snapshot failed: %s" % r.stderr)
        os.unlink(kernel)
        r = ember("restore", os.path.join(tmp, "vm.state"), os.path.join(tmp, "vm.mem"),
                  "--resume", stdin="check 8 5\npoweroff\n", timeout=30)
        check(r.returncode == 0 and "OK check" in r.stdout,
              "restore without the kernel file: %d %r" % (r.returncode, r.stderr))
