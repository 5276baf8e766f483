"""virtio-net and virtio-vsock with the test guest: frames both ways through a tap in a
network namespace the test makes (and deletes), and vsock streams both ways through
Firecracker's hybrid Unix-socket protocol.

Net: `ip netns add ember-test-<pid>`, a tap inside it (`ip tuntap add ... mode tap`), no
addresses and no route out: frames are raw Ethernet (EtherType 0x88b5, local
experimental) read and written with an AF_PACKET socket on the tap inside the namespace.
Nothing is sent to any address outside the namespace. Skipped, with the reason, where
`ip` or /dev/net/tun is missing or namespaces cannot be made."""
import contextlib
import os
import sys
import shutil
import socket
import subprocess
import tempfile
import threading
import time

import run
from run import check, test, write_def, secs

ETHERTYPE = 0x88B5
MAC = "06:00:ac:10:00:02"
FNV_OFFSET = 0xCBF29CE484222325
FNV_PRIME = 0x100000001B3


def fnv(data):
    h = FNV_OFFSET
    for b in data:
        h = ((h ^ b) * FNV_PRIME) & 0xFFFFFFFFFFFFFFFF
    return h


class Guest:
    """ember running the test guest, its serial console on pipes; one answer per line."""

    def __init__(self, tmp, extra, prefix=()):
        path = write_def(tmp, 'return ember.vm { kernel = ember.guest.test_kernel, '
                         'memory_mib = 128, console = "stdio", %s }\n' % extra)
        self.p = subprocess.Popen([*prefix, run.ARGS.ember, "run", path],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True, bufsize=1)
        self.lines = []
        self.cv = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()
        self.wait_for("ember-test-guest ready")

    def _read(self):
        for line in self.p.stdout:
            with self.cv:
                self.lines.append(line.rstrip("\n"))
                self.cv.notify_all()
        with self.cv:
            self.lines.append(None)
            self.cv.notify_all()

    def wait_for(self, prefix, timeout=30):
        end = time.time() + secs(timeout)
        with self.cv:
            while True:
                for i, line in enumerate(self.lines):
                    if line is None:
                        raise run.Fail("ember ended while waiting for %r: %s" %
                                       (prefix, self.p.stderr.read()[-2000:]))
                    if line.startswith(prefix):
                        del self.lines[:i + 1]
                        return line
                left = end - time.time()
                check(left > 0, "no %r from the guest; got %r" % (prefix, self.lines[-5:]))
                self.cv.wait(left)

    def send(self, line):
        self.p.stdin.write(line + "\n")
        self.p.stdin.flush()

    def ask(self, line, prefix=None, timeout=30):
        self.send(line)
        answer = self.wait_for(prefix or ("OK " + line.split()[0]), timeout)
        return answer

    def stop(self):
        if self.p.poll() is None:
            try:
                self.send("poweroff")
                self.p.wait(secs(10))
            except (OSError, subprocess.TimeoutExpired):
                self.p.kill()
                self.p.wait()
        return self.p.returncode


# ---- vsock ----

def vsock_def(uds):
    return 'vsock = { guest_cid = 3, uds_path = "%s" }' % uds


