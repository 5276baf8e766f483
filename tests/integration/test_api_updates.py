"""Post-boot updates over the API, as Firecracker has them, on the test guest: PATCH
/drives/{id} swaps a drive's backing file (the guest reads the new file's sectors and its
new capacity; a bad path leaves the old file in use) and changes its rate limiter, and
PATCH /network-interfaces/{id} changes an interface's rx/tx rate limiters (on a tap in a
network namespace the test makes and deletes; skipped where that cannot be done). The
same interface changes from Lua, vm:update_net (drives: lua/device_updates.lua)."""
import json
import os
import subprocess
import tempfile
import time

import run
from run import check, guest_kernel, test, write_def
from test_api import Ember, answer_sum, end_with_poweroff, word_sum
from test_devices_net import tap_namespace

METRICS_PERIOD = "3600"  # metrics lines only when the test flushes them


def start(e, tmp, drives=(), nets=(), io_engine="Sync"):
    """Configure the test guest with `drives` (id, path, read_only; all on `io_engine`) and
    `nets` (id, tap), metrics into tmp/metrics.json, and boot it."""
    e.expect("PUT", "/machine-config", {"vcpu_count": 1, "mem_size_mib": 128}, 204)
    e.expect("PUT", "/boot-source", {"kernel_image_path": guest_kernel(), "boot_args": ""},
             204)
    e.expect("PUT", "/metrics", {"metrics_path": os.path.join(tmp, "metrics.json")}, 204)
    for drive_id, path, ro in drives:
        e.expect("PUT", "/drives/" + drive_id, {"drive_id": drive_id, "path_on_host": path,
                                                "is_root_device": False, "is_read_only": ro,
                                                "io_engine": io_engine}, 204)
    for iface_id, tap in nets:
        e.expect("PUT", "/network-interfaces/" + iface_id,
                 {"iface_id": iface_id, "host_dev_name": tap}, 204)
    e.expect("PUT", "/actions", {"action_type": "InstanceStart"}, 204)
    e.wait_output("ember-test-guest ready")


def device_counters(e, tmp, kind):
    """Flush metrics and return the counters of the first device of `kind`."""
    e.expect("PUT", "/actions", {"action_type": "FlushMetrics"}, 204)
    with open(os.path.join(tmp, "metrics.json")) as f:
        last = json.loads(f.read().splitlines()[-1])
    for key, counters in sorted(last["devices"].items()):
        if key.startswith(kind + "@"):
            return counters
    raise run.Fail("no %s device in the metrics: %r" % (kind, last["devices"]))


def image(path, sectors):
    data = os.urandom(sectors * 512)
    with open(path, "wb") as f:
        f.write(data)
    return data


def drive_config(e, drive_id):
    cfg = e.expect("GET", "/vm/config", None, 200)
    return next(d for d in cfg["drives"] if d["drive_id"] == drive_id)


@test
def api_drive_swapped_after_boot_serves_the_new_file():
    drive_swapped("Sync")


@test
def api_drive_async_swapped_after_boot_serves_the_new_file():
    """The same with io_engine Async (io_uring): echoed by GET /vm/config."""
    drive_swapped("Async")


