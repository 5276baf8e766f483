#!/usr/bin/env python3
"""ember's KVM sandbox: run one command where /dev/kvm is real KVM, on any host.

  sandbox.py kind                        hardware | emulating | none: this host's KVM
  sandbox.py with-kvm [-i] -- CMD...     run CMD where KVM works: here on hardware KVM,
                                         else in the sandbox (EMBER_SANDBOX=auto|always|never)
  sandbox.py run [-i] -- CMD...          run CMD in the sandbox

The sandbox is QEMU in TCG mode emulating an AMD CPU with SVM (nested paging off), booting
Debian's generic kernel with kvm_amd (tests/sandbox/build.sh makes and caches it). The
host's whole tree is shared over virtio-9p and CMD runs in a chroot of it, in the same
directory, with the same environment, so paths mean the same on both sides; TMPDIR (and
/tmp, unless the work lives there) is an ext4 scratch disk thrown away afterwards.
CMD's output comes back on stdout, its exit status is ours. With -i CMD gets a terminal
(ttyS0 of the sandbox on this terminal): what `make run` uses.

If the sandbox's own kernel panics or stops answering, the run ends at once with status
125 and the kernel's last lines, saying it was the sandbox and not CMD."""
import ctypes
import fcntl
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
CRASH = 125
# A command that exits with this status asks for a new sandbox: it noted in
# EMBER_SANDBOX_STATE where it was and why (tests/integration/run.py does so for a test
# that failed every attempt in one sandbox). It counts against EMBER_SANDBOX_RETRIES.
NEW_SANDBOX = 75
# QEMU's CPU model and TCG threading. An AMD CPU with SVM but without nested paging
# (issue 11; docs/sandbox-faults.md has the table): with it (plain `max`, two CPUs,
# thread=multi) the test guest triple-faulted and then the sandbox's own kernel panicked
# ("corrupted stack end detected inside scheduler", in an ember thread):
# lua_snapshot_pending_io + lua_snapshot_restore, rounds of four in one sandbox, panicked
# in 4 of 4 sandboxes within one to three rounds (kvm_amd vgif=0, kvm tdp_mmu=0 alike).
# Without it kvm_amd shadow-pages its guests: 16 of 16 rounds in three sandboxes
# (`max,-npt` or kvm_amd npt=0) and the whole `-k lua_` slice passed with no triple
# fault and no panic. One CPU with nested paging also stopped them but once hung the
# whole sandbox (its only CPU in a guest's user mode for 45 s); thread=single was 6x
# slower. So it is QEMU 7.2's multi-threaded TCG with nested paging, not ember.
CPU = os.environ.get("EMBER_SANDBOX_CPU", "max,-npt")
TCG_THREADS = os.environ.get("EMBER_SANDBOX_TCG", "multi")
# The sandbox's init says "alive" every 5 s; this long without it means its kernel hung.
# Such hangs were seen with both CPUs in the sandbox's kernel, interrupts off, one in
# __schedule and one entering the int3 handler (asm_exc_int3): the int3 that live code
# patching (static keys, text_poke_bp) plants, under QEMU's multi-threaded TCG. They do
# not end by themselves, so the wait is kept short.
SILENT_S = float(os.environ.get("EMBER_SANDBOX_SILENT_S", "45"))
# With oops=panic every oops ends in a panic; lockup and stall reports are switched off
# (nowatchdog, rcu_cpu_stall_suppress): an emulated CPU on a busy host is often late.
CRASH_WORDS = (b"Kernel panic", b"ember-sandbox: error")
# Where a kernel's report of a crash begins.
REPORT_WORDS = ("BUG:", "Oops", "general protection fault", "WARNING:", "Kernel panic",
                "kernel BUG")


def say(msg):
    print("sandbox: " + msg, file=sys.stderr, flush=True)


def host_kind():
    """hardware: /dev/kvm backed by VMX/SVM; emulating: kvm_pvm; none: no usable /dev/kvm."""
    if not os.access("/dev/kvm", os.R_OK | os.W_OK):
        return "none"
    try:
        os.close(os.open("/dev/kvm", os.O_RDWR))
    except OSError:
        return "none"
    return "emulating" if os.path.exists("/sys/module/kvm_pvm") else "hardware"


def take_turn():
    """One sandbox at a time on this machine: two emulated machines on its few cores
    starve each other (each kernel sees its CPUs stall for seconds). Held until exit."""
    f = open(os.environ.get("EMBER_SANDBOX_LOCK", "/var/tmp/ember-sandbox.lock"), "a+")
    try:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        say("another sandbox runs on this machine: waiting for it to end")
        fcntl.flock(f, fcntl.LOCK_EX)
    return f


def image():
    r = subprocess.run([os.path.join(HERE, "build.sh")], stdout=subprocess.PIPE, text=True)
    if r.returncode != 0:
        sys.exit("sandbox: cannot build the sandbox image (tests/sandbox/build.sh)")
    return r.stdout.strip().splitlines()[-1]


