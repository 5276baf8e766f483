"""Linux end to end, seen from inside the guest's shell (issue 12): one boot per run to
a golden snapshot at the prompt (linux_shell.py), then every test restores it in a new
ember process and asks the shell: the counter it left running carries on, five clones
running at once differ (each on its own vsock socket), a userfaultfd restore, every device
there, the drives' bytes against the host's files, a drive swapped by PATCH, the balloon,
a diff merged onto the golden, a chain of snapshots, poweroff, reboot and Ctrl-Alt-Del.

Network, MMDS and vsock streams are in test_linux_shell_net.py (vsock through the
initramfs's own `vsock` tool, since busybox has no AF_VSOCK).

Needs guest user space: hardware KVM or the KVM sandbox (skipped on an emulating host)."""
import hashlib
import os
import re
import subprocess
import tempfile
import time

import test_uffd
from run import check, ember, secs, test
from linux_shell import CTRL_ALT_DEL, copy, echo_listener, golden, restore

SHA = r"^([0-9a-f]{64})  %s$"
CLONES = 5


@test
def linux_inside_restore_answers_and_the_counter_carries_on():
    g = golden()
    with tempfile.TemporaryDirectory() as tmp, restore(tmp, "one") as s:
        check(s.value("echo $((6*7))", r"^(\d+)$") == "42", "the shell's arithmetic")
        s.carries_on_from(g["count"])


@test
def linux_inside_five_clones_at_once_draw_different_random_bytes():
    """Five restores of the golden answer at once: each its own files, a new VM generation
    id (the kernel's reseed), its own /dev/urandom bytes, and a vsock connection from the
    guest to the host reaching the Unix socket of its own vsock_override."""
    golden()
    with tempfile.TemporaryDirectory() as tmp:
        clones, got, listeners = [], [], []
        try:
            t0 = time.time()
            for i in range(CLONES):
                clones.append(restore(tmp, "clone%d" % i))
            restored = time.time() - t0
            for i, c in enumerate(clones):
                c.sh("echo clone%d >/tmp/who" % i)
            answered = time.time() - t0
            # Guest -> host (CID 2) lands at <uds_path>_<port> of each clone's own override.
            for i in range(CLONES):
                got.append(bytearray())
                listeners.append(echo_listener(os.path.join(tmp, "clone%d.vsock_7000" % i),
                                               got[i]))
            draws = []
            for i, c in enumerate(clones):
                # One round trip each: on a loaded host every typed line costs seconds.
                out = c.sh("cat /tmp/who; head -c 32 /dev/urandom | od -An -tx1 | "
                           "tr -d ' \\n'; echo; "
                           "dmesg | grep -c 'crng reseeded due to virtual machine fork'; "
                           "echo from-clone%d | vsock connect 2 7000; echo vsock=$?" % i)
                m = re.search(r"^(clone\d)\n([0-9a-f]{64})\n(\d+)\n(.*)\nvsock=(\d+)$", out,
                              re.M)
                check(m, "clone %d printed %r" % (i, out))
                check(m.group(1) == "clone%d" % i, "clone %d sees another clone's file" % i)
                draws.append(m.group(2))
                # The new VM generation id (ACPI vmgenid) made the kernel reseed.
                check(m.group(3) == "1", "clone %d: the kernel logged %s vmgenid reseeds, "
                      "want 1" % (i, m.group(3)))
                listeners[i].join(secs(30))
                check(bytes(got[i]) == b"from-clone%d\n" % i and
                      m.group(4, 5) == ("from-clone%d" % i, "0"),
                      "clone %d over vsock: the host got %r, the guest printed %r" %
                      (i, bytes(got[i]), out))
            check(len(set(draws)) == CLONES,
                  "clones drew equal bytes from /dev/urandom: %r" % draws)
            print("  %d clones: restored in %.1f s, all answering after %.1f s, checked "
                  "after %.1f s" % (CLONES, restored, answered, time.time() - t0), flush=True)
        finally:
            for c in clones:
                c.close()


