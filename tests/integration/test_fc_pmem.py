"""virtio-pmem through Firecracker's API (/pmem/{id}), the config file and Lua: the
requests and answers of Firecracker's test_pmem_api, test_pmem_rate_limiter_api and
test_pmem_zero_size_backing_file, with its texts byte for byte where known. Pre-boot
checks need no guest; the post-boot ones boot the test guest, which lists the device
(it has no pmem driver: what Linux sees is in test_linux_shell_pmem.py)."""
import json
import os
import tempfile

from run import check, definition, ember, guest_kernel, test, write_def
from test_api import Ember
from test_fc_api import DESER, NOT_SUPPORTED_AFTER_START, NOT_SUPPORTED_BEFORE_START, fault, ok

PMEM_ERR = "Pmem config error: "
LIMIT = {"bandwidth": {"size": 1000000, "refill_time": 100},
         "ops": {"size": 10, "refill_time": 1000}}


def scratch(tmp, name="scratch", size=2 << 20):
    path = os.path.join(tmp, name)
    with open(path, "wb") as f:
        f.truncate(size)
    return path


def boot_config(e, tmp, vcpus=1):
    ok(e, "PUT", "/machine-config", {"vcpu_count": vcpus, "mem_size_mib": 128})
    ok(e, "PUT", "/boot-source", {"kernel_image_path": guest_kernel(), "boot_args": ""})


@test
def fc_pmem_api_put_checks_as_firecracker():
    with tempfile.TemporaryDirectory() as tmp, Ember(tmp) as e:
        boot_config(e, tmp)
        path = scratch(tmp)
        fault(e, "PUT", "/pmem/pmem", {"id": "pmem"},
              match="^" + DESER + "missing field `path_on_host`")
        fault(e, "PUT", "/pmem/pmem", {"id": "other", "path_on_host": path},
              exact="The id from the path does not match the id from the body!")
        fault(e, "PUT", "/pmem/pmem", {"id": "pmem", "path_on_host": path, "size": 3},
              match="unknown field `size`")
        fault(e, "PUT", "/pmem/pmem", {"id": "pmem", "path_on_host": path, "read_only": 1},
              match="invalid type")
        # A root drive, then a root pmem: Firecracker's words.
        ok(e, "PUT", "/drives/drive", {"drive_id": "drive", "path_on_host": path,
                                       "is_root_device": True})
        fault(e, "PUT", "/pmem/pmem", {"id": "pmem", "path_on_host": path,
                                       "root_device": True},
              exact=PMEM_ERR + "Attempt to add pmem as a root device while the root device "
              "defined as a block device")
        ok(e, "PUT", "/drives/drive", {"drive_id": "drive", "path_on_host": path,
                                       "is_root_device": False})
        # Two root pmem devices: the second is refused; the first may be replaced.
        ok(e, "PUT", "/pmem/pmem", {"id": "pmem", "path_on_host": path, "root_device": True})
        fault(e, "PUT", "/pmem/pmem2", {"id": "pmem2", "path_on_host": path,
                                        "root_device": True},
              exact=PMEM_ERR + "A root pmem device already exist")
        ok(e, "PUT", "/pmem/pmem", {"id": "pmem", "path_on_host": path, "root_device": True,
                                    "read_only": True})
        # And a root drive while pmem is root: the drive's side of the same rule.
        fault(e, "PUT", "/drives/drive", {"drive_id": "drive", "path_on_host": path,
                                          "is_root_device": True},
              exact="Drive config error: Attempt to add block as a root device while the root "
              "device defined as a pmem device")
        ok(e, "PUT", "/pmem/pmem", {"id": "pmem", "path_on_host": path, "root_device": False})
        # A file that does not open is refused at once (ember; Firecracker at start).
        fault(e, "PUT", "/pmem/gone", {"id": "gone", "path_on_host": os.path.join(tmp, "no")},
              exact=PMEM_ERR + "Error accessing underlying file: No such file or directory "
              "(os error 2)")
        fault(e, "PUT", "/pmem/dir", {"id": "dir", "path_on_host": tmp},
              exact=PMEM_ERR + "Error accessing underlying file: Is a directory (os error 21)")
        fault(e, "PUT", "/pmem/null", {"id": "null", "path_on_host": "/dev/null"},
              exact=PMEM_ERR + "pmem 'null': /dev/null is not a regular file or a block device")
        # The rate limiter shows in /vm/config, and goes when a PUT leaves it out.
        ok(e, "PUT", "/pmem/pmem0", {"id": "pmem0", "path_on_host": path,
                                     "rate_limiter": LIMIT})
        got = ok(e, "GET", "/vm/config", status=200)[0]["pmem"]
        check([p["id"] for p in got] == ["pmem", "pmem0"], "pmem list: %r" % got)
        check(got[0] == {"id": "pmem", "path_on_host": path, "root_device": False,
                         "read_only": False, "rate_limiter": None}, "pmem: %r" % got[0])
        check(got[1]["rate_limiter"]["bandwidth"]["size"] == 1000000 and
              got[1]["rate_limiter"]["ops"]["size"] == 10, "limit: %r" % got[1])
        ok(e, "PUT", "/pmem/pmem0", {"id": "pmem0", "path_on_host": path})
        got = ok(e, "GET", "/vm/config", status=200)[0]["pmem"]
        check(got[1]["rate_limiter"] is None, "limit after a PUT without: %r" % got[1])
        fault(e, "PUT", "/pmem/bad", {"id": "bad", "path_on_host": path,
                                      "rate_limiter": {"ops": {"size": 1}}},
              match="^" + DESER + "missing field `refill_time`")
        # PATCH before boot, even for a device that does not exist.
        fault(e, "PATCH", "/pmem/nonexistent", {"id": "nonexistent", "rate_limiter": {
            "ops": {"size": 1, "refill_time": 100}}}, exact=NOT_SUPPORTED_BEFORE_START)
        # Eight at most (one KVM slot each).
        for i in range(6):
            ok(e, "PUT", "/pmem/p%d" % i, {"id": "p%d" % i, "path_on_host": path})
        fault(e, "PUT", "/pmem/p9", {"id": "p9", "path_on_host": path},
              exact=PMEM_ERR + "at most 8 pmem devices")