def drive_swapped(io_engine):
    with tempfile.TemporaryDirectory() as tmp, \
            Ember(tmp, env={"EMBER_METRICS_PERIOD": METRICS_PERIOD}) as e:
        old, new = os.path.join(tmp, "old.img"), os.path.join(tmp, "new.img")
        old_data, new_data = image(old, 2048), image(new, 4096)
        start(e, tmp, drives=[("data", old, False)], io_engine=io_engine)
        check(drive_config(e, "data")["io_engine"] == io_engine, "GET /vm/config io_engine")
        check(e.ask("blk info") == "OK blk capacity=2048 ro=0 serial=data", "before")
        check(answer_sum(e.ask("blk read 10 8")) == word_sum(old_data[10 * 512:18 * 512]),
              "old file read")
        before = device_counters(e, tmp, "block")["interrupts"]

        e.expect("PATCH", "/drives/data", {"drive_id": "data", "path_on_host": new}, 204)
        # One config-change interrupt, and the guest reads the new size and sectors.
        check(device_counters(e, tmp, "block")["interrupts"] == before + 1,
              "no config-change interrupt")
        info = e.ask("blk info")
        check(info == "OK blk capacity=4096 ro=0 serial=data", "after the swap: " + info)
        check(answer_sum(e.ask("blk read 10 8")) == word_sum(new_data[10 * 512:18 * 512]),
              "the guest still reads the old file")
        check(answer_sum(e.ask("blk read 4000 64")) == word_sum(new_data[4000 * 512:4064 * 512]),
              "past the old capacity")
        check(drive_config(e, "data")["path_on_host"] == new, "GET /vm/config path")
        # Writes go to the new file; the old one is left as it was.
        e.ask("blk write 100 8 9", "OK blk written")
        e.ask("blk flush", "OK blk flushed")
        got = answer_sum(e.ask("blk read 100 8"))
        with open(new, "rb") as f:
            f.seek(100 * 512)
            check(word_sum(f.read(8 * 512)) == got, "the write is not in the new file")
        with open(old, "rb") as f:
            check(f.read() == old_data, "the old file changed")

        # Bad paths: 400, and the drive keeps its file.
        e.expect("PATCH", "/drives/data", {"drive_id": "data",
                                           "path_on_host": os.path.join(tmp, "none.img")},
                 400, "Drive config error: Unable to open the block device backing file")
        e.expect("PATCH", "/drives/data", {"drive_id": "data", "path_on_host": tmp}, 400,
                 "Unable to open the block device backing file %s: Is a directory" % tmp)
        fifo = os.path.join(tmp, "fifo")
        os.mkfifo(fifo)
        e.expect("PATCH", "/drives/data", {"drive_id": "data", "path_on_host": fifo}, 400,
                 "is not a regular file or a block device")
        check(e.ask("blk info") == "OK blk capacity=4096 ro=0 serial=data", "after bad paths")
        check(answer_sum(e.ask("blk read 10 8")) == word_sum(new_data[10 * 512:18 * 512]),
              "a bad path changed the file in use")
        check(drive_config(e, "data")["path_on_host"] == new, "a bad path changed the config")

        # Bad bodies.
        e.expect("PATCH", "/drives/data", {"drive_id": "data"}, 400,
                 "Please specify at least one property to patch: path_on_host, rate_limiter.")
        e.expect("PATCH", "/drives/other", {"drive_id": "other", "path_on_host": new}, 400,
                 "Drive config error: drive 'other': no such drive")
        e.expect("PATCH", "/drives/data", {"drive_id": "data", "is_read_only": True}, 400,
                 "unknown field `is_read_only`")
        e.expect("PATCH", "/drives/data", {"drive_id": "x", "path_on_host": new}, 400,
                 "The id from the path does not match the id from the body!")
        # The same file again, or a smaller one, works as well.
        small = os.path.join(tmp, "small.img")
        small_data = image(small, 64)
        e.expect("PATCH", "/drives/data", {"drive_id": "data", "path_on_host": small}, 204)
        check(e.ask("blk info") == "OK blk capacity=64 ro=0 serial=data", "smaller file")
        check(answer_sum(e.ask("blk read 0 64")) == word_sum(small_data), "smaller file read")
        e.ask("blk read 64 1", "ERR blk read status=1")  # past the new end
        end_with_poweroff(e)


def timed_reads(e, n):
    t0 = time.time()
    for i in range(n):
        e.ask("blk read %d 1" % i)
    return time.time() - t0


