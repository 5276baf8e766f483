"""The Firecracker-compatible API on a Unix socket: the getting-started flow on the test
guest (also with drives, vsock, entropy and a balloon), every endpoint's answers, pre-boot
and post-boot rules, snapshots over the API, logger and metrics, the JSON config file,
`ember run FILE.lua --api-sock`, and hostile clients that must not take ember down."""
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time

import run
from run import check, ember, guest_kernel, test, write_def, secs


# A prefix for Ember: a network namespace of its own, for tests whose PUT
# /network-interfaces opens (and so makes) taps with made-up names: gone with the process.
NETNS = ("unshare", "--net")


class UnixHTTPConnection(http.client.HTTPConnection):
    """http.client over a connected AF_UNIX socket."""

    def __init__(self, path, timeout=30):
        super().__init__("localhost", timeout=timeout)
        self.unix_path = path

    def connect(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(self.timeout)
        s.connect(self.unix_path)
        self.sock = s


class Ember:
    """An `ember --api-sock` process: stdout collected, ended by its own pid."""

    def __init__(self, tmp, *extra, env=None, sock_name="api.sock", prefix=()):
        self.sock = os.path.join(tmp, sock_name)
        self.out = b""
        self.lock = threading.Lock()
        e = dict(os.environ, **(env or {}))
        self.p = subprocess.Popen([*prefix, run.ARGS.ember, "--api-sock", self.sock, *extra],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, env=e)
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()
        self.err = b""
        self.err_reader = threading.Thread(target=self._read_err, daemon=True)
        self.err_reader.start()
        end = time.time() + secs(20)
        while time.time() < end:
            if self.p.poll() is not None:
                raise run.Fail("ember exited at start: %d %s" % (self.p.returncode, self.stderr()))
            try:
                s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                s.connect(self.sock)
                s.close()
                return
            except OSError:
                time.sleep(0.02)
        raise run.Fail("the API socket never came up")

    def _read(self):
        while True:
            chunk = self.p.stdout.read1(4096)
            if not chunk:
                return
            with self.lock:
                self.out += chunk

    def _read_err(self):
        while True:
            chunk = self.p.stderr.read1(4096)
            if not chunk:
                return
            with self.lock:
                self.err += chunk

    def stderr(self):
        time.sleep(0.05)
        with self.lock:
            return self.err.decode(errors="replace")

    def wait_output(self, needle, timeout=20):
        end = time.time() + secs(timeout)
        while time.time() < end:
            with self.lock:
                if needle.encode() in self.out:
                    return
            if self.p.poll() is not None:
                break
            time.sleep(0.02)
        raise run.Fail("timeout waiting for %r; output %r; stderr %s" %
                       (needle, self.out[-400:], self.stderr()[-1000:]))

    def send(self, text):
        self.p.stdin.write(text.encode())
        self.p.stdin.flush()

    def ask(self, line, prefix=None, timeout=30):
        """Send one guest command; return its answer line (the first new line that starts
        with `prefix`, by default "OK <first word>")."""
        prefix = (prefix or "OK " + line.split()[0]).encode()
        with self.lock:
            mark = len(self.out)
        self.send(line + "\n")
        end = time.time() + secs(timeout)
        while time.time() < end:
            with self.lock:
                for ln in self.out[mark:].split(b"\n")[:-1]:
                    ln = ln.rstrip(b"\r")
                    if ln.startswith(prefix) or ln.startswith(b"ERR") or ln.startswith(b"FAULT"):
                        check(ln.startswith(prefix), "%s: %r" % (line, ln))
                        return ln.decode()
            if self.p.poll() is not None:
                break
            time.sleep(0.02)
        raise run.Fail("no answer to %r; output %r; stderr %s" %
                       (line, self.out[-400:], self.stderr()[-1000:]))

    def request(self, method, path, body=None, conn=None):
        """(status, parsed JSON or None, headers)"""
        c = conn or UnixHTTPConnection(self.sock)
        data = body if isinstance(body, (bytes, str)) or body is None else json.dumps(body)
        headers = {"Content-Type": "application/json"} if data is not None else {}
        c.request(method, path, body=data, headers=headers)
        r = c.getresponse()
        raw = r.read()
        if conn is None:
            c.close()
        # strict=False: micro-http's {"error": ...} bodies hold a raw newline, as ember's do.
        return r.status, (json.loads(raw, strict=False) if raw else None), dict(r.getheaders())

    def expect(self, method, path, body, status, fragment=None):
        try:
            got, data, _ = self.request(method, path, body)
        except (OSError, http.client.HTTPException) as ex:
            raise run.Fail("%s %s: %r; ember status %s, stderr: %s" %
                           (method, path, ex, self.p.poll(), self.stderr()[-1500:]))
        text = json.dumps(data) if data is not None else ""
        check(got == status and (fragment is None or fragment in text),
              "%s %s %s: %d %s, want %d with %r" % (method, path, body, got, text, status,
                                                     fragment))
        return data

    def wait(self, timeout=20):
        try:
            return self.p.wait(secs(timeout))
        finally:
            self.close()

    def close(self):
        if self.p.poll() is None:
            self.p.kill()
            self.p.wait()
        for f in (self.p.stdin, self.p.stdout, self.p.stderr):
            try:
                f.close()
            except OSError:
                pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def boot(e, args=""):
    e.expect("PUT", "/machine-config", {"vcpu_count": 1, "mem_size_mib": 128}, 204)
    e.expect("PUT", "/boot-source", {"kernel_image_path": guest_kernel(), "boot_args": args},
             204)
    e.expect("PUT", "/actions", {"action_type": "InstanceStart"}, 204)
    e.wait_output("ember-test-guest ready")


def state(e):
    return e.request("GET", "/")[1]["state"]


def end_with_poweroff(e):
    e.send("poweroff\n")
    status = e.wait()
    check(status == 0, "poweroff: status %d: %s" % (status, e.stderr()))
    check(not os.path.exists(e.sock), "the socket path is left behind")


# ---- the getting-started flow ----

@test
def api_getting_started_flow():
    with tempfile.TemporaryDirectory() as tmp, Ember(tmp) as e:
        check(state(e) == "Not started", "fresh state")
        boot(e)
        check(state(e) == "Running", "after InstanceStart: %s" % state(e))
        e.expect("PATCH", "/vm", {"state": "Paused"}, 204)
        check(state(e) == "Paused", "after Paused")
        e.send("echo while-paused\n")
        time.sleep(0.5)
        check(b"OK while-paused" not in e.out, "a paused guest answered")
        e.expect("PATCH", "/vm", {"state": "Paused"}, 204)  # idempotent
        e.expect("PATCH", "/vm", {"state": "Resumed"}, 204)
        e.wait_output("OK while-paused")
        check(state(e) == "Running", "after Resumed")
        # The guest does not react to Ctrl-Alt-Del; the call must succeed and not hurt.
        e.expect("PUT", "/actions", {"action_type": "SendCtrlAltDel"}, 204)
        e.send("echo still-here\n")
        e.wait_output("OK still-here")
        e.expect("GET", "/machine-config", None, 200, '"mem_size_mib": 128')
        e.expect("GET", "/vm/config", None, 200, guest_kernel())
        e.expect("PUT", "/actions", {"action_type": "InstanceStart"}, 400,
                 "not supported after starting the microVM")
        for method, path, body in POST_BOOT_REFUSED:
            e.expect(method, path, body, 400, "not supported after starting the microVM")
        end_with_poweroff(e)


FNV_OFFSET, FNV_PRIME, MASK64 = 0xCBF29CE484222325, 0x100000001B3, (1 << 64) - 1


def word_sum(data):
    """The guest's `sum`: FNV-1a 64 over little-endian 64-bit words."""
    h = FNV_OFFSET
    for i in range(0, len(data), 8):
        h = ((h ^ int.from_bytes(data[i:i + 8], "little")) * FNV_PRIME) & MASK64
    return h


def answer_sum(line):
    return int(line.rsplit("sum=", 1)[1].split()[0], 16)


@test
def api_getting_started_with_drives_vsock_and_entropy():
    with tempfile.TemporaryDirectory() as tmp:
        rootfs, data = os.path.join(tmp, "rootfs.img"), os.path.join(tmp, "data.img")
        with open(rootfs, "wb") as f:
            f.truncate(4 << 20)
        data_bytes = os.urandom(1 << 20)
        with open(data, "wb") as f:
            f.write(data_bytes)
        with Ember(tmp) as e:
            e.expect("PUT", "/machine-config", {"vcpu_count": 1, "mem_size_mib": 128}, 204)
            e.expect("PUT", "/boot-source", {"kernel_image_path": guest_kernel(),
                                             "boot_args": ""}, 204)
            e.expect("PUT", "/drives/data", {"drive_id": "data", "path_on_host": data,
                                             "is_root_device": False, "is_read_only": True},
                     204)
            # The root drive goes first (/dev/vda), as in Firecracker.
            e.expect("PUT", "/drives/rootfs", {"drive_id": "rootfs", "path_on_host": rootfs,
                                               "is_root_device": True, "is_read_only": False,
                                               "cache_type": "Unsafe", "io_engine": "Sync"},
                     204)
            e.expect("PUT", "/vsock", {"guest_cid": 7, "uds_path": os.path.join(tmp, "v.sock")},
                     204)
            e.expect("PUT", "/entropy", {"rate_limiter": {"bandwidth": {"size": 65536,
                                                                        "refill_time": 100}}},
                     204)
            e.expect("PUT", "/actions", {"action_type": "InstanceStart"}, 204)
            e.wait_output("ember-test-guest ready")
            listed = e.ask("virtio list")
            check(listed == "OK virtio 0:block 1:block 2:vsock 3:rng", "virtio list: " + listed)
            info = e.ask("info", "OK cpus=")
            check("root=/dev/vda rw" in info, "no root= for the root drive: " + info)
            blk = e.ask("blk info")
            check(blk == "OK blk capacity=8192 ro=0 serial=rootfs", "rootfs: " + blk)
            # The guest writes the root drive; the host file holds what it wrote.
            e.ask("blk write 0 8 7", "OK blk written")
            e.ask("blk flush", "OK blk flushed")
            got = answer_sum(e.ask("blk read 0 8"))
            with open(rootfs, "rb") as f:
                on_disk = f.read(4096)
            check(any(on_disk) and word_sum(on_disk) == got, "rootfs bytes on the host differ")
            e.ask("blk use 1", "OK blk use window=1")
            blk = e.ask("blk info")
            check(blk == "OK blk capacity=2048 ro=1 serial=data", "data: " + blk)
            got = answer_sum(e.ask("blk read 100 64"))
            check(got == word_sum(data_bytes[100 * 512:164 * 512]), "data drive read differs")
            e.ask("blk evil ro-write", "OK blk evil status=1")  # read-only: refused
            check(e.ask("vsock cid") == "OK vsock cid=7", "vsock cid")
            check(e.ask("rng 4096").startswith("OK rng bytes=4096 sum="), "rng")
            cfg = e.expect("GET", "/vm/config", None, 200)
            check([d["drive_id"] for d in cfg["drives"]] == ["rootfs", "data"] and
                  cfg["drives"][0] == {"drive_id": "rootfs", "partuuid": None,
                                       "is_root_device": True, "cache_type": "Unsafe",
                                       "is_read_only": False, "path_on_host": rootfs,
                                       "rate_limiter": None, "io_engine": "Sync",
                                       "socket": None}, "drives: %r" % cfg["drives"])
            check(cfg["vsock"]["guest_cid"] == 7 and cfg["balloon"] is None and
                  cfg["entropy"]["rate_limiter"]["bandwidth"]["size"] == 65536,
                  "vm/config: %r" % cfg)
            # Post-boot PATCH (more in test_api_updates.py): the same file again is fine.
            e.expect("PATCH", "/drives/rootfs", {"drive_id": "rootfs", "path_on_host": rootfs},
                     204)
            e.expect("PATCH", "/network-interfaces/eth0", {"iface_id": "eth0"}, 400,
                     "Network interface error: net 'eth0': no such network interface")
            e.expect("GET", "/balloon", None, 400, "No balloon device found.")
            e.expect("PATCH", "/balloon", {"amount_mib": 1}, 400, "No balloon device found.")
            for method, path, body in POST_BOOT_REFUSED:
                e.expect(method, path, body, 400, "not supported after starting the microVM")
            end_with_poweroff(e)


BALLOON_STATS = {"target_pages", "actual_pages", "target_mib", "actual_mib", "swap_in",
                 "swap_out", "major_faults", "minor_faults", "free_memory", "total_memory",
                 "available_memory", "disk_caches", "hugetlb_allocations", "hugetlb_failures",
                 "oom_kill", "alloc_stall", "async_scan", "direct_scan", "async_reclaim",
                 "direct_reclaim"}


@test
def api_balloon_on_the_test_guest():
    with tempfile.TemporaryDirectory() as tmp, Ember(tmp) as e:
        e.expect("PUT", "/balloon", {"amount_mib": 0, "deflate_on_oom": True,
                                     "stats_polling_interval_s": 1}, 204)
        boot(e)
        e.expect("GET", "/balloon", None, 200, '"amount_mib": 0, "deflate_on_oom": true, '
                 '"stats_polling_interval_s": 1, "free_page_hinting": false, '
                 '"free_page_reporting": false')
        info = e.ask("balloon info")
        check("target=0 actual=0 held=0" in info, info)
        # A target over the API; the guest inflates to it.
        e.expect("PATCH", "/balloon", {"amount_mib": 32}, 204)
        check(e.ask("balloon inflate") == "OK balloon pages=8192", "inflate")
        b = e.expect("GET", "/balloon", None, 200)
        check(b["amount_mib"] == 32 and b["actual_mib"] == 32, "GET /balloon: %r" % b)
        st = e.expect("GET", "/balloon/statistics", None, 200)
        check(st["target_pages"] == 8192 and st["actual_pages"] == 8192 and
              st["target_mib"] == 32 and st["actual_mib"] == 32, "statistics: %r" % st)
        # The guest's next statistics arrive under Firecracker's names.
        ans = e.ask("balloon stats")
        free = int(ans.split("free=")[1])
        end = time.time() + secs(15)
        while st.get("free_memory") != free and time.time() < end:
            time.sleep(0.1)
            st = e.expect("GET", "/balloon/statistics", None, 200)
        check(st.get("free_memory") == free, "free_memory never reached %d: %r" % (free, st))
        check(st["swap_in"] == 11 and st["swap_out"] == 22 and st["major_faults"] == 33 and
              st["disk_caches"] == 55 and st["available_memory"] == free and
              st["total_memory"] > free, "statistics: %r" % st)
        check(set(st) <= BALLOON_STATS and "hugetlb_allocations" not in st,
              "fields the guest did not send, or unknown ones: %r" % sorted(st))
        e.expect("PATCH", "/balloon/statistics", {"stats_polling_interval_s": 2}, 204)
        e.expect("GET", "/balloon", None, 200, '"stats_polling_interval_s": 2')
        e.expect("PATCH", "/balloon/statistics", {"stats_polling_interval_s": 0}, 400,
                 "Cannot enable/disable the statistics after boot.")
        e.expect("PATCH", "/balloon", {"amount_mib": 129}, 400,
                 "Amount of pages requested is too large.")
        e.expect("PATCH", "/balloon", {"amount_mib": 32, "deflate_on_oom": False}, 400,
                 "unknown field `deflate_on_oom`")
        e.expect("PATCH", "/balloon", {"amount_mib": 0}, 204)
        check(e.ask("balloon inflate") == "OK balloon pages=0", "deflate to 0")
        e.expect("GET", "/vm/config", None, 200, '"balloon": {"amount_mib": 0, '
                 '"deflate_on_oom": true, "stats_polling_interval_s": 2')
        e.expect("PUT", "/balloon", {"amount_mib": 1, "deflate_on_oom": True}, 400,
                 "not supported after starting the microVM")
        end_with_poweroff(e)


POST_BOOT_REFUSED = [
    ("PUT", "/machine-config", {"vcpu_count": 1, "mem_size_mib": 64}),
    ("PATCH", "/machine-config", {"vcpu_count": 2}),
    ("PUT", "/boot-source", {"kernel_image_path": "/dev/null"}),
    ("PUT", "/logger", {"level": "Info"}),
    ("PUT", "/metrics", {"metrics_path": "/tmp/never"}),
    ("PUT", "/cpu-config", {}),
    ("PUT", "/drives/rootfs", {"drive_id": "rootfs", "path_on_host": "/dev/null",
                               "is_root_device": True}),
    ("PUT", "/network-interfaces/eth0", {"iface_id": "eth0", "host_dev_name": "tap0"}),
    ("PUT", "/vsock", {"guest_cid": 3, "uds_path": "/tmp/v.sock"}),
    ("PUT", "/entropy", {}),
    ("PUT", "/balloon", {"amount_mib": 1, "deflate_on_oom": False}),
    ("PUT", "/mmds/config", {"network_interfaces": []}),
    ("PUT", "/snapshot/load", {"snapshot_path": "/s", "mem_file_path": "/m"}),
]


# ---- every endpoint: request -> status and a fragment of the answer ----

DESER = "An error occurred when deserializing the json body of a request: "
IMG = "@img"  # in a table body: the path of an image the test makes


def with_img(body, img):
    if isinstance(body, dict):
        return {k: img if v == IMG else v for k, v in body.items()}
    return body


# Refused device bodies: (method, path, body, fragment of the 400 answer).
DEVICE_ERRORS = [(m, p, b, 400, f) for m, p, b, f in [
    ("PUT", "/drives/rootfs", {"drive_id": "rootfs"}, "missing field `is_root_device`"),
    ("PUT", "/drives/rootfs", {"drive_id": "rootfs", "is_root_device": True, "ro": True},
     DESER + "unknown field `ro`"),
    ("PUT", "/drives/rootfs", {"drive_id": "rootfs", "is_root_device": "yes"},
     "invalid type"),
    ("PUT", "/drives/rootfs", {"drive_id": "rootfs", "is_root_device": True,
                               "cache_type": "Fast"}, "unknown variant `Fast`"),
    ("PUT", "/drives/rootfs", {"drive_id": "rootfs", "path_on_host": "/dev/null",
                               "is_root_device": True, "io_engine": "async"},
     "unknown variant `async`, expected `Sync` or `Async`"),
    ("PUT", "/drives/rootfs", {"drive_id": "rootfs", "is_root_device": True,
                               "socket": "/tmp/vhost.sock"}, "vhost-user drives"),
    ("PUT", "/drives/rootfs", {"drive_id": "rootfs", "is_root_device": True},
     "path_on_host is required"),
    ("PUT", "/drives/rootfs", {"drive_id": "rootfs", "path_on_host": "/nonexistent.img",
                               "is_root_device": True},
     "Unable to open the block device backing file /nonexistent.img: No such file or "
     "directory (os error 2)"),
    ("PUT", "/drives/rootfs", {"drive_id": "rootfs", "path_on_host": "/dev/null",
                               "is_root_device": True,
                               "rate_limiter": {"bandwidth": {"size": 1}}},
     "missing field `refill_time` at line 1 column "),
    ("PUT", "/network-interfaces/eth0", {"iface_id": "eth0"}, "missing field `host_dev_name`"),
    ("PUT", "/network-interfaces/eth0", {"iface_id": "eth1", "host_dev_name": "tap0"},
     "The id from the path [eth0] does not match the id from the body [eth1]!"),
    ("PUT", "/network-interfaces/eth0", {"iface_id": "eth0", "host_dev_name": "tap0",
                                         "guest_mac": "06:00:ac:10:00"},
     DESER + "invalid MAC address `06:00:ac:10:00`"),
    ("PUT", "/network-interfaces/eth0", {"iface_id": "eth0", "host_dev_name": "tap0",
                                         "guest_mac": "zz:00:ac:10:00:02"}, "invalid MAC address"),
    ("PUT", "/network-interfaces/eth0", {"iface_id": "eth0", "host_dev_name": "tap0",
                                         "mtu": 20}, "`mtu`: 20 is out of range 68..65535"),
    ("PUT", "/network-interfaces/eth0", {"iface_id": "eth0", "host_dev_name": "a" * 16},
     "a tap device name has 1 to 15 bytes"),
    ("PUT", "/network-interfaces/eth0", {"iface_id": "eth0", "host_dev_name": ["tap0"]},
     "invalid type: sequence, expected a string"),
    ("PUT", "/vsock", {"guest_cid": 2, "uds_path": "/tmp/v.sock"},
     "guest_cid: 2 is reserved, the guest CID must be 3 or more"),
    ("PUT", "/vsock", {"guest_cid": -3, "uds_path": "/tmp/v.sock"},
     "invalid value: integer `-3`, expected u32"),
    ("PUT", "/vsock", {"guest_cid": 3}, "missing field `uds_path`"),
    ("PUT", "/vsock", {"guest_cid": 3, "uds_path": "/" + "x" * 200},
     "uds_path must be 1 to 107 bytes long"),
    ("PUT", "/entropy", {"rate_limiter": {"ops": {"size": 1}}},
     "missing field `refill_time` at line 1 column "),
    ("PUT", "/entropy", {"device": "/dev/random"}, "unknown field `device`"),
    ("PUT", "/balloon", {"amount_mib": 10}, "missing field `deflate_on_oom`"),
    ("PUT", "/balloon", {"amount_mib": 100000, "deflate_on_oom": True},
     "Amount of pages requested is too large."),
    ("PUT", "/balloon", {"amount_mib": 1, "deflate_on_oom": True, "free_page_hinting": 1},
     "invalid type: integer `1`, expected a boolean"),
    ("PUT", "/balloon", {"amount_mib": "1", "deflate_on_oom": True},
     "invalid type"),
    ("PATCH", "/balloon/statistics", {"stats_polling_interval_s": 70000}, "expected u16"),
]]
PRE_BOOT = [
    ("GET", "/", None, 200, '"app_name": "ember"'),
    ("GET", "/version", None, 200, "firecracker_version"),
    ("GET", "/machine-config", None, 200, '"huge_pages": "None"'),
    ("PUT", "/machine-config", {"vcpu_count": 2, "mem_size_mib": 256}, 204, None),
    ("PATCH", "/machine-config", {"track_dirty_pages": True}, 204, None),
    ("GET", "/machine-config", None, 200, '"track_dirty_pages": true'),
    ("PUT", "/machine-config", {"vcpu_count": 2}, 400, DESER + "missing field `mem_size_mib`"),
    ("PUT", "/machine-config", {"vcpu_count": 2, "mem_size_mib": 64, "vcpus": 1}, 400,
     "unknown field `vcpus`"),
    ("PUT", "/machine-config", {"vcpu_count": "2", "mem_size_mib": 64}, 400,
     "invalid type"),
    ("PUT", "/machine-config", {"vcpu_count": 64, "mem_size_mib": 64}, 400,
     "The number of vCPUs must be greater than 0, less than 32"),
    ("PATCH", "/machine-config", {}, 400, "Empty PATCH request."),
    ("PUT", "/boot-source", {"kernel_image_path": "/nonexistent"}, 400,
     "The kernel file cannot be opened: No such file or directory (os error 2)"),
    ("PUT", "/cpu-config", {"kvm_capabilities": ["!56"]}, 204, None),
    ("PUT", "/cpu-config", {"cpuid_modifiers": [{"leaf": "0x1", "subleaf": "0x0", "flags": 0,
                                                 "modifiers": [{"register": "ecx",
                                                                "bitmap": "0b2x"}]}]}, 400,
     "Failed to parse string [0b2x] as a bitmap - unknown character: 50"),
    ("PUT", "/cpu-config", {"msr_modifiers": [{"addr": "0x10a", "bitmap": "0b" + "1" * 65}]},
     400, "as a bitmap - string is too long"),
    ("PUT", "/cpu-config", {"cpuid_modifiers": [{"leaf": "1", "subleaf": "0", "flags": 0,
                                                 "modifiers": [{"register": "esx",
                                                                "bitmap": "0b1"}]}]}, 400,
     "unknown variant `esx`"),
    ("PUT", "/machine-config", {"vcpu_count": 3, "mem_size_mib": 256, "smt": True}, 400,
     "must be 1 or an even number if SMT is enabled"),
    ("PUT", "/machine-config", {"vcpu_count": 2, "mem_size_mib": 256, "smt": True,
                                "cpu_template": "T2"}, 204, None),
    ("GET", "/machine-config", None, 200, '"smt": true'),
    ("PUT", "/machine-config", {"vcpu_count": 2, "mem_size_mib": 256}, 204, None),
    ("GET", "/vm/config", None, 200, '"drives": []'),
    ("PUT", "/drives/bad-id", {}, 400, "API Resource IDs can only contain"),
    ("PUT", "/drives/rootfs", {"drive_id": "other", "is_root_device": True}, 400,
     "does not match the id from the body"),
] + DEVICE_ERRORS + [
    # IMG: an image file the test makes.
    ("PUT", "/drives/rootfs", {"drive_id": "rootfs", "path_on_host": IMG,
                               "is_root_device": True, "is_read_only": False}, 204, None),
    ("PUT", "/drives/data", {"drive_id": "data", "path_on_host": IMG,
                             "is_root_device": True}, 400,
     "Drive config error: A root block device already exists!"),
    ("PUT", "/drives/data", {"drive_id": "data", "path_on_host": "/dev/null",
                             "is_root_device": False, "is_read_only": True}, 400,
     "The block device backing file /dev/null is not a regular file or a block device"),
    ("PUT", "/drives/data", {"drive_id": "data", "path_on_host": IMG,
                             "is_root_device": False, "is_read_only": True,
                             "cache_type": "Writeback", "partuuid": "p-1"}, 204, None),
    ("PATCH", "/drives/rootfs", {"drive_id": "rootfs", "path_on_host": "/x"}, 400,
     "not supported before starting the microVM"),
    ("DELETE", "/drives/data", None, 400, "removing a drive is not supported"),
    ("PUT", "/network-interfaces/eth0", {"iface_id": "eth0", "host_dev_name": "tap0",
                                         "guest_mac": "06:00:AC:10:00:02"}, 204, None),
    ("PUT", "/network-interfaces/eth1", {"iface_id": "eth1", "host_dev_name": "tap1",
                                         "guest_mac": "06:00:ac:10:00:02"}, 400,
     "The MAC address is already in use: 06:00:ac:10:00:02"),
    ("PATCH", "/network-interfaces/eth0", {"iface_id": "eth0"}, 400,
     "not supported before starting the microVM"),
    ("PUT", "/vsock", {"guest_cid": 3, "uds_path": "/tmp/v.sock"}, 204, None),
    ("PUT", "/entropy", {"rate_limiter": {"bandwidth": {"size": 1000, "refill_time": 100}}},
     204, None),
    ("GET", "/balloon", None, 400, "No balloon device found."),
    ("PUT", "/balloon", {"amount_mib": 1, "deflate_on_oom": True}, 204, None),
    ("GET", "/balloon", None, 200, '"amount_mib": 1, "deflate_on_oom": true'),
    ("GET", "/balloon/statistics", None, 400, "before starting the microVM"),
    ("PATCH", "/balloon", {"amount_mib": 2}, 400, "before starting the microVM"),
    ("GET", "/vm/config", None, 200, '"drive_id": "data", "partuuid": "p-1", '
     '"is_root_device": false, "cache_type": "Writeback", "is_read_only": true'),
    ("GET", "/vm/config", None, 200, '"network-interfaces": [{"iface_id": "eth0", '
     '"host_dev_name": "tap0", "guest_mac": "06:00:ac:10:00:02"'),
    ("GET", "/vm/config", None, 200, '"vsock": {"guest_cid": 3, "uds_path": "/tmp/v.sock"}, '
     '"entropy": {"rate_limiter": {"bandwidth": {"size": 1000, "one_time_burst": null, '
     '"refill_time": 100}, "ops": null}}'),
    ("PUT", "/logger", {"level": "Debug", "show_level": True}, 204, None),
    ("PUT", "/logger", {"level": "Loud"}, 400, "Invalid LevelFilter"),
    ("PUT", "/metrics", {"metrics_path": "/nonexistent/m.json"}, 400,
     "Cannot initialize the metrics system"),
    ("GET", "/mmds", None, 200, "{}"),
    ("PATCH", "/mmds", {"a": 1}, 400, "The MMDS data store is not initialized."),
    ("PUT", "/mmds", {"latest": {"meta-data": {"ami-id": "ami-1"}}}, 204, None),
    ("PATCH", "/mmds", {"latest": {"meta-data": {"hostname": "h"}}}, 204, None),
    ("GET", "/mmds", None, 200, '"ami-id": "ami-1", "hostname": "h"'),
    ("PUT", "/mmds/config", {"network_interfaces": ["eth9"]}, 400,
     "does not correspond to any existing network interface"),
    ("PUT", "/actions", {"action_type": "FlushMetrics"}, 400, "before starting the microVM"),
    ("PUT", "/actions", {"action_type": "SendCtrlAltDel"}, 400, "before starting"),
    ("PUT", "/actions", {"action_type": "Explode"}, 400, "unknown variant `Explode`"),
    ("PATCH", "/vm", {"state": "Paused"}, 400, "before starting the microVM"),
    ("PUT", "/snapshot/create", {"snapshot_path": "/s", "mem_file_path": "/m"}, 400,
     "before starting"),
    ("PUT", "/snapshot/load", {"snapshot_path": "/s"}, 400,
     "either `mem_backend` or `mem_file_path` is required"),
    ("GET", "/nowhere", None, 400, "Invalid request method and/or path: GET nowhere."),
    ("GET", "/", "{}", 400, "GET request cannot have a body."),
    ("PUT", "/boot-source", None, 400, "Empty PUT request."),
    ("PUT", "/machine-config", "{not json", 400,
     DESER + "key must be a string at line 1 column 2."),
    ("PUT", "/actions", {"action_type": "InstanceStart"}, 400,
     "Cannot start microvm without kernel configuration."),
]


@test
def api_endpoints_answer_as_firecracker_does():
    # NETNS: PUT /network-interfaces opens (makes) tap0 and tap1, gone with the process.
    with tempfile.TemporaryDirectory() as tmp, Ember(tmp, prefix=NETNS) as e:
        img, fifo = os.path.join(tmp, "disk.img"), os.path.join(tmp, "fifo")
        with open(img, "wb") as f:
            f.truncate(1 << 20)
        for method, path, body, status, fragment in PRE_BOOT:
            e.expect(method, path, with_img(body, img), status, fragment)
        # A FIFO is no disk, and opening it must not stall ember.
        os.mkfifo(fifo)
        e.expect("PUT", "/drives/fifo", {"drive_id": "fifo", "path_on_host": fifo,
                                         "is_root_device": False, "is_read_only": True}, 400,
                 "is not a regular file or a block device")
        e.expect("GET", "/vm/config", None, 200, '"path_on_host": "%s"' % img)
        # Loading a snapshot is refused once a boot resource was configured.
        e.expect("PUT", "/snapshot/load", {"snapshot_path": "/s", "mem_file_path": "/m"}, 400,
                 "Loading a microVM snapshot not allowed after configuring boot-specific")
        # Deprecated fields work and say so in a header.
        _, _, headers = e.request("PUT", "/machine-config",
                                  {"vcpu_count": 1, "mem_size_mib": 64, "cpu_template": "None"})
        check(headers.get("Deprecation") == "true", "no Deprecation header: %r" % headers)
        check(e.p.poll() is None, "ember died")
        e.p.send_signal(signal.SIGTERM)
        check(e.wait() == 143, "SIGTERM: status %s" % e.p.returncode)
        check(not os.path.exists(e.sock), "the socket path is left behind")


@test
def api_keep_alive_pipelining_and_split_requests():
    with tempfile.TemporaryDirectory() as tmp, Ember(tmp) as e:
        # Several requests on one keep-alive connection.
        c = UnixHTTPConnection(e.sock)
        for _ in range(20):
            status, data, _ = e.request("GET", "/", conn=c)
            check(status == 200 and data["state"] == "Not started", "keep-alive request")
        c.close()
        # Three pipelined requests in one write, answered in order.
        body = b'{"vcpu_count": 2, "mem_size_mib": 64}'
        raw = (b"GET /version HTTP/1.1\r\n\r\n"
               b"PUT /machine-config HTTP/1.1\r\nContent-Length: %d\r\n\r\n%s"
               b"GET /machine-config HTTP/1.1\r\nConnection: close\r\n\r\n" % (len(body), body))
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(e.sock)
        s.sendall(raw)
        got = recv_all(s)
        check(got.count(b"HTTP/1.1 ") == 3, "pipelined answers: %r" % got)
        check(got.index(b"firecracker_version") < got.index(b"204 No Content") <
              got.index(b'"vcpu_count":2'), "pipelined answers out of order: %r" % got)
        # A request dribbled in one byte at a time.
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(e.sock)
        req = (b"PATCH /machine-config HTTP/1.1\r\nContent-Length: 14\r\n"
               b"Connection: close\r\n\r\n{\"smt\": false}")
        for i in range(len(req)):
            s.send(req[i:i + 1])
            if i % 16 == 0:
                time.sleep(0.001)
        got = recv_all(s)
        check(got.startswith(b"HTTP/1.1 204"), "split request: %r" % got)


def recv_all(s, timeout=10):
    s.settimeout(timeout)
    data = b""
    while True:
        try:
            chunk = s.recv(65536)
        except socket.timeout:
            break
        if not chunk:
            break
        data += chunk
    s.close()
    return data


# ---- hostile clients: ember stays up and serves the next good request ----

def still_serving(e):
    status, data, _ = e.request("GET", "/")
    check(status == 200 and data["state"] in ("Not started", "Running"), "not serving")
    check(e.p.poll() is None, "ember died: %s" % e.stderr()[-2000:])


def raw_exchange(path, data, timeout=5):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(path)
    try:
        s.sendall(data)
    except OSError:
        pass  # ember may close as soon as it has seen enough
    return recv_all(s, timeout)


@test
def api_survives_hostile_clients():
    with tempfile.TemporaryDirectory() as tmp, Ember(tmp) as e:
        boot(e)
        # Garbage bytes: a 400 and the connection closed.
        got = raw_exchange(e.sock, os.urandom(4096).replace(b"\n", b"x"))
        check(got.startswith(b"HTTP/1.1 400") and b'{ "error": "Invalid ' in got and
              b"\nAll previous unanswered requests will be dropped." in got,
              "garbage: %r" % got[:200])
        still_serving(e)
        # Huge headers.
        got = raw_exchange(e.sock, b"GET / HTTP/1.1\r\nX-A: " + b"a" * 100000 + b"\r\n\r\n")
        check(b"headers are larger than the limit" in got, "huge headers: %r" % got[:200])
        still_serving(e)
        # A declared body over the limit is refused before it is read.
        got = raw_exchange(e.sock, b"PUT /mmds HTTP/1.1\r\nContent-Length: 10000000\r\n\r\n{")
        check(b"larger than the limit of 51200" in got, "big body: %r" % got[:300])
        # A chunked body that never ends.
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(e.sock)
        s.sendall(b"PUT /mmds HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n")
        try:
            for _ in range(200):
                s.sendall(b"400\r\n" + b"x" * 1024 + b"\r\n")
        except OSError:
            pass
        got = recv_all(s)
        check(b"larger than the limit of 51200" in got, "endless body: %r" % got[:300])
        still_serving(e)
        # Clients that leave mid-request, mid-body and mid-headers.
        for part in (b"PUT /machine-config HTTP/1.1\r\nContent-Length: 100\r\n\r\n{\"vcpu",
                     b"GET / HTTP/1.1\r\nHost: x", b"G"):
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.connect(e.sock)
            s.sendall(part)
            s.close()
        still_serving(e)
        # 200 connections at once, each with half a request, and ember serves others.
        many = []
        for i in range(200):
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.connect(e.sock)
            s.sendall(b"PUT /mmds HTTP/1.1\r\nContent-Length: 50000\r\n\r\n{\"k\": \"")
            many.append(s)
        still_serving(e)
        # More connections than ember keeps: the least recently active are closed.
        for i in range(100):
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.connect(e.sock)
            many.append(s)
        still_serving(e)
        for s in many:
            s.close()
        # A slow reader: many answers queued, read late; another client meanwhile.
        e.expect("PUT", "/mmds", {"blob": "y" * 40000}, 204)
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(e.sock)
        s.setblocking(False)
        sent = 0
        pipeline = b"GET /mmds HTTP/1.1\r\n\r\n" * 50
        end = time.time() + secs(5)
        while sent < len(pipeline) and time.time() < end:
            try:
                sent += s.send(pipeline[sent:])
            except BlockingIOError:
                time.sleep(0.01)
        still_serving(e)  # ember is not stuck writing to the slow reader
        s.setblocking(True)
        s.settimeout(secs(10))
        got = b""
        while got.count(b'"blob"') < 50:
            chunk = s.recv(1 << 20)
            if not chunk:
                break
            got += chunk
        s.close()
        check(got.count(b'"blob"') == 50, "slow reader got %d answers" % got.count(b'"blob"'))
        # The guest ran through all of it.
        e.send("echo after-the-storm\n")
        e.wait_output("OK after-the-storm")
        end_with_poweroff(e)


# ---- the socket path ----

@test
def api_socket_path_rules():
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "api.sock")
        with open(path, "w") as f:
            f.write("not a socket")
        r = ember("--api-sock", path, timeout=10)
        check(r.returncode == 1 and "exists and is not a socket" in r.stderr,
              "regular file: %d %r" % (r.returncode, r.stderr))
        os.unlink(path)
        # A stale socket (bound, nobody listening) is replaced.
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.bind(path)
        s.close()
        with Ember(tmp) as e:
            still_serving(e)
            # A live one is not.
            r = ember("--api-sock", path, timeout=10)
            check(r.returncode == 1 and "another process is serving on it" in r.stderr,
                  "live socket: %d %r" % (r.returncode, r.stderr))
            still_serving(e)
            e.p.send_signal(signal.SIGINT)
            check(e.wait() == 130, "SIGINT: status %s" % e.p.returncode)
        check(not os.path.exists(path), "the socket path is left behind")
        r = ember("--api-sock", os.path.join(tmp, "x" * 120), timeout=10)
        check(r.returncode == 1 and "must be 1 to 107 bytes long" in r.stderr, "long path")


