"""Alerts on a real agent root: a webhook receiver on loopback (http.server, real POSTs), rules added
through the agent, and the evaluator's rounds on the injected clock."""
import json
import socket
import threading
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from agent_kit import call


class Receiver:
    """A webhook receiver on 127.0.0.1: keeps every JSON body POSTed to it; `status` is what it answers.
    stop() closes the port (a receiver that is down), start() opens the same port again."""

    def __init__(self, status=200):
        self.posts, self.status, self.port, self.server = [], status, None, None
        self.start()

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}/hook"

    def start(self):
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                receiver.posts.append(json.loads(body))
                answer = b"thanks" if receiver.status < 300 else b"receiver says no"
                self.send_response(receiver.status)
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port or 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()

    def statuses(self):
        return [p["status"] for p in self.posts]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def add_rule(root, name, when, notify, model=None, for_=None, server="srv", **extra):
    req = dict(name=name, when=when, notify=notify, server=server, **extra)
    if model:
        req["model"] = model
    if for_ is not None:
        req["for"] = for_
    return call(root, "alert_add", **req)


def later(t, seconds):
    return t + timedelta(seconds=seconds)