@test
def api_drive_rate_limiter_updated_after_boot():
    with tempfile.TemporaryDirectory() as tmp, \
            Ember(tmp, env={"EMBER_METRICS_PERIOD": METRICS_PERIOD}) as e:
        disk = os.path.join(tmp, "disk.img")
        image(disk, 256)
        start(e, tmp, drives=[("data", disk, True)])
        free = timed_reads(e, 4)
        check(device_counters(e, tmp, "block")["throttled"] == 0, "throttled without a limit")

        # One request per 400 ms: four reads take at least 3 x 400 ms.
        limit = {"ops": {"size": 1, "refill_time": 400}}
        e.expect("PATCH", "/drives/data", {"drive_id": "data", "rate_limiter": limit}, 204)
        check(drive_config(e, "data")["rate_limiter"] ==
              {"bandwidth": None, "ops": {"size": 1, "one_time_burst": None, "refill_time": 400}},
              "GET /vm/config: %r" % drive_config(e, "data"))
        check(drive_config(e, "data")["path_on_host"] == disk, "a limiter changed the path")
        limited = timed_reads(e, 4)
        check(limited >= 1.1, "4 reads took %.2f s under 1 op / 400 ms" % limited)
        check(device_counters(e, tmp, "block")["throttled"] >= 3, "throttled not counted")

        # A bandwidth bucket alone: the ops bucket stays.
        e.expect("PATCH", "/drives/data", {"drive_id": "data", "rate_limiter": {
            "bandwidth": {"size": 1 << 20, "one_time_burst": 4096, "refill_time": 1000}}}, 204)
        rl = drive_config(e, "data")["rate_limiter"]
        check(rl["ops"]["size"] == 1 and rl["bandwidth"] == {
            "size": 1 << 20, "one_time_burst": 4096, "refill_time": 1000}, "merged: %r" % rl)

        # Size 0 removes a bucket; with both gone there is no limit.
        e.expect("PATCH", "/drives/data", {"drive_id": "data", "rate_limiter": {
            "ops": {"size": 0, "refill_time": 0}, "bandwidth": {"size": 0, "refill_time": 0}}},
            204)
        check(drive_config(e, "data")["rate_limiter"] is None, "limit not removed")
        again = timed_reads(e, 4)
        check(again < limited and again < free + 1.0,
              "reads still slow after the limit went: %.2f s (free %.2f s)" % (again, free))

        e.expect("PATCH", "/drives/data", {"drive_id": "data", "rate_limiter": {
            "bandwidth": {"size": 100}}}, 400, "missing field `refill_time` at line 1 column ")
        e.expect("PATCH", "/drives/data", {"drive_id": "data", "rate_limiter": {
            "ops": {"size": 10 ** 18, "refill_time": 1}}}, 400,
            "Drive config error: rate_limiter: ops: size, one_time_burst or refill_time_ms is "
            "too large")
        e.expect("PATCH", "/drives/data", {"drive_id": "data", "rate_limiter": {
            "ops": {"size": 1, "refill_time": 1}, "iops": {}}}, 400, "unknown field `iops`")
        check(drive_config(e, "data")["rate_limiter"] is None, "a refused body changed the limit")
        end_with_poweroff(e)


@test
def api_net_rate_limiters_updated_after_boot():
    with tap_namespace("api_net_rate_limiters_updated_after_boot") as ns:
        if ns is None:
            return
        with tempfile.TemporaryDirectory() as tmp, \
                Ember(tmp, env={"EMBER_METRICS_PERIOD": METRICS_PERIOD},
                      prefix=("ip", "netns", "exec", ns)) as e:
            start(e, tmp, nets=[("eth0", "tap0")])
            e.ask("net send 100 1")
            e.ask("net send 100 2")
            check(device_counters(e, tmp, "net")["tx_throttled"] == 0, "throttled, no limit")

            # tx: one frame per minute. The first goes (full bucket), the next waits.
            e.expect("PATCH", "/network-interfaces/eth0", {"iface_id": "eth0",
                     "tx_rate_limiter": {"ops": {"size": 1, "refill_time": 60000}}}, 204)
            cfg = e.expect("GET", "/vm/config", None, 200)["network-interfaces"][0]
            check(cfg["tx_rate_limiter"] == {"bandwidth": None, "ops": {
                "size": 1, "one_time_burst": None, "refill_time": 60000}} and
                cfg["rx_rate_limiter"] is None, "GET /vm/config: %r" % cfg)
            e.ask("net send 100 3")
            sent = device_counters(e, tmp, "net")["tx_packets"]
            e.send("net send 100 4\n")  # held back: the guest waits for it
            time.sleep(0.5)
            counters = device_counters(e, tmp, "net")
            check(counters["tx_throttled"] >= 1 and counters["tx_packets"] == sent,
                  "not held back: %r" % counters)
            # Removing the bucket lets the held frame go at once.
            e.expect("PATCH", "/network-interfaces/eth0", {"iface_id": "eth0",
                     "tx_rate_limiter": {"ops": {"size": 0, "refill_time": 0}}}, 204)
            e.wait_output("OK net send len=114", timeout=10)
            check(device_counters(e, tmp, "net")["tx_packets"] == sent + 1, "frame not sent")
            cfg = e.expect("GET", "/vm/config", None, 200)["network-interfaces"][0]
            check(cfg["tx_rate_limiter"] is None, "GET /vm/config after removal: %r" % cfg)

            # rx only: tx stays as it is.
            e.expect("PATCH", "/network-interfaces/eth0", {"iface_id": "eth0",
                     "rx_rate_limiter": {"bandwidth": {"size": 10000, "refill_time": 100}}},
                     204)
            cfg = e.expect("GET", "/vm/config", None, 200)["network-interfaces"][0]
            check(cfg["rx_rate_limiter"]["bandwidth"]["size"] == 10000 and
                  cfg["tx_rate_limiter"] is None, "rx update: %r" % cfg)
            e.expect("PATCH", "/network-interfaces/eth1", {"iface_id": "eth1"}, 400,
                     "Network interface error: net 'eth1': no such network interface")
            e.expect("PATCH", "/network-interfaces/eth0", {"iface_id": "eth0",
                     "tx_rate_limiter": {"ops": {"size": 10 ** 18, "refill_time": 1}}}, 400,
                     "Network interface error: tx_rate_limiter: ops: size, one_time_burst or "
                     "refill_time_ms is too large")
            e.expect("PATCH", "/network-interfaces/eth0", {"iface_id": "eth0",
                     "guest_mac": "06:00:ac:10:00:09"}, 400, "unknown field `guest_mac`")
            end_with_poweroff(e)