@test
def api_with_curl():
    if not shutil.which("curl"):
        print("  (curl not installed: skipped)")
        return
    with tempfile.TemporaryDirectory() as tmp, Ember(tmp) as e:
        def curl(*args):
            r = subprocess.run(["curl", "-sS", "--unix-socket", e.sock, "-w", "\n%{http_code}",
                                *args], capture_output=True, text=True, timeout=20)
            body, _, code = r.stdout.rpartition("\n")
            return int(code), body
        code, body = curl("http://localhost/")
        check(code == 200 and '"state":"Not started"' in body, "curl GET /: %d %s" % (code, body))
        code, body = curl("-X", "PUT", "-H", "Content-Type: application/json", "-d",
                          '{"vcpu_count": 1, "mem_size_mib": 64}',
                          "http://localhost/machine-config")
        check(code == 204 and body == "", "curl PUT: %d %r" % (code, body))
        # A body over 1 KiB makes curl ask for 100-continue first.
        code, body = curl("-X", "PUT", "-d", json.dumps({"k": "v" * 4000}),
                          "http://localhost/mmds")
        check(code == 204, "curl PUT with Expect: %d %r" % (code, body))
        code, body = curl("-X", "PATCH", "-d", '{"state": "Paused"}', "http://localhost/vm")
        check(code == 400 and "before starting the microVM" in body, "curl PATCH: %s" % body)


