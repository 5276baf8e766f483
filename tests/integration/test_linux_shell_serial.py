"""Firecracker's serial output file seen with Linux (issue 15): a fresh boot with
`PUT /serial {"serial_out_path": ...}`. The kernel's console and the busybox shell write to
the file and nothing reaches ember's stdout, while the shell still reads what is typed on
ember's stdin: a line typed there is answered in the file. `poweroff` ends ember with 0.

Needs guest user space (hardware KVM or the KVM sandbox)."""
import os
import tempfile
import time

from run import Fail, check, secs, test
from linux_shell import CMDLINE, PROMPT_LINE, Shell
from test_linux import needs_linux_user_space


def wait_in_file(path, needle, what, timeout):
    """The file's text once it holds `needle`."""
    end = time.time() + secs(timeout)
    text = ""
    while time.time() < end:
        if os.path.exists(path):
            with open(path, "rb") as f:
                text = f.read().decode(errors="replace")
            if needle in text:
                return text
        time.sleep(0.1)
    raise Fail("%s: no %r in %s after %d s: %r" % (what, needle, path, secs(timeout),
                                                    text[-600:]))


@test
def linux_inside_serial_output_goes_to_the_file_and_input_still_comes_from_stdin():
    d = needs_linux_user_space()
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "serial.out")
        s = Shell(tmp, "serial")
        try:
            s.expect("PUT", "/machine-config", {"vcpu_count": 1, "mem_size_mib": 128}, 204)
            s.expect("PUT", "/boot-source", {
                "kernel_image_path": os.path.join(d, "vmlinux"),
                "initrd_path": os.path.join(d, "initramfs.cpio.gz"), "boot_args": CMDLINE},
                204)
            s.expect("PUT", "/serial", {"serial_out_path": out}, 204)
            s.expect("PUT", "/actions", {"action_type": "InstanceStart"}, 204)
            text = wait_in_file(out, PROMPT_LINE, "boot", 60)
            check("Linux version" in text, "no kernel banner in the file: %r" % text[:600])
            s.send("echo serial-$((6*7))\n")
            wait_in_file(out, "serial-42", "a line typed on stdin", 30)
            with s.lock:
                check(not s.out, "console bytes on ember's stdout: %r" % s.out[-400:])
            check(s.power("poweroff") == 0, "poweroff: ember's status")
            wait_in_file(out, "reboot: Power down", "poweroff", 10)
        finally:
            s.close()