LUA_NET_UPDATES = r"""
local vm = ember.vm { kernel = ember.guest.test_kernel, memory_mib = 128, console = "none",
  net = { { id = "eth0", tap = "tap0" } } }
assert(vm:start())
assert(vm:wait_for("ember%-test%-guest ready", 10), "no ready line")
local function send(seed)
  assert(vm:send("net send 100 " .. seed .. "\n"))
  assert(vm:wait_for("OK net send len=114", 10), "frame " .. seed .. " not sent")
end
local function net_stats()
  for _, d in ipairs(assert(vm:devices())) do
    if d.kind == "net" and d.stats then return d.stats end
  end
  error("no net device stats")
end
send(1)
-- tx: one frame a minute. The first goes (full bucket), the next is held back.
assert(vm:update_net { id = "eth0", tx_rate_limit = { ops = { size = 1, refill_time = 60000 } } })
send(2)
assert(vm:send("net send 100 3\n"))
assert(not vm:wait_for("OK net send", 0.5), "frame 3 was not held back")
assert(net_stats().tx_throttled >= 1, "tx_throttled not counted")
-- Removing the bucket lets the held frame go at once.
assert(vm:update_net { id = "eth0", tx_rate_limit = { ops = { size = 0 } } })
assert(vm:wait_for("OK net send len=114", 10), "held frame not sent")
-- rx alone: tx stays unlimited.
assert(vm:update_net { id = "eth0",
  rx_rate_limit = { bandwidth = { size = 10000, refill_time = 100 } } })
send(4)
local ok, err = vm:update_net { id = "eth1", rx_rate_limit = {} }
assert(ok == nil and err:find("net 'eth1': no such network interface", 1, true), err)
ok, err = vm:update_net { id = "eth0",
  tx_rate_limit = { ops = { size = 1000000000000000000, refill_time = 1 } } }
assert(ok == nil and err:find("too large", 1, true), err)
vm:send("poweroff\n")
assert(vm:wait(10) == "poweroff", "no poweroff")
print("net updates ok")
"""


@test
def lua_net_rate_limits_updated_after_boot():
    with tap_namespace("lua_net_rate_limits_updated_after_boot") as ns:
        if ns is None:
            return
        with tempfile.TemporaryDirectory() as tmp:
            script = write_def(tmp, LUA_NET_UPDATES, "net.lua")
            r = subprocess.run(["ip", "netns", "exec", ns, run.ARGS.ember, "run", script],
                               capture_output=True, text=True, timeout=60)
            check(r.returncode == 0 and "net updates ok" in r.stdout,
                  "status %d\nstdout: %s\nstderr: %s" % (r.returncode, r.stdout[-2000:],
                                                         r.stderr[-2000:]))