# ---- the JSON config file ----

@test
def api_config_file_boots_at_once():
    with tempfile.TemporaryDirectory() as tmp:
        cfg, img = os.path.join(tmp, "vm.json"), os.path.join(tmp, "rootfs.img")
        with open(img, "wb") as f:
            f.truncate(1 << 20)
        with open(cfg, "w") as f:
            json.dump({"boot-source": {"kernel_image_path": guest_kernel(), "boot_args": ""},
                       "machine-config": {"vcpu_count": 2, "mem_size_mib": 96},
                       "drives": [{"drive_id": "rootfs", "path_on_host": img,
                                   "is_root_device": True, "is_read_only": True}],
                       "network-interfaces": [], "entropy": {},
                       "balloon": {"amount_mib": 0, "deflate_on_oom": False}}, f)
        with Ember(tmp, "--config-file", cfg) as e:
            e.wait_output("ember-test-guest ready cpus=2")
            check(state(e) == "Running", "config file VM not running")
            e.expect("GET", "/machine-config", None, 200, '"vcpu_count": 2, "mem_size_mib": 96')
            listed = e.ask("virtio list")
            check(listed == "OK virtio 0:block 1:rng 2:balloon", "virtio list: " + listed)
            blk = e.ask("blk info")
            check(blk == "OK blk capacity=2048 ro=1 serial=rootfs", "blk info: " + blk)
            e.expect("GET", "/vm/config", None, 200, '"drive_id": "rootfs"')
            e.expect("PUT", "/actions", {"action_type": "InstanceStart"}, 400, "after starting")
            end_with_poweroff(e)
        # Without the API too (Firecracker's --no-api).
        r = ember("--no-api", "--config-file", cfg, stdin="echo cfg\npoweroff\n", timeout=30)
        check(r.returncode == 0 and "OK cfg" in r.stdout, "no-API config: %r" % (r,))
        # A bad file names the file and the section; status 152 (Firecracker's
        # BadConfiguration).
        with open(cfg, "w") as f:
            json.dump({"boot-source": {"kernel_image_path": guest_kernel()},
                       "machine-config": {"vcpu_count": 1, "mem_size_mib": 64, "smt": "no"}}, f)
        r = ember("--no-api", "--config-file", cfg, timeout=20)
        check(r.returncode == 152 and cfg + ": machine-config: " in r.stderr and
              "invalid type" in r.stderr, "bad config: %r" % (r,))
        # The taps are opened as the file is read (as at PUT): a name that is no tap is
        # refused in Firecracker's words before anything is built.
        with open(cfg, "w") as f:
            json.dump({"boot-source": {"kernel_image_path": guest_kernel()},
                       "network-interfaces": [{"iface_id": "eth0", "host_dev_name": "lo"}]}, f)
        r = subprocess.run([*NETNS, run.ARGS.ember, "--no-api", "--config-file", cfg],
                           capture_output=True, text=True, timeout=secs(20))
        check(r.returncode == 152 and "Open tap device failed: Error while creating ifreq "
              "structure: Invalid argument (os error 22). Invalid TUN/TAP Backend provided "
              "by lo." in r.stderr, "a config file naming lo: %r" % (r,))


