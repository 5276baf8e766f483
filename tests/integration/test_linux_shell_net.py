"""Linux's network, MMDS and vsock, driven from the guest's shell (issue 12).

virtio-net: a second golden snapshot ("net", linux_shell.golden) is the same VM with eth0
on a tap, MMDS V2 on eth0 and the guest at GUEST_IP; the other Linux tests restore the
plain golden and pay nothing for it. Each restore here runs in a network namespace of its
own (linux_shell.Netns: one tap at HOST_IP, nothing routed out) and gets that tap through
Firecracker's `network_overrides` on PUT /snapshot/load. Shown: pings both ways, TCP
streams through busybox nc each way with the same sha256 on both ends, tx and rx rate
limits set by PATCH visible in the streams' times, MMDS V2 (token refused without, PUT for one, GET with it)
and V1 (a VM booted for it: the MMDS version is fixed before boot and kept by a snapshot),
and three clones each on its own tap answering pings at their own addresses.

vsock: the plain golden, both ways through the hybrid Unix socket, with the initramfs's
`vsock` tool (third_party/guest/vsock.c: busybox has no AF_VSOCK).

Needs guest user space (hardware KVM or the KVM sandbox) and root for the namespaces."""
import ctypes
import hashlib
import os
import re
import socket
import tempfile
import threading
import time

from run import Fail, check, secs, test
from linux_shell import (GUEST_IP, GUEST_MTU, HOST_IP, MMDS_IP, Netns, echo_listener, golden,
                         restore, start_shell)
from test_linux import needs_linux_user_space

SHA = r"^([0-9a-f]{64})  %s$"
META = {"latest": {"meta-data": {"ami-id": "ami-12345678", "hostname": "ember-guest"}}}
CLONE_NEWNET = 0x40000000
FREE_BYTES, LIMITED_BYTES, LIMIT_BYTES_PER_S = 4 << 20, 1 << 20, 256 << 10

def in_netns(ns, make):
    """make() run by a thread that enters namespace `ns` (setns changes only the calling
    thread's namespace; a socket keeps the one it was made in), so no helper process has
    to start there. Returns what make returned; raises Fail on an OSError."""
    out = []

    def enter():
        fd = os.open("/var/run/netns/" + ns.name, os.O_RDONLY)
        try:
            if ctypes.CDLL(None, use_errno=True).setns(fd, CLONE_NEWNET):
                out.append(OSError(ctypes.get_errno(), "setns " + ns.name))
                return
            out.append(make())
        except OSError as e:
            out.append(e)
        finally:
            os.close(fd)
    t = threading.Thread(target=enter)
    t.start()
    t.join()
    if isinstance(out[0], OSError):
        raise Fail("in %s: %s" % (ns.name, out[0]))
    return out[0]


def listen_in(ns, port):
    """A TCP listening socket at HOST_IP:port inside namespace `ns`."""
    return in_netns(ns, lambda: socket.create_server((HOST_IP, port)))


def receive(lst, result):
    """One stream accepted on `lst`, read to its end: appends its length, sha256 and the
    seconds from the connection to the end to `result`."""
    try:
        c, _ = lst.accept()
        c.settimeout(secs(60))
        h, n, t0 = hashlib.sha256(), 0, time.monotonic()
        while True:
            b = c.recv(1 << 16)
            if not b:
                break
            h.update(b)
            n += len(b)
        result.extend((n, h.hexdigest(), time.monotonic() - t0))
        c.close()
    except OSError as e:
        result.append(e)


def pings(ns, s, guest_ip=GUEST_IP, host_ip=HOST_IP):
    """Two pings each way between the guest's shell and the namespace."""
    out = s.sh("ping -c 2 -W 5 %s" % host_ip, timeout=60)
    check(re.search(r"2 packets transmitted, 2 packets received", out),
          "%s: guest -> host %s: %r" % (s.name, host_ip, out))
    r = ns.run("busybox", "ping", "-c", "2", "-W", "5", guest_ip, timeout=60)
    check(r.returncode == 0 and "2 packets received" in r.stdout,
          "%s: host -> guest %s: %r %r" % (s.name, guest_ip, r.stdout, r.stderr))


