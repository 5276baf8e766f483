"""A Linux guest's view of the CPU model (issue 15 item 2): smt and a custom CPU template
set through the API, read from /proc/cpuinfo, again after a snapshot restore in a new
ember process.

Needs guest user space: hardware KVM or the KVM sandbox (skipped on an emulating host)."""
import os
import re
import tempfile

from run import check, test
from linux_shell import CMDLINE, PROMPT_LINE, Shell
from test_linux import needs_linux_user_space

# Leaf 1 EAX set to family 6, model 0x3f, stepping 2 (T2's signature); every other bit kept.
TEMPLATE = {"cpuid_modifiers": [{"leaf": "0x1", "subleaf": "0x0", "flags": 0, "modifiers": [
    {"register": "eax", "bitmap": "0bxxxx000000000011xx00011011110010"}]}]}


def cpu_view(s):
    """(cpu family, model, stepping, siblings, cpu cores, [core ids]) from /proc/cpuinfo."""
    info = s.sh("cat /proc/cpuinfo")
    field = lambda k: re.findall(r"^%s\s*: (\S+)" % k, info, re.M)
    return (field("cpu family")[0], field("model")[0], field("stepping")[0],
            field("siblings")[0], field("cpu cores")[0], field("core id"))


def check_view(s, where):
    view = cpu_view(s)
    check(view[:3] == ("6", "63", "2"), "%s: family/model/stepping %r, want the template's"
          % (where, view[:3]))
    check(view[3:5] == ("2", "1"), "%s: siblings/cpu cores %r, want 2 threads on 1 core" %
          (where, view[3:5]))
    check(view[5] == ["0", "0"], "%s: core ids %r, want both threads on core 0" %
          (where, view[5]))


@test
def linux_sees_smt_and_the_cpu_template_after_restore():
    d = needs_linux_user_space()
    with tempfile.TemporaryDirectory() as tmp:
        state, mem = os.path.join(tmp, "vm.state"), os.path.join(tmp, "vm.mem")
        s = Shell(tmp, "boot")
        try:
            s.expect("PUT", "/machine-config", {"vcpu_count": 2, "mem_size_mib": 256,
                                                "smt": True}, 204)
            s.expect("PUT", "/cpu-config", TEMPLATE, 204)
            s.expect("PUT", "/boot-source", {
                "kernel_image_path": os.path.join(d, "vmlinux"),
                "initrd_path": os.path.join(d, "initramfs.cpio.gz"), "boot_args": CMDLINE},
                204)
            s.expect("PUT", "/actions", {"action_type": "InstanceStart"}, 204)
            s.wait_output(PROMPT_LINE, timeout=20)
            check_view(s, "booted")
            s.snapshot(state, mem)
        finally:
            s.close()
        r = Shell(tmp, "restored")
        try:
            r.expect("PUT", "/snapshot/load", {
                "snapshot_path": state, "resume_vm": True,
                "mem_backend": {"backend_type": "File", "backend_path": mem}}, 204)
            check_view(r, "restored")
            r.expect("GET", "/vm/config", None, 200, '"smt": true')
        finally:
            r.close()
