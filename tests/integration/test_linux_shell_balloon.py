"""Free page hinting, free page reporting and the drives' cache_type, seen from inside Linux
(issue 15): fresh boots, since these are fixed when a VM is born (the golden snapshot's
balloon has neither feature), each then snapshotted and restored in a new ember process to
show that what was configured is still there.

- hinting: the guest fills and frees 96 MiB; a hinting run started through the API ends
  (the guest's STOP, acknowledged with DONE) and ember's RSS falls by most of it; a file the
  guest kept meanwhile has its bytes; after a restore the status says DONE and a new run
  gives memory back again.
- reporting: the same fill, no API call: the guest reports on its own and RSS falls; again
  after a restore.
- cache_type: a Writeback drive is "write back" in the guest's sysfs, an Unsafe one "write
  through" (no FLUSH offered); after a restore the same, and /vm/config says so.

Needs guest user space (hardware KVM or the KVM sandbox)."""
import os
import re
import tempfile
import time

from run import check, secs, test
from linux_shell import restore, start_shell
from test_linux import needs_linux_user_space
from test_linux_shell import rss_mib

FILL = "dd if=/dev/zero of=/tmp/fill bs=1M count=96 2>/dev/null; rm /tmp/fill"
KEEP = "head -c 16777216 /dev/urandom >/tmp/keep; sha256sum /tmp/keep"
SUM = r"^([0-9a-f]{64})  /tmp/keep$"
HINTING = {"amount_mib": 0, "deflate_on_oom": False, "free_page_hinting": True}
REPORTING = {"amount_mib": 0, "deflate_on_oom": False, "free_page_reporting": True}


def drives(tmp):
    """A scratch image and a read-only one (contents do not matter here)."""
    scratch, ro = os.path.join(tmp, "scratch.img"), os.path.join(tmp, "ro.img")
    with open(scratch, "wb") as f:
        f.truncate(16 << 20)
    with open(ro, "wb") as f:
        f.write(os.urandom(1 << 20))
    return scratch, ro


def fill(s):
    s.sh(FILL, timeout=90)
    return rss_mib(s.p.pid)


def snapshot_and_restore(tmp, s, scratch, name):
    """Snapshot `s` (which is closed), restore it as `name`: the new Shell."""
    state, mem = os.path.join(tmp, name + ".state"), os.path.join(tmp, name + ".mem")
    s.snapshot(state, mem)
    s.close()
    return restore(tmp, name, state=state, mem=mem, scratch=scratch,
                   g={"state": state, "mem": mem, "scratch": scratch})


def hint_run(s):
    """Start a run (acknowledge_on_stop by default) and wait for its end: the guest's STOP
    (guest_cmd 0) and the device's DONE (host_cmd 1)."""
    s.expect("PATCH", "/balloon/hinting/start", None, 204)
    first = s.expect("GET", "/balloon/hinting/status", None, 200)
    check(first["host_cmd"] >= 2 or first["host_cmd"] == 1, "status after start: %r" % first)
    end = time.time() + secs(90)
    st = first
    while not (st["host_cmd"] == 1 and st["guest_cmd"] == 0):
        check(time.time() < end, "the hinting run did not end: %r" % st)
        time.sleep(0.5)
        st = s.expect("GET", "/balloon/hinting/status", None, 200)


def wait_rss_below(s, mib, what, timeout=60):
    end = time.time() + secs(timeout)
    got = rss_mib(s.p.pid)
    while got > mib and time.time() < end:
        time.sleep(1)
        got = rss_mib(s.p.pid)
    check(got <= mib, "%s: ember's RSS %.0f MiB, want at most %.0f" % (what, got, mib))
    return got


