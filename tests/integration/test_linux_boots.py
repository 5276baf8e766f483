"""Many Linux boots in a row, two at a time (a loaded host), with 1 and 2 vCPUs, as an
ELF vmlinux and as a bzImage: every one must reach /init's readiness line and end with
status 0 when `poweroff` is typed at its shell. Early-boot resets (ember exit 3) were seen
in bursts on some runs and not at all on others, so one boot proves little: this is the
test that would catch them, and it names each boot that went wrong with its last lines.

Needs guest user space: skipped on an emulating host (a boot there takes minutes)."""
import os
import subprocess
import tempfile
import threading
import time

import run
from run import Skip, check, secs, test, write_def
from test_linux import emulating, linux_dir

ROUNDS = int(os.environ.get("EMBER_LINUX_BOOT_ROUNDS", "4"))


def boot(ember, path, out):
    """Boot one definition; type `poweroff` once the guest is ready. Returns
    (status, reached ready, seconds to ready)."""
    t0 = time.monotonic()
    with open(out, "wb") as log:
        p = subprocess.Popen([ember, "run", path], stdin=subprocess.PIPE, stdout=log,
                             stderr=subprocess.STDOUT)
    ready_s = None
    try:
        deadline = time.monotonic() + secs(60)
        while time.monotonic() < deadline and p.poll() is None:
            if b"ember-guest: shell on the console" in open(out, "rb").read():
                ready_s = time.monotonic() - t0
                p.stdin.write(b"poweroff\n")
                p.stdin.flush()
                break
            time.sleep(0.05)
        status = p.wait(secs(30))
    except (subprocess.TimeoutExpired, BrokenPipeError):
        status = None
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    return status, ready_s


@test
def linux_boots_again_and_again():
    if run.ARGS.sanitizer:
        raise Skip("runs with the normal build")
    if emulating():
        raise Skip("a Linux boot takes minutes on an emulating host and its user space "
                   "cannot run there")
    d = linux_dir()
    if not os.path.exists(os.path.join(d, "vmlinux")):
        raise Skip("no Linux guest in %s: run `make guest-linux` first" % d)
    kinds = [(1, "vmlinux"), (2, "vmlinux"), (2, "bzImage"), (1, "bzImage")]
    results, problems = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(ROUNDS):
            pair = [kinds[(2 * r) % len(kinds)], kinds[(2 * r + 1) % len(kinds)]]
            threads = []
            for i, (vcpus, image) in enumerate(pair):
                name = "boot%d-%d-%dcpu-%s" % (r, i, vcpus, image)
                path = write_def(tmp, (
                    'return ember.vm { vcpus = %d, memory_mib = 256, kernel = "%s/%s", '
                    'initrd = "%s/initramfs.cpio", console = "stdio", entropy = {}, '
                    'cmdline = "console=ttyS0 reboot=k panic=1 pci=off" }\n'
                    % (vcpus, d, image, d)), name + ".lua")
                out = os.path.join(tmp, name + ".out")

                def one(name=name, path=path, out=out):
                    status, ready = boot(run.ARGS.ember, path, out)
                    results.append((name, status, ready))
                    if status != 0 or ready is None:
                        tail = open(out, "rb").read()[-1500:].decode("utf-8", "replace")
                        problems.append("%s: status %s, %s; last output:\n%s" % (
                            name, status, "ready" if ready else "never ready", tail))
                t = threading.Thread(target=one)
                t.start()
                threads.append(t)
            for t in threads:
                t.join()
    times = sorted(r[2] for r in results if r[2] is not None)
    print("  linux: %d boots, %d ended right; spawn to shell %.1f-%.1f s" % (
        len(results), len(results) - len(problems), times[0] if times else 0,
        times[-1] if times else 0))
    check(not problems, "%d of %d boots went wrong:\n%s" % (
        len(problems), len(results), "\n".join(problems)))
