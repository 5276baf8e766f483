"""Firecracker's command line, given to ember unchanged (issue 15 item 1): the options that
answer and end, the ones that set up the process, refusals with Firecracker's line and
status, and Firecracker's default API socket."""
import json
import os
import signal
import subprocess
import tempfile
import time

import run
from run import Skip, check, ember, secs, test
import test_api

ARG_PARSING = 153  # Firecracker's FcExitCode::ArgParsing


@test
def fc_cli_refusals_are_firecrackers():
    """Each line as Firecracker's argument parser words it, status 153, nothing started."""
    prefix = "ember: Arguments parsing error: "
    for args, line in [
        (["--bogus"], "Found argument 'bogus' which wasn't expected, or isn't valid in this "
                      "context."),
        (["--id", "a", "--id", "b"], "The argument 'id' was provided more than once."),
        (["--api-sock"], "The argument 'api-sock' requires a value, but none was supplied."),
        (["--api-sock", "--no-api"], "The argument 'api-sock' requires a value, but none was "
                                     "supplied."),
        (["--no-api"], "Argument 'config-file' required, but not found."),
        (["--show-level=yes"], "Found argument '--show-level=yes' which wasn't expected, or "
                               "isn't valid in this context."),
    ]:
        r = ember(*args, timeout=10)
        check(r.returncode == ARG_PARSING and r.stderr == prefix + line + "\n",
              "%r: status %d, stderr %r" % (args, r.returncode, r.stderr))
    r = ember("--level", "Loud", timeout=10)
    check(r.returncode == ARG_PARSING and "--level: 'Loud' is not a level" in r.stderr,
          "bad level: %r" % (r,))
    r = ember("--http-api-max-payload-size", "lots", timeout=10)
    check(r.returncode == ARG_PARSING and "'lots' is not a number" in r.stderr,
          "bad size: %r" % (r,))


@test
def fc_cli_options_take_effect():
    """--id, --level, --log-path, --show-log-origin, --module, --metrics-path,
    --http-api-max-payload-size and --mmds-size-limit, each seen where a user looks."""
    with tempfile.TemporaryDirectory() as tmp:
        log, metrics = os.path.join(tmp, "fc.log"), os.path.join(tmp, "metrics.json")
        with test_api.Ember(tmp, "--id", "fc-cli-1", "--level", "Info", "--log-path", log,
                            "--show-log-origin", "--module", "api", "--metrics-path", metrics,
                            "--http-api-max-payload-size", "1000",
                            "--mmds-size-limit", "100") as e:
            e.expect("GET", "/", None, 200, '"id": "fc-cli-1"')
            e.expect("PUT", "/mmds", {"k": "v" * 60}, 204)
            e.expect("PUT", "/mmds", {"k": "v" * 200}, 413, "MMDS limit exceeded")
            e.expect("PUT", "/mmds", {"k": "v" * 1200}, 400, "1000")
            test_api.boot(e)
            e.expect("PUT", "/actions", {"action_type": "FlushMetrics"}, 204)
            test_api.end_with_poweroff(e)
        lines = open(log).read().splitlines()
        check(any("src/api/" in ln and "413" in ln for ln in lines),
              "no api line with its origin for the 413: %r" % lines[-5:])
        others = [ln for ln in lines if "src/api/" not in ln]
        check(not others, "--module api let other lines through: %r" % others[:3])
        with open(metrics) as f:
            first = json.loads(f.readline())
        check("api_server" in first and "utc_timestamp_ms" in first,
              "metrics line: %r" % sorted(first)[:8])


@test
def fc_cli_snapshot_version_and_describe_snapshot():
    r = ember("--snapshot-version", timeout=10)
    check(r.returncode == 0 and r.stdout == "v1.0.0\n", "--snapshot-version: %r" % (r,))
    with tempfile.TemporaryDirectory() as tmp:
        state, mem = os.path.join(tmp, "vm.state"), os.path.join(tmp, "vm.mem")
        with test_api.Ember(tmp) as e:
            test_api.boot(e)
            e.expect("PATCH", "/vm", {"state": "Paused"}, 204)
            e.expect("PUT", "/snapshot/create", {"snapshot_path": state, "mem_file_path": mem},
                     204)
            e.expect("PATCH", "/vm", {"state": "Resumed"}, 204)
            test_api.end_with_poweroff(e)
        r = ember("--describe-snapshot", state, timeout=10)
        check(r.returncode == 0 and r.stdout == "v1.0.0\n", "--describe-snapshot: %r" % (r,))
        with open(mem, "rb") as f:
            head = f.read(64)
        bogus = os.path.join(tmp, "bogus.state")
        with open(bogus, "wb") as f:
            f.write(head)
        r = ember("--describe-snapshot", bogus, timeout=10)
        check(r.returncode == 1 and bogus in r.stderr and not r.stdout,
              "not a state file: %r" % (r,))


@test
def fc_cli_without_a_command_serves_the_default_socket():
    """`ember` alone is Firecracker: the API on /run/firecracker.socket, removed at the
    end. Only where that path is free and /run writable (the sandbox has its own /run)."""
    path = "/run/firecracker.socket"
    if os.path.exists(path) or not os.access("/run", os.W_OK):
        raise Skip("%s is taken or /run is not writable here" % path)
    p = subprocess.Popen([run.ARGS.ember, "--id", "default-sock"], stdin=subprocess.DEVNULL,
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        end = time.time() + secs(10)
        while time.time() < end and not os.path.exists(path) and p.poll() is None:
            time.sleep(0.02)
        check(os.path.exists(path), "no socket at %s: %r" % (path, p.poll()))
        c = test_api.UnixHTTPConnection(path)
        c.request("GET", "/")
        r = c.getresponse()
        body = json.loads(r.read())
        c.close()
        check(r.status == 200 and body.get("id") == "default-sock", "GET /: %r" % body)
        p.send_signal(signal.SIGTERM)
        status = p.wait(secs(10))
        check(status == 128 + signal.SIGTERM, "SIGTERM: status %d" % status)
        check(not os.path.exists(path), "the socket was left behind")
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        p.stderr.close()
