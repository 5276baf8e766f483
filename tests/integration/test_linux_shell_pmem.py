"""virtio-pmem seen from inside Linux (issue 15 item 3): a fresh boot with two pmem devices
set through the API, then a snapshot restored in a new ember process.

- pmem0: a read-only 4 MiB file of random bytes. The guest has /dev/pmem0 of 4 MiB whose
  sha256 is the host file's; a write to it changes neither the file nor what the guest
  reads, and the guest runs on.
- pmem1: a read-write ext4 image made on the host, 3 MiB short of 2 MiB granules so the
  guest sees it rounded up. Mounted with -o dax (the kernel says whether DAX is on); a file
  written and synced in the guest is in the backing file on the host, and the sync is a
  virtio-pmem FLUSH (ember's metrics count it).
- After snapshot and restore: /dev/pmem0's sha256 again, the file still there through the
  same mount, a second file written and synced reaches the host's image too.

And a boot with no initramfs from a read-only root pmem (root_device): / is its ext4.

Needs guest user space (hardware KVM or the KVM sandbox)."""
import hashlib
import json
import os
import re
import subprocess
import tempfile

from run import check, test
from linux_shell import CMDLINE, PROMPT_LINE, Shell
from test_linux import needs_linux_user_space

RO_BYTES = 4 << 20
EXT4_BYTES = (32 << 20) - (3 << 20)  # 29 MiB: the guest sees 30 MiB
MIB2 = 2 << 20
SUM = r"^([0-9a-f]{64})  "


def size_of(s, dev):
    """/dev/<dev>'s size in bytes as the guest's block layer has it."""
    return int(s.value("cat /sys/block/%s/size" % dev, r"^(\d+)$")) * 512


def metrics(s, path):
    """Ember's pmem counters: {base: {...}} from a flushed metrics line."""
    s.expect("PUT", "/actions", {"action_type": "FlushMetrics"}, 204)
    with open(path) as f:
        line = json.loads(f.read().splitlines()[-1])
    return {k: v for k, v in line.get("devices", {}).items() if k.startswith("pmem@")}


def flushes(s, path):
    return sum(v.get("flushes", 0) for v in metrics(s, path).values())


def write_and_sync(s, name, mark, image):
    """Write `mark` in /mnt/<name> in the guest and sync: it is in the host's image."""
    before = open(image, "rb").read().count(mark.encode())
    s.sh("echo %s >/mnt/%s && sync" % (mark, name), timeout=60)
    check(s.sh("cat /mnt/%s" % name).strip() == mark, "/mnt/%s in the guest" % name)
    data = open(image, "rb").read()
    check(data.count(mark.encode()) > before,
          "the mark written in /mnt/%s is not in the backing file %s" % (name, image))


def boot(tmp, d, ro, image, metrics_path):
    e = Shell(tmp, "pmem")
    try:
        e.expect("PUT", "/machine-config", {"vcpu_count": 2, "mem_size_mib": 256}, 204)
        e.expect("PUT", "/boot-source", {
            "kernel_image_path": os.path.join(d, "vmlinux"),
            "initrd_path": os.path.join(d, "initramfs.cpio.gz"), "boot_args": CMDLINE}, 204)
        e.expect("PUT", "/metrics", {"metrics_path": metrics_path}, 204)
        e.expect("PUT", "/pmem/ro", {"id": "ro", "path_on_host": ro, "read_only": True}, 204)
        e.expect("PUT", "/pmem/data", {"id": "data", "path_on_host": image}, 204)
        e.expect("PUT", "/actions", {"action_type": "InstanceStart"}, 204)
        e.wait_output(PROMPT_LINE, timeout=60)
    except BaseException:
        e.close()
        raise
    return e


