"""Linux guests under KVM: booted once per run, snapshotted part-way, restored to finish.

Checked by what the kernel prints: ACPI on (tables found, DSDT loaded), CPUs (ACPI
MADT), memory (e820), the virtio devices it found in the DSDT and probed, the ext4 root it mounted itself from virtio-blk, and `Run /init`.
Guest user space (a shell, /proc/cpuinfo, poweroff) runs only on hardware KVM; on an
emulating host those checks are skipped, saying so."""
import os
import re
import tempfile

import run
from run import Fail, Skip, check, ember, test, secs

HERE = os.path.dirname(os.path.abspath(__file__))
_facts = {}


def linux_dir():
    d = os.environ.get("EMBER_LINUX_DIR") or os.path.join(
        os.path.dirname(os.path.dirname(run.ARGS.ember)), "build", "linux")
    if not os.path.exists(os.path.join(d, "vmlinux")):
        d = os.path.join(os.path.dirname(run.ARGS.ember), "linux")
    return d


def built_linux_dir():
    """linux_dir() once `make guest-linux` has filled it; else a skip, or in CI (which
    builds it: .ci/run) a failure."""
    d = linux_dir()
    if not os.path.exists(os.path.join(d, "vmlinux")):
        msg = "no Linux guest in %s: run `make guest-linux` first" % d
        if os.environ.get("CI"):
            raise Fail(msg)
        raise Skip(msg)
    return d


def needs_linux_user_space():
    """Skips where a Linux guest's user space cannot run; returns the Linux guest's folder."""
    if run.ARGS.sanitizer:
        raise Skip("Linux boots once per run, with the normal build")
    if emulating():
        raise Skip("this host's KVM (kvm_pvm) cannot run guest user space: every system "
                   "call fails (HOST-KVM.md); needs hardware KVM or the KVM sandbox")
    return built_linux_dir()


def boot_once():
    """The one Linux boot of this run (shared by the tests below)."""
    if _facts:
        return _facts
    if run.ARGS.sanitizer:
        raise Skip("Linux boots once per run, with the normal build")
    d = built_linux_dir()
    tmp = tempfile.mkdtemp(prefix="ember-linux-")
    r = ember("run", os.path.join(HERE, "linux", "boot_snapshot_restore.lua"), tmp, d,
              timeout=1800)
    _facts.update(re.findall(r"^RESULT (\S+) (.*)$", r.stdout, re.M))
    log = os.path.join(tmp, "kernel.log")
    _facts["log"] = open(log, errors="replace").read() if os.path.exists(log) else ""
    _facts["status"] = r.returncode
    _facts["dir"] = tmp
    _facts["stderr"] = r.stderr
    print("  linux: snapshot %s ms, restore %s ms, boot finished %s s after restore" % (
        _facts.get("snapshot_ms"), _facts.get("restore_ms"), _facts.get("after_restore_s")))
    return _facts


def emulating():
    return os.path.exists("/sys/module/kvm_pvm") or os.environ.get("EMBER_EMULATING_HOST") == "1"


@test
def linux_boots_from_a_snapshot_to_init():
    f = boot_once()
    check(f["status"] == 0, "boot script: status %d: %s" % (f["status"], f["stderr"][-3000:]))
    check(f.get("reached") == "yes", "the kernel did not reach its goal; last lines:\n%s" %
          "\n".join(f["log"].splitlines()[-20:]))
    log = f["log"]
    for what, pattern in [
        ("the restored VM printed more of the boot", None),
        ("ACPI tables found", r"ACPI: RSDP 0x00000000000E0000"),
        ("the DSDT loaded", r"ACPI: 1 ACPI AML tables successfully acquired and loaded"),
        ("ACPI on", r"ACPI: Interpreter enabled"),
        ("vCPUs from the MADT", r"ACPI: Using ACPI \(MADT\) for SMP configuration"),
        ("vCPUs brought up", r"smp: Brought up 1 node, 2 CPUs"),
        ("e820 RAM below the gap", r"BIOS-e820: \[mem 0x0000000000100000-0x000000000fffffff\] usable"),
        ("memory from e820", r"Memory: \d+K/2\d{5}K available"),
        ("virtio-blk probed", r"virtio_blk virtio\d+: \[vda\] 32768 512-byte logical blocks"),
        ("ext4 root mounted from /dev/vda", r"VFS: Mounted root \(ext4 filesystem\) readonly"),
        ("init started", r"Run /init as init process"),
    ]:
        if pattern:
            check(re.search(pattern, log), "%s: no /%s/ in the kernel log" % (what, pattern))
    check("virtio_mmio.device=" not in log, "devices on the command line, not from ACPI")
    check(int(f.get("before_bytes", 0)) < len(log),
          "the restored VM printed nothing after the snapshot")