def stream_to_host(ns, s, size, port):
    """The guest sends `size` random bytes to the namespace with nc; checks both sha256
    sums and the length; returns the seconds the host saw the stream last."""
    want = s.value("head -c %d /dev/urandom >/tmp/out; sha256sum /tmp/out" % size,
                   SHA % "/tmp/out")
    lst = listen_in(ns, port)
    lst.settimeout(secs(60))
    got = []
    t = threading.Thread(target=receive, args=(lst, got), daemon=True)
    t.start()
    try:
        out = s.sh("timeout %d nc %s %d </tmp/out; echo nc=$?" % (secs(25), HOST_IP, port),
                   timeout=30)
        check(re.search(r"^nc=0$", out, re.M), "%s: nc to port %d: %r" % (s.name, port, out))
        t.join(secs(30))
    finally:
        lst.close()
    check(len(got) == 3 and got[0] == size and got[1] == want,
          "%s: the host received %r; the guest sent %d bytes, sha256 %s" %
          (s.name, got, size, want))
    return got[2]


def a_limit_slows(ns, s, stream, limiter, port, what):
    """FREE_BYTES through `stream` (stream_to_host or stream_to_guest) unlimited, then
    LIMITED_BYTES after PATCH `limiter` at LIMIT_BYTES_PER_S (a bucket that starts full,
    so at least 3 s): the same bytes arrive, and the times show the limit."""
    free = stream(ns, s, FREE_BYTES, port)
    s.expect("PATCH", "/network-interfaces/eth0", {
        "iface_id": "eth0", limiter: {"bandwidth": {
            "size": LIMIT_BYTES_PER_S, "refill_time": 1000}}}, 204)
    limited = stream(ns, s, LIMITED_BYTES, port + 1)
    free_rate, limited_rate = FREE_BYTES / free, LIMITED_BYTES / limited
    print("  %s: 4 MiB in %.2f s unlimited (%.0f KiB/s), 1 MiB in %.2f s at 256 KiB/s "
          "(%.0f KiB/s)" % (what, free, free_rate / 1024, limited, limited_rate / 1024),
          flush=True)
    # Frames count their headers too: the limit only makes it slower than this.
    least = (LIMITED_BYTES - LIMIT_BYTES_PER_S) / LIMIT_BYTES_PER_S
    check(limited >= 0.9 * least, "%s: 1 MiB at 256 KiB/s took %.2f s, want >= %.1f s" %
          (what, limited, least))
    check(free_rate > 2 * limited_rate, "%s: unlimited %.0f KiB/s, limited %.0f KiB/s" %
          (what, free_rate / 1024, limited_rate / 1024))


@test
def linux_inside_net_pings_both_ways_and_a_limited_stream_is_slower():
    """Pings both ways; 4 MiB through nc unlimited, then 1 MiB after PATCH tx_rate_limiter
    at 256 KiB/s (a bucket of 256 KiB that starts full, so at least 3 s): the same bytes
    arrive, and the times show the limit."""
    g = golden("net")
    with tempfile.TemporaryDirectory() as tmp, Netns("net") as ns, \
            restore(tmp, "net", g=g, ns=ns) as s:
        pings(ns, s)
        a_limit_slows(ns, s, stream_to_host, "tx_rate_limiter", 5001, "guest -> host")


def stream_to_guest(ns, s, size, port):
    """The namespace sends `size` random bytes to the guest's `nc -l`; checks the guest's
    sha256 and length; returns the seconds from the connection to nc's end in the guest."""
    data = os.urandom(size)
    n = 7000 + port
    # $((n+0)): the echo of the typed line holds the sum, the output its value.
    s.send("nc -l -p %d </dev/null >/tmp/in; echo rx$((%d+0))done\n" % (port, n))
    end = time.time() + secs(20)
    while True:
        try:
            c = in_netns(ns, lambda: socket.create_connection((GUEST_IP, port), secs(5)))
            break
        except Fail:
            if time.time() > end:
                raise
            time.sleep(0.2)
    t0 = time.monotonic()
    c.settimeout(secs(60))
    c.sendall(data)
    c.close()
    s.wait_output("rx%ddone" % n, timeout=60)
    took = time.monotonic() - t0
    got = s.value("wc -c </tmp/in; sha256sum /tmp/in", r"^(\d+\n[0-9a-f]{64})  /tmp/in$")
    check(got == "%d\n%s" % (size, hashlib.sha256(data).hexdigest()),
          "%s: the guest received %r, the host sent %d bytes, sha256 %s" %
          (s.name, got, size, hashlib.sha256(data).hexdigest()))
    return took


