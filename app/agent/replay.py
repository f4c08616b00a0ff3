"""`berth experiment replay MODEL --b VERSION [--last N]`: B run on the last N logged inputs of the
current version A, on the server, before any user sees B (docs/experiments.md, "Replay").

B always gets a private runner of its own for the replay (a random 127.0.0.1 port, its own request
log logs/replay.jsonl, its own runner log), stopped after: the live request log and labels stay
A's and the experiment's, and a B already serving (in an experiment) is left alone. Latencies are
each runner's own (A's from the request log, B's from the replay log), so HTTP overheads of the
replay do not count against B."""
import collections
import http.client
import json
import os
import subprocess
import time

from . import supervise
from .feedback import LABELS_FILE, lines
from .labelfigures import _Tally, predicted
from .layout import AgentError, check_version
from .releases import read_release
from .requestid import HEADER
from .runnerenv import runner_environment
from .verdict import percentile, verdict

DEFAULT_LAST = 200
MAX_LAST = 10000


def replay(ctx, req):
    model = ctx.root.model(req["model"])
    a = model.current_version()
    if a is None:
        raise AgentError("%s has no current release on this server to replay" % model.name, "not_found")
    b = check_version(req["b"])
    info = read_release(model, b)
    if not info:
        raise AgentError("there is no release %s of %s on this server" % (b, model.name), "not_found")
    if b == a:
        raise AgentError("%s is the current version: replay another release against it" % b, "usage")
    last = req.get("last", DEFAULT_LAST)
    if isinstance(last, bool) or not isinstance(last, int) or not 1 <= last <= MAX_LAST:
        raise AgentError("--last must be 1 to %d" % MAX_LAST, "usage")
    logged = collections.deque(maxlen=last)
    for item in lines(model.request_log()):
        if item.get("version") == a and _replayable(item):
            logged.append(item)
    if not logged:
        raise AgentError("no logged requests of %s %s to replay yet" % (model.name, a), "not_found")
    timeout = float((info.get("manifest") or {}).get("health_timeout_s") or 60)
    with _PrivateRunner(model, b, info, timeout) as runner:
        answers = runner.send(ctx, logged)
    return compare(model, a, b, logged, answers, runner.latencies())


def _replayable(item):
    """A whole logged request as the runner writes it; a cut input (over 4 KB, ending in an
    ellipsis) or a foreign line of other shapes (a status or id that is not one) is skipped."""
    text, status = item.get("input"), item.get("status")
    return (isinstance(text, str) and not text.endswith("\u2026") and isinstance(item.get("request_id"), str)
            and isinstance(status, int) and not isinstance(status, bool))


def compare(model, a, b, logged, answers, b_latency):
    """The comparison: per version figures, agreement over the inputs both answered, and the verdict."""
    labels = {}
    for item in lines(os.path.join(model.logs, LABELS_FILE)):
        if isinstance(item.get("request_id"), str):
            labels[item["request_id"]] = item.get("label")
    side_a, side_b = _Side(a), _Side(b)
    pairs = []
    for item, (rid, status, out) in zip(logged, answers):
        label = labels.get(item.get("request_id"))
        side_a.add(item.get("status"), item.get("latency_ms"), item.get("output"), label)
        side_b.add(status, b_latency.get(rid), out, label)
        if item.get("status") == 200 and status == 200:
            pairs.append((item.get("output"), out))
    fa, fb = side_a.figures(), side_b.figures()
    return {"model": model.name, "replayed": len(answers), "a": fa, "b": fb, "agreement": agreement(pairs),
            "verdict": verdict(side_a.for_verdict(), side_b.for_verdict())}


def agreement(pairs):
    """Over (answer A, answer B) pairs: the share of equal predictions, and for numbers the mean
    and max absolute difference (the same figures a shadow experiment reports)."""
    equal = compared = numeric = 0
    diffs = []
    for out_a, out_b in pairs:
        pa, pb = predicted(out_a), predicted(out_b)
        if pa is None or pb is None:
            continue
        compared += 1
        if _is_number(pa) and _is_number(pb):
            numeric += 1
            diffs.append(abs(float(pa) - float(pb)))
            equal += float(pa) == float(pb)
        else:
            equal += str(pa) == str(pb)
    out = {"compared": compared, "equal": equal, "agreement": equal / compared if compared else None}
    if diffs and numeric == compared:
        out["mean_abs_diff"], out["max_abs_diff"] = sum(diffs) / len(diffs), max(diffs)
    return out


def _is_number(x):
    return isinstance(x, (int, float)) and not isinstance(x, bool)