@test
def vsock_host_to_guest_echo():
    with tempfile.TemporaryDirectory() as tmp:
        uds = os.path.join(tmp, "v.sock")
        g = Guest(tmp, vsock_def(uds))
        try:
            check(g.ask("vsock cid") == "OK vsock cid=3", "cid")
            g.send("vsock echo 5000")
            time.sleep(0.2)  # the guest is polling for the connection now
            s = socket.socket(socket.AF_UNIX)
            s.settimeout(secs(20))
            s.connect(uds)
            s.sendall(b"CONNECT 5000\n")
            line = b""
            while not line.endswith(b"\n"):
                b = s.recv(1)
                check(b, "socket closed before OK: %r" % line)
                line += b
            check(line.startswith(b"OK ") and int(line[3:]) >= 1 << 30,
                  "OK line: %r" % line)
            data = os.urandom(300 * 1024)
            got = bytearray()

            def reader():
                while len(got) < len(data):
                    b = s.recv(65536)
                    if not b:
                        break
                    got.extend(b)
            t = threading.Thread(target=reader)
            t.start()
            s.sendall(data)
            t.join(secs(30))
            check(bytes(got) == data, "echo differs: %d of %d bytes" % (len(got), len(data)))
            s.shutdown(socket.SHUT_WR)
            answer = g.wait_for("OK vsock echo")
            check(answer == "OK vsock echo port=5000 bytes=%d sum=%016x" % (len(data),
                                                                          fnv(data)),
                  "guest answer: %r" % answer)
            check(s.recv(1) == b"", "connection not closed after the guest's close")
            s.close()
            # a CONNECT to a port nobody listens on: the guest is not listening now, so
            # the REQUEST gets no answer and ember closes the client after its timeout
            s = socket.socket(socket.AF_UNIX)
            s.settimeout(secs(10))
            s.connect(uds)
            s.sendall(b"CONNECT 5001\n")
            check(s.recv(16) == b"", "unanswered CONNECT was not closed")
            s.close()
            # a bad line is refused at once
            s = socket.socket(socket.AF_UNIX)
            s.settimeout(secs(5))
            s.connect(uds)
            s.sendall(b"CONNECT lots\n")
            check(s.recv(16) == b"", "bad CONNECT line not refused")
            s.close()
        finally:
            check(g.stop() == 0, "ember status %s" % g.p.returncode)
        check(not os.path.exists(uds), "the vsock socket file was left behind")


@test
def vsock_guest_to_host_line():
    with tempfile.TemporaryDirectory() as tmp:
        uds = os.path.join(tmp, "v.sock")
        lst = socket.socket(socket.AF_UNIX)
        lst.bind(uds + "_6000")
        lst.listen(1)
        lst.settimeout(secs(20))
        g = Guest(tmp, vsock_def(uds))
        try:
            g.send("vsock send 6000 hello-from-the-guest")
            conn, _ = lst.accept()
            conn.settimeout(secs(20))
            data = b""
            while True:
                b = conn.recv(4096)
                if not b:
                    break
                data += b
            check(data == b"hello-from-the-guest\n", "host got %r" % data)
            answer = g.wait_for("OK vsock send")
            check(answer == "OK vsock send port=6000 bytes=21 sum=%016x" % fnv(data),
                  "guest answer: %r" % answer)
            conn.close()
            # no listener on 6001: the guest is refused (RST)
            check(g.ask("vsock send 6001 x", "ERR vsock send") ==
                  "ERR vsock send port=6001 refused", "refusal")
        finally:
            check(g.stop() == 0, "ember status %s" % g.p.returncode)
            lst.close()


@test
def vsock_existing_socket_path_is_refused():
    with tempfile.TemporaryDirectory() as tmp:
        uds = os.path.join(tmp, "v.sock")
        open(uds, "w").close()
        r = run.ember("run", write_def(tmp, run.definition(vsock_def(uds))), timeout=20)
        check(r.returncode != 0 and "vsock: cannot listen on %s: Address already in use" % uds
              in r.stderr, "status %d: %r" % (r.returncode, r.stderr))


# ---- net ----

def net_skip_reason():
    if not shutil.which("ip"):
        return "the ip command is missing"
    if not os.path.exists("/dev/net/tun"):
        return "/dev/net/tun is missing"
    if os.geteuid() != 0:
        return "network namespaces need root"
    return None


def ip(*args, check_rc=True):
    r = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=20)
    if check_rc:
        check(r.returncode == 0, "ip %s: %s" % (" ".join(args), r.stderr.strip()))
    return r


# Runs inside the namespace: AF_PACKET on the tap, EtherType 0x88b5 only.
PACKET_HELPER = r"""
import socket, sys
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x88b5))
s.bind((sys.argv[1], 0x88b5))
s.settimeout(20)
if sys.argv[2] == "recv":
    print("ready", flush=True)
    print(s.recv(65536).hex(), flush=True)
else:
    s.send(bytes.fromhex(sys.argv[3]))
    print("sent", flush=True)
"""