# ---- ember run FILE.lua --api-sock: the API drives a VM defined in Lua ----

@test
def api_serves_a_vm_defined_in_lua():
    with tempfile.TemporaryDirectory() as tmp:
        sock = os.path.join(tmp, "lua.sock")
        path = write_def(tmp, 'return ember.vm { kernel = ember.guest.test_kernel, '
                              'memory_mib = 64, vcpus = 2 }\n')
        p = subprocess.Popen([run.ARGS.ember, "run", path, "--api-sock", sock],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE)
        try:
            e = Ember.__new__(Ember)
            e.sock, e.p, e.out, e.err, e.lock = sock, p, b"", b"", threading.Lock()
            threading.Thread(target=e._read, daemon=True).start()
            threading.Thread(target=e._read_err, daemon=True).start()
            e.wait_output("ember-test-guest ready cpus=2")
            end = time.time() + secs(10)
            while not os.path.exists(sock) and time.time() < end:
                time.sleep(0.02)
            check(state(e) == "Running", "Lua VM state over the API")
            e.expect("GET", "/machine-config", None, 200, '"vcpu_count": 2, "mem_size_mib": 64')
            e.expect("PATCH", "/vm", {"state": "Paused"}, 204)
            check(state(e) == "Paused", "Lua VM not paused")
            e.expect("PATCH", "/vm", {"state": "Resumed"}, 204)
            e.expect("PUT", "/actions", {"action_type": "InstanceStart"}, 400, "after starting")
            e.expect("PUT", "/machine-config", {"vcpu_count": 1, "mem_size_mib": 64}, 400,
                     "after starting")
            end_with_poweroff(e)
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()


