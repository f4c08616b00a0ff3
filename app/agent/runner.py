"""Serves one release over HTTP on 127.0.0.1: POST /predict, GET /health, /metrics, /info.

Run as `<release>/.venv/bin/python -m berth_agent.runner --release DIR --port-file FILE`. The port
file is written only once the model has loaded and the socket is bound, so "port file exists" means
"ready". The connections are httploop.py's (one selector loop; predictions go to modelpool.py's
threads, `[serve] model_threads`, 0 = on the loop); this module is what a release answers. main()
runs: load the model -> bind (or inherit) the sockets -> serve (or, with `[serve] workers = N`,
runnerworkers.py forks N workers that serve).
"""
import argparse
import json
import os
import signal
import socket
import sys
import time

from . import feedback, handoff, runnershare, runnerworkers
from .entrypoint import load_entrypoint
from .fsutil import _unlink
from .httphead import MAX_BODY
from .httploop import Loop
from .inputshape import InputCheckError, load as load_input_check
from .modelpool import DEFAULT_THREADS, MAX_THREADS
from .metrics import PROBE_ENDPOINT, PROBE_PATH, Counters
from .runnerlog import RunnerLog
from .requestid import SHADOW_HEADER, request_id
from .requestlog import RequestLog

JSON = "application/json"
METRICS_TYPE = "text/plain; version=0.0.4"
BACKLOG = 1024  # a burst of new connections queues instead of being reset


class Service:
    """One release's answers: `respond(request)` -> (status, body, content type, extra header lines)."""
    # the POST paths whose bodies are read, and their largest body (a label batch is small: 413 unread)
    bodies = {"/predict": MAX_BODY, PROBE_PATH: MAX_BODY, feedback.PATH: feedback.MAX_BODY}

    def __init__(self, model, version, predict, input_check, log, counters, requests, info):
        self.model, self.version, self.predict, self.input_check = model, version, predict, input_check
        self.log, self.counters, self.requests, self.info = log, counters, requests, info
        self.head = "X-Berth-Model: %s\r\nX-Berth-Version: %s\r\n" % (model, version)

    def respond(self, req):
        if req.method == "POST" and req.path == feedback.PATH:  # labels for logged requests
            return feedback.respond(req, self.requests.path)
        if req.method == "POST" and req.path in self.bodies:
            return self._predict(req)
        if req.refused is not None:  # the request itself is malformed: no endpoint to count it under
            status, message, _ = req.refused
            return status, self._error(message), JSON, ""
        if req.method == "GET" or req.method == "HEAD":  # HEAD: the loop sends the head alone
            path = req.path
            if path == "/health":
                return 200, json.dumps({"status": "ok", "model": self.model, "version": self.version,
                                        "uptime_s": round(time.time() - self.counters.started, 3)}).encode(), JSON, ""
            if path == "/info":
                return 200, json.dumps(self.info).encode(), JSON, ""
            if path == "/metrics":
                return 200, self.counters.render().encode(), METRICS_TYPE, ""
        return 404, json.dumps({"error": "no such endpoint: %s" % req.path}).encode(), JSON, ""

    def _predict(self, req):
        endpoint = PROBE_ENDPOINT if req.path == PROBE_PATH else req.path  # the health check, counted apart
        t0 = time.perf_counter()
        rid = request_id(req.headers.get("x-request-id"))
        raw_in, status, error, reason = req.body, 200, None, None
        try:
            if req.refused is not None:
                raise _ClientError(*req.refused)
            data = _parse_json(raw_in)
            if self.input_check is not None:
                _check_input(self.input_check, data)
            payload = _answer_json(self.predict(data))
        except _ClientError as e:
            status, error, reason = e.status, str(e), e.reason
        except (Exception, SystemExit, KeyboardInterrupt) as e:  # the model's own failure: report it, keep
            # serving (a SystemExit in a model thread ended that thread, its request never answered)
            status, error = 500, "%s: %s" % (type(e).__name__, e)
            self.log.failure(e)
        if error is not None:
            payload = self._error(error)
        seconds = time.perf_counter() - t0
        self.counters.observe(endpoint, seconds, status >= 500, rejected=reason)
        self.requests.write(seconds, status, raw_in, payload, error, rid, req.headers.get(SHADOW_HEADER) == "1")
        return status, payload, JSON, "X-Request-Id: %s\r\n" % rid

    def _error(self, message):
        return json.dumps({"error": message, "model": self.model, "version": self.version}).encode()


def _answer_json(answer):
    """The model's answer as JSON; NaN and Infinity refused (json.dumps writes them as bare words,
    which strict parsers, JavaScript's, Go's, jq, reject)."""
    try:
        return json.dumps(answer, allow_nan=False).encode()
    except ValueError as e:
        if "Out of range float" not in str(e):
            raise
        raise ValueError("the model's answer holds NaN or Infinity, which JSON cannot carry; return None instead")


def _check_input(check, data):
    """422 before the model is called when the input is not the shape the release expects."""
    try:
        problem = check.problems(data)
    except RecursionError:
        raise _ClientError(400, "input is nested too deeply")
    if problem:
        raise _ClientError(422, problem, "invalid_input")


def _parse_json(raw):
    try:
        return json.loads(raw or b"null")
    except ValueError as e:
        raise _ClientError(400, "input is not valid JSON: %s" % e)
    except RecursionError:
        raise _ClientError(400, "input is nested too deeply")


