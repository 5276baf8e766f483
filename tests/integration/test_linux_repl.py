"""The REPL beside a Linux guest (issue 12 item 5): `ember repl def.lua` where the definition
restores the Linux golden snapshot (linux_shell.py) with its serial console on the REPL's
terminal. Linux's shell prints a prompt without a newline and, with each prompt, busybox's
line editor asks the terminal for the cursor position (ESC [ 6 n): neither may take the
REPL's prompt or its keys, and `vm:console()` hands the terminal to the shell until Ctrl-].

Needs guest user space: hardware KVM or the KVM sandbox (skipped on an emulating host)."""
import os
import tempfile

import linux_shell
from run import check, test
from test_repl import Repl


def restore_def(tmp, g):
    scratch = os.path.join(tmp, "scratch.ext4")
    linux_shell.copy(g["scratch"], scratch)
    path = os.path.join(tmp, "linux.lua")
    with open(path, "w") as f:
        f.write("return ember.restore { state = %r, mem = %r, resume = true, console = 'stdio',\n"
                "  drives = { scratch = %r }, vsock = %r }\n" % (
                    g["state"], g["mem"], scratch, os.path.join(tmp, "v.sock")))
    return path


@test
def linux_repl_keeps_its_prompt_beside_the_shell_and_hands_it_over():
    g = linux_shell.golden()
    with tempfile.TemporaryDirectory() as tmp:
        r = Repl(restore_def(tmp, g), home=tmp)
        try:
            r.expect(r"vm is ember\.vm \(running\)")
            # The shell answers a line sent from the REPL, then prints its prompt (mid-line)
            # and its cursor-position query; the REPL's prompt comes back on a line of its own.
            r.line('vm:send("echo guest-$((6*7))\\n")', r"guest-42\n")
            r.line("=40+2", r"(?m)^42$")
            r.line("x = 'typed at the prompt'")
            # $x is unset in the shell: it prints "-seen" (its echo of the line has "$x-seen").
            r.line('vm:send("echo $x-seen\\n") return vm:wait_for("\\n(%-seen)")', r"(?m)^-seen$")
            r.line("=x", r"(?m)^typed at the prompt$")
            # The console: keys go to the shell, Ctrl-] gives them back.
            r.line("vm:console()", r"attached to the guest console")
            r.send("echo console-$((6*7))\r")
            r.expect(r"console-42")
            r.send("\x1d")
            r.expect(r"(?m)^true$")
            r.line("=40+2", r"(?m)^42$")
            r.line("vm:state()", r"(?m)^running$")
            status, restored = r.quit()
        finally:
            r.close()
        check(b"\x1b[6n" not in r.raw,
              "the cursor-position query reached the terminal: %r" % r.raw[-400:])
        check("typed at the prompt-seen" not in r.screen,
              "keys typed at the REPL's prompt reached the shell:\n" + r.screen[-1500:])
        check(status == 0 and restored, "Ctrl-D: status %d (want 0), terminal restored: %s" % (
            status, restored))
