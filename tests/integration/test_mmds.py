"""MMDS from inside a guest: the test guest's raw-frame commands (`net hex`, `net xmit`,
`net dump`) make the test a tiny TCP client through the guest's virtio-net driver: ARP for
169.254.169.254, the three-way handshake, HTTP requests (V1, V2 with a session token),
the replies read segment by segment, FIN. The interface's tap sits in a network namespace
of the test's own (test_devices_net.tap_namespace); a frame that is not for MMDS must
still reach it. The store is filled with --metadata."""
import json
import os
import random
import struct
import subprocess
import sys
import tempfile
import threading

import run
from run import check, test, write_def, secs
from test_api import Ember, end_with_poweroff
from test_devices_net import MAC, Guest, tap_namespace

GUEST_MAC = bytes.fromhex(MAC.replace(":", ""))
MMDS_MAC = bytes.fromhex("060123456701")
GUEST_IP = bytes([169, 254, 0, 2])
MMDS_IP = bytes([169, 254, 169, 254])
META = {"latest": {"meta-data": {"ami-id": "ami-12345678", "hostname": "ember-guest",
                                 "net": {"mac": MAC}}}}


class FrameClient:
    """Raw frames through the test guest's `net hex` / `net xmit` commands; the class that
    mixes this in supplies ask(line, prefix)."""

    def xmit(self, frame):
        for i in range(0, len(frame), 100):
            self.ask("net hex " + frame[i:i + 100].hex(), "OK net hex")
        check(self.ask("net xmit", "OK net xmit") == "OK net xmit len=%d" % len(frame),
              "xmit")

    @staticmethod
    def frame(line):
        """The bytes of a `net dump` answer line."""
        check(line.startswith("OK net frame len="), "dump: %r" % line)
        n, data = line[len("OK net frame len="):].split(" ")
        frame = bytes.fromhex(data)
        check(len(frame) == int(n), "dump length")
        return frame


class MmdsGuest(FrameClient, Guest):
    """The test guest under `ember --metadata FILE run VM.lua`, inside namespace `ns`."""

    def __init__(self, tmp, ns, extra):  # pylint: disable=super-init-not-called
        meta = os.path.join(tmp, "meta.json")
        with open(meta, "w") as f:
            json.dump(META, f)
        path = write_def(tmp, 'return ember.vm { kernel = ember.guest.test_kernel, '
                         'memory_mib = 128, console = "stdio", net = { { id = "eth0", '
                         'tap = "tap0", mac = "%s" } }, %s }\n' % (MAC, extra))
        self.p = subprocess.Popen(["ip", "netns", "exec", ns, run.ARGS.ember, "--metadata",
                                   meta, "run", path], stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                  bufsize=1)
        self.lines = []
        self.cv = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()
        self.wait_for("ember-test-guest ready")

    def dump(self, cycles=None):
        """The next frame the guest receives, or None after a timeout."""
        self.send("net dump" + (" %d" % cycles if cycles else ""))
        line = self.wait_for("")
        while not line.startswith(("OK net frame", "ERR net dump")):
            line = self.wait_for("")
        if line.startswith("ERR net dump timeout"):
            return None
        return self.frame(line)


class ApiGuest(FrameClient):
    """The test guest of an `ember --api-sock` process (test_api.Ember), its console on
    that process's stdin and stdout."""

    def __init__(self, e):
        self.e = e

    def ask(self, line, prefix=None):
        return self.e.ask(line, prefix)

    def dump(self):
        return self.frame(self.ask("net dump", "OK net frame"))


def csum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def tcp_frame(sport, seq, ack, flags, data=b"", dst=MMDS_IP, mss=False):
    opts = struct.pack("!BBH", 2, 4, 1460) if mss else b""
    hdr = struct.pack("!HHIIBBHHH", sport, 80, seq, ack, (20 + len(opts)) // 4 << 4, flags,
                      65535, 0, 0) + opts
    pseudo = GUEST_IP + dst + struct.pack("!BBH", 0, 6, len(hdr) + len(data))
    c = csum(pseudo + hdr + data)
    hdr = hdr[:16] + struct.pack("!H", c) + hdr[18:]
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(hdr) + len(data), 1, 0x4000, 64, 6, 0,
                     GUEST_IP, dst)
    ip = ip[:10] + struct.pack("!H", csum(ip)) + ip[12:]
    return MMDS_MAC + GUEST_MAC + b"\x08\x00" + ip + hdr + data