class _ClientError(Exception):
    """A request refused as the client's fault; `reason` labels berth_request_rejected_total."""

    def __init__(self, status, message, reason="bad_request"):
        super().__init__(message)
        self.status, self.reason = status, reason


def parse_args(argv=None):
    p = argparse.ArgumentParser(prog="berth-runner")
    p.add_argument("--release", required=True)
    p.add_argument("--port-file", required=True)
    p.add_argument("--request-log", required=True)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--log", default="", help="the file stdout and stderr go to, rotated by size")
    p.add_argument("--listen-fd", type=int, default=None, help="the stable port's inherited listening socket")
    p.add_argument("--control", default="", help="the control socket's path (runnershare, handoff)")
    p.add_argument("--container", default="", help="a container release's spec (containerrun.py)")
    return p.parse_args(argv)


def load(args):
    """The release's Service with its model loaded, or an exit status when it cannot start."""
    with open(os.path.join(args.release, "release.json")) as f:
        release = json.load(f)
    manifest = release["manifest"]
    print("berth-runner: loading %s %s (%s)" % (manifest["name"], manifest["version"], manifest["entrypoint"]), flush=True)
    bundle = os.path.join(args.release, "bundle")
    try:  # a schema that cannot be checked stops the start, before the model loads
        input_check = load_input_check(bundle, manifest)
    except InputCheckError as e:
        print("berth-runner: %s" % e, flush=True)
        return 2
    threads = manifest.get("model_threads")
    threads = DEFAULT_THREADS if threads is None else threads
    if isinstance(threads, bool) or not isinstance(threads, int) or not 0 <= threads <= MAX_THREADS:
        print("berth-runner: [serve] model_threads must be an integer from 0 to %d, not %r; fix berth.toml "
              "and deploy again" % (MAX_THREADS, threads), flush=True)
        return 2
    if args.container:  # the model runs in its container; this process forwards to it
        predict = _container(args)
        if isinstance(predict, int):
            return predict
    else:
        predict = load_entrypoint(bundle, manifest["entrypoint"])
    name, version = manifest["name"], manifest["version"]
    info = {"model": name, "version": version, "sha256": release.get("sha256"), "manifest": manifest,
            "pid": os.getpid(), "python": sys.version.split()[0], "model_threads": threads}
    return Service(name, version, predict, input_check, RunnerLog(args.log), Counters(name, version),
                   RequestLog(args.request_log, version), info)


_CONTAINER = []  # the started container, stopped when the runner ends


def _container(args):
    from .containerrun import Container  # a venv runner never imports it
    from .layout import AgentError

    c = Container(args.container)
    try:
        c.start()
    except AgentError as e:
        print("berth-runner: %s; its log:\n%s" % (e, c.logs()), flush=True)
        c.stop()
        return 3
    _CONTAINER.append(c)
    return c.predict


def bind(args, service):
    """(the release's own listening socket, the stable port's inherited one or None)."""
    own = socket.socket(socket.AF_INET6 if ":" in args.host else socket.AF_INET)
    own.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    own.bind((args.host, args.port))
    own.listen(BACKLOG)
    shared = None
    if args.listen_fd is not None:
        shared = runnershare.adopt(args.listen_fd)
        service.info["stable_port"] = shared.getsockname()[1]
    return own, shared


def serve(args, service, own, shared):
    """Run the loop on the sockets until SIGTERM has drained it: accept on the release's own port at
    once, on the stable port only once the agent says `serve` over the control socket."""
    loop = Loop(service, service.log.failure, threads=service.info["model_threads"])
    loop.listen(own)
    if args.control:
        handoff.listen(args.control, {"fd": lambda: ("ok", shared.fileno()) if shared else "error no stable port",
                                      "serve": lambda: runnershare.serve(loop, shared),
                                      "unserve": lambda: runnershare.unserve(loop, shared),
                                      "stop": handoff.stop_self})
    signal.set_wakeup_fd(loop.wake_fd())
    signal.signal(signal.SIGTERM, lambda *_: loop.call_soon(loop.stop_accepting))
    ready(args, own)
    loop.run()
    if args.control:
        _unlink(args.control)
    service.requests.close()
    print("berth-runner: stopped", flush=True)
    return 0


def ready(args, own, workers=1):
    """Write the port file: the model is loaded and the sockets queue connections."""
    port = own.getsockname()[1]
    tmp = args.port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write(str(port))
    os.replace(tmp, args.port_file)
    print("berth-runner: serving on %s:%d%s" % (args.host, port, " (%d workers)" % workers if workers > 1 else ""),
          flush=True)


def main(argv=None):
    args = parse_args(argv)
    service = load(args)
    if isinstance(service, int):
        return service
    try:
        return _serve(args, service)
    finally:
        for c in _CONTAINER:
            c.stop()


def _serve(args, service):
    own, shared = bind(args, service)
    # `[serve] workers = N`: fork here, after the model loaded and the sockets are bound; each worker
    # makes its own loop and epoll on the same non-blocking sockets (runnerworkers.py)
    workers = 1 if args.container else runnerworkers.count(service.info["manifest"])  # the container has them
    if workers > 1:
        return runnerworkers.run(args, service, own, shared, workers, lambda: ready(args, own, workers))
    return serve(args, service, own, shared)


if __name__ == "__main__":
    sys.exit(main())
