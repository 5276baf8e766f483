"""The `make bench` row for virtio-net offloads (issue 15 item 3): a Linux guest's TCP
throughput through its tap to and from a listener on the host side, inside a network
namespace made here (linux_shell.Netns: nothing routed out), with the feature set before
offloads (EMBER_NET_OFFLOADS=0: MAC and MTU only) and with offloads (checksum, TSO, UFO,
mergeable receive buffers). busybox in the guest: nc from a file of zeros dd wrote in
/tmp, nc -l into wc -c; the host side counts every byte and times each connection.

Run by bench_linux_shell (where Linux user space runs), or by itself:
    python3 tests/sandbox/sandbox.py with-kvm -- python3 tests/bench/bench_linux_net.py \
        --ember build/ember"""
import argparse
import datetime
import os
import re
import socket
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "integration"))
import run as harness  # noqa: E402
import linux_shell  # noqa: E402
from linux_shell import GUEST_IP, HOST_IP, Netns, start_shell  # noqa: E402
from test_linux_shell_net import in_netns, listen_in  # noqa: E402
from test_linux_shell_net_offloads import ETHTOOL_GTSO, ethtool_value  # noqa: E402

MIB = int(os.environ.get("EMBER_BENCH_NET_MIB") or "256")
CHUNK = 1 << 20
FILE_MIB = 64


def up(ns, s, port):
    """MIB MiB from the guest to a listener in the namespace: a FILE_MIB MiB file of zeros
    in the guest's /tmp sent by `nc HOST PORT <file` over consecutive connections (a
    `dd | nc` pipe is what limits it in the KVM sandbox, 3-4 MiB/s either way): MiB/s over
    the connections' summed times."""
    lst = listen_in(ns, port)
    lst.settimeout(harness.secs(60))
    got, rounds = [], MIB // FILE_MIB

    def count():
        n, took = 0, 0.
        for _ in range(rounds):
            c, _ = lst.accept()
            c.settimeout(harness.secs(120))
            t0 = time.monotonic()
            while True:
                b = c.recv(CHUNK)
                if not b:
                    break
                n += len(b)
            took += time.monotonic() - t0
            c.close()
        got.extend((n, took))
    s.sh("dd if=/dev/zero of=/tmp/z bs=%d count=%d 2>/dev/null" % (CHUNK, FILE_MIB),
         timeout=300)
    t = threading.Thread(target=count, daemon=True)
    t.start()
    try:
        out = s.sh("for i in %s; do nc %s %d </tmp/z || break; done; echo nc=$?; "
                   "rm /tmp/z" % (" ".join(map(str, range(rounds))), HOST_IP, port),
                   timeout=600)
        t.join(harness.secs(60))
    finally:
        lst.close()
    harness.check(re.search(r"^nc=0$", out, re.M) and got and got[0] == MIB * CHUNK,
                  "guest -> host: nc said %r, the host counted %r" % (out, got))
    return MIB / got[1]


def down(ns, s, port):
    """MIB MiB from the namespace to the guest's nc -l | wc -c: MiB/s."""
    s.send("nc -l -p %d </dev/null | wc -c; echo rx$((%d+0))done\n" % (port, port))
    end = time.time() + harness.secs(20)
    while True:
        try:
            c = in_netns(ns, lambda: socket.create_connection((GUEST_IP, port),
                                                              harness.secs(5)))
            break
        except harness.Fail:
            if time.time() > end:
                raise
            time.sleep(0.2)
    zeros = bytes(CHUNK)
    t0 = time.monotonic()
    c.settimeout(harness.secs(120))
    for _ in range(MIB):
        c.sendall(zeros)
    c.close()
    s.wait_output("rx%ddone" % port, timeout=600)
    took = time.monotonic() - t0
    with s.lock:
        tail = s.out[-400:].decode(errors="replace")
    harness.check(re.search(r"^%d\r?$" % (MIB * CHUNK), tail, re.M),
                  "host -> guest: the guest's wc -c: %r" % tail)
    return MIB / took


def measure(linux, offloads):
    """(guest features, MiB/s up, MiB/s down) of one fresh boot."""
    label = "on" if offloads else "off"
    saved = os.environ.get("EMBER_NET_OFFLOADS")
    if not offloads:
        os.environ["EMBER_NET_OFFLOADS"] = "0"
    try:
        with tempfile.TemporaryDirectory() as tmp, Netns("bn" + label) as ns:
            with start_shell(tmp, "bench-net-" + label, linux, None, None, ns) as s:
                bits = s.value("cat /sys/class/net/eth0/device/features", r"^([01]{64})$")
                tso = ethtool_value(ns, ns.tap, ETHTOOL_GTSO)
                harness.check((bits[11] == "1") == offloads and tso == offloads,
                              "offloads %s: the guest's features %s, the tap's TSO %d" % (
                                  label, bits, tso))
                u = up(ns, s, 6001)
                d = down(ns, s, 6011)
                print("  linux bench: net offloads %s: up %.1f MiB/s, down %.1f MiB/s" % (
                    label, u, d), file=sys.stderr, flush=True)
                return bits, u, d
    finally:
        if saved is None:
            os.environ.pop("EMBER_NET_OFFLOADS", None)
        else:
            os.environ["EMBER_NET_OFFLOADS"] = saved


def run(ember):
    """Measure and print the table (one boot each way: streams of MIB MiB)."""
    harness.ARGS = argparse.Namespace(ember=ember, sanitizer=False, k=None)
    harness.TIME_SCALE = float(os.environ.get("EMBER_TEST_TIME_SCALE") or "10")
    os.environ["EMBER_TEST_TIME_SCALE"] = "%g" % harness.TIME_SCALE
    linux = linux_shell.needs_linux_user_space()
    off, on = measure(linux, False), measure(linux, True)
    print("\nLinux guest TCP through its tap to a listener in the test's namespace (busybox "
          "nc <64 MiB file, nc -l | wc -c), %d MiB each way, 2 vCPUs, 256 MiB; %s UTC" % (
              MIB, datetime.datetime.utcnow().strftime("%Y-%m-%d %H:%M")))
    print("| virtio-net features | guest -> host | host -> guest |")
    print("|---|---|---|")
    print("| MAC, MTU (EMBER_NET_OFFLOADS=0) | %.1f MiB/s | %.1f MiB/s |" % (off[1], off[2]))
    print("| + CSUM, TSO4/6, UFO both ways, MRG_RXBUF | %.1f MiB/s | %.1f MiB/s |" % (
        on[1], on[2]))
    print("| on / off | %.2fx | %.2fx |" % (on[1] / off[1], on[2] / off[2]))


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--ember", required=True)
    run(os.path.abspath(p.parse_args().ember))