@test
def linux_inside_pmem_devices_read_write_dax_and_after_a_restore():
    d = needs_linux_user_space()
    with tempfile.TemporaryDirectory() as tmp:
        ro, image = os.path.join(tmp, "ro.img"), os.path.join(tmp, "data.ext4")
        ro_bytes = os.urandom(RO_BYTES)
        with open(ro, "wb") as f:
            f.write(ro_bytes)
        want = hashlib.sha256(ro_bytes).hexdigest()
        subprocess.run(["mkfs.ext4", "-q", "-F", "-b", "4096", "-E",
                        "lazy_itable_init=0,lazy_journal_init=0", image,
                        "%dk" % (EXT4_BYTES >> 10)], check=True, stdout=subprocess.DEVNULL)
        m1, m2 = os.path.join(tmp, "m1.json"), os.path.join(tmp, "m2.json")
        s = boot(tmp, d, ro, image, m1)
        try:
            check(size_of(s, "pmem0") == RO_BYTES, "pmem0 size")
            got = size_of(s, "pmem1")
            check(got == (EXT4_BYTES + MIB2 - 1) // MIB2 * MIB2,
                  "pmem1 is %d bytes, want %d rounded up to 2 MiB" % (got, EXT4_BYTES))
            check(s.value("sha256sum /dev/pmem0", SUM) == want, "pmem0's sha256")
            # A write to the read-only device: KVM's read-only slot turns it into MMIO
            # exits nobody answers, so the file keeps its bytes and the guest runs on.
            out = s.sh("dd if=/dev/zero of=/dev/pmem0 bs=4096 count=1 oflag=direct "
                       "2>&1 | tail -1; echo rc=$?", timeout=60)
            print("  pmem: a write to read-only pmem0 said: %s" % " | ".join(out.split("\n")),
                  flush=True)
            check(open(ro, "rb").read() == ro_bytes, "the read-only backing file changed")
            check(s.value("sha256sum /dev/pmem0", SUM) == want, "pmem0 after a write")
            out = s.sh("mkdir -p /mnt && mount -o dax /dev/pmem1 /mnt; echo rc=$?; "
                       "dmesg | grep -i dax | tail -3; grep /mnt /proc/mounts")
            print("  pmem: mount -o dax said: %s" % " | ".join(out.split("\n")), flush=True)
            check("rc=0" in out and re.search(r"/dev/pmem1 /mnt ext4 \S*dax", out),
                  "mount -o dax: %r" % out)
            before = flushes(s, m1)
            write_and_sync(s, "first", "pmem-first-%s" % os.urandom(8).hex(), image)
            after = flushes(s, m1)
            print("  pmem: FLUSH requests %d before the sync, %d after" % (before, after),
                  flush=True)
            check(after > before, "sync made no virtio-pmem FLUSH (%d, %d)" % (before, after))
            state, mem = os.path.join(tmp, "pmem.state"), os.path.join(tmp, "pmem.mem")
            s.snapshot(state, mem)
        finally:
            s.close()
        t = Shell(tmp, "pmem-restored")
        with t:
            t.expect("PUT", "/metrics", {"metrics_path": m2}, 204)
            t.expect("PUT", "/snapshot/load", {
                "snapshot_path": state, "resume_vm": True,
                "mem_backend": {"backend_type": "File", "backend_path": mem}}, 204)
            got = t.expect("GET", "/vm/config", None, 200)["pmem"]
            check([(p["id"], p["read_only"]) for p in got] == [("ro", True), ("data", False)],
                  "/vm/config after the restore: %r" % got)
            check(t.value("sha256sum /dev/pmem0", SUM) == want, "pmem0's sha256 after restore")
            check(t.sh("cat /mnt/first").strip().startswith("pmem-first-"),
                  "/mnt/first after the restore")
            write_and_sync(t, "second", "pmem-second-%s" % os.urandom(8).hex(), image)
            check(flushes(t, m2) > 0, "no FLUSH after the restore")


@test
def linux_boots_from_a_read_only_root_pmem():
    """Firecracker's test_pmem_add_as_root_ro: no initramfs, the ext4 root on pmem0
    (root_device, read_only): ember adds root=/dev/pmem0 ro, the kernel mounts it as /,
    read-only, and runs its /init to the shell."""
    d = needs_linux_user_space()
    with tempfile.TemporaryDirectory() as tmp:
        root = os.path.join(tmp, "root.ext4")
        subprocess.run(["cp", "--sparse=always", os.path.join(d, "rootfs.ext4"), root],
                       check=True)
        before = open(root, "rb").read()
        e = Shell(tmp, "pmem-root")
        with e:
            e.expect("PUT", "/machine-config", {"vcpu_count": 1, "mem_size_mib": 128}, 204)
            e.expect("PUT", "/boot-source", {"kernel_image_path": os.path.join(d, "vmlinux"),
                                             "boot_args": CMDLINE + " init=/init"}, 204)
            e.expect("PUT", "/pmem/root", {"id": "root", "path_on_host": root,
                                           "root_device": True, "read_only": True}, 204)
            e.expect("PUT", "/actions", {"action_type": "InstanceStart"}, 204)
            e.wait_output(PROMPT_LINE, timeout=60)
            cmdline = e.sh("cat /proc/cmdline")
            mounts = e.sh("grep ' / ' /proc/mounts")
            print("  pmem root: %s" % mounts.strip(), flush=True)
            check("root=/dev/pmem0 ro" in cmdline, "cmdline: %r" % cmdline)
            check(re.search(r"^/dev/(root|pmem0) / ext4 ro[,\s]", mounts, re.M),
                  "/ is not pmem0's ext4, read-only: %r" % mounts)
            check(size_of(e, "pmem0") == (os.path.getsize(root) + MIB2 - 1) // MIB2 * MIB2,
                  "pmem0's size")
        check(open(root, "rb").read() == before, "the read-only root image changed")