@contextlib.contextmanager
def tap_namespace(test_name):
    """A network namespace of its own with an up tap0 in it, for test `test_name`, deleted
    afterwards. Yields its name, or None (after a SKIP line saying why) where namespaces
    or taps cannot be made here."""
    why = net_skip_reason()
    ns = "ember-test-%d" % os.getpid()
    if not why:
        r = ip("netns", "add", ns, check_rc=False)
        why = r.returncode and "cannot make a network namespace: " + r.stderr.strip()
    if why:
        print("SKIP %s: %s" % (test_name, why))
        yield None
        return
    try:
        ip("-n", ns, "link", "set", "lo", "up")
        ip("-n", ns, "tuntap", "add", "dev", "tap0", "mode", "tap")
        ip("-n", ns, "link", "set", "tap0", "up")
        # no IPv6 chatter on the tap: the guest should see only what the test sends
        subprocess.run(["ip", "netns", "exec", ns, "sh", "-c",
                        "echo 1 > /proc/sys/net/ipv6/conf/tap0/disable_ipv6"],
                       capture_output=True, timeout=10)
        yield ns
    finally:
        ip("netns", "delete", ns, check_rc=False)


@test
def net_frames_both_ways_through_a_tap_in_a_namespace():
    with tap_namespace("net_frames_both_ways_through_a_tap_in_a_namespace") as ns:
        if ns is None:
            return
        helper = [sys.executable, "-c", PACKET_HELPER, "tap0"]
        with tempfile.TemporaryDirectory() as tmp:
            g = Guest(tmp, 'net = { { id = "eth0", tap = "tap0", mac = "%s" } }' % MAC,
                      prefix=("ip", "netns", "exec", ns))
            try:
                check(g.ask("net mac") == "OK net mac=" + MAC, "mac")
                # guest -> host
                sniff = subprocess.Popen(["ip", "netns", "exec", ns, *helper, "recv"],
                                         stdout=subprocess.PIPE, text=True)
                check(sniff.stdout.readline().strip() == "ready", "sniffer did not start")
                answer = g.ask("net send 200 7")
                frame = bytes.fromhex(sniff.stdout.readline().strip())
                sniff.wait(secs(10))
                payload = bytes((7 + 131 * i) & 0xFF for i in range(200))
                want = (b"\xff" * 6 + bytes.fromhex(MAC.replace(":", "")) +
                        ETHERTYPE.to_bytes(2, "big") + payload)
                check(frame[:len(want)] == want, "host got %s" % frame.hex())
                check(answer == "OK net send len=214 sum=%016x" % fnv(want),
                      "guest answer %r" % answer)
                # host -> guest
                out = (bytes.fromhex(MAC.replace(":", "")) + b"\x02\x00\x00\x00\x00\x01" +
                       ETHERTYPE.to_bytes(2, "big") + os.urandom(300))
                g.send("net recv")
                time.sleep(0.2)
                r = subprocess.run(["ip", "netns", "exec", ns, *helper, "send", out.hex()],
                                   capture_output=True, text=True, timeout=20)
                check(r.returncode == 0, "send helper: %s" % r.stderr)
                answer = g.wait_for("OK net recv")
                check(answer == "OK net recv len=%d sum=%016x" % (len(out), fnv(out)),
                      "guest answer %r, want len=%d" % (answer, len(out)))
            finally:
                check(g.stop() == 0, "ember status %s" % g.p.returncode)


@test
def net_missing_tap_is_named():
    why = net_skip_reason()
    if why:
        print("SKIP net_missing_tap_is_named: %s" % why)
        return
    with tempfile.TemporaryDirectory() as tmp:
        # "lo" exists and is no tap: TUNSETIFF refuses it, nothing is created
        r = run.ember("run", write_def(tmp, run.definition(
            'net = { { id = "eth0", tap = "lo" } }')), timeout=20)
        check(r.returncode != 0 and "net 'eth0': cannot open tap 'lo': " in r.stderr,
              "status %d: %r" % (r.returncode, r.stderr))
