"""Memory hotplug (virtio-mem, Firecracker's /hotplug/memory) seen from inside Linux
(issue 15 item 3): a fresh boot with 256 MiB of RAM and a 512 MiB hotplug area.

- PATCH requested_size_mib up: the guest plugs it, MemTotal grows by that much and GET
  /hotplug/memory shows it plugged; the guest fills more than its boot RAM in tmpfs.
- PATCH down: the guest unplugs, MemTotal and plugged_size_mib fall, and so does ember's RSS.
- Plugged again, a file written into the filled guest, snapshot, restore in a new ember
  from the memory file, and in another through ember-uffd: MemTotal, plugged_size_mib and
  the file's sha256 are kept; and each unplugs again there, the file intact.

- With track_dirty_pages: a full snapshot, a second file, a diff snapshot much smaller
  than the area, the diff merged onto the full one: a restore has both files.

Needs guest user space (hardware KVM or the KVM sandbox)."""
import os
import re
import tempfile
import time

import test_uffd

from run import check, secs, test
from linux_shell import CMDLINE, copy, restore, start_shell
from test_linux import needs_linux_user_space
from test_linux_shell import rss_mib
from test_linux_shell_balloon import drives
from run import ember

HOTPLUG = {"total_size_mib": 512, "block_size_mib": 2, "slot_size_mib": 128}
# Hot-added memory goes to ZONE_MOVABLE, so that the guest can empty it again to unplug.
BOOT_ARGS = CMDLINE + " memhp_default_state=online_movable"
# A tmpfs of its own: /tmp is sized at boot to half the boot RAM.
MOUNT = "mkdir -p /hp && mount -t tmpfs -o size=400m hp /hp"
KEEP = "head -c 16777216 /dev/urandom >/hp/keep; sha256sum /hp/keep"
SUM = r"^([0-9a-f]{64})  /hp/keep$"


def mem_total_mib(s):
    return int(s.value("grep MemTotal /proc/meminfo", r"^MemTotal:\s+(\d+) kB$")) / 1024


def status(s):
    return s.expect("GET", "/hotplug/memory", None, 200)


def settle(s, requested, base, what, exact=True):
    """PATCH requested_size_mib; wait for the guest to reach it (plugged_size_mib equal,
    MemTotal `base` plus it); returns (MemTotal, status). With exact False (unplug) the
    guest only has to get below where it was."""
    before = status(s)["plugged_size_mib"]
    s.expect("PATCH", "/hotplug/memory", {"requested_size_mib": requested}, 204)
    end = time.time() + secs(90)
    while True:
        st, total = status(s), mem_total_mib(s)
        done = st["plugged_size_mib"] == requested and total == base + requested
        if not exact:
            done = done or (st["plugged_size_mib"] < before and total < base + before and
                            time.time() > end - secs(60))
        if done:
            break
        check(time.time() < end, "%s: requested %d MiB, status %r, MemTotal %.0f MiB "
              "(boot %.0f)" % (what, requested, st, total, base))
        time.sleep(1)
    check(st["requested_size_mib"] == requested, "%s: status %r" % (what, st))
    print("  %s: requested %d MiB: plugged %d MiB, MemTotal %.0f MiB (boot %.0f)" %
          (what, requested, st["plugged_size_mib"], total, base), flush=True)
    return total, st


def restored_keeps(t, total, want, what):
    """A restored guest has 256 MiB plugged, its MemTotal, and /hp/keep's bytes."""
    st = status(t)
    check(st["plugged_size_mib"] == 256 and mem_total_mib(t) == total,
          "after %s: %r, MemTotal %.0f" % (what, st, mem_total_mib(t)))
    check(t.value("sha256sum /hp/keep", SUM, timeout=60) == want,
          "/hp/keep changed across %s" % what)


