"""The Linux part of `make bench`. Where Linux user space runs (hardware KVM, the KVM
sandbox) it is bench_linux_shell.py: the guest driven at its shell, spawn, snapshots,
restores, clones and RSS beside QEMU. On a host whose KVM emulates guest kernel mode only
the kernel's boot can be timed: `configs/default.lua` from process start to the kernel's
`Run /init`, and, where qemu-system-x86_64 is installed, the same kernel and initramfs
through QEMU's microvm machine under TCG beside it. timed_marks and qemu_argv serve
boot_compare.py too.

  python3 tests/bench/bench_linux.py --ember build/ember [--runs N]
  (on an emulating host, inside the sandbox: tests/sandbox/sandbox.py with-kvm -- ...)"""
import os
import selectors
import shutil
import subprocess
import time

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_CONFIG = os.path.join(HERE, "..", "..", "configs", "default.lua")
MARKS = (("init", b"Run /init as init process"), ("boot_timer", b"guest boot done"),
         ("ready", b"ember-guest: ready"))


def emulating_host():
    return os.path.exists("/sys/module/kvm_pvm")


def timed_marks(argv, timeout):
    """Run argv; return {mark: ms after spawn} for each MARKS line seen on its stdout or
    stderr, and its exit status. Once the guest is ready, `poweroff -f` goes to its
    console (stdin). A run past `timeout` seconds is killed by its pid."""
    seen, buf = {}, b""
    t0 = time.perf_counter()
    p = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    sel = selectors.DefaultSelector()
    sel.register(p.stdout, selectors.EVENT_READ)
    sel.register(p.stderr, selectors.EVENT_READ)
    open_pipes = 2
    try:
        while open_pipes and time.perf_counter() - t0 < timeout:
            for key, _ in sel.select(timeout=1):
                chunk = os.read(key.fileobj.fileno(), 65536)
                if not chunk:
                    sel.unregister(key.fileobj)
                    open_pipes -= 1
                    continue
                buf += chunk
                now = (time.perf_counter() - t0) * 1000
                for name, pattern in MARKS:
                    if name not in seen and pattern in buf:
                        seen[name] = now
                        if name == "ready":
                            p.stdin.write(b"poweroff -f\n")
                            p.stdin.flush()
                buf = buf[-256:]  # enough to catch a mark split across reads
    finally:
        if p.poll() is None:
            p.kill()
        p.wait()
    return seen, p.returncode


def kvm_tsc_khz():
    """The TSC frequency KVM gives a new vCPU (KVM_GET_TSC_KHZ), as ember asks it."""
    import fcntl
    kvm = os.open("/dev/kvm", os.O_RDWR)
    try:
        vm = fcntl.ioctl(kvm, 0xAE01, 0)  # KVM_CREATE_VM
        vcpu = fcntl.ioctl(vm, 0xAE41, 0)  # KVM_CREATE_VCPU
        khz = fcntl.ioctl(vcpu, 0xAEA3, 0)  # KVM_GET_TSC_KHZ
        os.close(vcpu)
        os.close(vm)
        return khz
    finally:
        os.close(kvm)


def qemu_argv(linux, accel):
    # Under TCG the kernel's PIT calibration of the TSC fails as it does on an emulating
    # KVM (and a hardware-reduced ACPI machine has no PIT tick): give it the frequency.
    tsc = " tsc_early_khz=%d" % kvm_tsc_khz() if accel == "tcg" else ""
    return ["qemu-system-x86_64", "-M", "microvm,rtc=off", "-accel", accel,
            "-cpu", "max" if accel == "tcg" else "host", "-smp", "1", "-m", "256",
            "-nodefaults", "-no-user-config", "-nographic", "-serial", "stdio",
            "-no-reboot", "-kernel", os.path.join(linux, "vmlinux"),
            "-initrd", os.path.join(linux, "initramfs.cpio"),
            "-append", "console=ttyS0 reboot=k panic=1 pci=off ember.poweroff" + tsc]


def run(ember, runs, row):
    """Print the Linux rows of the bench table (row(name, values, unit) formats one)."""
    linux = os.environ.get("EMBER_LINUX_DIR") or os.path.join(os.path.dirname(ember), "linux")
    if not os.path.exists(os.path.join(linux, "vmlinux")):
        print("| Linux boot: no guest in %s (`make guest-linux` builds it)" % linux)
        return
    if not emulating_host():
        import bench_linux_shell
        import bench_block_engines
        bench_linux_shell.run(ember, runs)
        bench_block_engines.run(ember, runs)
        return
    # A boot costs about a minute where guest kernel code is emulated: 2 runs at most.
    n = min(runs, 2)
    results = {}
    for _ in range(n):
        seen, status = timed_marks([ember, "run", DEFAULT_CONFIG], 900)
        for name, ms in seen.items():
            results.setdefault(name, []).append(ms)
    print("| Linux guest, configs/default.lua, on emulating KVM (kvm_pvm), %d runs" % n)
    print(row("  spawn to the kernel's `Run /init`", results.get("init", [float("nan")]), "ms"))
    print("| %-56s | %-47s |" % ("  spawn to the shell's first answer",
                                "not reached: guest user space cannot run here"))
    if not shutil.which("qemu-system-x86_64"):
        print("| %-56s | %-47s |" % ("QEMU microvm, same guest", "qemu-system-x86_64 not installed"))
        return
    results = {}
    for _ in range(n):
        seen, status = timed_marks(qemu_argv(linux, "tcg"), 900)
        for name, ms in seen.items():
            results.setdefault(name, []).append(ms)
    print("| QEMU microvm machine (TCG), same kernel and initramfs, %d runs" % n)
    print(row("  spawn to the kernel's `Run /init`", results.get("init", [float("nan")]), "ms"))
    print(row("  spawn to readiness line", results.get("ready", [float("nan")]), "ms"))


if __name__ == "__main__":
    import argparse
    from bench import row
    ap = argparse.ArgumentParser()
    ap.add_argument("--ember", required=True)
    ap.add_argument("--runs", type=int, default=10)
    args = ap.parse_args()
    run(os.path.abspath(args.ember), args.runs, row)
