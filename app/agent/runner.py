"""Serves one release over HTTP on 127.0.0.1: POST /predict, GET /health, /metrics, /info.

Run as `<release>/.venv/bin/python -m berth_agent.runner --release DIR --port-file FILE`. The port
file is written only once the model has loaded and the socket is bound, so "port file exists" means
"ready". Each response is written in one send with TCP_NODELAY: separate small writes meet Nagle's
algorithm and delayed ACKs and cost ~40 ms per keep-alive request.
"""
import argparse
import http.client
import json
import os
import signal
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from . import feedback, handoff, runnershare
from .entrypoint import load_entrypoint
from .fsutil import _unlink
from .inputshape import InputCheckError, load as load_input_check
from .metrics import PROBE_ENDPOINT, PROBE_PATH, Counters
from .runnerguard import BODY_DEADLINE, REQUEST_DEADLINE, ConnectionGuard
from .runnerlog import RunnerLog
from .requestid import HEADER as REQUEST_ID_HEADER, request_id
from .requestlog import RequestLog

MAX_BODY = 64 * 1024 * 1024
MAX_HEADER_BYTES = 64 * 1024  # all header lines of a request together (http.server: 100 lines of 64 KB each)
LARGE_BODY = 256 * 1024  # bodies over this get BODY_DEADLINE instead of the headers' deadline


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server_version = "berth-runner"

    def setup(self):
        BaseHTTPRequestHandler.setup(self)
        self._budget = _HeaderBudget(self.rfile)  # one per connection: parse_request reuses it

    def handle_one_request(self):
        """The next request (request line and headers) must be in within REQUEST_DEADLINE of the end
        of the previous one (or of the connection's start): idle and slow connections alike are
        closed then. A deadline, not a socket timeout: a socket with a timeout polls before every
        recv and send, and peeking for a request's first byte cost ~7 % of req/s."""
        guard = self.server.guard
        guard.arm(self.connection, REQUEST_DEADLINE)
        guard.waiting[self.connection] = time.monotonic()
        BaseHTTPRequestHandler.handle_one_request(self)

    def parse_request(self):
        """Headers within MAX_HEADER_BYTES in all (431 beyond): 40 connections holding 100 lines of
        60 KB each grew the runner by 229 MB, MAX_CONNECTIONS of them would by 1.6 GB."""
        self.server.guard.waiting.pop(self.connection, None)  # its request line is in
        rfile, budget = self.rfile, self._budget
        budget.left = MAX_HEADER_BYTES
        self.rfile = budget
        try:
            return BaseHTTPRequestHandler.parse_request(self)
        finally:
            self.rfile = rfile

    def do_GET(self):
        self.server.guard.disarm(self.connection)  # the headers are in
        if self.headers.get("Transfer-Encoding") or (self.headers.get("Content-Length") or "0").strip() != "0":
            self.close_connection = True  # a body we do not read must not become the next request
        srv = self.server
        if self.path == "/health":
            self._reply(200, {"status": "ok", "model": srv.model, "version": srv.version,
                              "uptime_s": round(time.time() - srv.counters.started, 3)})
        elif self.path == "/info":
            self._reply(200, srv.info)
        elif self.path == "/metrics":
            self._send(200, srv.counters.render().encode(), "text/plain; version=0.0.4")
        else:
            self._reply(404, {"error": "no such endpoint: %s" % self.path})

    def do_POST(self):
        srv = self.server
        endpoint = self.path
        if endpoint == "/feedback":  # labels for logged requests (feedback.py)
            feedback.serve(self)
            return
        if endpoint != "/predict":
            if endpoint != PROBE_PATH:
                srv.guard.disarm(self.connection)
                self.close_connection = True  # its body, if any, is not read
                self._reply(404, {"error": "no such endpoint: %s" % self.path})
                return
            endpoint = PROBE_ENDPOINT  # Berth's health check: served the same way, counted apart
        t0 = time.perf_counter()
        rid = request_id(self.headers.get(REQUEST_ID_HEADER))
        status, error, raw_in, payload, reason = 200, None, b"", None, None
        try:
            raw_in = self._body()
            data = _parse_json(raw_in)
            if srv.input_check is not None:
                _check_input(srv.input_check, data)
            payload = json.dumps(srv.predict(data)).encode()
        except _ClientError as e:
            status, error, reason = e.status, str(e), e.reason
        except Exception as e:  # the model's own failure: report it, keep serving
            status, error = 500, "%s: %s" % (type(e).__name__, e)
            srv.log.failure(e)
        if error is not None:
            payload = json.dumps({"error": error, "model": srv.model, "version": srv.version}).encode()
        self._send(status, payload, extra="X-Request-Id: %s\r\n" % rid)
        seconds = time.perf_counter() - t0
        srv.counters.observe(endpoint, seconds, status >= 500, rejected=reason)
        srv.requests.write(seconds, status, raw_in, payload, error, rid)

    def _body(self):
        """The request body, read within the headers' deadline (BODY_DEADLINE for a large one), which
        ends once it is in; any doubt about its length closes the connection after the answer, so
        unread bytes are never taken for the next request."""
        try:
            return self._read_body()
        finally:
            self.server.guard.disarm(self.connection)

    def _read_body(self):
        if self.headers.get("Transfer-Encoding"):
            self.close_connection = True
            raise _ClientError(411, "send the body with a Content-Length (chunked bodies are not supported)")
        lengths = self.headers.get_all("Content-Length") or ["0"]
        text = lengths[0].strip()
        if len(set(v.strip() for v in lengths)) != 1 or not (text.isdigit() and text.isascii()):
            self.close_connection = True
            raise _ClientError(400, "invalid Content-Length %r" % ", ".join(lengths)[:40])
        length = int(text)
        if length > MAX_BODY:
            self.close_connection = True
            raise _ClientError(413, "request body over %d bytes" % MAX_BODY, "too_large")
        if not length:
            return b""
        if length > LARGE_BODY:
            self.server.guard.arm(self.connection, BODY_DEADLINE)
        try:
            raw = self.rfile.read(length)
        except OSError:
            raw = b""
        if len(raw) != length:
            self.close_connection = True
            raise _ClientError(400, "the body ended after %d of %d bytes" % (len(raw), length))
        return raw

    def _reply(self, status, obj):
        self._send(status, json.dumps(obj).encode())

    def _send(self, status, body, ctype="application/json", extra=""):
        guard = self.server.guard
        if guard.draining:  # this runner is stopping: the client reconnects to the next release
            self.close_connection = True
        head = (
            "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %d\r\n"
            "X-Berth-Model: %s\r\nX-Berth-Version: %s\r\n%s%s\r\n"
            % (status, self.responses.get(status, ("",))[0], ctype, len(body), self.server.model, self.server.version,
               extra, "Connection: close\r\n" if self.close_connection else "")
        )
        # the answer has a deadline too: a client that never reads held its thread (and a connection
        # slot) for ever in sendall once the socket buffers were full
        guard = self.server.guard
        guard.arm(self.connection, REQUEST_DEADLINE if len(body) <= LARGE_BODY else BODY_DEADLINE)
        try:
            self.wfile.write(head.encode("latin-1") + body)
        finally:
            guard.disarm(self.connection)

    def log_message(self, fmt, *args):  # requests go to the request log, not stderr
        pass


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


