"""The experiment router: while an experiment runs it holds the model's stable port (the one
listening socket, taken from A's runner with the control socket's `fd` command) and forwards each
request to A's or B's private release port over pooled keep-alive connections. A thread per client
connection (as the runner has); the answer is the runner's, with X-Berth-Version and X-Request-Id
(the router sets the id before forwarding, so both runners log the same one). Shadow copies go
to B through a bounded queue, dropped and counted when B falls behind, so B never slows A.

Run by the agent as `python3 -m berth_agent.router --dir <model>/experiment --listen-fd N`
(experiment.py); stdlib only, Python 3.8+."""
import argparse
import json
import os
import queue
import signal
import socket
import sys
import threading
import time

from . import experimentend, routerpolicy
from .fsutil import read_json, write_json_atomic
from .httploop import has_data
from .journal import utc_now
from .requestid import request_id
from .routerhttp import BadRequest, Reader, Upstream, content_length, parse_head
from .routerstats import Stats

SAVE_EVERY_S = 0.5
CHECK_EVERY_S = 0.1  # a breaking canary's B gets at most this long of traffic after the breach
SHADOW_QUEUE = 256
SHADOW_WORKERS = 2
IDLE_GRACE_S = 0.5
RETRY_S = 5.0  # a rollback that found the server locked for 30 s, or A not running, is tried again
# not forwarded: framing is the router's own, and the body goes whole (a runner's 100 Continue would be noise)
HOP = (b"connection", b"keep-alive", b"x-request-id", b"content-length", b"transfer-encoding", b"expect",
       b"x-berth-shadow")  # a client's own shadow mark is dropped: only the router's copy for B carries it
CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"


class Router:
    def __init__(self, folder, listener):
        self.folder, self.listener = folder, listener
        self.config_path = os.path.join(folder, "experiment.json")
        self.config = read_json(self.config_path)
        self.policy = routerpolicy.Policy(self.config)
        self.stats = Stats(os.path.join(folder, "stats.json"))
        self.up = dict((side, Upstream(self.config[side + "_port"], lambda side=side: self._port_now(side)))
                       for side in ("a", "b"))
        self.names = {"a": self.config["a"].encode(), "b": self.config["b"].encode()}
        self.shadow = queue.Queue(SHADOW_QUEUE) if self.config["mode"] == "shadow" else None
        self.stopping = threading.Event()
        self.idle = {}  # client socket -> since when it waits for its next request
        self.active = 0
        self.lock = threading.Lock()
        self.step_base = self.stats.snapshot("b")
        self.breach = None  # why the canary broke its limits, until its ending is done
        self.retry_at = 0.0

    def _port_now(self, side):
        """The release port in the runner's port file (a runner the watchdog restarted has a new one)."""
        path = os.path.join(os.path.dirname(os.path.abspath(self.folder)), "run", self.config[side] + ".port")
        try:
            with open(path) as f:
                port = int(f.read().strip())
        except (OSError, ValueError):
            return None
        self.config[side + "_port"] = port  # so a canary's next save keeps it
        return port

    # --- accepting and answering
    def serve(self):
        self.listener.settimeout(0.2)
        while not self.stopping.is_set():
            try:
                conn, _ = self.listener.accept()
            except (socket.timeout, BlockingIOError, InterruptedError):
                continue
            except OSError:
                if self.stopping.is_set():
                    break
                time.sleep(0.01)
                continue
            conn.setblocking(True)
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self.lock:
                self.active += 1
            threading.Thread(target=self.client, args=(conn,), daemon=True).start()

    def client(self, conn):
        reader = Reader(conn)
        try:
            while True:
                self.idle[conn] = time.monotonic()
                try:
                    head = reader.head()
                    self.idle.pop(conn, None)
                    if head is None:
                        return
                    (method, path, proto), raw, named = parse_head(head)
                    n = content_length(named)
                    if named.get(b"expect", b"").lower() == b"100-continue" and len(reader.buf) < n:
                        conn.sendall(CONTINUE)  # the client waits for it before it sends the body (curl: ~1 MB up)
                    body = reader.body(n)
                except BadRequest as e:
                    conn.sendall(_answer(e.status, json.dumps({"error": str(e)}).encode(), [], request_id(), True))
                    return
                close = self.stopping.is_set() or _wants_close(proto, named)
                rid = request_id((named.get(b"x-request-id") or b"").decode("latin-1"))
                conn.sendall(self.forward(method, path, raw, named, body, rid, close))
                if close:
                    return
        except OSError:
            return
        finally:
            self.idle.pop(conn, None)
            conn.close()
            with self.lock:
                self.active -= 1

    def forward(self, method, path, raw, named, body, rid, close):
        predict = path == b"/predict" and method == b"POST"
        side = self.policy.pick(named) if predict else "a"
        request = _request(method, path, raw, body, rid)
        t0 = time.perf_counter()
        try:
            status, rhead, _rnamed, rbody = self.up[side].exchange(request)
        except (OSError, BadRequest, ValueError) as e:
            status, rhead = 502, [(b"X-Berth-Version", self.names[side])]
            rbody = json.dumps({"error": "%s did not answer: %s" % (self.names[side].decode(), e)}).encode()
        if predict:
            self.stats.observe(side, time.perf_counter() - t0, status)
            if self.shadow is not None:
                try:
                    self.shadow.put_nowait((request, rbody if status < 400 else None))
                except queue.Full:
                    self.stats.count("dropped")
        return _answer(status, rbody, rhead, rid, close)

    def shadow_worker(self):
        while True:
            request, a_body = self.shadow.get()
            t0 = time.perf_counter()
            try:
                status, _h, _n, b_body = self.up["b"].exchange(request.replace(b"\r\n", SHADOW_LINE, 1))
            except (OSError, BadRequest, ValueError):
                status, b_body = 502, None
            self.stats.observe("b", time.perf_counter() - t0, status)
            if status >= 500:
                self.stats.count("b_failed")
            elif a_body is not None and status < 400:
                self.stats.compare(a_body, b_body)

    # --- the experiment's course
    def tick(self):
        """Ten times a second: step the canary or end it on a breach; twice a second: save the figures."""
        ticks = 0
        while not self.stopping.is_set():
            time.sleep(CHECK_EVERY_S)
            ticks += 1
            if ticks % round(SAVE_EVERY_S / CHECK_EVERY_S) == 0:
                try:
                    self.stats.save()
                except OSError:
                    pass
            if self.config["mode"] == "canary" and self.config["state"] in ("running", "complete"):
                self.canary()

    def canary(self):
        now_b = self.stats.snapshot("b")
        what, why = routerpolicy.canary_step(self.config, self.step_base, now_b)
        if what == "breach" or self.breach:
            self.policy.weight = 0.0  # at once: B gets nothing more, even if the ending must wait for the lock
            self.breach = self.breach or why
            if time.monotonic() < self.retry_at:
                return
            self.stats.save()
            if experimentend.auto_rollback(self.folder, self.breach) is not False:
                self.stopping.set()  # A has the port back (or the experiment was stopped meanwhile)
            self.retry_at = time.monotonic() + RETRY_S
        elif what == "advance" and self.config["state"] == "running":
            self.config["step"] += 1
            self.config["weight"] = self.config["steps"][self.config["step"]] / 100.0
            self.config["step_started"] = time.time()
            self.policy.weight, self.step_base = self.config["weight"], now_b
            self._save_config()
        elif what == "complete" and self.config["state"] == "running":
            self.config["state"], self.config["completed"] = "complete", utc_now()
            self._save_config()

    def _save_config(self):
        saved = read_json(self.config_path) or {}
        if saved.get("state") in ("running", "complete"):  # never over a stop the agent wrote
            write_json_atomic(self.config_path, self.config)

    def drain(self, deadline_s=5.0):
        """After the port went back to a runner: finish the requests in flight, close idle clients."""
        end = time.monotonic() + deadline_s
        while self.active > 0 and time.monotonic() < end:
            now = time.monotonic()
            for conn, since in list(self.idle.items()):
                if now - since >= IDLE_GRACE_S and self.idle.get(conn) == since and not has_data(conn):
                    self.idle.pop(conn, None)
                    try:
                        conn.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass
            time.sleep(0.02)
        self.stats.save()


