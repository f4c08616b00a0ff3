"""Is a freshly started runner really serving? Ready (port file), healthy (/health), and, when the
bundle has an input example, able to answer it: a version that cannot is never switched in."""
import http.client
import json
import time

from . import crashloop, supervise
from .fsutil import tail
from .layout import AgentError
from .metrics import PROBE_PATH


def request(port, method, path, body=None, timeout=10.0):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        headers = {"Content-Type": "application/json"} if body is not None else {}
        conn.request(method, path, body=body, headers=headers)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def wait_ready(model, version, rec, timeout):
    """Wait for the port file; fail early, with the runner's log, if the process dies."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        port = supervise.read_port(model, version)
        if port:
            supervise.save_port(model, version, port)
            return port
        if not supervise.alive(rec):
            raise AgentError(_died(model, version, rec), "start_failed", log=tail(model.runner_log(version), 30))
        time.sleep(0.05)
    raise AgentError("%s %s did not start within %ss" % (model.name, version, timeout), "start_timeout",
                     log=tail(model.runner_log(version), 30))


def check(model, version, port, example, timeout):
    deadline = time.monotonic() + timeout
    last = None
    while True:
        try:
            status, body = request(port, "GET", "/health", timeout=max(1.0, deadline - time.monotonic()))
            if status == 200:
                break
            last = "HTTP %d" % status
        except OSError as e:
            last = str(e)
        if time.monotonic() > deadline:
            raise AgentError("%s %s failed its health check: %s" % (model.name, version, last), "unhealthy",
                             log=tail(model.runner_log(version), 30))
        time.sleep(0.1)
    if example is None:
        return None
    status, body = request(port, "POST", PROBE_PATH, json.dumps(example).encode(), timeout=max(1.0, timeout))
    if status != 200:
        try:
            detail = json.loads(body).get("error", body[:300])
        except (ValueError, AttributeError):
            detail = body[:300]
        raise AgentError("%s %s cannot answer its input example (HTTP %d): %s" % (model.name, version, status, detail),
                         "example_failed", log=tail(model.runner_log(version), 30))
    return json.loads(body)


def _died(model, version, rec):
    """The log's last line, and how the process ended: a runner killed before it printed anything
    (a signal from outside, the OOM killer) says so instead of showing only the start header."""
    lines = [l for l in tail(model.runner_log(version), 30) if l.strip()]
    last = lines[-1] if lines else "no output"
    status = _exit_status(rec)
    how = "" if status is None else " (%s)" % crashloop.describe_status(status)
    return "%s %s stopped while starting%s: %s" % (model.name, version, how, last)


def _exit_status(rec, wait_s=2.0):
    """How it ended; an exiting process is "not alive" (its command line is gone) a moment before
    it can be reaped, so its status is waited for briefly."""
    if not rec or not rec.get("pid"):
        return None
    deadline = time.monotonic() + wait_s
    status = supervise.exit_status(int(rec["pid"]))
    while status is None and time.monotonic() < deadline:
        time.sleep(0.02)
        status = supervise.exit_status(int(rec["pid"]))
    return status