# ---- snapshots, logger and metrics over the API ----

@test
def api_snapshot_create_and_load():
    with tempfile.TemporaryDirectory() as tmp:
        state_path, mem_path = os.path.join(tmp, "vm.state"), os.path.join(tmp, "vm.mem")
        metrics = os.path.join(tmp, "metrics.json")
        with Ember(tmp) as e:
            boot(e)
            e.send("fill 8 5\n")
            e.wait_output("OK fill")
            e.expect("PUT", "/snapshot/create",
                     {"snapshot_path": state_path, "mem_file_path": mem_path}, 400,
                     "Create snapshot error")
            e.expect("PATCH", "/vm", {"state": "Paused"}, 204)
            e.expect("PUT", "/snapshot/create",
                     {"snapshot_path": state_path, "mem_file_path": mem_path}, 204)
            check(os.path.getsize(mem_path) >= 128 << 20, "memory file too small")
        with Ember(tmp, sock_name="second.sock") as e:
            e.expect("PUT", "/metrics", {"metrics_path": metrics}, 204)
            e.expect("PUT", "/snapshot/load",
                     {"snapshot_path": mem_path, "mem_file_path": mem_path}, 400,
                     "Load snapshot error: Failed to restore from snapshot")
            # A failed load leaves this ember able to load again.
            e.expect("PUT", "/snapshot/load",
                     {"snapshot_path": state_path,
                      "mem_backend": {"backend_path": mem_path, "backend_type": "File"},
                      "resume_vm": True}, 204)
            check(state(e) == "Running", "restored VM not running")
            e.send("check 8 5\n")
            e.wait_output("OK check")
            e.expect("PUT", "/actions", {"action_type": "FlushMetrics"}, 204)
            with open(metrics) as f:
                line = json.loads(f.readline())
            check(line["latencies_us"]["load_snapshot"] > 0, "no load latency: %r" % line)
            check(line["put_api_requests"]["snapshot_load_fails"] == 1, "load fails not counted")
            end_with_poweroff(e)