@test
def linux_inside_net_a_stream_from_the_host_arrives_and_an_rx_limit_slows_it():
    """4 MiB from the namespace to the guest's nc unlimited, then 1 MiB after PATCH
    rx_rate_limiter at 256 KiB/s: the guest's sha256 matches, and the times show the limit."""
    g = golden("net")
    with tempfile.TemporaryDirectory() as tmp, Netns("rx") as ns, \
            restore(tmp, "rx", g=g, ns=ns) as s:
        a_limit_slows(ns, s, stream_to_guest, "rx_rate_limiter", 5011, "host -> guest")


def http_token(s):
    """MMDS V2's PUT /latest/api/token, as raw HTTP through busybox nc (its wget cannot
    PUT); returns the token."""
    out = s.sh("printf 'PUT /latest/api/token HTTP/1.1\\r\\nHost: %s\\r\\n"
               "X-metadata-token-ttl-seconds: 60\\r\\n\\r\\n' | timeout 20 nc %s 80; echo" %
               (MMDS_IP, MMDS_IP), timeout=60)
    m = re.search(r"\AHTTP/1.1 200 .*?\n\n(\S+)\n\Z", out, re.S)
    check(m and len(m.group(1)) >= 32, "%s: PUT /latest/api/token: %r" % (s.name, out))
    return m.group(1)


def wget(s, path, header=None):
    """busybox wget of MMDS `path` from the guest: (its output, its exit status)."""
    out = s.sh("wget -q -O - %shttp://%s%s; r=$?; echo; echo wget=$r" % (
        "--header '%s' " % header if header else "", MMDS_IP, path), timeout=60)
    m = re.search(r"\A(.*)\nwget=(\d+)\n\Z", out, re.S)
    check(m, "%s: wget %s: %r" % (s.name, path, out))
    return m.group(1), int(m.group(2))


@test
def linux_inside_mmds_v2_needs_a_token_from_a_put():
    g = golden("net")
    with tempfile.TemporaryDirectory() as tmp, Netns("mmds2") as ns, \
            restore(tmp, "mmds2", g=g, ns=ns) as s:
        s.expect("PUT", "/mmds", META, 204)
        out, status = wget(s, "/latest/meta-data/hostname")
        check(status != 0 and "401 Unauthorized" in out,
              "a GET without a token: status %d, %r" % (status, out))
        token = http_token(s)
        out, status = wget(s, "/latest/meta-data/hostname", "X-metadata-token: " + token)
        check(status == 0 and out == "ember-guest", "a GET with the token: %d %r" % (
            status, out))


@test
def linux_inside_mmds_v1_answers_a_plain_get():
    """A VM booted for it with MMDS V1 (a snapshot keeps the version, so no golden)."""
    d = needs_linux_user_space()
    with tempfile.TemporaryDirectory() as tmp, Netns("mmds1") as ns, \
            start_shell(tmp, "mmds1", d, None, None, ns, mmds="V1") as s:
        s.expect("PUT", "/mmds", META, 204)
        out, status = wget(s, "/latest/meta-data/ami-id")
        check(status == 0 and out == "ami-12345678", "GET ami-id: %d %r" % (status, out))
        out, status = wget(s, "/latest/meta-data/")
        check(status == 0 and out.split() == ["ami-id", "hostname"],
              "GET meta-data/: %d %r" % (status, out))