@test
def linux_inside_restore_through_ember_uffd_answers():
    g = golden()
    with tempfile.TemporaryDirectory() as tmp, test_uffd.Handler(tmp, g["mem"], "-v") as h, \
            restore(tmp, "uffd", uffd=h.sock) as s:
        check(s.value("echo $((6*7))", r"^(\d+)$") == "42", "the shell's arithmetic")
        s.carries_on_from(g["count"])
        check(h.p.poll() is None, "ember-uffd ended while its guest ran")
        check(s.power("poweroff") == 0, "poweroff: ember's status is not 0")
        status = h.finish()
        m = re.search(r"served \d+ faults: (\d+) pages copied", h.out)
        check(status == 0 and m and int(m.group(1)) > 0,
              "ember-uffd: status %d, %r %r" % (status, h.out, h.err))


@test
def linux_inside_every_device_is_there_and_the_hwrng_gives_bytes():
    g = golden()
    with tempfile.TemporaryDirectory() as tmp, restore(tmp, "devices") as s:
        ids = s.sh("cat /sys/bus/virtio/devices/*/device").split()
        # blk, blk, entropy, balloon, vsock
        check(sorted(ids) == ["0x0002", "0x0002", "0x0004", "0x0005", "0x0013"],
              "virtio devices in the guest: %r" % ids)
        drives = s.sh("for d in vda vdb; do echo $d $(cat /sys/block/$d/serial) "
                      "$(cat /sys/block/$d/ro) $(cat /sys/block/$d/size); done")
        check(re.findall(r"^(vd[ab] .*)$", drives, re.M) ==
              ["vda scratch 0 %d" % (16 << 11), "vdb ro 1 %d" % (len(g["ro_bytes"]) >> 9)],
              "drives (name, serial, ro, sectors): %r" % drives)
        check(s.value("ls /dev/vsock", r"^(/dev/vsock)$"), "no /dev/vsock")
        check(s.value("cat /sys/class/misc/hw_random/rng_current", r"^(\S+)$")
              .startswith("virtio_rng"), "the hwrng is not virtio's")
        check(s.value("head -c 64 /dev/hwrng | wc -c", r"^\s*(\d+)$") == "64",
              "/dev/hwrng gave fewer than 64 bytes")


@test
def linux_inside_drives_hold_what_the_host_sees():
    """The guest writes random data to a file on the scratch ext4 drive and powers off;
    the host reads the file out of the image (debugfs) with the same sha256. The
    read-only drive reads as the host's file and refuses a write."""
    g = golden()
    with tempfile.TemporaryDirectory() as tmp:
        with restore(tmp, "blk") as s:
            ro_head = hashlib.sha256(g["ro_bytes"][:65536]).hexdigest()
            check(s.value("head -c 65536 /dev/vdb | sha256sum", r"^([0-9a-f]{64})  -$") ==
                  ro_head, "the read-only drive reads other bytes than the host's file")
            refused = s.sh("echo junk | dd of=/dev/vdb 2>&1; echo dd=$?; sync")
            check(re.search(r"^dd=[1-9]", refused, re.M) and re.search(
                r"dd: (can't open|error writing) '/dev/vdb': (Operation not permitted|"
                r"Read-only file system|Permission denied)", refused),
                "a write to the read-only drive: %r" % refused)
            out = s.sh("mount -t ext4 /dev/vda /mnt && head -c 300000 /dev/urandom >/mnt/f && "
                       "sha256sum /mnt/f && umount /mnt && sync", timeout=60)
            m = re.search(SHA % "/mnt/f", out, re.M)
            check(m, "the guest's write and sum: %r" % out)
            status = s.power("poweroff")
            check(status == 0, "poweroff: ember's status %d, want 0" % status)
        r = subprocess.run(["debugfs", "-R", "cat /f", s.scratch], capture_output=True,
                           timeout=secs(30))
        check(hashlib.sha256(r.stdout).hexdigest() == m.group(1) and len(r.stdout) == 300000,
              "the host reads %d other bytes from the image (debugfs: %r)" %
              (len(r.stdout), r.stderr[-300:]))
    with open(g["ro"], "rb") as f:
        check(f.read() == g["ro_bytes"], "the read-only drive's file changed")


