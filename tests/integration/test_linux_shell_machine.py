"""Linux's view of the machine it was given (issue 12 item 1): the vCPUs of the definition
are all in /proc/cpuinfo and online, and the memory it was given is the memory it has.

(SendCtrlAltDel is shown from Linux beside poweroff and reboot, in test_linux_shell.py.)

Two fresh boots (1 vCPU with 128 MiB, 4 vCPUs with 512 MiB), not restores of the golden
snapshot: the machine is fixed when a VM is born. Needs guest user space (hardware KVM or
the KVM sandbox)."""
import re
import tempfile

from run import check, test
from linux_shell import start_shell
from test_linux import needs_linux_user_space

MACHINES = ((1, 128), (4, 512))


def seen(s):
    """(processors in /proc/cpuinfo, /sys's online list, MemTotal in kB)."""
    out = s.sh("grep -c ^processor /proc/cpuinfo; cat /sys/devices/system/cpu/online; "
               "grep MemTotal /proc/meminfo")
    m = re.search(r"^(\d+)\n([-0-9,]+)\nMemTotal:\s+(\d+) kB$", out, re.M)
    check(m, "%s: /proc and /sys printed %r" % (s.name, out))
    return int(m.group(1)), m.group(2), int(m.group(3))


@test
def linux_inside_vcpus_and_memory_match_the_definition():
    d = needs_linux_user_space()
    totals = {}
    with tempfile.TemporaryDirectory() as tmp:
        for vcpus, mib in MACHINES:
            name = "m%dx%d" % (vcpus, mib)
            with start_shell(tmp, name, d, None, None, vcpus=vcpus, mem_mib=mib) as s:
                cpus, online, total = seen(s)
                want_online = "0" if vcpus == 1 else "0-%d" % (vcpus - 1)
                check(cpus == vcpus and online == want_online,
                      "%s: %d processors, online %r; want %d, %r" %
                      (name, cpus, online, vcpus, want_online))
                # The kernel keeps its image and page tables out of MemTotal: less than
                # given, but most of it.
                check(mib * 1024 * 3 // 4 < total <= mib * 1024,
                      "%s: MemTotal %d kB of %d MiB given" % (name, total, mib))
                totals[mib] = total
    # What the larger machine has more of is what it was given more of, less the kernel's
    # page structures for it (64 bytes for each 4 KiB page: 6 MiB of 384 MiB).
    more, given = totals[512] - totals[128], (512 - 128) * 1024
    check(given - 16 * 1024 <= more <= given,
          "512 MiB has %d kB more MemTotal than 128 MiB, want %d kB less its struct pages"
          % (more, given))