@test
def linux_inside_three_clones_each_on_its_own_tap_answer_pings():
    """Three restores of the net golden at once, each in its own namespace with a tap of
    another name (network_overrides) and given an address of its own from its shell; each
    keeps the mtu the golden's interface was given (VIRTIO_NET_F_MTU, read by Linux's driver
    at boot, and in the snapshot's device configuration)."""
    g = golden("net")
    with tempfile.TemporaryDirectory() as tmp:
        spaces, clones = [], []
        try:
            for i in range(3):
                spaces.append(Netns("clone%d" % i, host_ip="10.1.%d.1" % i))
                clones.append(restore(tmp, "clone%d" % i, g=g, ns=spaces[i]))
            for i, s in enumerate(clones):
                s.sh("ip addr add 10.1.%d.2/24 dev eth0" % i)
            for i, s in enumerate(clones):
                pings(spaces[i], s, guest_ip="10.1.%d.2" % i, host_ip="10.1.%d.1" % i)
            mtu = clones[0].value("cat /sys/class/net/eth0/mtu", r"(\d+)")
            check(mtu == str(GUEST_MTU), "the guest's eth0 mtu is %s, want %d" % (mtu, GUEST_MTU))
            nets = clones[1].expect("GET", "/vm/config", None, 200)["network-interfaces"]
            check(nets[0]["mtu"] == GUEST_MTU, "GET /vm/config after restore: %r" % nets)
        finally:
            for s in clones:
                s.close()
            for ns in spaces:
                ns.close()


def connect_to_guest(uds, port):
    """Firecracker's hybrid vsock: CONNECT on the Unix socket, OK back."""
    c = socket.socket(socket.AF_UNIX)
    c.settimeout(secs(30))
    c.connect(uds)
    c.sendall(b"CONNECT %d\n" % port)
    line = b""
    while not line.endswith(b"\n"):
        b = c.recv(1)
        check(b, "vsock: closed before OK: %r" % line)
        line += b
    check(re.match(rb"^OK \d+\n$", line), "vsock: %r, want OK <port>" % line)
    return c


@test
def linux_inside_vsock_streams_both_ways_through_the_unix_socket():
    golden()
    with tempfile.TemporaryDirectory() as tmp, restore(tmp, "vsock") as s:
        uds = os.path.join(tmp, "vsock.vsock")
        # host -> guest: the guest's tool listens and echoes
        s.sh("vsock listen 5000 >/tmp/vl 2>&1 &")
        end = time.time() + secs(10)
        while "listening" not in s.sh("cat /tmp/vl") and time.time() < end:
            time.sleep(0.2)
        c = connect_to_guest(uds, 5000)
        data = os.urandom(1 << 20)
        back = bytearray()

        def read_back():
            while True:
                b = c.recv(65536)
                if not b:
                    return
                back.extend(b)
        t = threading.Thread(target=read_back, daemon=True)
        t.start()
        c.sendall(data)
        c.shutdown(socket.SHUT_WR)
        t.join(secs(60))
        c.close()
        check(bytes(back) == data, "host -> guest echo: %d of %d bytes back, equal %s" % (
            len(back), len(data), bytes(back) == data))
        # (not `wait`: the shell's jobs include the golden's counter, which never ends)
        end = time.time() + secs(10)
        while "echoed" not in s.sh("cat /tmp/vl") and time.time() < end:
            time.sleep(0.2)
        check(s.value("cat /tmp/vl", r"^(echoed \d+ bytes)$") == "echoed %d bytes" %
              len(data), "the guest's count")
        # guest -> host: CID 2 port 6000 reaches the listener at <uds>_6000
        got = bytearray()
        t = echo_listener(uds + "_6000", got)
        out = s.sh("head -c 1048576 /dev/urandom >/tmp/v; sha256sum </tmp/v; "
                   "vsock connect 2 6000 </tmp/v | sha256sum; echo vsock=$?", timeout=60)
        t.join(secs(30))
        sums = re.findall(r"^([0-9a-f]{64})  -$", out, re.M)
        check(len(sums) == 2 and sums[0] == sums[1] and re.search(r"^vsock=0$", out, re.M),
              "guest -> host: the file and the echo: %r" % out)
        check(len(got) == 1 << 20 and hashlib.sha256(got).hexdigest() == sums[0],
              "the host received %d bytes, sha256 %s, the guest sent %s" % (
                  len(got), hashlib.sha256(got).hexdigest(), sums[0]))