def parse_tcp(f, sport=None):
    """(seq, ack, flags, payload) of an MMDS TCP frame, its checksums checked; None for a
    segment to another port than `sport` (given): MMDS may still be retransmitting on a
    connection the test closed, when the guest's last ACK reached it late."""
    check(f[:6] == GUEST_MAC and f[6:12] == MMDS_MAC and f[12:14] == b"\x08\x00",
          "not an MMDS IPv4 frame: %s" % f[:40].hex())
    ip = f[14:34]
    check(csum(ip) == 0 and ip[12:16] == MMDS_IP and ip[16:20] == GUEST_IP, "IP header")
    total = struct.unpack("!H", ip[2:4])[0]
    seg = f[34:14 + total]
    check(csum(MMDS_IP + GUEST_IP + struct.pack("!BBH", 0, 6, len(seg)) + seg) == 0,
          "TCP checksum")
    dport, = struct.unpack("!H", seg[2:4])
    if sport is not None and dport != sport:
        return None
    seq, ack, off, flags = struct.unpack("!IIBB", seg[4:14])
    return seq, ack, flags, seg[(off >> 4) * 4:]


def next_segment(g, sport):
    """The next MMDS segment of connection `sport`, older connections' skipped."""
    while True:
        seg = parse_tcp(g.dump(), sport)
        if seg is not None:
            return seg


SYN, ACK, FIN, PSH, RST = 2, 16, 1, 8, 4


def http(g, request, sport):
    """One request on a connection of its own: (status, headers text, body)."""
    iss = random.randrange(1 << 32)
    g.xmit(tcp_frame(sport, iss, 0, SYN, mss=True))
    seq, ack, flags, _ = next_segment(g, sport)
    check(flags == SYN | ACK and ack == iss + 1, "SYN-ACK: flags %#x ack %d" % (flags, ack))
    ours, mine = seq + 1, iss + 1
    g.xmit(tcp_frame(sport, mine, ours, ACK))
    g.xmit(tcp_frame(sport, mine, ours, ACK | PSH, request))
    mine += len(request)
    reply = b""
    while True:
        seq, ack, flags, data = next_segment(g, sport)
        check(not flags & RST, "reset by MMDS")
        if seq == ours and data:  # in order (a retransmission repeats an older seq)
            reply += data
            ours += len(data)
            g.xmit(tcp_frame(sport, mine, ours, ACK))
        if b"\r\n\r\n" in reply:
            head, body = reply.split(b"\r\n\r\n", 1)
            length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
            if len(body) >= length:
                break
    g.xmit(tcp_frame(sport, mine, ours, FIN | ACK))
    while True:
        seq, ack, flags, data = next_segment(g, sport)
        if flags & FIN:
            check(ack == mine + 1, "our FIN acknowledged")
            break
    g.xmit(tcp_frame(sport, mine + 1, seq + 1, ACK))
    status = int(head.split(b" ")[1])
    return status, head.decode(), body[:length].decode()


def arp(g):
    req = (b"\xff" * 6 + GUEST_MAC + b"\x08\x06" + struct.pack("!HHBBH", 1, 0x0800, 6, 4, 1) +
           GUEST_MAC + GUEST_IP + b"\0" * 6 + MMDS_IP)
    g.xmit(req)
    f = g.dump()
    check(f[12:14] == b"\x08\x06" and f[20:22] == b"\x00\x02", "ARP reply: %s" % f.hex())
    check(f[22:28] == MMDS_MAC and f[28:32] == MMDS_IP and f[32:38] == GUEST_MAC,
          "ARP reply fields: %s" % f.hex())