SHADOW_LINE = b"\r\nX-Berth-Shadow: 1\r\n"  # after the request line: B's log marks the line as a shadow copy


def _request(method, path, raw, body, rid):
    lines = [method + b" " + path + b" HTTP/1.1"]
    lines += [n + b": " + v for n, v in raw if n.lower() not in HOP]
    lines.append(b"X-Request-Id: " + rid.encode())
    lines.append(b"Content-Length: %d" % len(body))
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


def _answer(status, body, rhead, rid, close):
    """The client's answer: the runner's status, headers and body, our own framing."""
    lines = [b"HTTP/1.1 %d %s" % (status, _REASONS.get(status, b"Answer"))]
    have_id = False
    for n, v in rhead:
        low = n.lower()
        if low in (b"connection", b"keep-alive", b"content-length", b"transfer-encoding"):
            continue
        have_id = have_id or low == b"x-request-id"
        lines.append(n + b": " + v)
    if not have_id:
        lines.append(b"X-Request-Id: " + rid.encode())
    lines.append(b"Content-Length: %d" % len(body))
    if close:
        lines.append(b"Connection: close")
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


_REASONS = {200: b"OK", 400: b"Bad Request", 404: b"Not Found", 411: b"Length Required", 413: b"Payload Too Large",
            422: b"Unprocessable Entity", 431: b"Request Header Fields Too Large", 500: b"Internal Server Error",
            502: b"Bad Gateway"}


def _wants_close(proto, named):
    conn = named.get(b"connection", b"").lower()
    return conn == b"close" or (proto != b"HTTP/1.1" and conn != b"keep-alive")


def main(argv=None):
    p = argparse.ArgumentParser(prog="berth-router")
    p.add_argument("--dir", required=True, help="the model's experiment folder")
    p.add_argument("--listen-fd", type=int, required=True, help="the stable port's listening socket")
    args = p.parse_args(argv)
    router = Router(args.dir, socket.socket(fileno=args.listen_fd))
    for _ in range(SHADOW_WORKERS if router.shadow is not None else 0):
        threading.Thread(target=router.shadow_worker, daemon=True).start()
    threading.Thread(target=router.tick, daemon=True).start()
    signal.signal(signal.SIGTERM, lambda *_: router.stopping.set())
    with open(os.path.join(args.dir, "router.ready"), "w") as f:
        f.write(str(os.getpid()))
    print("berth-router: %s %s, A %s (port %d), B %s (port %d)" % (
        router.config["model"], router.config["mode"], router.config["a"], router.config["a_port"],
        router.config["b"], router.config["b_port"]), flush=True)
    router.serve()
    router.listener.close()
    router.drain()
    print("berth-router: stopped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
