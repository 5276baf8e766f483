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


def gives_back(s, what, want, release):
    """The guest fills and frees 96 MiB; `release(s)` has the balloon give it back: ember's
    RSS must fall by at least 48 MiB, and /tmp/keep must still hold the bytes `want`."""
    filled = fill(s)
    release(s)
    end = time.time() + secs(60)
    got = rss_mib(s.p.pid)
    while got > filled - 48 and time.time() < end:
        time.sleep(1)
        got = rss_mib(s.p.pid)
    print("  %s: ember's RSS %.0f MiB after a 96 MiB fill, %.0f MiB once given back" %
          (what, filled, got), flush=True)
    check(got <= filled - 48, "%s: RSS %.0f -> %.0f MiB" % (what, filled, got))
    check(s.value("sha256sum /tmp/keep", SUM) == want, "%s: /tmp/keep changed" % what)
    return got


def fresh_then_restored(name, balloon, release):
    """Boot with `balloon`, keep a file, give memory back; snapshot, restore, check the
    balloon's configuration survived (GET /balloon), give memory back again."""
    d = needs_linux_user_space()
    with tempfile.TemporaryDirectory() as tmp:
        scratch, ro = drives(tmp)
        s = start_shell(tmp, name, d, scratch, ro, balloon=balloon)
        try:
            if balloon.get("free_page_hinting"):
                check(s.expect("GET", "/balloon/hinting/status", None, 200) ==
                      {"host_cmd": 0, "guest_cmd": None}, "status before any run")
            want = s.value(KEEP, SUM)
            given = gives_back(s, name, want, release)
            refilled = fill(s)
            check(refilled >= given + 48, "%s: filled again, RSS %.0f -> %.0f MiB" %
                  (name, given, refilled))
            t = snapshot_and_restore(tmp, s, scratch, name + "-restored")
        finally:
            s.close()
        with t:
            got = t.expect("GET", "/balloon", None, 200)
            check(all(got[k] == v for k, v in balloon.items()),
                  "GET /balloon after the restore: %r" % got)
            if balloon.get("free_page_hinting"):
                check(t.expect("GET", "/balloon/hinting/status", None, 200)["host_cmd"] == 1,
                      "a restored balloon's hinting is DONE")
            gives_back(t, name + " after a restore", want, release)


@test
def linux_inside_balloon_hinting_gives_freed_memory_back_and_after_a_restore():
    fresh_then_restored("hinting", HINTING, hint_run)


@test
def linux_inside_balloon_reporting_gives_freed_memory_back_and_after_a_restore():
    # The guest reports on its own, about 2 s after enough memory was freed.
    fresh_then_restored("reporting", REPORTING, lambda s: None)


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