@test
def linux_inside_balloon_hinting_gives_freed_memory_back_and_after_a_restore():
    d = needs_linux_user_space()
    with tempfile.TemporaryDirectory() as tmp:
        scratch, ro = drives(tmp)
        s = start_shell(tmp, "hint", d, scratch, ro, balloon=HINTING)
        try:
            check(s.expect("GET", "/balloon/hinting/status", None, 200) ==
                  {"host_cmd": 0, "guest_cmd": None}, "status before any run")
            want = s.value(KEEP, SUM)
            filled = fill(s)
            hint_run(s)
            hinted = rss_mib(s.p.pid)
            print("  hinting: ember's RSS %.0f MiB after a 96 MiB fill, %.0f after the run" %
                  (filled, hinted), flush=True)
            check(hinted <= filled - 48, "the hinting run: RSS %.0f -> %.0f MiB" %
                  (filled, hinted))
            check(s.value("sha256sum /tmp/keep", SUM) == want, "/tmp/keep changed")
            refilled = fill(s)
            check(refilled >= hinted + 48, "filled after the run: RSS %.0f -> %.0f MiB" %
                  (hinted, refilled))
            t = snapshot_and_restore(tmp, s, scratch, "hint-restored")
        finally:
            s.close()
        with t:
            check(t.expect("GET", "/balloon/hinting/status", None, 200)["host_cmd"] == 1,
                  "a restored balloon's hinting is DONE")
            check(t.expect("GET", "/balloon", None, 200)["free_page_hinting"] is True,
                  "GET /balloon after the restore")
            filled = fill(t)
            hint_run(t)
            hinted = rss_mib(t.p.pid)
            print("  hinting after a restore: RSS %.0f MiB filled, %.0f after the run" %
                  (filled, hinted), flush=True)
            check(hinted <= filled - 48, "the restored VM's run: RSS %.0f -> %.0f MiB" %
                  (filled, hinted))
            check(t.value("sha256sum /tmp/keep", SUM) == want, "/tmp/keep changed")


@test
def linux_inside_balloon_reporting_gives_freed_memory_back_and_after_a_restore():
    d = needs_linux_user_space()
    with tempfile.TemporaryDirectory() as tmp:
        scratch, ro = drives(tmp)
        s = start_shell(tmp, "report", d, scratch, ro, balloon=REPORTING)
        try:
            want = s.value(KEEP, SUM)
            filled = fill(s)
            reported = wait_rss_below(s, filled - 48, "reporting after a 96 MiB fill")
            print("  reporting: ember's RSS %.0f MiB after a 96 MiB fill, %.0f reported" %
                  (filled, reported), flush=True)
            t = snapshot_and_restore(tmp, s, scratch, "report-restored")
        finally:
            s.close()
        with t:
            check(t.expect("GET", "/balloon", None, 200)["free_page_reporting"] is True,
                  "GET /balloon after the restore")
            filled = fill(t)
            reported = wait_rss_below(t, filled - 48, "the restored VM's reporting")
            print("  reporting after a restore: RSS %.0f MiB filled, %.0f reported" %
                  (filled, reported), flush=True)
            check(t.value("sha256sum /tmp/keep", SUM) == want, "/tmp/keep changed")


@test
def linux_inside_cache_type_writeback_and_unsafe():
    d = needs_linux_user_space()
    show = "cat /sys/block/vda/queue/write_cache /sys/block/vdb/queue/write_cache"
    want = ["write back", "write through"]
    with tempfile.TemporaryDirectory() as tmp:
        scratch, ro = drives(tmp)
        s = start_shell(tmp, "cache", d, scratch, ro,
                        cache={"scratch": "Writeback", "ro": "Unsafe"})
        try:
            got = re.findall(r"^(write \w+)$", s.sh(show), re.M)
            check(got == want, "vda (Writeback), vdb (Unsafe): %r" % got)
            # A write and its flush to the Writeback drive are answered.
            out = s.sh("dd if=/dev/urandom of=/dev/vda bs=4k count=16 conv=fsync 2>&1; "
                       "echo dd=$?")
            check("dd=0" in out, "a synced write to vda: %r" % out)
            t = snapshot_and_restore(tmp, s, scratch, "cache-restored")
        finally:
            s.close()
        with t:
            got = re.findall(r"^(write \w+)$", t.sh(show), re.M)
            check(got == want, "after the restore: %r" % got)
            cfg = t.expect("GET", "/vm/config", None, 200)
            types = {x["drive_id"]: x["cache_type"] for x in cfg["drives"]}
            check(types == {"scratch": "Writeback", "ro": "Unsafe"},
                  "/vm/config after the restore: %r" % types)
            out = t.sh("dd if=/dev/urandom of=/dev/vda bs=4k count=16 conv=fsync 2>&1; "
                       "echo dd=$?")
            check("dd=0" in out, "a synced write to vda after the restore: %r" % out)