@test
def linux_inside_memory_hotplug_plugs_unplugs_and_survives_a_restore():
    d = needs_linux_user_space()
    with tempfile.TemporaryDirectory() as tmp:
        scratch, ro = drives(tmp)
        s = start_shell(tmp, "memhp", d, scratch, ro, hotplug=HOTPLUG, cmdline=BOOT_ARGS)
        try:
            base = mem_total_mib(s)
            st = status(s)
            check(st == dict(HOTPLUG, plugged_size_mib=0, requested_size_mib=0),
                  "status at boot: %r" % st)
            check(s.expect("GET", "/vm/config", None, 200)["memory-hotplug"] == HOTPLUG,
                  "/vm/config memory-hotplug")
            # Up: the guest plugs 256 MiB and uses it: 300 MiB in tmpfs, more than the
            # whole boot RAM.
            settle(s, 256, base, "plug")
            s.sh(MOUNT)
            out = s.sh("dd if=/dev/zero of=/hp/fill bs=1M count=300 2>&1; echo dd=$?",
                       timeout=120)
            check("dd=0" in out, "300 MiB into tmpfs with 256 MiB plugged: %r" % out)
            filled = rss_mib(s.p.pid)
            check(filled > 300, "ember's RSS with 300 MiB filled: %.0f MiB" % filled)
            # Down: freed, the guest unplugs; ember's RSS falls with it.
            s.sh("rm /hp/fill")
            total, st = settle(s, 0, base, "unplug", exact=False)
            got = rss_mib(s.p.pid)
            print("  ember's RSS %.0f MiB filled, %.0f MiB after the unplug" % (filled, got),
                  flush=True)
            check(st["plugged_size_mib"] <= 128 and total <= base + 128,
                  "unplugged to at most 128 MiB: %r, MemTotal %.0f" % (st, total))
            check(got <= filled - 100, "RSS %.0f -> %.0f MiB after the unplug" % (filled, got))
            # Plugged again, a file among 200 MiB of fill, then snapshot and restore.
            total, _ = settle(s, 256, base, "plug again")
            s.sh("dd if=/dev/zero of=/hp/fill bs=1M count=200 2>/dev/null", timeout=120)
            want = s.value(KEEP, SUM, timeout=90)
            state, mem = os.path.join(tmp, "memhp.state"), os.path.join(tmp, "memhp.mem")
            s.snapshot(state, mem)
            s.close()
            t = restore(tmp, "memhp-restored", state=state, mem=mem, scratch=scratch,
                        g={"state": state, "mem": mem, "scratch": scratch})
        finally:
            s.close()
        with t:
            st = status(t)
            check(st == dict(HOTPLUG, plugged_size_mib=256, requested_size_mib=256),
                  "status after the restore: %r" % st)
            check(mem_total_mib(t) == total, "MemTotal after the restore: %.0f, was %.0f" %
                  (mem_total_mib(t), total))
            check(t.value("sha256sum /hp/keep", SUM, timeout=60) == want,
                  "/hp/keep changed across the restore")
            t.sh("rm /hp/fill")
            settle(t, 0, base, "unplug after the restore", exact=False)
            check(t.value("sha256sum /hp/keep", SUM, timeout=60) == want,
                  "/hp/keep changed by the unplug")
        # The same snapshot through a page-fault handler: the area's pages come from it.
        with test_uffd.Handler(tmp, mem, "-v") as h, \
                restore(tmp, "memhp-uffd", state=state, uffd=h.sock, scratch=scratch,
                        g={"state": state, "mem": mem, "scratch": scratch}) as u:
            restored_keeps(u, total, want, "a uffd restore")
            u.sh("rm /hp/fill")
            settle(u, 0, base, "unplug after a uffd restore", exact=False)
            check(u.value("sha256sum /hp/keep", SUM, timeout=60) == want,
                  "/hp/keep changed by the unplug (uffd)")
            check(h.p.poll() is None, "ember-uffd ended while its guest ran")


KEEP2 = "head -c 8388608 /dev/urandom >/hp/keep2; sha256sum /hp/keep2"
SUM2 = r"^([0-9a-f]{64})  /hp/keep2$"


@test
def linux_inside_memory_hotplug_diff_snapshot_merged_keeps_plugged_files():
    d = needs_linux_user_space()
    with tempfile.TemporaryDirectory() as tmp:
        scratch, ro = drives(tmp)
        s = start_shell(tmp, "memhp-diff", d, scratch, ro, hotplug=HOTPLUG, cmdline=BOOT_ARGS,
                        dirty=True)
        try:
            base = mem_total_mib(s)
            total, _ = settle(s, 256, base, "plug")
            s.sh(MOUNT)
            s.sh("dd if=/dev/zero of=/hp/fill bs=1M count=200 2>/dev/null", timeout=120)
            want = s.value(KEEP, SUM, timeout=90)
            full_state, full = (os.path.join(tmp, "full." + x) for x in ("state", "mem"))
            s.snapshot(full_state, full)
            s.expect("PATCH", "/vm", {"state": "Resumed"}, 204)
            want2 = s.value(KEEP2, SUM2, timeout=90)
            state, diff = os.path.join(tmp, "diff.state"), os.path.join(tmp, "diff.mem")
            s.snapshot(state, diff, "Diff")
        finally:
            s.close()
        full_kib, diff_kib = os.stat(full).st_blocks // 2, os.stat(diff).st_blocks // 2
        print("  full snapshot %d KiB on disk, the diff after a second file %d KiB" %
              (full_kib, diff_kib), flush=True)
        check(diff_kib < full_kib // 2, "diff %d KiB, full %d KiB" % (diff_kib, full_kib))
        merged = os.path.join(tmp, "merged.mem")
        copy(full, merged)
        r = ember("snapshot", "merge", merged, diff)
        check(r.returncode == 0, "merge: %r" % (r,))
        with restore(tmp, "memhp-merged", state=state, mem=merged, scratch=scratch,
                     g={"state": state, "mem": merged, "scratch": scratch}) as t:
            restored_keeps(t, total, want, "diff + merge")
            check(t.value("sha256sum /hp/keep2", SUM2, timeout=60) == want2,
                  "/hp/keep2 (written after the full snapshot) changed across diff + merge")