def write_command(rundir, argv, interactive):
    lines = ["cd %s || exit 125" % shlex.quote(os.getcwd())]
    for k, v in os.environ.items():
        if k.isidentifier() and k not in ("TMPDIR", "PWD", "OLDPWD", "SHLVL", "_"):
            lines.append("export %s=%s" % (k, shlex.quote(v)))
    lines.append("export TMPDIR=%s EMBER_IN_SANDBOX=1" % shlex.quote(rundir + "/scratch"))
    if interactive:
        size = shutil.get_terminal_size((80, 24))
        lines.append("stty rows %d cols %d 2>/dev/null" % (size.lines, size.columns))
    lines.append("exec " + " ".join(shlex.quote(a) for a in argv))
    with open(os.path.join(rundir, "cmd"), "w") as f:
        f.write("\n".join(lines) + "\n")
    with open(os.path.join(rundir, "cwd"), "w") as f:
        f.write(os.getcwd())


def make_scratch(rundir):
    os.mkdir(os.path.join(rundir, "scratch"))
    img = os.path.join(rundir, "scratch.img")
    with open(img, "wb") as f:
        f.truncate(int(os.environ.get("EMBER_SANDBOX_SCRATCH_GIB", "32")) << 30)
    # No journal and no checksums: thrown away after the run, and ext4's crc32c would
    # need a module loader. Few inodes, written now, so nothing initialises them later.
    subprocess.run(["mkfs.ext4", "-q", "-F", "-O", "^has_journal,^metadata_csum", "-N",
                    "65536", "-E", "lazy_itable_init=0", "-m", "0", img], check=True)
    return img


def qemu_argv(img, rundir, scratch, interactive):
    mem = os.environ.get("EMBER_SANDBOX_MEM", "8G")
    cpus = os.environ.get("EMBER_SANDBOX_CPUS", str(os.cpu_count() or 2))
    append = ("console=ttyS1 printk.devkmsg=on panic=1 oops=panic nowatchdog rcupdate.rcu_cpu_stall_suppress=1 "
              "tsc=reliable mitigations=off nokaslr "
              "ember.run=%s %s%s" % (rundir, os.environ.get("EMBER_SANDBOX_KARGS", ""), " ember.interactive" if interactive else ""))
    return ["qemu-system-x86_64", "-nodefaults", "-no-user-config", "-display", "none",
            "-no-reboot", "-accel", "tcg,thread=" + TCG_THREADS, "-cpu", CPU, "-smp", cpus,
            "-m", mem, "-kernel", os.path.join(img, "vmlinuz"),
            "-initrd", os.path.join(img, "initramfs.cpio.gz"), "-append", append,
            "-chardev", "stdio,id=cmd,signal=off", "-serial", "chardev:cmd",
            "-chardev", "file,id=klog,path=%s/console.log" % rundir, "-serial", "chardev:klog",
            "-virtfs", "local,path=/,mount_tag=host,security_model=passthrough,"
            "multidevs=remap",
            "-drive", "file=%s,if=virtio,format=raw,cache=unsafe" % scratch,
            "-monitor", "unix:%s/monitor.sock,server=on,wait=off" % rundir]


def die_with_parent():
    """In QEMU's child before exec: a SIGKILL when this script dies, however it dies."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def stop_on_signal(signum, _frame):
    raise KeyboardInterrupt(signum)


def last_lines(path, n=40):
    """The kernel's report: from the first line of its oops or panic, if there is one in
    the tail of the log (the trace alone does not say what happened), else the last n."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError:
        return "(no console log)"
    lines = data.decode("utf-8", "replace").splitlines()[-400:]
    heads = [i for i, l in enumerate(lines) if any(w in l for w in REPORT_WORDS)]
    start = heads[0] if heads else max(0, len(lines) - n)
    return "\n".join(lines[start:start + 3 * n] if heads else lines[start:])


def where_cpus_are(rundir):
    """Each emulated CPU's instruction pointer and mode, from QEMU's monitor: whether a
    stalled sandbox sits in its own kernel or in a guest of its KVM (issue 11)."""
    import socket
    out = b""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as m:
            m.settimeout(3)
            m.connect(os.path.join(rundir, "monitor.sock"))
            m.sendall(b"info registers -a\n")
            end = time.monotonic() + 3
            while time.monotonic() < end:
                try:
                    chunk = m.recv(65536)
                except socket.timeout:
                    break
                if not chunk:
                    break
                out += chunk
    except OSError as e:
        return "(QEMU's monitor did not answer: %s)" % e
    keep = [line for line in out.decode("utf-8", "replace").splitlines()
            if line.startswith(("CPU#", "RAX=", "RIP=", "EIP=", "CS =", "CR0="))]
    return "\n".join(keep) or "(no registers from QEMU's monitor)"


