"""What ember leaves on disk and what a guest may make it do: sockets and files 0600
whatever the umask, guest-driven work in bounded slices (a kick loop does not starve the
API), idle MMDS connections closed."""
import contextlib
import os
import stat
import tempfile

import run
import test_api
import test_uffd
from run import check, ember, test, write_def


@contextlib.contextmanager
def umask(mask):
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


@test
def confine_sockets_and_files_are_0600_under_umask_000():
    with tempfile.TemporaryDirectory() as tmp, umask(0):
        log, metrics = os.path.join(tmp, "ember.log"), os.path.join(tmp, "metrics.json")
        with test_api.Ember(tmp) as e:
            e.expect("PUT", "/logger", {"log_path": log, "level": "Info"}, 204)
            e.expect("PUT", "/metrics", {"metrics_path": metrics}, 204)
            modes = {p: mode(p) for p in (e.sock, log, metrics)}
        console = os.path.join(tmp, "console.log")
        r = ember("run", write_def(tmp, run.definition(
            'cmdline = "poweroff", console_log = "%s"' % console)), timeout=20)
        check(r.returncode == 0, "console_log run: %r" % (r,))
        modes[console] = mode(console)
        mem = test_uffd.mem_file(tmp, 1 << 20)
        with test_uffd.Handler(tmp, mem) as h:
            modes[h.sock] = mode(h.sock)
        wrong = {os.path.basename(p): oct(m) for p, m in modes.items() if m != 0o600}
        check(not wrong, "not 0600 under umask 000: %r" % wrong)
