"""Uffd memory backend: Firecracker's handshake byte for byte, ember-uffd serving real faults.

No KVM needed: uffd_peer.c plays ember's restore side (anonymous regions, then
uffd_backend_attach) and touches the memory; Python plays a Firecracker-style handler or
a misbehaving VMM where a test needs one."""
import atexit
import ctypes
import fcntl
import json
import os
import re
import shutil
import socket
import subprocess
import tempfile
import time

import run
from run import Fail, check, ember, test, write_def, secs

ROOT = os.path.dirname(os.path.dirname(run.HERE))
MIB = 1 << 20
_built = {}


def _build(name, sources):
    """Compile a helper into a per-run directory (sanitized under --sanitizer)."""
    if name not in _built:
        if "dir" not in _built:
            _built["dir"] = tempfile.mkdtemp(prefix="ember-uffd-test-")
            atexit.register(shutil.rmtree, _built["dir"], True)
        out = os.path.join(_built["dir"], name)
        flags = ["-fsanitize=address,undefined", "-fno-omit-frame-pointer"] \
            if run.ARGS.sanitizer else []
        cmd = [os.environ.get("CC", "cc"), "-std=c11", "-D_GNU_SOURCE", "-O1", "-g",
               "-I" + os.path.join(ROOT, "include"), *flags, "-o", out,
               *[os.path.join(ROOT, s) for s in sources], "-lcjson"]
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        check(r.returncode == 0, "building %s failed: %s" % (name, r.stderr))
        _built[name] = out
    return _built[name]


def peer():
    return _build("uffd_peer", ["tests/integration/uffd_peer.c", "src/snapshot/uffd.c",
                                "src/snapshot/uffd_handshake.c"])


def handler_bin():
    built = os.path.join(os.path.dirname(run.ARGS.ember), "ember-uffd")
    if os.access(built, os.X_OK) and not run.ARGS.sanitizer:
        return built
    return _build("ember-uffd", ["tools/ember-uffd.c", "tools/uffd_serve.c", "tools/working_set.c",
                                 "src/snapshot/uffd_handshake.c", "src/snapshot/snapshot_id.c",
                                 "src/snapshot/state_file.c", "src/snapshot/state_file_read.c",
                                 "src/util/crc64.c"])


def mem_file(tmp, size, name="vm.mem"):
    path = os.path.join(tmp, name)
    with open(path, "wb") as f:
        f.write(os.urandom(size))
    return path


class Handler:
    """ember-uffd in the background, stopped by its own pid if a test leaves it running."""

    def __init__(self, tmp, mem, *extra):
        self.sock = os.path.join(tmp, "uffd.sock")
        self.p = subprocess.Popen([handler_bin(), "--socket", self.sock, "--mem-file", mem,
                                   "--once", *extra], stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True)
        end = time.time() + secs(10)
        while not os.path.exists(self.sock):
            if self.p.poll() is not None or time.time() > end:
                self.finish()
                raise Fail("ember-uffd did not start listening: %r" % (self.err,))
            time.sleep(0.01)

    def finish(self, timeout=10):
        try:
            self.out, self.err = self.p.communicate(timeout=secs(timeout))
        finally:
            if self.p.poll() is None:
                self.p.kill()
                self.out, self.err = self.p.communicate()
        return self.p.returncode

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.p.poll() is None:
            self.p.kill()
            self.p.communicate()


def run_peer(sock, mem, mode, *sizes, timeout=30):
    return subprocess.run([peer(), sock, mem, mode, *[str(s) for s in sizes]],
                          capture_output=True, text=True, timeout=secs(timeout))


def attached_regions(out):
    m = re.match(r"attached((?: 0x[0-9a-f]+:\d+)+)\n", out)
    check(m, "peer did not report its regions: %r" % out)
    return [(int(a, 16), int(s)) for a, s in re.findall(r"0x([0-9a-f]+):(\d+)", m.group(1))]


# ---- ember's side, seen by a Firecracker-style handler written in Python ----