SNIFF = r"""
import socket, sys
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(3))
s.bind(("tap0", 0))
s.settimeout(20)
print("ready", flush=True)
while True:
    f = s.recv(65536)
    if f[12:14] == b"\x08\x00" and f[30:34] == bytes([169, 254, 1, 1]):
        print(f.hex(), flush=True)
        break
"""


def with_guest(name, extra, body):
    with tap_namespace(name) as ns:
        if ns is None:
            return
        with tempfile.TemporaryDirectory() as tmp:
            g = MmdsGuest(tmp, ns, extra)
            try:
                body(g, ns)
            except BaseException:
                g.stop()  # the body's failure is the one to report
                raise
            check(g.stop() == 0, "ember status %s: %s" % (g.p.returncode,
                                                          g.p.stderr.read()[-2000:]))


@test
def mmds_v1_guest_reads_metadata_over_tcp():
    def body(g, ns):
        arp(g)
        status, head, text = http(g, b"GET /latest/meta-data/ami-id HTTP/1.1\r\n"
                                  b"Host: 169.254.169.254\r\n\r\n", 40000)
        check(status == 200 and text == "ami-12345678", "%d %r" % (status, text))
        check("Content-Type: text/plain" in head, head)
        status, _, text = http(g, b"GET /latest/meta-data HTTP/1.1\r\n\r\n", 40001)
        check(status == 200 and text == "ami-id\nhostname\nnet/", repr(text))
        status, head, text = http(g, b"GET /latest/meta-data/net HTTP/1.1\r\n"
                                  b"Accept: application/json\r\n\r\n", 40002)
        check(status == 200 and json.loads(text) == {"mac": MAC}, repr(text))
        check("application/json" in head, head)
        status, _, text = http(g, b"GET /latest/nothing HTTP/1.1\r\n\r\n", 40003)
        check(status == 404, "%d %r" % (status, text))
        # a frame for another address goes to the tap, unchanged
        sniff = subprocess.Popen(["ip", "netns", "exec", ns, sys.executable, "-c", SNIFF],
                                 stdout=subprocess.PIPE, text=True)
        check(sniff.stdout.readline().strip() == "ready", "sniffer did not start")
        other = tcp_frame(40004, 1, 0, SYN, dst=bytes([169, 254, 1, 1]))
        g.xmit(other)
        got = bytes.fromhex(sniff.stdout.readline().strip())
        sniff.wait(secs(10))
        check(got == other, "tap got %s" % got.hex())
        check(g.dump(cycles=1 << 28) is None, "MMDS answered a frame not for it")
    with_guest("mmds_v1_guest_reads_metadata_over_tcp",
               'mmds = { network_interfaces = { "eth0" } }', body)


def v2_session(g, sport):
    """MMDS V2 from the guest, on ports sport..sport+2: a GET without a token is refused
    (401), PUT /latest/api/token gives one, and with it the GET reads META's hostname.
    Returns the token."""
    status, _, text = http(g, b"GET /latest/meta-data/hostname HTTP/1.1\r\n\r\n", sport)
    check(status == 401, "no token: %d %r" % (status, text))
    status, _, token = http(g, b"PUT /latest/api/token HTTP/1.1\r\n"
                            b"X-metadata-token-ttl-seconds: 60\r\n\r\n", sport + 1)
    check(status == 200 and len(token) >= 32, "token: %d %r" % (status, token))
    status, _, text = http(g, b"GET /latest/meta-data/hostname HTTP/1.1\r\n"
                           b"X-metadata-token: " + token.encode() + b"\r\n\r\n", sport + 2)
    check(status == 200 and text == "ember-guest", "%d %r" % (status, text))
    return token


@test
def mmds_v2_needs_a_session_token():
    def body(g, ns):
        del ns
        token = v2_session(g, 41000)
        # The token's first character changed (to one it is not: tokens are base64url,
        # so a fixed "x" would equal a real token starting with x, 1 run in 64).
        bad = (b"y" if token[0] == "x" else b"x") + token.encode()[1:]
        status, _, text = http(g, b"GET /latest/meta-data/hostname HTTP/1.1\r\n"
                               b"X-metadata-token: " + bad + b"\r\n\r\n", 41003)
        check(status == 401, "bad token: %d" % status)
    with_guest("mmds_v2_needs_a_session_token",
               'mmds = { network_interfaces = { "eth0" }, version = "V2" }', body)


