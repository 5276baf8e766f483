"""ember repl, driven through a pseudo-terminal: send keys, read the screen."""
import fcntl
import os
import pty
import re
import select
import signal
import struct
import subprocess
import tempfile
import termios
import time

import run
from run import check, definition, test, write_def, secs

ANSI = re.compile(rb"\x1b\[[0-9;?]*[A-Za-z]")
PROMPT = r"(?m)^> $"


class Repl:
    """One `ember repl` on a pty; the screen text has escapes and carriage returns removed."""

    def __init__(self, *args, home):
        self.master, self.slave = pty.openpty()
        fcntl.ioctl(self.slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
        self.before = termios.tcgetattr(self.slave)
        env = dict(os.environ, HOME=home, TERM="xterm", INPUTRC="/dev/null")
        self.p = subprocess.Popen([run.ARGS.ember, "repl", *args], stdin=self.slave,
                                  stdout=self.slave, stderr=self.slave, env=env,
                                  start_new_session=True,
                                  preexec_fn=lambda: fcntl.ioctl(0, termios.TIOCSCTTY, 0))
        self.screen = ""
        self.raw = b""  # what reached the terminal, escapes and all
        self.pos = 0

    def read(self, timeout):
        ready, _, _ = select.select([self.master], [], [], timeout)
        if not ready:
            return False
        try:
            chunk = os.read(self.master, 4096)
        except OSError:
            return False
        self.raw += chunk
        self.screen += ANSI.sub(b"", chunk).replace(b"\r", b"").decode("utf-8", "replace")
        return bool(chunk)

    def expect(self, pattern, timeout=15):
        """Wait for `pattern` in the screen text after the last match; return the match."""
        end = time.time() + secs(timeout)
        while True:
            m = re.compile(pattern).search(self.screen, self.pos)
            if m:
                self.pos = m.end()
                return m
            if time.time() > end or (not self.read(0.1) and self.p.poll() is not None):
                raise run.Fail("timeout waiting for %r; screen ends with:\n%s" %
                               (pattern, self.screen[-1500:]))

    def send(self, keys):
        os.write(self.master, keys.encode())

    def line(self, text, want=None):
        """Type a line at the prompt; wait for `want` (a regex) and the next prompt."""
        self.expect(PROMPT)
        self.send(text + "\r")
        m = self.expect(want) if want else None
        return m

    def quit(self):
        """Ctrl-D at the prompt: the status, and whether the terminal is as it was."""
        self.expect(PROMPT)
        self.send("\x04")
        status = self.p.wait(secs(15))
        after = termios.tcgetattr(self.slave)
        return status, after[3] == self.before[3] and after[0] == self.before[0]

    def close(self):
        if self.p.poll() is None:
            self.p.kill()
            self.p.wait()
        os.close(self.master)
        os.close(self.slave)


def guest_def(tmp):
    return write_def(tmp, definition(console="none"))


@test
def repl_evaluates_prints_and_survives_errors():
    with tempfile.TemporaryDirectory() as tmp:
        r = Repl(home=tmp)
        try:
            r.expect(r"help\(\) for help")
            r.line("1+1", r"(?m)^2$")
            r.line("=ember.version", r"(?m)^\d+\.\d+\.\d+$")
            r.line("function twice(x)", r"(?m)^>> $")
            r.send("  return 2 * x\r")
            r.expect(r"(?m)^>> $")
            r.send("end\r")
            r.line("twice(21)", r"(?m)^42$")
            r.line("error('boom')", r"stdin:1: boom\nstack traceback:\n")
            r.line("t = {1, 'two', {x = 3}} t.self = t")
            r.line("t", r'\{ 1, "two", \{ x = 3 \}, self = <cycle> \}')
            r.line("ember.hexdump('ABC\\0', 0x10)", r"00000010  41 42 43 00 +\|ABC\.\|")
            r.line("help()", r"Ctrl-D +quit")
            # Ctrl-C clears a half-typed line; the next line starts afresh.
            r.expect(PROMPT)
            r.send("1 +")
            r.expect(r"1 \+")
            r.send("\x03")
            r.line("2 * 3", r"(?m)^6$")
            status, restored = r.quit()
        finally:
            r.close()
        check(status == 0, "Ctrl-D: status %d, want 0" % status)
        check(restored, "terminal not restored after Ctrl-D")
        with open(os.path.join(tmp, ".ember_history")) as f:
            history = f.read()
        check("twice(21)" in history, "history file lacks the lines: %r" % history)


@test
def repl_drives_the_test_guest():
    with tempfile.TemporaryDirectory() as tmp:
        r = Repl(guest_def(tmp), home=tmp)
        try:
            r.expect(r"vm is ember\.vm \(running\)")
            r.line('vm:wait_for("ready cpus=%d+")', r"(?m)^ready cpus=1$")
            r.line("vm:state()", r"(?m)^running$")
            r.expect(PROMPT)
            r.send("vm:pa\t")
            r.expect(r"vm:pause")
            r.send("()\r")
            r.expect(r"(?m)^true$")
            r.line("vm:state()", r"(?m)^paused$")
            r.line("vm:regs(0)", r"rip=0*1[0-9a-f]{5}\b")
            r.line("vm:regs(0).cr0 & 1", r"(?m)^1$")
            r.line("vm:devices()", r"serial +uart-16550a +pio 0x3f8\+8")
            r.line("vm:resume()", r"(?m)^true$")
            r.line("vm:state()", r"(?m)^running$")
            r.line("vm:regs(0)", r"(?m)^nil\tvcpu state needs a paused vm \(it is running\)$")
            # Waits at the prompt return when they finish.
            r.line('vm:send_keys("echo prompt\\n") return vm:wait_for("OK (%a+)\\n")',
                   r"(?m)^prompt$")
            # The console: keys go to the guest, Ctrl-] comes back.
            r.line("vm:console()", r"attached to the guest console")
            r.send("echo hi\r")
            r.expect(r"OK hi")
            r.send("\x1d")
            r.expect(r"(?m)^true$")
            r.line("vm:state()", r"(?m)^running$")
            status, restored = r.quit()
        finally:
            r.close()
        check(status == 0, "Ctrl-D: status %d, want 0" % status)
        check(restored, "terminal not restored after Ctrl-D")


@test
def repl_ctrl_c_abandons_a_waiting_line_and_the_vm_runs_on():
    with tempfile.TemporaryDirectory() as tmp:
        r = Repl(guest_def(tmp), home=tmp)
        try:
            r.line('vm:wait_for("ready")', r"(?m)^ready$")
            r.line("ember.sleep(60)")
            time.sleep(0.3)
            r.send("\x03")
            r.expect(r"interrupted")
            r.line('vm:send("echo alive\\n") return vm:wait_for("OK (%a+)\\n")', r"(?m)^alive$")
            r.line("vm:state()", r"(?m)^running$")
            status, _ = r.quit()
        finally:
            r.close()
        check(status == 0, "status %d, want 0" % status)


@test
def repl_stdio_console_shows_guest_output_and_keeps_the_keys():
    with tempfile.TemporaryDirectory() as tmp:
        r = Repl(write_def(tmp, definition()), home=tmp)
        try:
            r.line('vm:wait_for("ready[^\\n]*\\n") return "booted"', r"booted")
            # Guest output reaches the screen while the prompt is up; typed keys do not
            # reach the guest (no "ERR unknown command" for the line typed here).
            r.line('vm:send("echo shown\\n")', r"OK shown")
            r.line("x = 'typed at the prompt'")
            r.line("vm:pause()", r"(?m)^true$")
            r.line("vm:resume()", r"(?m)^true$")
            r.line('vm:send("echo again\\n") return vm:wait_for("OK again\\n")', r"OK again")
            # A terminal query in guest output (busybox's prompt asks for the cursor
            # position) would make the terminal type its answer at the REPL's prompt.
            r.line('vm:send("echo q1\\27[6nq2\\27[1mq3\\n")', r"OK q1q2q3")
            r.line("return 40 + 2", r"(?m)^42$")
            status, restored = r.quit()
        finally:
            r.close()
        check("ERR" not in r.screen, "keys typed at the prompt reached the guest:\n" + r.screen)
        check(b"\x1b[6n" not in r.raw and b"q2\x1b[1mq3" in r.raw,
              "the cursor-position query reached the terminal (or more was dropped): %r" %
              r.raw[-300:])
        check(status == 0 and restored, "status %d, terminal restored: %s" % (status, restored))


def repl_pipe(args, lines, timeout=30):
    with tempfile.TemporaryDirectory() as home:
        return run.ember("repl", *args, stdin="".join(l + "\n" for l in lines),
                         timeout=timeout, env={"HOME": home, "INPUTRC": "/dev/null"})


@test
def repl_help_covers_every_vm_method():
    r = repl_pipe([], ['=table.concat(require("ember.repl").undocumented(), ",")',
                       "help(ember.vm)", "help('wait_for')"])
    check(r.returncode == 0, "status %d: %s" % (r.returncode, r.stderr))
    check(re.search(r"(?m)^> =table\.concat.*\n\n", r.stdout),
          "vm methods without help: %r" % r.stdout)
    check("vm:wait_for(pattern" in r.stdout, "help('wait_for'): %r" % r.stdout)


@test
def repl_bad_definition_is_refused_like_run():
    with tempfile.TemporaryDirectory() as tmp:
        r = repl_pipe([write_def(tmp, definition("vpcus = 2"))], ["1"])
        check(r.returncode == 2, "status %d, want 2: %r" % (r.returncode, r.stderr))
        check("unknown key 'vpcus'" in r.stderr, "stderr: %r" % r.stderr)
        r = run.ember("repl", "a.lua", "b.lua")
        check(r.returncode == 2 and "repl takes FILE.lua" in r.stderr, "usage: %r" % (r,))


@test
def repl_attaches_to_a_vm_over_the_api_socket():
    with tempfile.TemporaryDirectory() as tmp:
        sock = os.path.join(tmp, "api.sock")
        srv = subprocess.Popen([run.ARGS.ember, "run", guest_def(tmp), "--api-sock", sock],
                               stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE)
        try:
            end = time.time() + secs(10)
            while not os.path.exists(sock) and time.time() < end and srv.poll() is None:
                time.sleep(0.05)
            check(os.path.exists(sock), "the API server did not start")
            r = repl_pipe(["--api-sock", sock],
                          ["vm:state()", "vm:pause()", "vm:state()", "vm:resume()",
                           "vm:state()", 'vm:request("GET", "/machine-config")'])
        finally:
            if srv.poll() is None:
                srv.send_signal(signal.SIGTERM)
            srv.wait(secs(10))
        check(r.returncode == 0, "status %d: %s" % (r.returncode, r.stderr))
        out = re.findall(r"(?m)^> [^\n]*\n([^\n>]*)$", r.stdout)
        check(out[:5] == ["running", "true", "paused", "true", "running"],
              "answers over the API: %r\n%s" % (out, r.stdout))
        check(re.search(r'200\t\{"vcpu_count":1', r.stdout), "raw request: %r" % r.stdout)
