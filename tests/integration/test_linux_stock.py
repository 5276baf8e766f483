"""Debian's stock cloud kernel under ember: ACPI on, both vCPUs from the MADT, its virtio
devices found through the DSDT (it has no command-line virtio-mmio support), and, where
guest user space runs, its virtio modules loaded by /init and a shell.

On hardware KVM (and in the KVM sandbox) it boots in seconds and is part of `make test`.
On an emulating host it needs tens of minutes to reach /init, so there it runs only when
EMBER_STOCK_LINUX=1 (`make test-linux-stock`)."""
import os
import re
import tempfile

import run
from run import Fail, Skip, check, ember, test
from test_linux import emulating, linux_dir

HERE = os.path.dirname(os.path.abspath(__file__))


@test
def linux_stock_kernel_boots_with_acpi():
    if emulating() and not os.environ.get("EMBER_STOCK_LINUX"):
        raise Skip("the stock kernel's boot takes tens of minutes on an emulating host; "
                   "`make test-linux-stock` runs it")
    if run.ARGS.sanitizer:
        raise Skip("runs with the normal build")
    d = linux_dir()
    if not os.path.exists(os.path.join(d, "vmlinux-cloud")):
        raise Fail("no stock kernel in %s: run `make guest-linux` first" % d)
    tmp = tempfile.mkdtemp(prefix="ember-stock-")
    r = ember("run", os.path.join(HERE, "linux", "stock_boot.lua"), tmp, d,
              timeout=4000 if emulating() else 600)
    facts = dict(re.findall(r"^RESULT (\S+) (.*)$", r.stdout, re.M))
    log = open(os.path.join(tmp, "kernel.log"), errors="replace").read()
    print("  stock kernel: goal reached after %s s" % facts.get("boot_s"))
    check(r.returncode == 0, "status %d: %s" % (r.returncode, r.stderr[-2000:]))
    check(facts.get("reached") == "yes", "the kernel did not get there (%r); ember said:\n%s"
          "\nlast lines:\n%s" % (facts.get("exit"), r.stderr[-1500:],
                                 "\n".join(log.splitlines()[-20:])))
    for what, pattern in [
        ("the DSDT loaded", r"ACPI: 1 ACPI AML tables successfully acquired and loaded"),
        ("ACPI on", r"ACPI: Interpreter enabled"),
        ("vCPUs from the MADT", r"ACPI: Using ACPI \(MADT\) for SMP configuration"),
        ("vCPUs brought up", r"smp: Brought up 1 node, 2 CPUs"),
        ("init started", r"Run /init as init process"),
    ]:
        check(re.search(pattern, log), "%s: no /%s/ in the kernel log" % (what, pattern))
    if emulating():
        return  # its modules load from user space, which cannot run on this host
    check("ember-guest: cannot load" not in log, "a virtio module did not load")
    check(re.search(r"virtio_blk virtio\d+: \[vda\]", log), "virtio-blk not probed")
    check(facts.get("cpuinfo_processors") == "2", "/proc/cpuinfo: %r" %
          facts.get("cpuinfo_processors"))
    check(facts.get("exit") == "poweroff", "poweroff: %r" % facts.get("exit"))