@test
def fc_pmem_zero_size_backing_file_fails_at_start():
    with tempfile.TemporaryDirectory() as tmp, Ember(tmp) as e:
        boot_config(e, tmp)
        ok(e, "PUT", "/pmem/pmem", {"id": "pmem", "path_on_host": scratch(tmp, "zero", 0)})
        fault(e, "PUT", "/actions", {"action_type": "InstanceStart"},
              match="Error backing file size is 0")


@test
def fc_pmem_after_boot_put_refused_patch_changes_the_limiter():
    with tempfile.TemporaryDirectory() as tmp, Ember(tmp) as e:
        boot_config(e, tmp)
        # 1 MiB and 3 MiB: the guest sees 2 and 4 MiB (2 MiB granules).
        one, three = scratch(tmp, "one", 1 << 20), scratch(tmp, "three", 3 << 20)
        ok(e, "PUT", "/pmem/pmem0", {"id": "pmem0", "path_on_host": one, "rate_limiter": LIMIT})
        ok(e, "PUT", "/pmem/pmem1", {"id": "pmem1", "path_on_host": three, "read_only": True})
        ok(e, "PUT", "/actions", {"action_type": "InstanceStart"})
        e.wait_output("ember-test-guest ready")
        listed = e.ask("virtio list")
        check(listed == "OK virtio 0:pmem 1:pmem", "virtio list: " + listed)
        fault(e, "PUT", "/pmem/pmem", {"id": "pmem", "path_on_host": one},
              exact=NOT_SUPPORTED_AFTER_START)
        for limit in ({"bandwidth": {"size": 5000, "refill_time": 100},
                       "ops": {"size": 500, "refill_time": 100}},
                      {"bandwidth": {"size": 2000000, "refill_time": 200}},
                      {"ops": {"size": 100, "refill_time": 500}}):
            ok(e, "PATCH", "/pmem/pmem0", {"id": "pmem0", "rate_limiter": limit})
        ok(e, "PATCH", "/pmem/pmem0", {"id": "pmem0"})
        got = ok(e, "GET", "/vm/config", status=200)[0]["pmem"]
        check(got[0]["rate_limiter"]["bandwidth"]["size"] == 2000000 and
              got[0]["rate_limiter"]["ops"] == {"size": 100, "one_time_burst": None,
                                                "refill_time": 500} and
              got[1]["read_only"] is True, "pmem after PATCH: %r" % got)
        fault(e, "PATCH", "/pmem/pmem0", {"id": "pmem0", "path_on_host": "foo", "rate_limiter": {
            "ops": {"size": 1, "refill_time": 100}}}, match="unknown field")
        fault(e, "PATCH", "/pmem/nonexistent", {"id": "nonexistent", "rate_limiter": {
            "ops": {"size": 1, "refill_time": 100}}},
              exact=PMEM_ERR + "Unable to patch the pmem device: Failed perform action on "
              "device: Device not found Please verify the request arguments.")
        e.send("poweroff\n")
        e.wait(20)