# Leaf 4 subleaf 0 ECX bit 0 cleared and leaf 0x40000000 EAX bit 17 set: fields kvm_pvm's
# emulated CPUID takes from the vCPU's table (its feature bits come from the host).
CPU_TEMPLATE = {
    "kvm_capabilities": ["!56"],
    "cpuid_modifiers": [
        {"leaf": "0x4", "subleaf": "0x0", "flags": 1,
         "modifiers": [{"register": "ecx", "bitmap": "0b0"}]},
        {"leaf": "0x40000000", "subleaf": "0x0", "flags": 0,
         "modifiers": [{"register": "eax", "bitmap": "0b1xxxxxxxxxxxxxxxxx"}]}],
    "msr_modifiers": [{"addr": "0x1a0", "bitmap": "0b1"}],
}
KVM_LEAF_WITH_BIT_17 = "OK cpuid eax=0x40020001 ebx=0x4b4d564b"
SMT_LEVEL = "OK cpuid eax=0x1 ebx=0x2 ecx=0x100"


@test
def api_cpu_config_and_smt_survive_snapshot():
    with tempfile.TemporaryDirectory() as tmp:
        state_path, mem_path = os.path.join(tmp, "vm.state"), os.path.join(tmp, "vm.mem")
        with Ember(tmp) as e:
            e.expect("PUT", "/machine-config", {"vcpu_count": 2, "mem_size_mib": 128,
                                                "smt": True}, 204)
            e.expect("PUT", "/cpu-config", CPU_TEMPLATE, 204)
            e.expect("GET", "/vm/config", None, 200, '"cpu-config": {"kvm_capabilities": '
                     '["!56"], "cpuid_modifiers": [{"leaf": "0x4", "subleaf": "0x0", "flags": 1, '
                     '"modifiers": [{"register": "ecx", "bitmap": "0b' + "x" * 31 + '0"}]}')
            e.expect("PUT", "/boot-source", {"kernel_image_path": guest_kernel()}, 204)
            e.expect("PUT", "/actions", {"action_type": "InstanceStart"}, 204)
            e.wait_output("ember-test-guest ready cpus=2")
            e.send("cpuid 0x40000000 0\n")
            e.wait_output(KVM_LEAF_WITH_BIT_17)
            e.send("cpuid 0xb 0\n")
            e.wait_output(SMT_LEVEL)
            e.expect("PATCH", "/vm", {"state": "Paused"}, 204)
            e.expect("PUT", "/snapshot/create",
                     {"snapshot_path": state_path, "mem_file_path": mem_path}, 204)
        with Ember(tmp, sock_name="second.sock") as e:
            e.expect("PUT", "/snapshot/load",
                     {"snapshot_path": state_path,
                      "mem_backend": {"backend_path": mem_path, "backend_type": "File"},
                      "resume_vm": True}, 204)
            e.expect("GET", "/vm/config", None, 200, '"msr_modifiers": [{"addr": "0x1a0", '
                     '"bitmap": "0b' + "x" * 63 + '1"}]')
            e.expect("GET", "/vm/config", None, 200, '"smt": true')
            e.send("cpuid 0x40000000 0\n")
            e.wait_output(KVM_LEAF_WITH_BIT_17)
            e.send("cpuid 0xb 0\n")
            e.wait_output(SMT_LEVEL)
            end_with_poweroff(e)


