"""QEMU's microvm machine on this host's KVM booting ember's Linux guest, its serial
console a shell driven as linux_shell.Shell drives ember's (the same `sh`), its QMP socket
as qemu_compare.Qemu drives it. For the Linux rows of the bench (bench_linux_shell.py)."""
import os
import subprocess
import threading
import time

import qemu_compare
from linux_shell import CMDLINE, Shell
from test_api import Ember


def guest_args(linux, vcpus):
    """QEMU's arguments for the kernel and initramfs linux_shell boots in ember."""
    return ["-cpu", "host", "-smp", str(vcpus), "-serial", "stdio", "-no-reboot",
            "-kernel", os.path.join(linux, "vmlinux"),
            "-initrd", os.path.join(linux, "initramfs.cpio.gz"), "-append", CMDLINE]


class QemuShell(qemu_compare.Qemu):
    """A QEMU process whose guest is the Linux shell: `sh`, `wait_output` and `stderr`
    are Shell's and Ember's own, reading what the reader threads collect."""

    sh = Shell.sh
    wait_output = Ember.wait_output
    stderr = Ember.stderr
    _read = Ember._read
    _read_err = Ember._read_err
    send = Ember.send

    def __init__(self, tmp, name, linux, mib, vcpus=1, incoming=False):
        self.name = name
        self.out = self.err = b""
        self.lock = threading.Lock()
        super().__init__(tmp, mib, None, incoming, guest_args(linux, vcpus))

    def spawn(self, argv):
        p = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE)
        self.p = p
        self.readers = [threading.Thread(target=t, daemon=True)
                        for t in (self._read, self._read_err)]
        for t in self.readers:
            t.start()
        return p

    def errors(self):
        return self.stderr()

    def migrate_stopped(self, path):
        """Stop the guest, `migrate` it to `path` (no fsync, as ember's figure without
        its fsync) and let it go on: ms from the migrate command to completion."""
        self.cmd("stop")
        t0 = time.perf_counter()
        self.cmd("migrate", uri="exec:cat > %s" % path)
        self.wait_migration()
        ms = (time.perf_counter() - t0) * 1000
        self.cont()
        return ms

    def incoming(self, path):
        """Load a migration file into this `incoming` QEMU and run its guest."""
        self.cmd("migrate-incoming", uri="exec:cat %s" % path)
        self.wait_migration()
        self.cont()

    def cont(self):
        """Run the guest once the migration has ended: QEMU says "completed" a moment
        before `cont` is allowed ("Migration is not finalized yet")."""
        end = time.time() + 10
        while True:
            try:
                return self.cmd("cont")
            except SystemExit as e:
                if "not finalized" not in str(e) or time.time() > end:
                    raise
            time.sleep(0.001)

    def release(self):
        for t in self.readers:
            t.join(timeout=5)
        for f in (self.p.stdin, self.p.stdout, self.p.stderr):
            f.close()