@test
def linux_restored_kernel_reseeds_its_crng_from_vmgenid():
    """A snapshot taken once every driver is bound: the restored kernel sees ember's new
    VM generation id (ACPI VGEN, notified through the GED) and reseeds its CRNG."""
    if run.ARGS.sanitizer:
        raise Skip("Linux boots once per run, with the normal build")
    f = boot_once()
    check(f.get("vmgenid_reseed") == "yes", "no 'crng reseeded due to virtual machine fork' "
          "after restoring the late snapshot: %r" % f.get("vmgenid_reseed"))


@test
def linux_user_space_answers():
    needs_linux_user_space()
    f = boot_once()
    check(f.get("cpuinfo_processors") == "2", "/proc/cpuinfo: %r" % f.get("cpuinfo_processors"))
    check(f.get("exit") == "poweroff", "poweroff: %r" % f.get("exit"))


@test
def linux_on_an_emulating_host_ends_cleanly_after_init():
    if run.ARGS.sanitizer:
        raise Skip("Linux boots once per run, with the normal build")
    if not emulating():
        raise Skip("hardware KVM: user space runs, nothing to end")
    f = boot_once()
    # init's first system call fails, the kernel panics, panic=1 reboots, reboot=k resets.
    check(f.get("exit") == "reset" and f.get("exit_status") == "3",
          "after init: %r %r" % (f.get("exit"), f.get("exit_status")))


@test
def linux_restores_through_uffd_in_a_new_process():
    """The same mid-boot snapshot, restored by a new ember process whose memory comes
    from ember-uffd: the kernel carries on to init there too."""
    import subprocess
    import time
    import test_uffd
    if run.ARGS.sanitizer:
        raise Skip("Linux boots once per run, with the normal build")
    f = boot_once()
    state, mem = os.path.join(f["dir"], "linux.state"), os.path.join(f["dir"], "linux.mem")
    check(os.path.exists(state), "no Linux snapshot to restore")
    sock = os.path.join(f["dir"], "uffd.sock")
    handler = subprocess.Popen([test_uffd.handler_bin(), "--socket", sock, "--mem-file", mem,
                                "--once"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    out_path = os.path.join(f["dir"], "uffd-console.log")
    try:
        for _ in range(200):
            if os.path.exists(sock):
                break
            time.sleep(0.01)
        with open(out_path, "wb") as out:
            vm = subprocess.Popen([run.ARGS.ember, "restore", state, "-", "--uffd", sock,
                                   "--resume"], stdin=subprocess.DEVNULL, stdout=out,
                                  stderr=subprocess.STDOUT)
            goal = b"Run /init as init process" if emulating() else b"ember-guest: ready"
            # What the guest printed before the snapshot counts; the File-restored
            # run's output does not.
            before = open(os.path.join(f["dir"], "snapshot.log"), "rb").read()
            deadline = time.time() + secs(900)
            while time.time() < deadline and vm.poll() is None:
                if goal in open(out_path, "rb").read() or goal in before:
                    break
                time.sleep(1)
            reached = goal in open(out_path, "rb").read() or goal in before
    finally:
        for p in (vm, handler):
            if p.poll() is None:
                p.kill()
                p.wait()
    check(reached, "the uffd-restored kernel did not reach %r; last output: %r" %
          (goal, open(out_path, "rb").read()[-1500:]))