@test
def linux_inside_a_patched_drive_shows_its_new_size_and_bytes():
    """PATCH /drives swaps the read-only drive's file for one twice its size while the
    guest runs: the config-change interrupt gives the guest the new size, and with its
    caches dropped it reads the new file's bytes."""
    g = golden()
    with tempfile.TemporaryDirectory() as tmp, restore(tmp, "patch") as s:
        sectors = "cat /sys/block/vdb/size"
        check(s.value(sectors, r"^(\d+)$") == str(len(g["ro_bytes"]) >> 9),
              "vdb's size before the swap")
        bigger = os.urandom(2 * len(g["ro_bytes"]))
        path = os.path.join(tmp, "bigger.img")
        with open(path, "wb") as f:
            f.write(bigger)
        s.expect("PATCH", "/drives/ro", {"drive_id": "ro", "path_on_host": path}, 204)
        end = time.time() + secs(10)
        size = s.value(sectors, r"^(\d+)$")
        while size != str(len(bigger) >> 9) and time.time() < end:
            time.sleep(0.2)
            size = s.value(sectors, r"^(\d+)$")
        check(size == str(len(bigger) >> 9), "vdb has %s sectors after the swap, want %d" %
              (size, len(bigger) >> 9))
        got = s.value("echo 3 >/proc/sys/vm/drop_caches; sha256sum </dev/vdb",
                      r"^([0-9a-f]{64})  -$", timeout=60)
        check(got == hashlib.sha256(bigger).hexdigest(),
              "the guest reads other bytes than the new file's from vdb")


@test
def linux_inside_balloon_takes_memory_from_the_guest_and_gives_it_back():
    golden()
    with tempfile.TemporaryDirectory() as tmp, restore(tmp, "balloon") as s:
        def total_kib():
            return int(s.value("grep MemTotal /proc/meminfo", r"^MemTotal:\s+(\d+) kB$"))

        def settle(want, what):
            end = time.time() + secs(20)
            got = total_kib()
            while got != want and time.time() < end:
                time.sleep(0.5)
                got = total_kib()
            check(got == want, "%s: MemTotal %d kB, want %d kB" % (what, got, want))

        full = total_kib()
        s.expect("PATCH", "/balloon", {"amount_mib": 32}, 204)
        settle(full - 32 * 1024, "inflated by 32 MiB")
        b = s.expect("GET", "/balloon", None, 200)
        check(b["actual_mib"] == 32, "GET /balloon: %r" % b)
        st = s.expect("GET", "/balloon/statistics", None, 200)
        end = time.time() + secs(10)
        while st.get("total_memory") != (full - 32 * 1024) * 1024 and time.time() < end:
            time.sleep(0.5)
            st = s.expect("GET", "/balloon/statistics", None, 200)
        check(st.get("total_memory") == (full - 32 * 1024) * 1024,
              "the guest's statistics: total_memory %r, want %d" %
              (st.get("total_memory"), (full - 32 * 1024) * 1024))
        s.expect("PATCH", "/balloon", {"amount_mib": 0}, 204)
        settle(full, "deflated")


def rss_mib(pid):
    with open("/proc/%d/status" % pid) as f:
        return int(re.search(r"^VmRSS:\s+(\d+) kB$", f.read(), re.M).group(1)) / 1024