def watch(qemu, rundir):
    """Wait for QEMU; None when it ended by itself, else why it was stopped."""
    log = os.path.join(rundir, "console.log")
    seen, last_alive = 0, time.monotonic()
    while True:
        try:
            qemu.wait(1)
            return None
        except subprocess.TimeoutExpired:
            pass
        try:
            with open(log, "rb") as f:
                f.seek(seen)
                new = f.read()
        except OSError:
            new = b""
        seen += len(new)
        if b"ember-sandbox: alive" in new:
            last_alive = time.monotonic()
        if any(w in new for w in CRASH_WORDS):
            time.sleep(2)  # let the kernel finish its report
            return "its kernel reported a crash"
        if time.monotonic() - last_alive > SILENT_S:
            return "its kernel stopped answering for %d s; where its CPUs were:\n%s" % (
                SILENT_S, where_cpus_are(rundir))


def run(argv, interactive=False):
    """Run argv in a sandbox; again in a new one if the sandbox itself failed
    (its emulated SVM is not flawless: a rare hang or panic of its kernel, seen also
    under QEMU's own guests), never when the command failed. EMBER_SANDBOX_RETRIES
    (default 6) sets how many more times; each is said on stderr."""
    retries = int(os.environ.get("EMBER_SANDBOX_RETRIES", "6"))
    if not shutil.which("qemu-system-x86_64"):
        sys.exit("sandbox: qemu-system-x86_64 is missing (make deps installs qemu-system-x86)")
    img = image()
    turn = take_turn()  # noqa: F841 (the lock lives as long as the file object)
    for s in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(s, stop_on_signal)
    # Kept across the new sandboxes: a command may note there how far it got
    # (tests/integration/run.py does) and go on from there when run again.
    state = tempfile.mkdtemp(prefix="ember-sandbox-state.", dir="/var/tmp")
    os.environ["EMBER_SANDBOX_STATE"] = state
    try:
        while True:
            status, sandbox_failed = run_once(img, argv, interactive)
            asked = status == NEW_SANDBOX and not sandbox_failed
            if asked:
                say("the command asked for a new sandbox (status %d)" % NEW_SANDBOX)
            if not (sandbox_failed or asked) or retries <= 0 or interactive:
                return 1 if asked else status
            retries -= 1
            say("running the command again in a new sandbox (%d more time%s after this); "
                "it may go on from where it was (EMBER_SANDBOX_STATE)"
                % (retries, "" if retries == 1 else "s"))
    finally:
        shutil.rmtree(state, ignore_errors=True)


def run_once(img, argv, interactive):
    """Run argv once in a sandbox booted from image directory img: (exit status, whether
    the sandbox failed rather than the command)."""
    rundir = tempfile.mkdtemp(prefix="ember-sandbox.", dir="/var/tmp")
    qemu = None
    try:
        write_command(rundir, argv, interactive)
        scratch = make_scratch(rundir)
        qemu = subprocess.Popen(qemu_argv(img, rundir, scratch, interactive),
                                stdin=None if interactive else subprocess.DEVNULL,
                                preexec_fn=die_with_parent)
        why = watch(qemu, rundir)
        if why is not None:
            qemu.kill()
            qemu.wait()
        status_file = os.path.join(rundir, "status")
        if why is None and os.path.exists(status_file):
            with open(status_file) as f:
                return int(f.read().strip() or CRASH), False
        why = why or "QEMU ended (status %d) before the command did" % qemu.returncode
        say("the sandbox failed, not the command: %s. Its kernel's last lines:\n%s"
            % (why, last_lines(os.path.join(rundir, "console.log"))))
        return CRASH, True
    except KeyboardInterrupt as e:
        return 128 + (e.args[0] if e.args else signal.SIGINT), False
    finally:
        if qemu is not None and qemu.poll() is None:
            qemu.kill()
            qemu.wait()
        if os.environ.get("EMBER_SANDBOX_KEEP"):
            say("kept %s (EMBER_SANDBOX_KEEP)" % rundir)
        else:
            shutil.rmtree(rundir, ignore_errors=True)


def with_kvm(argv, interactive):
    mode = os.environ.get("EMBER_SANDBOX", "auto")
    if mode not in ("auto", "always", "never"):
        sys.exit("sandbox: EMBER_SANDBOX=%s is not auto, always or never" % mode)
    kind = host_kind()
    if mode == "never" or (mode == "auto" and kind == "hardware"):
        os.execvp(argv[0], argv)
    why = {"none": "no usable /dev/kvm here",
           "emulating": "this host's KVM (kvm_pvm) emulates guest kernel code and cannot "
                        "run Linux user space",
           "hardware": "EMBER_SANDBOX=always"}[kind]
    say("%s: running in the KVM sandbox (QEMU TCG, AMD SVM, kvm_amd): %s"
        % (why, " ".join(argv)))
    return run(argv, interactive)


def main():
    args = sys.argv[1:]
    if args[:1] == ["kind"]:
        print(host_kind())
        return 0
    if len(args) < 1 or args[0] not in ("run", "with-kvm"):
        print(__doc__, file=sys.stderr)
        return 2
    verb, args = args[0], args[1:]
    interactive = args[:1] == ["-i"]
    args = args[1:] if interactive else args
    if args[:1] == ["--"]:
        args = args[1:]
    if not args:
        print(__doc__, file=sys.stderr)
        return 2
    return run(args, interactive) if verb == "run" else with_kvm(args, interactive)


if __name__ == "__main__":
    sys.exit(main())