class _Side:
    def __init__(self, version):
        self.version, self.requests, self.errors, self.rejected = version, 0, 0, 0
        self.latencies, self.tally = [], _Tally()

    def add(self, status, latency_ms, output, label):
        self.requests += 1
        if status is None or status >= 500:
            self.errors += 1
        elif status >= 400:
            self.rejected += 1
        if isinstance(latency_ms, (int, float)) and not isinstance(latency_ms, bool):
            self.latencies.append(float(latency_ms))
        if status == 200 and label is not None:
            pred = predicted(output)
            if pred is not None:
                self.tally.add(pred, label)

    def figures(self):
        out = {"version": self.version, "requests": self.requests, "errors": self.errors, "rejected": self.rejected}
        for q in (50, 95, 99):
            value = percentile(self.latencies, q / 100.0)
            out["p%d_ms" % q] = round(value, 3) if value is not None else None
        out.update((k, v) for k, v in self.tally.figures(False).items() if k != "correct")
        return out

    def for_verdict(self):
        out = {"version": self.version, "requests": self.requests, "errors": self.errors, "rejected": self.rejected,
               "latencies_ms": self.latencies}
        out.update(self.tally.figures(True))
        return out


class _PrivateRunner:
    """B's runner for the replay only: started with supervise's command line and environment, its
    files named replay-*, stopped (SIGTERM, then SIGKILL) when the replay ends, however it ends."""

    def __init__(self, model, version, info, timeout):
        self.model, self.version, self.timeout = model, version, timeout
        self.release = model.release(version)
        self.port_file = os.path.join(model.run, "replay-%s.port" % version)
        self.request_log = os.path.join(model.logs, "replay.jsonl")
        self.log = os.path.join(model.logs, "replay-%s.log" % version)
        self.env = (info.get("manifest") or {}).get("env")

    def __enter__(self):
        for path in (self.port_file, self.request_log):
            if os.path.exists(path):
                os.unlink(path)
        os.makedirs(self.model.run, exist_ok=True)
        cmd = [supervise.venv_python(self.release), "-m", supervise.PACKAGE + ".runner", "--release", self.release,
               "--port-file", self.port_file, "--request-log", self.request_log, "--log", self.log]
        env = dict(runner_environment(self.env), PYTHONPATH=supervise.PACKAGE_PARENT,
                   PYTHONUNBUFFERED="1", PYTHONDONTWRITEBYTECODE="1")
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(cmd, cwd=self.release, env=env, stdin=subprocess.DEVNULL, stdout=log,
                                         stderr=subprocess.STDOUT, start_new_session=True, close_fds=True)
        try:
            self.port = self._wait_port()
        except BaseException:
            self.__exit__()
            raise
        return self

    def _wait_port(self):
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            try:
                with open(self.port_file) as f:
                    return int(f.read().strip())
            except (OSError, ValueError):
                pass
            if self.proc.poll() is not None:
                raise AgentError("%s %s did not start for the replay (see %s)" % (self.model.name, self.version, self.log),
                                 "start_failed")
            time.sleep(0.05)
        raise AgentError("%s %s did not start within %ss for the replay" % (self.model.name, self.version, self.timeout),
                         "start_timeout")

    def send(self, ctx, logged):
        """[(replay request id, status, answer text)] in the order of `logged`; a progress step
        about every second."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=self.timeout)
        out, shown, total = [], time.monotonic(), len(logged)
        try:
            for i, item in enumerate(logged):
                rid = "replay-%d" % i
                try:
                    conn.request("POST", "/predict", item["input"].encode("utf-8"),
                                 {"Content-Type": "application/json", HEADER: rid})
                    resp = conn.getresponse()
                    out.append((rid, resp.status, resp.read().decode("utf-8", "replace")))
                except (OSError, http.client.HTTPException) as e:  # B died or hung up: an error, go on
                    conn.close()
                    out.append((rid, None, json.dumps({"error": str(e)})))
                if time.monotonic() - shown >= 1.0 or i + 1 == total:
                    shown = time.monotonic()
                    ctx.emit("step", step="replay", done=i + 1, total=total)
        finally:
            conn.close()
        return out

    def latencies(self):
        """{request id: B's own latency_ms} from the replay log; read once the runner has stopped
        (it writes each line after its answer, and drains before it exits)."""
        return dict((item.get("request_id"), item.get("latency_ms")) for item in lines(self.request_log)
                    if isinstance(item.get("request_id"), str))

    def __exit__(self, *exc):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        for path in (self.port_file,):
            if os.path.exists(path):
                os.unlink(path)


COMMANDS = {"replay": replay}