@test
def mmds_v2_config_survives_a_snapshot_load():
    """Over the API, as in Firecracker: the snapshot keeps the MMDS configuration (V2, the
    interface), not the store. A new ember loads it, /vm/config shows the configuration,
    the data is PUT again, and the restored guest still needs a token."""
    name = "mmds_v2_config_survives_a_snapshot_load"
    want = {"network_interfaces": ["eth0"], "version": "V2",
            "ipv4_address": "169.254.169.254", "imds_compat": False}
    with tap_namespace(name) as ns, tempfile.TemporaryDirectory() as tmp:
        if ns is None:
            return
        snap = {"snapshot_path": os.path.join(tmp, "vm.state"),
                "mem_file_path": os.path.join(tmp, "vm.mem")}
        in_ns = ("ip", "netns", "exec", ns)
        with Ember(tmp, prefix=in_ns) as e:
            e.expect("PUT", "/machine-config", {"vcpu_count": 1, "mem_size_mib": 128}, 204)
            e.expect("PUT", "/boot-source", {"kernel_image_path": run.guest_kernel()}, 204)
            e.expect("PUT", "/network-interfaces/eth0",
                     {"iface_id": "eth0", "host_dev_name": "tap0", "guest_mac": MAC}, 204)
            e.expect("PUT", "/mmds/config", {"version": "V2", "network_interfaces": ["eth0"]},
                     204)
            e.expect("PUT", "/mmds", META, 204)
            e.expect("PUT", "/actions", {"action_type": "InstanceStart"}, 204)
            e.wait_output("ember-test-guest ready")
            check(e.request("GET", "/vm/config")[1]["mmds-config"] == want, "before")
            v2_session(ApiGuest(e), 42000)
            e.expect("PATCH", "/vm", {"state": "Paused"}, 204)
            e.expect("PUT", "/snapshot/create", snap, 204)
        with Ember(tmp, prefix=in_ns, sock_name="second.sock") as e:
            e.expect("PUT", "/snapshot/load", dict(snap, resume_vm=True), 204)
            got = e.request("GET", "/vm/config")[1]["mmds-config"]
            check(got == want, "restored mmds-config %r, want %r" % (got, want))
            check(e.request("GET", "/mmds")[1] == {}, "the store came back from the snapshot")
            e.expect("PUT", "/mmds", META, 204)
            v2_session(ApiGuest(e), 43000)
            end_with_poweroff(e)


@test
def mmds_unknown_interface_is_refused():
    with tempfile.TemporaryDirectory() as tmp:
        r = run.ember("run", write_def(tmp, run.definition(
            'mmds = { network_interfaces = { "eth9" } }')), timeout=20)
        check(r.returncode != 0 and "mmds.network_interfaces[1]: no interface 'eth9'" in
              r.stderr, "status %d: %r" % (r.returncode, r.stderr))


@test
def mmds_metadata_file_refusals():
    """--metadata with a missing file, bad JSON or a store over the limit: status 2 and
    one line naming the file, before any VM is built."""
    with tempfile.TemporaryDirectory() as tmp:
        vm = write_def(tmp, run.definition('cmdline = "poweroff"'))
        bad = os.path.join(tmp, "bad.json")
        with open(bad, "w") as f:
            f.write("{bad")
        big = os.path.join(tmp, "big.json")
        with open(big, "w") as f:
            json.dump({"a": "x" * 60000}, f)
        for path, why in ((os.path.join(tmp, "none.json"), "No such file"),
                          (bad, "not valid JSON"), (big, "more than the MMDS limit")):
            r = run.ember("--metadata", path, "run", vm, timeout=20)
            check(r.returncode == 2, "%s: status %d" % (path, r.returncode))
            check("--metadata" in r.stderr and path in r.stderr and why in r.stderr,
                  "%s: %r" % (path, r.stderr))
            check("ready" not in r.stdout, "a VM ran despite the refusal: %r" % r.stdout)
