#!/usr/bin/env python3
"""Runner overhead bench: what Berth's runner adds to a trivial model's /predict, next to a direct
call of the same function and the same function behind uvicorn + Starlette and behind Flask's own
threaded server, all measured in the same run on the same machine.

    .venv/bin/python bench/runner_overhead.py [--requests N] [--seconds S] [--connections C] [--repeat R] [-v]
        [--baseline GIT_REF]

--baseline adds the runner of another commit (its app/agent, taken with `git archive`) as one more
stack, so a change to the runner is measured against the runner it replaces in the same run.

Needs the `bench` extra (uvicorn, starlette, flask). Every server is a child process on 127.0.0.1;
the load generators are other child processes, so no client shares a GIL with a server. Exit 0 when
every stack answered every request correctly, 1 otherwise. See bench/README.md.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
import _wrk  # noqa: E402 (bench/_wrk.py)

MODEL_SRC = '''"""The runner-overhead bench's model: as little work as a prediction can be."""


def predict(data):
    return {"y": sum(data["x"])}
'''
INPUT = {"x": [1, 2, 3, 4]}
BODY = json.dumps(INPUT).encode()
EXPECTED_Y = 10
STACKS = ("berth", "starlette", "flask")
LABELS = {
    "direct": "direct call",
    "berth": "Berth runner",
    "baseline": "Berth runner at the baseline",
    "starlette": "uvicorn + Starlette (uvloop, httptools)",
    "flask": "Flask (threaded dev server)",
}
GOAL_P50_OVERHEAD_MS = 1.0
WRK_CONNECTIONS = (1, 16)  # issue 15's goal: uvicorn's req/s at 16, its p50 or better at 1
WRK_LUA = None  # the wrk script, when wrk runs


# -- the children: servers and clients ---------------------------------------------------------

def _load_model(bundle):
    sys.path.insert(0, str(bundle))
    import model  # noqa: the bundle's model.py

    return model.predict


def serve_starlette(bundle, port):
    import uvicorn
    from starlette.applications import Starlette
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    predict = _load_model(bundle)

    async def endpoint(request):
        return JSONResponse(predict(await request.json()))

    app = Starlette(routes=[Route("/predict", endpoint, methods=["POST"])])
    # The strongest peer configuration, asked for by name (it fails when uvloop or httptools is
    # missing instead of quietly falling back to asyncio and h11): one worker, access log on (as
    # Berth's request log is).
    uvicorn.run(app, host="127.0.0.1", port=port, loop="uvloop", http="httptools")


def serve_flask(bundle, port):
    from flask import Flask, jsonify, request

    predict = _load_model(bundle)
    app = Flask("bench")

    @app.post("/predict")
    def endpoint():
        return jsonify(predict(request.get_json()))

    app.run(host="127.0.0.1", port=port, threaded=True)  # `flask run` does the same (threaded by default)


def _raw_request(port):
    return (b"POST /predict HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\n\r\n" % (port, len(BODY))) + BODY


class RawClient:
    """One keep-alive connection sending the same request again and again: a request is one
    sendall, a response is read by Content-Length. Much less client CPU than http.client, which
    matters when clients and server share 2 cores."""

    def __init__(self, port):
        self.port = port
        self.request = _raw_request(port)
        self.sock = None
        self.reconnects = -1  # connections opened after the first
        self.buf = b""

    def _connect(self):
        self.sock = socket.create_connection(("127.0.0.1", self.port), timeout=30)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.reconnects += 1
        self.buf = b""

    def call(self):
        if self.sock is None:  # first call, or the server said "Connection: close" (Flask's dev server always does)
            self._connect()
        self.sock.sendall(self.request)
        buf = self.buf
        while True:
            end = buf.find(b"\r\n\r\n")
            if end >= 0:
                break
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("server closed the connection")
            buf += chunk
        head = buf[:end].decode("latin-1")
        status = int(head[9:12])
        length, close = None, False
        for line in head.split("\r\n")[1:]:
            name, _, value = line.partition(":")
            name = name.strip().lower()
            if name == "content-length":
                length = int(value)
            elif name == "connection" and value.strip().lower() == "close":
                close = True
        if length is None:
            raise ValueError("response without Content-Length: %r" % head)
        need = end + 4 + length
        while len(buf) < need:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("server closed the connection")
            buf += chunk
        body, self.buf = buf[end + 4:need], buf[need:]
        if close:
            self.close()
        if status != 200:
            raise ValueError("status %d: %r" % (status, body[:200]))
        return body

    def close(self):
        if self.sock is not None:
            self.sock.close()
            self.sock = None


def _check(body):
    if json.loads(body).get("y") != EXPECTED_Y:
        raise ValueError("wrong answer: %r" % body[:200])


def client_latency(port, requests, warmup):
    """Sequential requests over one keep-alive http.client connection: per-request seconds."""
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    headers = {"Content-Type": "application/json"}
    times = []
    closed = 0
    perf = time.perf_counter
    for i in range(warmup + requests):
        t0 = perf()
        conn.request("POST", "/predict", BODY, headers)
        resp = conn.getresponse()
        body = resp.read()
        took = perf() - t0
        if resp.status != 200:
            raise ValueError("status %d: %r" % (resp.status, body[:200]))
        if i == 0 or i == warmup:
            _check(body)
        if i >= warmup:
            times.append(took)
            closed += resp.will_close  # http.client reconnects by itself on the next request
    conn.close()
    return {"times": times, "closed": closed}


def client_load(port, threads, start_at, seconds):
    """`threads` keep-alive connections, each sending requests back to back from now until
    start_at + seconds (wall clock, shared with the other client processes); requests completed
    inside [start_at, start_at + seconds] are counted, the ones before are warm-up."""
    end_at = start_at + seconds
    counts = [0] * threads
    reconnects = [0] * threads
    errors = []

    def worker(i):
        try:
            c = RawClient(port)
            _check(c.call())
            n = 0
            now = time.time
            while True:
                c.call()
                t = now()
                if t >= end_at:
                    break
                if t >= start_at:
                    n += 1
            counts[i] = n
            reconnects[i] = c.reconnects
            c.close()
        except Exception as e:  # reported to the parent, which fails the run
            errors.append("%s: %s" % (type(e).__name__, e))

    ts = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return {"count": sum(counts), "per_connection": counts, "reconnects": sum(reconnects), "errors": errors}


def child_main(argv):
    role = argv[0]
    if role == "serve":
        stack, bundle, port = argv[1], Path(argv[2]), int(argv[3])
        {"starlette": serve_starlette, "flask": serve_flask}[stack](bundle, port)
        return 0
    if role == "latency":
        out = client_latency(int(argv[1]), int(argv[2]), int(argv[3]))
    elif role == "load":
        out = client_load(int(argv[1]), int(argv[2]), float(argv[3]), float(argv[4]))
    else:
        raise SystemExit("unknown child role %r" % role)
    sys.stdout.write(json.dumps(out))
    return 0


# -- the parent: servers up and down, clients, figures -------------------------------------------

def percentile(sorted_values, q):
    """Nearest-rank percentile of an already sorted list."""
    return sorted_values[max(0, math.ceil(q * len(sorted_values)) - 1)]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


BASELINE_ROOT = None  # a folder holding app/agent of --baseline's commit


def child_env(stack="berth"):
    root = BASELINE_ROOT if stack == "baseline" else ROOT
    env = dict(os.environ, PYTHONPATH=str(root), PYTHONUNBUFFERED="1")
    for var in ("PYTHONHOME", "VIRTUAL_ENV"):
        env.pop(var, None)
    return env


class Server:
    """One stack's server process, started on a free port and waited for until it answers."""

    def __init__(self, stack, tmp: Path, bundle: Path, release: Path):
        self.stack, self.tmp = stack, tmp
        self.log_path = tmp / ("%s.log" % stack)
        self.request_log = tmp / "requests.jsonl"
        env = child_env(stack)
        port_file = None
        if stack in ("berth", "baseline"):
            # Exactly how app/agent/supervise.py starts a runner (the package is `app.agent` in the
            # source tree, `berth_agent` on a server), with this venv's Python instead of the
            # release's own venv (a `--without-pip` venv of the same interpreter).
            port_file = tmp / "runner.port"
            if port_file.exists():
                port_file.unlink()
            cmd = [sys.executable, "-m", "app.agent.runner", "--release", str(release),
                   "--port-file", str(port_file), "--request-log", str(self.request_log)]
            cwd = release
        else:
            self.port = free_port()
            cmd = [sys.executable, str(Path(__file__).resolve()), "--child", "serve", stack, str(bundle), str(self.port)]
            cwd = tmp
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=self.log,
                                     stderr=subprocess.STDOUT)
        try:
            self._wait_ready(port_file)
        except BaseException:
            self.stop()
            raise

    def _wait_ready(self, port_file):
        deadline = time.monotonic() + 30
        if port_file is not None:
            while not port_file.exists():
                self._alive_or_raise(deadline)
                time.sleep(0.02)
            self.port = int(port_file.read_text())
        while True:
            self._alive_or_raise(deadline)
            try:
                c = RawClient(self.port)
                try:
                    _check(c.call())
                finally:
                    c.close()
                break
            except OSError:
                time.sleep(0.05)

    def _alive_or_raise(self, deadline):
        if self.proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError("%s server did not come up (exit %s); its output:\n%s"
                               % (self.stack, self.proc.poll(), self.log_path.read_text(errors="replace")[-2000:]))

    def cpu_seconds(self):
        """user + system CPU time of the server process so far (Linux /proc; None elsewhere)."""
        try:
            with open("/proc/%d/stat" % self.proc.pid) as f:
                fields = f.read().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except (OSError, ValueError, IndexError):
            return None

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.log.close()


def run_child(args, timeout):
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child"] + [str(a) for a in args]
    proc = subprocess.run(cmd, env=child_env(), stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError("client %s failed (%d):\n%s" % (args[0], proc.returncode, proc.stderr.decode(errors="replace")[-2000:]))
    return json.loads(proc.stdout)


def measure_direct(bundle, requests, warmup):
    """p50/p99 of calling the model's function in-process, timed one call at a time as the
    clients time one request at a time (the timer's own cost is in both)."""
    code = ("import sys, json, time; sys.path.insert(0, %r); import model; data = %r; f = model.predict; p = time.perf_counter\n"
            "out = []\nfor i in range(%d):\n    t0 = p(); f(data); t = p() - t0\n    if i >= %d: out.append(t)\n"
            "print(json.dumps(out))" % (str(bundle), INPUT, warmup + requests, warmup))
    proc = subprocess.run([sys.executable, "-c", code], env=child_env(), capture_output=True, check=True)
    return json.loads(proc.stdout)


def measure_stack(stack, args, tmp, bundle, release):
    srv = Server(stack, tmp, bundle, release)
    try:
        lat_out = run_child(["latency", srv.port, args.requests, args.warmup], timeout=600)
        procs = args.load_procs
        per = [args.connections // procs + (1 if i < args.connections % procs else 0) for i in range(procs)]
        start_at = time.time() + 1.0  # connect and warm up during the first second
        outs = [None] * procs
        cpu0, wall0 = srv.cpu_seconds(), time.monotonic()

        def go(i):
            try:
                outs[i] = run_child(["load", srv.port, per[i], start_at, args.seconds], timeout=args.seconds + 120)
            except Exception as e:
                outs[i] = {"count": 0, "errors": [str(e)]}

        ts = [threading.Thread(target=go, args=(i,)) for i in range(procs) if per[i]]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        cpu1, wall1 = srv.cpu_seconds(), time.monotonic()
        errors = [e for o in outs if o for e in o["errors"]]
        if errors:
            raise RuntimeError("%s: load clients failed: %s" % (stack, "; ".join(errors[:3])))
        count = sum(o["count"] for o in outs if o)
        reconnects = sum(o.get("reconnects", 0) for o in outs if o)
        wrk = {c: _wrk.run(srv.port, WRK_LUA, c, args.wrk_seconds) for c in WRK_CONNECTIONS} if WRK_LUA else {}
    finally:
        srv.stop()
    logged = None
    if stack in ("berth", "baseline"):
        logged = 0  # the log rotates at 10 MB: a fast round fills it more than once (KEEP_FILES = 3)
        for suffix in ("", ".1", ".2"):
            path = str(srv.request_log) + suffix
            if os.path.exists(path):
                with open(path, "rb") as f:
                    logged += sum(1 for _ in f)
                os.replace(path, tmp / ("requests.previous.jsonl" + suffix))
    return {"times": lat_out["times"], "closed": lat_out["closed"], "rps": count / args.seconds,
            "reconnects": reconnects, "logged": logged, "wrk": wrk,
            "cpu": None if cpu0 is None or cpu1 is None else (cpu1 - cpu0) / (wall1 - wall0)}


def extract_baseline(ref: str, dest: Path) -> Path:
    """app/agent of commit `ref`, unpacked under dest (so `-m app.agent.runner` finds it there)."""
    dest.mkdir(parents=True)
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", ref, "app/agent"], capture_output=True, check=True)
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive.stdout, check=True)
    (dest / "app" / "__init__.py").touch()
    return dest


def make_release(tmp: Path, model_threads=None):
    """A bundle folder with the model, and a release folder as the agent leaves one: release.json
    (version, sha256, manifest, files) next to bundle/."""
    bundle = tmp / "bundle"
    bundle.mkdir()
    (bundle / "model.py").write_text(MODEL_SRC)
    (bundle / "example.json").write_text(json.dumps(INPUT) + "\n")
    release = tmp / "release"
    (release / "bundle").mkdir(parents=True)
    for name in ("model.py", "example.json"):
        (release / "bundle" / name).write_bytes((bundle / name).read_bytes())
    manifest = {"name": "overhead", "version": "1.0.0", "entrypoint": "model:predict", "python": ">=3.8",
                "input_example": "example.json"}
    if model_threads is not None:  # [serve] model_threads (a baseline from before it ignores it)
        manifest["model_threads"] = model_threads
    (release / "release.json").write_text(json.dumps({"version": "1.0.0", "sha256": "0" * 64, "manifest": manifest,
                                                      "files": {}}))
    return bundle, release


def machine():
    cpu = "?"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    load = "%.2f %.2f %.2f" % os.getloadavg() if hasattr(os, "getloadavg") else "?"
    return "%s, %s cores usable (%s online), load %s" % (cpu, usable, os.cpu_count(), load), usable


def versions():
    from importlib import metadata

    out = []
    for p in ("uvicorn", "starlette", "h11", "flask", "werkzeug"):
        try:
            out.append("%s %s" % (p, metadata.version(p)))
        except metadata.PackageNotFoundError:
            out.append("%s missing" % p)
    extras = []
    for p in ("uvloop", "httptools"):
        try:
            metadata.version(p)
            extras.append("%s present (uvicorn uses it)" % p)
        except metadata.PackageNotFoundError:
            extras.append("%s absent" % p)
    return ", ".join(out), ", ".join(extras)


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--requests", type=int, default=2000, help="sequential requests per stack for p50/p99 (default 2000)")
    p.add_argument("--warmup", type=int, default=300, help="unmeasured requests before those (default 300)")
    p.add_argument("--seconds", type=float, default=5.0, help="length of the throughput window per stack (default 5)")
    p.add_argument("--connections", type=int, default=8, help="concurrent keep-alive connections (default 8)")
    p.add_argument("--load-procs", type=int, default=2, help="client processes sharing those connections (default 2)")
    p.add_argument("--repeat", type=int, default=1, help="rounds over all stacks (default 1); medians are reported")
    p.add_argument("--stacks", default=",".join(STACKS), help="comma-separated subset of %s" % ",".join(STACKS))
    p.add_argument("--baseline", metavar="GIT_REF", help="also measure the runner of this commit (e.g. HEAD~1, main)")
    p.add_argument("--wrk-seconds", type=float, default=5.0, help="length of each wrk run (1 and %s connections; "
                   "default 5)" % ",".join(map(str, WRK_CONNECTIONS)))
    p.add_argument("--model-threads", type=int, default=None, help="the runner's [serve] model_threads "
                   "(default: the runner's own, 4)")
    p.add_argument("--no-wrk", action="store_true", help="skip the wrk runs even when wrk is installed")
    p.add_argument("-v", "--verbose", action="store_true", help="print each stack's figures as they come")
    args = p.parse_args(argv)
    args.stacks = [s.strip() for s in args.stacks.split(",") if s.strip()]
    if args.baseline:
        args.stacks.insert(args.stacks.index("berth") + 1 if "berth" in args.stacks else 0, "baseline")
    args.wrk = not args.no_wrk and _wrk.available() is not None
    if any(s not in STACKS + ("baseline",) for s in args.stacks):
        p.error("--stacks takes %s" % ", ".join(STACKS))
    if args.requests < 10 or args.seconds <= 0 or args.connections < 1 or args.load_procs < 1 or args.repeat < 1:
        p.error("--requests >= 10, --seconds > 0, --connections >= 1, --load-procs >= 1, --repeat >= 1")
    return args


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--child"]:
        return child_main(argv[1:])
    args = parse_args(argv)
    sys.path.insert(0, str(HERE))
    import _kit

    desc, cores = machine()
    libs, extras = versions()
    print("machine: %s; Python %s" % (desc, platform.python_version()))
    print("stacks: %s; %s" % (libs, extras))
    print("latency: %d sequential requests per stack (after %d warm-up) over one keep-alive http.client "
          "connection; throughput: %d keep-alive connections from %d client processes for %.1f s; %d round(s)"
          % (args.requests, args.warmup, args.connections, args.load_procs, args.seconds, args.repeat))
    res = {s: {"p50": [], "p99": [], "rps": [], "cpu": []} for s in ["direct"] + args.stacks}
    conn = {"direct": "-"}
    notes = []
    with tempfile.TemporaryDirectory(prefix="berth-overhead-") as tmp:
        tmp = Path(tmp)
        bundle, release = make_release(tmp, args.model_threads)
        if args.wrk:
            global WRK_LUA
            WRK_LUA = _wrk.script(tmp, BODY)
        if args.baseline:
            global BASELINE_ROOT
            BASELINE_ROOT = extract_baseline(args.baseline, tmp / "baseline")
        try:
            for r in range(1, args.repeat + 1):
                d = sorted(measure_direct(bundle, args.requests, args.warmup))
                res["direct"]["p50"].append(percentile(d, 0.5))
                res["direct"]["p99"].append(percentile(d, 0.99))
                for stack in args.stacks:
                    out = measure_stack(stack, args, tmp, bundle, release)
                    t = sorted(out["times"])
                    p50, p99 = percentile(t, 0.5), percentile(t, 0.99)
                    res[stack]["p50"].append(p50)
                    res[stack]["p99"].append(p99)
                    res[stack]["rps"].append(out["rps"])
                    for c, w in out["wrk"].items():
                        res[stack].setdefault("wrk", {}).setdefault(c, []).append(w)
                    if out["cpu"] is not None:
                        res[stack]["cpu"].append(out["cpu"])
                    conn[stack] = "new per request" if out["closed"] or out["reconnects"] else "keep-alive"
                    if out["logged"] is not None:
                        sent = args.requests + args.warmup + 1
                        if out["logged"] < sent:
                            raise RuntimeError("the runner's request log has %d lines for at least %d requests"
                                               % (out["logged"], sent))
                        if r == 1:
                            notes.append("Berth's request log got one line per request (%d lines in round 1)"
                                         % out["logged"])
                    if r == 1 and (out["closed"] or out["reconnects"]):
                        notes.append("%s closed the connection after %d of %d latency requests (%d reconnects "
                                     "under load): its figures include a TCP connect per request"
                                     % (LABELS[stack], out["closed"], args.requests, out["reconnects"]))
                    if args.verbose:
                        print("  round %d %-28s p50 %.3f ms  p99 %.3f ms  %8.0f req/s  server CPU %s%s"
                              % (r, LABELS[stack], p50 * 1e3, p99 * 1e3, out["rps"],
                                 "?" if out["cpu"] is None else "%.0f %%" % (out["cpu"] * 100),
                                 "".join("  wrk c=%d: %.0f req/s p50 %.3f ms p99 %.3f ms" % (c, w["rps"], w["p50"] * 1e3,
                                                                                          w["p99"] * 1e3)
                                         for c, w in out["wrk"].items())), flush=True)
        except Exception:
            traceback.print_exc()
            print("FAILED", file=sys.stderr)
            return 1

    wrk_runs = {s: d.pop("wrk", {}) for s, d in res.items()}
    med = {s: {k: statistics.median(v) for k, v in d.items() if v} for s, d in res.items()}
    direct_p50 = med["direct"]["p50"]
    flask_rps = med.get("flask", {}).get("rps")
    rows = []
    for s in ["direct"] + args.stacks:
        m = med[s]
        over = "-" if s == "direct" else "%.3f" % ((m["p50"] - direct_p50) * 1e3)
        rps = m.get("rps")
        rows.append((LABELS[s], conn.get(s, "-"), "%.4f" % (m["p50"] * 1e3), "%.4f" % (m["p99"] * 1e3), over,
                     "-" if rps is None else "%.0f" % rps,
                     _kit.ratio(rps, flask_rps) if rps is not None and flask_rps else "-",
                     "%.0f %%" % (m["cpu"] * 100) if "cpu" in m else "-"))
    headers = ("stack", "connection", "p50 ms", "p99 ms", "p50 overhead ms", "req/s", "vs Flask", "server CPU")
    table = _kit.table(rows, headers)
    verdicts = []
    if "berth" in med:
        b = med["berth"]
        over_ms = (b["p50"] - direct_p50) * 1e3
        verdicts.append("p50 overhead %.3f ms (goal < %.1f ms): %s"
                        % (over_ms, GOAL_P50_OVERHEAD_MS, "MET" if over_ms < GOAL_P50_OVERHEAD_MS else "MISSED"))
        if flask_rps:
            verdicts.append("throughput %.0f req/s = %.2fx Flask's %.0f (goal >= 1.00x): %s"
                            % (b["rps"], b["rps"] / flask_rps, flask_rps, "MET" if b["rps"] >= flask_rps else "MISSED"))
        if "baseline" in med:
            base = med["baseline"]
            rps_cost, p50_cost = 1 - b["rps"] / base["rps"], b["p50"] / base["p50"] - 1
            verdicts.append("against the runner at %s in the same run: req/s %+.1f %%, p50 %+.1f %% (goal: no more "
                            "than 5 %% worse): %s" % (args.baseline, -rps_cost * 100, p50_cost * 100,
                                                      "MET" if rps_cost <= 0.05 and p50_cost <= 0.05 else "MISSED"))
        if "starlette" in med:
            verdicts.append("for reference: %.2fx uvicorn + Starlette's req/s, p50 %.2fx theirs"
                            % (b["rps"] / med["starlette"]["rps"], b["p50"] / med["starlette"]["p50"]))
    print()
    print("```")
    print("runner overhead bench, %s, %s" % (_kit.source_state(), time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())))
    print("machine: %s; Python %s" % (desc, platform.python_version()))
    print("%s; %s" % (libs, extras))
    print("trivial model: predict(data) -> {\"y\": sum(data[\"x\"])}, input %s" % BODY.decode())
    print("latency: %d sequential keep-alive requests (http.client, one connection); req/s: %d connections, %d client "
          "processes, %.1f s; %s" % (args.requests, args.connections, args.load_procs, args.seconds,
                                     "median of %d rounds" % args.repeat if args.repeat > 1 else "1 round"))
    print("server CPU: the server process's CPU time over the load phase / its wall time (100 %% = one core, "
          "%d cores here, shared with the clients)" % cores)
    print()
    print(table)
    print()
    for v in verdicts:
        print("Berth runner: " + v)
    for n in notes:
        print("note: " + n)
    if any(wrk_runs.values()):
        print()
        print(wrk_table(wrk_runs, args))
    print("```")
    return 0


def wrk_table(runs, args):
    """req/s, p50 and p99 measured by wrk at each connection count: the range over the rounds (each
    round runs every stack in turn, so the stacks are interleaved), and Berth's ratio to uvicorn's."""
    import _kit

    def rng(values, scale=1.0, fmt="%.0f"):
        lo, hi = min(values) * scale, max(values) * scale
        return fmt % lo if len(values) == 1 else (fmt + "-" + fmt) % (lo, hi)

    rows = []
    for s, by_c in runs.items():
        for c, ws in sorted(by_c.items()):
            rows.append((LABELS[s], str(c), rng([w["rps"] for w in ws]), rng([w["p50"] for w in ws], 1e3, "%.3f"),
                         rng([w["p99"] for w in ws], 1e3, "%.3f")))
    lines = ["wrk %s, %.0f s per run, %d round(s) interleaved; ranges over the rounds"
             % (subprocess.run(["wrk", "-v"], capture_output=True, text=True).stdout.split("[")[0].strip() or "wrk",
                args.wrk_seconds, args.repeat),
             _kit.table(rows, ("stack", "connections", "req/s", "p50 ms", "p99 ms"))]
    if runs.get("berth") and runs.get("starlette"):
        for c in sorted(runs["berth"]):
            b, u = runs["berth"][c], runs["starlette"].get(c)
            if not u:
                continue
            rps = [x["rps"] / y["rps"] for x, y in zip(b, u)]
            p50 = [x["p50"] / y["p50"] for x, y in zip(b, u)]
            lines.append("Berth / uvicorn at %d connection(s), round by round: req/s %s x, p50 %s x (median %.2fx, %.2fx)"
                         % (c, ", ".join("%.2f" % v for v in rps), ", ".join("%.2f" % v for v in p50),
                            statistics.median(rps), statistics.median(p50)))
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
