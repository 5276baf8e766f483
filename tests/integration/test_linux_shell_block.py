"""Drives with io_engine Async (io_uring, issue 15), seen from inside Linux: a fresh boot
with both drives on Async; the guest writes random data to the scratch drive with direct
I/O (1 MiB and 4 KiB requests), reads it back and checksums it, and the sha256 the guest
prints equals the host's of the image; the read-only drive reads as the host's file. Then
the VM is snapshotted and restored in a new ember process: /vm/config still says Async,
the guest reads the same sums, and a write after the restore lands in the image.

Needs guest user space (hardware KVM or the KVM sandbox)."""
import hashlib
import os
import re
import tempfile

from run import check, test
from linux_shell import start_shell
from test_linux import needs_linux_user_space
from test_linux_shell_balloon import snapshot_and_restore

MIB = 1 << 20
SCRATCH_MIB = 32
SHA = re.compile(r"^([0-9a-f]{64})  ", re.M)


def host_sha(path, offset, length):
    with open(path, "rb") as f:
        f.seek(offset)
        return hashlib.sha256(f.read(length)).hexdigest()


def guest_sha(s, cmd):
    out = s.sh(cmd, timeout=120)
    m = SHA.findall(out)
    check(len(m) == 1, "%s: %r" % (cmd, out))
    return m[0]


def engines(s):
    cfg = s.expect("GET", "/vm/config", None, 200)
    return {x["drive_id"]: x["io_engine"] for x in cfg["drives"]}


def write_and_sum(s, name, mib_at, mib, bs):
    """The guest writes `mib` MiB of fresh random bytes at MiB `mib_at` of vda in `bs`
    requests (O_DIRECT), reads them back the same way; returns both of its sums."""
    count = mib * MIB // bs
    seek = mib_at * MIB // bs
    src = "/tmp/%s" % name
    wrote = guest_sha(s, "head -c %d /dev/urandom >%s; dd if=%s of=/dev/vda bs=%d count=%d "
                      "seek=%d oflag=direct conv=fsync 2>/dev/null; sha256sum %s"
                      % (mib * MIB, src, src, bs, count, seek, src))
    read = guest_sha(s, "dd if=/dev/vda bs=%d count=%d skip=%d iflag=direct 2>/dev/null | "
                     "sha256sum" % (bs, count, seek))
    check(wrote == read, "%s: read back %s, wrote %s" % (name, read, wrote))
    return wrote


@test
def linux_inside_async_drive_checksums_before_and_after_restore():
    d = needs_linux_user_space()
    with tempfile.TemporaryDirectory() as tmp:
        scratch, ro = os.path.join(tmp, "scratch.img"), os.path.join(tmp, "ro.img")
        with open(scratch, "wb") as f:
            f.truncate(SCRATCH_MIB * MIB)
        with open(ro, "wb") as f:
            f.write(os.urandom(4 * MIB))
        s = start_shell(tmp, "async", d, scratch, ro, cache={"scratch": "Writeback"},
                        engine={"scratch": "Async", "ro": "Async"})
        try:
            check(engines(s) == {"scratch": "Async", "ro": "Async"}, "GET /vm/config")
            big = write_and_sum(s, "big", 0, 8, MIB)
            small = write_and_sum(s, "small", 16, 2, 4096)
            check(big == host_sha(scratch, 0, 8 * MIB), "1 MiB writes: guest and host differ")
            check(small == host_sha(scratch, 16 * MIB, 2 * MIB),
                  "4 KiB writes: guest and host differ")
            check(guest_sha(s, "sha256sum /dev/vdb") == host_sha(ro, 0, 4 * MIB),
                  "read-only drive")
            t = snapshot_and_restore(tmp, s, scratch, "async-restored")
        finally:
            s.close()
        with t:
            check(engines(t) == {"scratch": "Async", "ro": "Async"},
                  "/vm/config after the restore: %r" % engines(t))
            check(guest_sha(t, "dd if=/dev/vda bs=1M count=8 iflag=direct 2>/dev/null | "
                            "sha256sum") == big, "1 MiB data after the restore")
            check(guest_sha(t, "dd if=/dev/vda bs=4k count=512 skip=4096 iflag=direct "
                            "2>/dev/null | sha256sum") == small, "4 KiB data after the restore")
            again = write_and_sum(t, "again", 24, 4, MIB)
            check(again == host_sha(scratch, 24 * MIB, 4 * MIB),
                  "a write after the restore: guest and host differ")
            check(guest_sha(t, "sha256sum /dev/vdb") == host_sha(ro, 0, 4 * MIB),
                  "read-only drive after the restore")
