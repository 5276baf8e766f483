"""virtio-net offloads in Linux (issue 15 item 3), on the net golden (test_linux_shell_net):
Linux's virtio_net driver accepts checksum, TSO and UFO offloads both ways and mergeable
receive buffers (the features file of the virtio device in sysfs: busybox has no
ethtool), the namespace's tap is told the offloads (ETHTOOL_GTSO and ETHTOOL_GTXCSUM on
it, asked from inside the namespace), set again on the restored VM's new tap; TCP
streams both ways keep their sha256; MMDS V2 still answers (the guest's frames to it
carry partial checksums now).

Needs guest user space (hardware KVM or the KVM sandbox) and root for the namespaces."""
import array
import fcntl
import socket
import struct
import tempfile

from run import check, test
from linux_shell import Netns, golden, restore
from test_linux_shell_net import META, http_token, in_netns, stream_to_guest, stream_to_host, wget

# virtio 1.2 5.1.3 bits, as the guest's driver shows them (one character per bit).
OFFLOADS = {0: "CSUM", 1: "GUEST_CSUM", 7: "GUEST_TSO4", 8: "GUEST_TSO6", 10: "GUEST_UFO",
            11: "HOST_TSO4", 12: "HOST_TSO6", 14: "HOST_UFO", 15: "MRG_RXBUF"}
SIOCETHTOOL, ETHTOOL_GTXCSUM, ETHTOOL_GTSO = 0x8946, 0x16, 0x1e
STREAM = 8 << 20


def ethtool_value(ns, dev, cmd):
    """An ETHTOOL_G* value (struct ethtool_value) of `dev` inside namespace `ns`."""
    def ask():
        buf = array.array("I", [cmd, 0])
        addr, _ = buf.buffer_info()
        ifr = struct.pack("16sP", dev.encode(), addr)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            fcntl.ioctl(s.fileno(), SIOCETHTOOL, ifr)
        return buf[1]
    return in_netns(ns, ask)


@test
def linux_inside_net_offloads_are_negotiated_and_tcp_and_mmds_work():
    g = golden("net")
    with tempfile.TemporaryDirectory() as tmp, Netns("offl") as ns:
        # A new tap has none (tun's default): what is seen below is ember's doing.
        check(ethtool_value(ns, ns.tap, ETHTOOL_GTSO) == 0, "a new tap with TSO on")
        with restore(tmp, "offl", g=g, ns=ns) as s:
            offloads_work(ns, s)


def offloads_work(ns, s):
    """The checks on a restored net golden in namespace `ns`."""
    bits = s.value("cat /sys/class/net/eth0/device/features", r"^([01]{64})$")
    print("  the guest's virtio-net features: %s" % bits, flush=True)
    missing = [name for bit, name in OFFLOADS.items() if bits[bit] != "1"]
    check(not missing, "the guest's driver did not accept %s: %s" % (missing, bits))
    tso, csum = (ethtool_value(ns, ns.tap, c) for c in (ETHTOOL_GTSO, ETHTOOL_GTXCSUM))
    print("  the tap %s: tcp-segmentation-offload %d, tx-checksumming %d" % (
        ns.tap, tso, csum), flush=True)
    check(tso == 1 and csum == 1, "the tap's offloads: TSO %d, checksum %d" % (tso, csum))
    up = stream_to_host(ns, s, STREAM, 5041)
    down = stream_to_guest(ns, s, STREAM, 5051)
    print("  8 MiB guest -> host in %.2f s, host -> guest in %.2f s" % (up, down),
          flush=True)
    s.expect("PUT", "/mmds", META, 204)
    token = http_token(s)
    out, status = wget(s, "/latest/meta-data/hostname", "X-metadata-token: " + token)
    check(status == 0 and out == "ember-guest", "MMDS GET with the token: %d %r" % (
        status, out))