@test
def linux_inside_balloon_gives_the_host_its_memory_back_and_takes_it_again():
    """The guest fills and frees 96 MiB (tmpfs): ember's resident memory grows by it.
    Inflating the balloon to all but 24 MiB of the guest's free memory takes at least 72
    MiB of those freed pages: ember's RSS falls by them. Deflated and filled again, the
    guest has them back: RSS rises again."""
    golden()
    with tempfile.TemporaryDirectory() as tmp, restore(tmp, "rss") as s:
        pid = s.p.pid

        def fill():
            s.sh("dd if=/dev/zero of=/tmp/fill bs=1M count=96 2>/dev/null; rm /tmp/fill",
                 timeout=60)
            return rss_mib(pid)

        def inflate(mib):
            s.expect("PATCH", "/balloon", {"amount_mib": mib}, 204)
            end = time.time() + secs(30)
            while s.expect("GET", "/balloon", None, 200)["actual_mib"] != mib:
                check(time.time() < end, "the balloon did not reach %d MiB" % mib)
                time.sleep(0.5)
            return rss_mib(pid)

        before = rss_mib(pid)
        filled = fill()
        check(filled >= before + 64, "RSS %.0f MiB before, %.0f MiB after a 96 MiB fill" %
              (before, filled))
        free = int(s.value("grep MemFree /proc/meminfo", r"^MemFree:\s+(\d+) kB$")) // 1024
        inflated = inflate(free - 24)
        deflated = inflate(0)
        refilled = fill()
        print("  ember's RSS: %.0f MiB restored, %.0f filled, %.0f with %d MiB ballooned, "
              "%.0f deflated, %.0f filled again" % (before, filled, inflated, free - 24,
                                                   deflated, refilled), flush=True)
        check(inflated <= filled - 48, "inflating %d MiB: RSS %.0f -> %.0f MiB" %
              (free - 24, filled, inflated))
        check(refilled >= inflated + 64, "deflated and filled: RSS %.0f -> %.0f MiB" %
              (inflated, refilled))


@test
def linux_inside_a_file_survives_a_diff_merged_onto_the_golden():
    g = golden()
    with tempfile.TemporaryDirectory() as tmp:
        state, diff = os.path.join(tmp, "diff.state"), os.path.join(tmp, "diff.mem")
        with restore(tmp, "before", diff=True) as s:
            want = s.value("head -c 200000 /dev/urandom >/tmp/f; sha256sum /tmp/f",
                           SHA % "/tmp/f")
            count = s.count()
            s.snapshot(state, diff, "Diff")
        check(os.stat(diff).st_blocks < os.stat(g["mem"]).st_blocks // 2,
              "the diff holds %d KiB, the golden full snapshot %d KiB" %
              (os.stat(diff).st_blocks // 2, os.stat(g["mem"]).st_blocks // 2))
        merged = os.path.join(tmp, "merged.mem")
        copy(g["mem"], merged)
        r = ember("snapshot", "merge", merged, diff)
        check(r.returncode == 0, "merge: %r" % (r,))
        with restore(tmp, "after", state=state, mem=merged, scratch=s.scratch) as t:
            got = t.value("sha256sum /tmp/f", SHA % "/tmp/f")
            check(got == want, "/tmp/f's sha256 was %s, is %s after the restore" % (want, got))
            t.carries_on_from(count)


@test
def linux_inside_a_chain_of_five_snapshots_keeps_counting():
    g = golden()
    with tempfile.TemporaryDirectory() as tmp:
        state, mem, scratch, count = g["state"], g["mem"], None, g["count"]
        for i in range(6):
            with restore(tmp, "link%d" % i, state=state, mem=mem, scratch=scratch) as s:
                count = s.carries_on_from(count)
                if i == 5:
                    break
                if i:  # the previous link's files: no longer needed
                    os.unlink(state)
                    os.unlink(mem)
                state, mem = (os.path.join(tmp, "link%d.%s" % (i, x)) for x in ("state", "mem"))
                s.snapshot(state, mem)
                scratch = s.scratch


@test
def linux_inside_poweroff_ends_ember_with_0_reboot_and_ctrl_alt_del_with_3():
    """Ctrl-Alt-Del through the API: ember's i8042 raises the keys, the kernel's keyboard
    handler signals init (its /init asked for that, not the kernel's own restart), init
    says so and reboots: the same end as `reboot`."""
    golden()
    with tempfile.TemporaryDirectory() as tmp:
        for command, want in (("poweroff", 0), ("reboot", 3), (CTRL_ALT_DEL, 3)):
            with restore(tmp, command) as s:
                check(s.value("cat /proc/sys/kernel/ctrl-alt-del", r"^(\d+)$") == "0",
                      "the guest's Ctrl-Alt-Del is the kernel's restart, not a signal to init")
                status = s.power(command)
                check(status == want, "%s: ember's status %d, want %d; console: %r" %
                      (command, status, want, s.out[-400:]))
            if command == CTRL_ALT_DEL:
                check(b"ember-guest: Ctrl-Alt-Del, rebooting" in s.out,
                      "init did not see Ctrl-Alt-Del; console: %r" % s.out[-400:])