@test
def api_snapshot_load_into_prewarmed_shell():
    """--prewarm / --prewarm-mem: the load takes the shell (its log line says so) and the
    guest's memory is the snapshot's; a load of another size builds as usual."""
    with tempfile.TemporaryDirectory() as tmp:
        state_path, mem_path = os.path.join(tmp, "vm.state"), os.path.join(tmp, "vm.mem")
        with Ember(tmp) as e:
            boot(e)
            e.send("fill 8 6\n")
            e.wait_output("OK fill")
            e.expect("PATCH", "/vm", {"state": "Paused"}, 204)
            e.expect("PUT", "/snapshot/create",
                     {"snapshot_path": state_path, "mem_file_path": mem_path}, 204)
        for n, extra, line in ((1, ["--prewarm", "128", "--prewarm-mem", mem_path],
                                "prewarmed VM shell, memory file mapped ahead"),
                               (2, ["--prewarm", "128"], "prewarmed VM shell"),
                               (3, ["--prewarm", "256"], None)):
            with Ember(tmp, "--level", "Info", *extra, sock_name="%d.sock" % n) as e:
                e.expect("PUT", "/snapshot/load",
                         {"snapshot_path": state_path, "mem_file_path": mem_path,
                          "resume_vm": True}, 204)
                e.send("check 8 6\n")
                e.wait_output("OK check")
                end_with_poweroff(e)
                err = e.stderr()
                check(line in err if line else "prewarmed" not in err,
                      "%s: shell use: %s" % (extra, err[-1500:]))


