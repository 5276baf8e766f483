"""PUT, PATCH and GET /hotplug/memory (virtio-mem, issue 15 item 3) answered as Firecracker
answers them (its vmm_config/memory_hotplug.rs, api_server/request/hotplug/memory.rs and
rpc_interface.rs texts), before and after the start, and --config-file's memory-hotplug.
On the test guest, which has no virtio-mem driver: the device is there but never started,
so a size request gets Firecracker's "Device is not active" (the Linux guest's plugging is
test_linux_shell_memhotplug.py)."""
import json
import os
import tempfile

from run import check, guest_kernel, test
from test_api import Ember, ember
from test_fc_api import (DESER, NOT_SUPPORTED_AFTER_START, NOT_SUPPORTED_BEFORE_START,
                         basic_config, fault, ok, start)

CONFIG = "Memory hotplug config error: "
UPDATE = "Memory hotplug update error: "
NOT_FOUND = "Failed perform action on device: Device not found"
DEVICE = UPDATE + "Failed to create memory hotplug device: "
INVALID = DEVICE + ("Size %d is invalid: it must be a multiple of block size and less than "
                    "the total size")


@test
def fc_hotplug_memory_put_checks_and_refusals():
    with tempfile.TemporaryDirectory() as tmp, Ember(tmp) as e:
        basic_config(e, tmp)
        fault(e, "GET", "/hotplug/memory", exact=NOT_SUPPORTED_BEFORE_START)
        fault(e, "PATCH", "/hotplug/memory", {"requested_size_mib": 0},
              exact=NOT_SUPPORTED_BEFORE_START)
        # serde's refusals: a wrong type, an unknown field, a missing one.
        fault(e, "PUT", "/hotplug/memory", {"total_size_mib": "bar"}, match="^" + DESER)
        fault(e, "PUT", "/hotplug/memory", {"total_size_mib": 1024, "foo": 1},
              match="^" + DESER + "unknown field `foo`")
        fault(e, "PUT", "/hotplug/memory", {"block_size_mib": 2},
              match="^" + DESER + "missing field `total_size_mib`")
        # validate(), in its order.
        for body, text in (
                ({"total_size_mib": 1024, "block_size_mib": 1}, "Block size must not be "
                 "lower than 2 MiB"),
                ({"total_size_mib": 1024, "block_size_mib": 3}, "Block size must be a power "
                 "of 2"),
                ({"total_size_mib": 1024, "slot_size_mib": 64}, "Slot size must not be lower "
                 "than 128 MiB"),
                ({"total_size_mib": 1024, "block_size_mib": 256, "slot_size_mib": 384},
                 "Slot size must be a multiple of block size (256 MiB)"),
                ({"total_size_mib": 64}, "Total size must not be lower than slot size (128 "
                 "MiB)"),
                ({"total_size_mib": 200}, "Total size must be a multiple of slot size (128 "
                 "MiB)")):
            fault(e, "PUT", "/hotplug/memory", body, exact=CONFIG + text)
        # Refused bodies left nothing behind.
        got = ok(e, "GET", "/vm/config", status=200)[0]["memory-hotplug"]
        check(got is None, "/vm/config memory-hotplug after refusals: %r" % got)
        ok(e, "PUT", "/hotplug/memory", {"total_size_mib": 2048})
        got = ok(e, "GET", "/vm/config", status=200)[0]["memory-hotplug"]
        want = {"total_size_mib": 2048, "block_size_mib": 2, "slot_size_mib": 128}
        check(got == want, "/vm/config memory-hotplug (defaults): %r" % got)
        ok(e, "PUT", "/hotplug/memory", {"total_size_mib": 1024, "block_size_mib": 4,
                                          "slot_size_mib": 256})
        start(e)
        fault(e, "PUT", "/hotplug/memory", {"total_size_mib": 2048},
              exact=NOT_SUPPORTED_AFTER_START)
        got = ok(e, "GET", "/hotplug/memory", status=200)[0]
        want = {"total_size_mib": 1024, "block_size_mib": 4, "slot_size_mib": 256,
                "plugged_size_mib": 0, "requested_size_mib": 0}
        check(got == want, "GET /hotplug/memory after the start: %r" % got)
        fault(e, "PATCH", "/hotplug/memory", {"requested_size_mib": 6},
              exact=INVALID % (6 << 20))
        fault(e, "PATCH", "/hotplug/memory", {"requested_size_mib": 2048},
              exact=INVALID % (2048 << 20))
        fault(e, "PATCH", "/hotplug/memory", {"requested_size_mib": -1}, match="^" + DESER)
        # The test guest has no virtio-mem driver: Firecracker's answer for a device the
        # guest did not start.
        fault(e, "PATCH", "/hotplug/memory", {"requested_size_mib": 8},
              exact=DEVICE + "Device is not active")
        got = ok(e, "GET", "/hotplug/memory", status=200)[0]
        check(got == want, "GET /hotplug/memory after refused PATCHes: %r" % got)


@test
def fc_hotplug_memory_without_the_device():
    with tempfile.TemporaryDirectory() as tmp, Ember(tmp) as e:
        basic_config(e, tmp)
        start(e)
        fault(e, "GET", "/hotplug/memory", exact="Internal VMM error: " + NOT_FOUND)
        fault(e, "PATCH", "/hotplug/memory", {"requested_size_mib": 0},
              exact=UPDATE + NOT_FOUND)
        check(ok(e, "GET", "/vm/config", status=200)[0]["memory-hotplug"] is None,
              "/vm/config memory-hotplug without one")


@test
def fc_hotplug_memory_config_file():
    """--config-file's memory-hotplug section: applied (GET shows the area), and a bad
    one refused naming the file and section, with the API's text."""
    with tempfile.TemporaryDirectory() as tmp:
        cfg, img = os.path.join(tmp, "vm.json"), os.path.join(tmp, "rootfs.img")
        with open(img, "wb") as f:
            f.truncate(1 << 20)
        body = {"boot-source": {"kernel_image_path": guest_kernel(), "boot_args": ""},
                "machine-config": {"vcpu_count": 1, "mem_size_mib": 96},
                "drives": [{"drive_id": "rootfs", "path_on_host": img,
                            "is_root_device": True, "is_read_only": True}],
                "memory-hotplug": {"total_size_mib": 256}}
        with open(cfg, "w") as f:
            json.dump(body, f)
        with Ember(tmp, "--config-file", cfg) as e:
            e.wait_output("ember-test-guest ready")
            got = ok(e, "GET", "/hotplug/memory", status=200)[0]
            check(got == {"total_size_mib": 256, "block_size_mib": 2, "slot_size_mib": 128,
                          "plugged_size_mib": 0, "requested_size_mib": 0},
                  "GET /hotplug/memory from the config file: %r" % got)
        body["memory-hotplug"]["block_size_mib"] = 3
        with open(cfg, "w") as f:
            json.dump(body, f)
        r = ember("--no-api", "--config-file", cfg, timeout=20)
        check(r.returncode == 152 and cfg + ": memory-hotplug: " + CONFIG +
              "Block size must be a power of 2" in r.stderr, "bad memory-hotplug: %r" % (r,))