@test
def fc_pmem_config_file_and_lua_definition():
    with tempfile.TemporaryDirectory() as tmp:
        one = scratch(tmp, "one", 1 << 20)
        cfg = os.path.join(tmp, "vm.json")
        with open(cfg, "w") as f:
            json.dump({"boot-source": {"kernel_image_path": guest_kernel(), "boot_args": ""},
                       "machine-config": {"vcpu_count": 1, "mem_size_mib": 64},
                       "pmem": [{"id": "pmem0", "path_on_host": one, "root_device": True,
                                 "read_only": False}]}, f)
        with Ember(tmp, "--config-file", cfg) as e:
            e.wait_output("ember-test-guest ready")
            check(e.ask("virtio list") == "OK virtio 0:pmem", "virtio list (config file)")
            got = ok(e, "GET", "/vm/config", status=200)[0]
            check(got["pmem"] == [{"id": "pmem0", "path_on_host": one, "root_device": True,
                                   "read_only": False, "rate_limiter": None}],
                  "pmem from the file: %r" % got["pmem"])
            check("root=/dev/pmem0 rw" in e.ask("info", prefix="OK cpus"), "root= on the command line")
            e.send("poweroff\n")
            e.wait(20)
        # A bad entry names the file and the section.
        with open(cfg, "w") as f:
            json.dump({"boot-source": {"kernel_image_path": guest_kernel()},
                       "pmem": [{"id": "p", "path_on_host": one, "ro": True}]}, f)
        r = ember("--no-api", "--config-file", cfg, timeout=20)
        check(r.returncode == 152 and cfg + ": pmem" in r.stderr and "unknown field" in r.stderr,
              "bad pmem section: %r" % (r,))
        # Lua: pmem = { {...}, ... }, ids pmem0, pmem1 when left out.
        d = write_def(tmp, definition('pmem = { { path = "%s" }, { path = "%s", read_only = true, '
                                      'root_device = true } }' % (one, one)))
        r = ember("run", d, stdin="virtio list\ninfo\npoweroff\n", timeout=30)
        check(r.returncode == 0 and "OK virtio 0:pmem 1:pmem" in r.stdout and
              "root=/dev/pmem1 ro" in r.stdout, "Lua pmem: %r" % (r,))
        # vm:update_pmem, Lua's PATCH /pmem.
        script = write_def(tmp, (
            'local vm = assert(ember.vm { kernel = ember.guest.test_kernel, memory_mib = 64, '
            'console = "none", pmem = { { path = "%s", rate_limit = { ops = { size = 10, '
            'refill_time = 1000 } } } } })\n'
            'vm:start()\n'
            'assert(vm:wait_for("ember%%-test%%-guest ready", 20))\n'
            'print("UPDATE", vm:update_pmem { id = "pmem0", rate_limit = { ops = { size = 5, '
            'refill_time = 100 } } })\n'
            'print("NOPE", vm:update_pmem { id = "nope", rate_limit = { ops = { size = 5, '
            'refill_time = 100 } } })\n'
            'print("BAD", pcall(vm.update_pmem, vm, { id = "pmem0" }))\n'
            'vm:stop()\n') % one, name="script.lua")
        r = ember("run", script, timeout=30)
        check(r.returncode == 0 and "UPDATE\ttrue" in r.stdout and
              "NOPE\tnil\tpmem 'nope': no such pmem device" in r.stdout and
              "BAD\tfalse" in r.stdout and "rate_limit is required" in r.stdout,
              "vm:update_pmem: %r" % (r,))
        for bad, want in (('pmem = { { path = "%s", size = 1 } }' % one, "pmem[1]"),
                          ('pmem = { "x" }', "pmem[1]: expected a table"),
                          ('pmem = { { path = "%s", root_device = true }, { path = "%s", '
                           'root_device = true } }' % (one, one),
                           "pmem 'pmem1': A root pmem device already exist"),
                          ('pmem = { { path = "%s" } }' % os.path.join(tmp, "nothing"),
                           "pmem 'pmem0': cannot open")):
            r = ember("run", write_def(tmp, definition(bad)), stdin="poweroff\n", timeout=20)
            check(r.returncode != 0 and want in r.stderr, "Lua %s: %r" % (bad, r))