class _HeaderBudget:
    """The request's rfile while its headers are read: readline stops at the budget's end, and a
    line past it is http.client's LineTooLong (which http.server answers 431)."""
    __slots__ = ("raw", "left")

    def __init__(self, rfile):
        self.raw, self.left = rfile.readline, 0

    def readline(self, limit=-1):
        left = self.left
        line = self.raw(limit if 0 <= limit <= left else left + 1)
        self.left -= len(line)
        if self.left < 0:
            raise http.client.LineTooLong("request headers over %d bytes" % MAX_HEADER_BYTES)
        return line


class _ClientError(Exception):
    """A request refused as the client's fault; `reason` labels berth_request_rejected_total."""

    def __init__(self, status, message, reason="bad_request"):
        super().__init__(message)
        self.status, self.reason = status, reason


class RunnerServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128  # the default listen backlog of 5 resets a burst of new connections

    def process_request(self, request, client_address):
        if self.guard.admit(request):
            ThreadingHTTPServer.process_request(self, request, client_address)
        else:
            self.shutdown_request(request)

    def handle_error(self, request, client_address):
        """A client that hung up (reset, broken pipe) or a socket the reaper shut is routine and not
        logged: socketserver printed a traceback for each, unbounded and never rotated. Anything
        else goes to the runner's log, rate-limited and rotated like a model's failure."""
        error = sys.exc_info()[1]
        if error is not None and not isinstance(error, OSError):
            self.log.failure(error)

    def get_request(self):
        request, address = self.socket.accept()
        request.setblocking(True)  # accepted from the stable port's non-blocking listener
        return request, address

    def process_request_thread(self, request, client_address):
        try:
            ThreadingHTTPServer.process_request_thread(self, request, client_address)
        finally:
            self.guard.release(request)


def main(argv=None):
    p = argparse.ArgumentParser(prog="berth-runner")
    p.add_argument("--release", required=True)
    p.add_argument("--port-file", required=True)
    p.add_argument("--request-log", required=True)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--log", default="", help="the file stdout and stderr go to, rotated by size")
    p.add_argument("--listen-fd", type=int, default=None, help="the stable port's inherited listening socket")
    p.add_argument("--control", default="", help="the control socket's path (runnershare, handoff)")
    args = p.parse_args(argv)
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
    predict = load_entrypoint(bundle, manifest["entrypoint"])
    server = RunnerServer((args.host, args.port), Handler)
    server.model, server.version = manifest["name"], manifest["version"]
    server.predict, server.input_check = predict, input_check
    server.guard = ConnectionGuard()
    server.guard.start()
    server.log = RunnerLog(args.log)
    server.counters = Counters(server.model, server.version)
    server.requests = RequestLog(args.request_log, server.version)
    server.info = {"model": server.model, "version": server.version, "sha256": release.get("sha256"),
                   "manifest": manifest, "pid": os.getpid(), "python": sys.version.split()[0]}
    port = server.server_address[1]
    shared = None
    if args.listen_fd is not None:
        shared = runnershare.adopt(RunnerServer, Handler, args.listen_fd, server)
        server.info["stable_port"] = shared.server_address[1]
    if args.control:
        handoff.listen(args.control, {"fd": lambda: ("ok", shared.fileno()) if shared else "error no stable port",
                                      "serve": lambda: runnershare.serve(shared),
                                      "unserve": lambda: runnershare.unserve(shared)})
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=runnershare.stop_accepting,
                                                              args=((shared, server),)).start())
    tmp = args.port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write(str(port))
    os.replace(tmp, args.port_file)
    print("berth-runner: serving on %s:%d" % (args.host, port), flush=True)
    server.serve_forever(poll_interval=0.2)
    runnershare.drain(server.guard)
    if args.control:
        _unlink(args.control)
    server.requests.close()
    print("berth-runner: stopped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