@test
def uffd_handshake_is_firecrackers_bytes():
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "fc.sock")
        lst = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        lst.bind(path)
        lst.listen(1)
        p = subprocess.Popen([peer(), path, "/dev/null", "wait", str(4 * MIB), str(2 * MIB)],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            conn, _ = lst.accept()
            msg, fds, _, _ = socket.recv_fds(conn, 1024, 4)
            line = p.stdout.readline()
            regions = attached_regions(line)
            want, off = [], 0
            for addr, size in regions:
                want.append({"base_host_virt_addr": addr, "size": size, "offset": off,
                             "page_size": 4096, "page_size_kib": 4096})
                off += size
            check(msg == json.dumps(want, separators=(",", ":")).encode(),
                  "handshake bytes differ from serde_json's:\n%r" % msg)
            check(len(fds) == 1, "expected one fd, got %d" % len(fds))
            check(os.readlink("/proc/self/fd/%d" % fds[0]) == "anon_inode:[userfaultfd]",
                  "the fd sent is not a userfaultfd")
            check(fcntl.fcntl(fds[0], fcntl.F_GETFL) & os.O_NONBLOCK, "uffd is blocking")
            check(p.poll() is None, "ember's side closed the socket after the handshake")
            for fd in fds:
                os.close(fd)
            conn.close()  # the handler going away: ember's side sees EOF on its socket
            out, err = p.communicate(timeout=10)
            check(p.returncode == 0 and "handler closed" in out, "peer: %r %r" % (out, err))
        finally:
            if p.poll() is None:
                p.kill()
                p.communicate()
            lst.close()


@test
def uffd_attach_errors_name_the_socket():
    with tempfile.TemporaryDirectory() as tmp:
        missing = os.path.join(tmp, "missing.sock")
        r = run_peer(missing, "/dev/null", "wait", 4 * MIB)
        check(r.returncode == 1 and r.stderr.strip() ==
              "uffd backend %s: cannot connect: No such file or directory" % missing,
              "missing socket: %r" % (r,))
        plain = os.path.join(tmp, "plain.sock")
        open(plain, "w").close()
        r = run_peer(plain, "/dev/null", "wait", 4 * MIB)
        check(r.returncode == 1 and r.stderr.strip() ==
              "uffd backend %s: cannot connect: Connection refused" % plain,
              "plain file as socket: %r" % (r,))
        bound = os.path.join(tmp, "bound.sock")
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.bind(bound)  # bound but nobody listening
        r = run_peer(bound, "/dev/null", "wait", 4 * MIB)
        s.close()
        check(r.returncode == 1 and "%s: cannot connect: Connection refused" % bound
              in r.stderr, "socket not listening: %r" % (r,))


# ---- ember-uffd against ember's side: real faults, user and kernel mode ----

def serve_and_touch(mode):
    with tempfile.TemporaryDirectory() as tmp:
        mem = mem_file(tmp, 6 * MIB)
        with Handler(tmp, mem, "--mode", mode, "-v") as h:
            r = run_peer(h.sock, mem, "touch", 4 * MIB, 2 * MIB)
            check(r.returncode == 0 and r.stdout.endswith("OK\n"),
                  "peer: status %d %r %r" % (r.returncode, r.stdout, r.stderr))
            status = h.finish()
            check(status == 0, "ember-uffd: status %d: %s" % (status, h.err))
            check(re.search(r"served \d+ faults: 1536 pages copied, 17 zero-filled, "
                            r"2 removes", h.out), "summary: %r" % h.out)
            return h.out


@test
def uffd_handler_serves_two_regions_on_demand():
    out = serve_and_touch("on-demand")
    check("populated" not in out, "on-demand mode populated everything: %r" % out)


@test
def uffd_handler_populates_all_regions_on_first_fault():
    out = serve_and_touch("all")
    check(re.search(r"^ember-uffd: populated 6 MiB in \d+ us$", out, re.M),
          "no populate line: %r" % out)


@test
def uffd_handler_refuses_memory_file_not_matching_regions():
    with tempfile.TemporaryDirectory() as tmp:
        for size, want in ((6 * MIB, r"region 1 \(offset 4194304, size 4194304\) ends beyond "
                                     r"the memory file \(6291456 bytes\)"),
                           (10 * MIB, r"regions add up to 8388608 bytes but the memory file "
                                      r"has 10485760")):
            mem = mem_file(tmp, size)
            with Handler(tmp, mem) as h:
                r = run_peer(h.sock, mem, "wait", 4 * MIB, 4 * MIB)
                status = h.finish()
                check(status == 1 and re.search(
                    r"^ember-uffd: bad handshake for memory file .*vm\.mem: " + want + "$",
                    h.err, re.M), "handler: status %d %r" % (status, h.err))
                # ember's side learns that the handler is gone instead of hanging later.
                check(r.returncode == 0 and "handler closed" in r.stdout, "peer: %r" % (r,))


@test
def uffd_handler_can_kill_a_peer_it_cannot_serve():
    with tempfile.TemporaryDirectory() as tmp:
        mem = mem_file(tmp, 2 * MIB)
        with Handler(tmp, mem, "--kill-peer") as h:
            r = run_peer(h.sock, mem, "wait", 4 * MIB)
            status = h.finish()
        check(status == 1 and re.search(r"killed the peer \(pid \d+\)", h.err),
              "handler: status %d %r" % (status, h.err))
        check(r.returncode == -9, "peer: %r" % (r,))


# ---- a real VM: the test guest snapshotted, then restored through ember-uffd ----

SNAPSHOT_GUEST = """
local dir = arg[1]
local vm = ember.vm { kernel = ember.guest.test_kernel, memory_mib = 128, console = "none" }
assert(vm:start())
assert(vm:wait_for("ready cpus=[^\\n]*\\n", 10))
vm:send("fill 8 5\\n")
assert(vm:wait_for("OK fill[^\\n]*\\n", 10))
assert(vm:pause())
assert(vm:snapshot { state = dir .. "/vm.state", mem = dir .. "/vm.mem" })
vm:stop()
"""


def snapshot_guest(tmp):
    """The test guest with 8 MiB filled, snapshotted: (state, mem) in tmp."""
    r = ember("run", write_def(tmp, SNAPSHOT_GUEST, "snap.lua"), tmp, timeout=30)
    check(r.returncode == 0, "making the snapshot failed: %s" % r.stderr)
    return os.path.join(tmp, "vm.state"), os.path.join(tmp, "vm.mem")


def restore_through(tmp, state, mem, what, *handler_args):
    """Restore through ember-uffd started with handler_args and -v; the guest checks its
    8 MiB and powers off. Returns the handler's output once it ended with status 0."""
    with Handler(tmp, mem, "-v", *handler_args) as h:
        r = ember("restore", state, mem, "--uffd", h.sock, "--resume",
                  stdin="check 8 5\npoweroff\n", timeout=30)
        check(r.returncode == 0 and "OK check" in r.stdout,
              "%s restore: status %d %r %r" % (what, r.returncode, r.stdout, r.stderr))
        status = h.finish()
        check(status == 0 and re.search(r"served \d+ faults: \d+ pages copied", h.out),
              "%s handler: status %d %r %r" % (what, status, h.out, h.err))
        return h.out


@test
def uffd_restore_of_the_test_guest():
    with tempfile.TemporaryDirectory() as tmp:
        state, mem = snapshot_guest(tmp)
        for mode in ("on-demand", "all"):
            restore_through(tmp, state, mem, mode, "--mode", mode)
        missing = os.path.join(tmp, "missing.sock")
        r = ember("restore", state, mem, "--uffd", missing, timeout=30)
        check(r.returncode != 0 and "uffd backend %s: cannot connect: No such file or "
              "directory" % missing in r.stderr, "restore without handler: %r" % (r,))


@test
def uffd_working_set_recorded_once_then_prefetched():
    """--working-set: the first restore notes the pages the guest faults in and writes
    them; the next restore of the same snapshot gets them copied in ahead and takes fewer
    faults, and the guest's memory is the same. A malformed set is refused before the
    handler listens."""
    with tempfile.TemporaryDirectory() as tmp:
        state, mem = snapshot_guest(tmp)
        ws = os.path.join(tmp, "vm.ws")
        faults = []
        for attempt in ("record", "prefetch"):
            out = restore_through(tmp, state, mem, attempt, "--working-set", ws)
            m = re.search(r"served (\d+) faults: .* (\d+) prefetched$", out, re.M)
            check(m, "%s handler: no summary in %r" % (attempt, out))
            faults.append((int(m.group(1)), int(m.group(2))))
            if attempt == "record":
                w = re.search(r"working set of (\d+) pages written to ", out)
                check(w and int(w.group(1)) >= 2048 and
                      open(ws).readline() == "ember-uffd working set 1\n",
                      "no working set of the 8 MiB checked: %r" % out)
        print("  uffd faults: %d recorded; %d with %d pages prefetched" %
              (faults[0][0], faults[1][0], faults[1][1]), flush=True)
        check(faults[0][1] == 0 and faults[1][1] >= 2048 and faults[1][0] < faults[0][0] // 2,
              "faults and prefetched pages (record, prefetch): %r" % faults)
        with open(ws, "a") as f:
            f.write("zz\n")
        h = subprocess.run([handler_bin(), "--socket", os.path.join(tmp, "bad.sock"),
                            "--mem-file", mem, "--working-set", ws], capture_output=True,
                           text=True, timeout=secs(10))
        check(h.returncode == 1 and re.search(r"working set .*vm\.ws: line \d+: 'zz' is not "
                                              r"a hex offset", h.stderr) and
              not os.path.exists(os.path.join(tmp, "bad.sock")),
              "a malformed working set: %d %r" % (h.returncode, h.stderr))
        h = subprocess.run([handler_bin(), "--socket", os.path.join(tmp, "all.sock"),
                            "--mem-file", mem, "--mode", "all", "--working-set", ws],
                           capture_output=True, text=True, timeout=secs(10))
        check(h.returncode == 2 and "--working-set needs --mode on-demand" in h.stderr and
              not os.path.exists(os.path.join(tmp, "all.sock")),
              "--working-set with --mode all: %d %r" % (h.returncode, h.stderr))


# ---- ember-uffd against a misbehaving VMM ----

UFFDIO_API = 0xC018AA3F


def real_uffd():
    """A userfaultfd that passed UFFDIO_API, as a VMM would send it."""
    libc = ctypes.CDLL(None, use_errno=True)
    fd = libc.syscall(323, os.O_CLOEXEC | os.O_NONBLOCK)  # SYS_userfaultfd on x86_64
    check(fd >= 0, "userfaultfd: %s" % os.strerror(ctypes.get_errno()))
    fcntl.ioctl(fd, UFFDIO_API, (0xAA).to_bytes(8, "little") + bytes(16))
    return fd


def region_json(size):
    return json.dumps([{"base_host_virt_addr": 1 << 40, "size": size, "offset": 0,
                        "page_size": 4096, "page_size_kib": 4096}], separators=(",", ":"))


def fake_vmm(tmp, mem, send, expect_status, expect_err):
    with Handler(tmp, mem) as h:
        c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        c.connect(h.sock)
        try:
            send(c)
            status = h.finish()
        finally:
            c.close()
        check(status == expect_status and re.search(expect_err, h.err),
              "status %d, stderr %r, want %d and %r" % (status, h.err, expect_status,
                                                      expect_err))


@test
def uffd_handler_refuses_bad_handshakes():
    with tempfile.TemporaryDirectory() as tmp:
        mem = mem_file(tmp, 4 * MIB)
        rd, wr = os.pipe()
        good = region_json(4 * MIB).encode()
        cases = [
            (lambda c: socket.send_fds(c, [b"garbage{"], [rd]),
             r"bad handshake: handshake is not valid JSON \(near byte 0\)"),
            (lambda c: socket.send_fds(c, [good.replace(b'"size"', b'"sise"')], [rd]),
             r"bad handshake: region 0: missing field 'size'"),
            (lambda c: socket.send_fds(c, [good.replace(b"4096,", b"3000,", 1)], [rd]),
             r"page_size 3000 is not a power of two"),
            (lambda c: socket.send_fds(c, [b'{"base_host_virt_addr":1}'], [rd]),
             r"handshake is not a JSON array"),
            (lambda c: c.sendall(good), r"no userfaultfd came with it"),
            (lambda c: socket.send_fds(c, [good], [rd]), r"the fd sent is pipe:\[\d+\], not a "
                                                         r"userfaultfd"),
            (lambda c: socket.send_fds(c, [good], [rd, wr]),
             r"peer sent 2 file descriptors, expected one"),
        ]
        try:
            for send, want in cases:
                fake_vmm(tmp, mem, send, 1, want)
        finally:
            os.close(rd)
            os.close(wr)


@test
def uffd_handler_takes_a_late_fd_and_ends_with_the_vm():
    with tempfile.TemporaryDirectory() as tmp:
        mem = mem_file(tmp, 4 * MIB)
        uffd = real_uffd()
        try:
            def late(c):
                c.sendall(region_json(4 * MIB).encode())
                time.sleep(0.05)
                socket.send_fds(c, [b" "], [uffd])
                time.sleep(0.2)
                c.close()  # the VM process ends: the handler is done, status 0

            fake_vmm(tmp, mem, late, 0, r"^$")

            def chatty(c):
                socket.send_fds(c, [region_json(4 * MIB).encode()], [uffd])
                time.sleep(0.2)
                c.sendall(b"more")

            fake_vmm(tmp, mem, chatty, 1, r"the peer sent data after the handshake")
        finally:
            os.close(uffd)


@test
def uffd_handler_replaces_stale_socket_and_refuses_live_one():
    with tempfile.TemporaryDirectory() as tmp:
        mem = mem_file(tmp, 4 * MIB)
        stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        stale.bind(os.path.join(tmp, "uffd.sock"))
        stale.close()  # leaves the socket file behind, nobody listening
        stale_ino = os.stat(os.path.join(tmp, "uffd.sock")).st_ino
        with Handler(tmp, mem) as h:
            # The stale file already exists: wait until the handler's own socket replaced
            # it, or the second handler would find it stale too.
            for _ in range(500):
                if os.stat(h.sock).st_ino != stale_ino:
                    break
                time.sleep(0.01)
            r = subprocess.run([handler_bin(), "--socket", h.sock, "--mem-file", mem],
                               capture_output=True, text=True, timeout=10)
            check(r.returncode == 1 and "another process is listening on it" in r.stderr,
                  "second handler on a live socket: %r" % (r,))
            check(h.p.poll() is None, "the first handler took the probe for its VM")
            r = run_peer(h.sock, mem, "touch", 4 * MIB)
            check(r.returncode == 0 and r.stdout.endswith("OK\n"), "after a probe: %r" % (r,))
            check(h.finish() == 0, "handler: %r" % h.err)
        r = subprocess.run([handler_bin(), "--socket", os.path.join(tmp, "x"), "--mem-file",
                            mem, "--mode", "eager"], capture_output=True, text=True, timeout=10)
        check(r.returncode == 2 and "'eager' is not on-demand or all" in r.stderr,
              "bad mode: %r" % (r,))
        r = subprocess.run([handler_bin(), "--socket", os.path.join(tmp, "x"), "--mem-file",
                            os.path.join(tmp, "nope")], capture_output=True, text=True,
                           timeout=10)
        check(r.returncode == 1 and "nope: No such file or directory" in r.stderr,
              "missing memory file: %r" % (r,))


ASYNC_DRIVE_GUEST = """
local dir = assert(arg[1])
local vm = ember.vm { kernel = ember.guest.test_kernel, memory_mib = 128, console = "none",
  drives = { { id = "data", path = dir .. "/data.img", io_engine = "Async" } } }
assert(vm:start())
assert(vm:wait_for("ember%-test%-guest ready[^\\n]*\\n", 10))
assert(vm:send("blk write 10 4 77\\n"))
assert(vm:wait_for("OK blk written\\n", 10))
assert(vm:pause())
assert(vm:snapshot { state = dir .. "/vm.state", mem = dir .. "/vm.mem" })
vm:stop()
"""


@test
def uffd_restore_with_an_async_drive():
    """A drive with io_engine Async restored with its memory served by ember-uffd: writes
    from handler-served memory are copied and checked first (block_worker.c), so it runs
    on the I/O thread and says so; the guest reads what it wrote before the snapshot and
    its new writes reach the image."""
    from test_api import answer_sum, word_sum
    with tempfile.TemporaryDirectory() as tmp:
        img = os.path.join(tmp, "data.img")
        with open(img, "wb") as f:
            f.truncate(MIB)
        r = ember("run", write_def(tmp, ASYNC_DRIVE_GUEST, "snap.lua"), tmp, timeout=30)
        check(r.returncode == 0, "making the snapshot failed: %s" % r.stderr)
        state, mem = os.path.join(tmp, "vm.state"), os.path.join(tmp, "vm.mem")
        with Handler(tmp, mem) as h:
            r = ember("--log-level", "info", "restore", state, mem, "--uffd", h.sock,
                      "--resume", stdin="blk read 10 4\nblk write 20 2 5\nblk flush\n"
                      "blk read 20 2\npoweroff\n", timeout=30)
            h.finish()
        check(r.returncode == 0, "restore: status %d %r" % (r.returncode, r.stderr))
        with open(img, "rb") as f:
            data = f.read()
        sums = [answer_sum(x) for x in r.stdout.splitlines() if "blk sum=" in x]
        check(sums == [word_sum(data[10 * 512:14 * 512]), word_sum(data[20 * 512:22 * 512])]
              and data[20 * 512:22 * 512] != bytes(1024), "sums %r: %r" % (sums, r.stdout))
        check("io_engine Async runs on the I/O thread" in r.stderr,
              "no word of the I/O thread: %r" % r.stderr[-800:])