@test
def api_logger_and_metrics():
    with tempfile.TemporaryDirectory() as tmp:
        log, metrics = os.path.join(tmp, "ember.log"), os.path.join(tmp, "metrics.json")
        with Ember(tmp, env={"EMBER_METRICS_PERIOD": "0.3"}) as e:
            e.expect("PUT", "/logger", {"log_path": log, "level": "Debug", "show_level": True,
                                        "show_log_origin": True}, 204)
            e.expect("PUT", "/metrics", {"metrics_path": metrics}, 204)
            e.expect("GET", "/nowhere", None, 400)
            boot(e)
            e.expect("PATCH", "/vm", {"state": "Paused"}, 204)
            e.expect("PUT", "/snapshot/create", {"snapshot_path": os.path.join(tmp, "s"),
                                                 "mem_file_path": os.path.join(tmp, "m")}, 204)
            e.expect("PATCH", "/vm", {"state": "Resumed"}, 204)
            e.expect("PUT", "/actions", {"action_type": "FlushMetrics"}, 204)
            time.sleep(1.0)  # periodic lines, without asking
            end_with_poweroff(e)
        with open(log) as f:
            text = f.read()
        check(" debug src/api/router.c:" in text and "GET /nowhere: 400" in text,
              "log lacks level, origin or the request: %r" % text[-1000:])
        with open(metrics) as f:
            lines = [json.loads(x) for x in f]
        check(len(lines) >= 3, "only %d metrics lines" % len(lines))
        total = {}
        for ln in lines:
            for k, v in ln["vcpu"].items():
                total[k] = total.get(k, 0) + v
        check(total["exit_io"] > 0, "no vCPU I/O exits counted: %r" % total)
        flushed = [ln for ln in lines if ln["patch_api_requests"]["vm_state_count"] == 2]
        check(flushed and flushed[0]["latencies_us"]["pause_vm"] > 0 and
              flushed[0]["vmm"]["boot_us"] >= 0, "pause/resume not in metrics: %r" % lines[:2])
        check(any(ln["get_api_requests"]["other_fails"] == 1 for ln in lines),
              "failed request not counted")
        snap, vmm = flushed[0]["latencies_us"]["full_create_snapshot"], flushed[0]["vmm"]
        check(0 < vmm["last_snapshot_sync_us"] < vmm["last_snapshot_us"] <= snap and
              vmm["last_snapshot_bytes"] > 0, "snapshot figures: %d us, vmm %r" % (snap, vmm))