@test
def fc_pmem_snapshot_keeps_the_devices_and_refuses_a_resized_file():
    with tempfile.TemporaryDirectory() as tmp:
        three = scratch(tmp, "three", 3 << 20)
        state, mem = os.path.join(tmp, "vm.state"), os.path.join(tmp, "vm.mem")
        with Ember(tmp) as e:
            boot_config(e, tmp)
            ok(e, "PUT", "/pmem/data", {"id": "data", "path_on_host": three,
                                        "rate_limiter": LIMIT})
            ok(e, "PUT", "/actions", {"action_type": "InstanceStart"})
            e.wait_output("ember-test-guest ready")
            ok(e, "PATCH", "/vm", {"state": "Paused"})
            ok(e, "PUT", "/snapshot/create", {"snapshot_path": state, "mem_file_path": mem})
            before = ok(e, "GET", "/vm/config", status=200)[0]["pmem"]
        r = ember("snapshot", "info", state)
        check(r.returncode == 0 and "pmem:          data %s" % three in r.stdout,
              "snapshot info: %r" % (r,))
        load = {"snapshot_path": state, "resume_vm": True,
                "mem_backend": {"backend_type": "File", "backend_path": mem}}
        with Ember(tmp, sock_name="restored.sock") as e:
            ok(e, "PUT", "/snapshot/load", load)
            check(ok(e, "GET", "/vm/config", status=200)[0]["pmem"] == before,
                  "pmem after the restore")
            check(e.ask("virtio list") == "OK virtio 0:pmem", "virtio list after the restore")
            ok(e, "PATCH", "/pmem/data", {"id": "data", "rate_limiter": {
                "ops": {"size": 5, "refill_time": 100}}})
            e.send("poweroff\n")
            e.wait(20)
        # The guest's driver keeps the region it probed: a file that now needs a larger
        # one is refused, in Firecracker's words, and the file is left as it is.
        os.truncate(three, 5 << 20)
        with Ember(tmp, sock_name="resized.sock") as e:
            fault(e, "PUT", "/snapshot/load", load,
                  match="pmem 'data': Restored pmem size 4194304 does not match backing file "
                  "mapping size 6291456")
        check(os.path.getsize(three) == 5 << 20, "the file was changed")
