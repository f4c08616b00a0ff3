"""The runner's side of the stable port: it inherits the port's listening socket (one kernel socket
for every release in turn, so a switch loses no queued connection), accepts on it only once the
agent says its health check passed, and on SIGTERM drains: it stops accepting (the next release
already does), finishes the requests in flight, answers each keep-alive connection's next request
with `Connection: close`, closes connections idle for IDLE_GRACE_S, and exits."""
import socket
import threading
import time

IDLE_GRACE_S = 0.5  # a connection under load sends within milliseconds; one idle this long is idle
DRAIN_S = 5.0  # the longest a stopping runner waits for its connections (supervise.stop kills at 10 s)


def adopt(server_class, handler, fd, template):
    """A server on the inherited listening socket `fd`, sharing `template`'s model, guard, counters
    and logs; it accepts nothing until serve()."""
    shared = server_class(template.server_address, handler, bind_and_activate=False)
    shared.socket.close()
    shared.socket = socket.socket(fileno=fd)
    shared.socket.setblocking(False)  # two runners wake for one connection: the loser must not block in accept
    shared.server_address = shared.socket.getsockname()
    for name in SHARED:
        setattr(shared, name, getattr(template, name))
    shared.serving = False
    return shared


SHARED = ("model", "version", "predict", "input_check", "guard", "log", "counters", "requests", "info")


def serve(shared):
    """Start accepting on the stable port (the agent's `serve` over the control socket)."""
    if shared is None:
        return "error no stable port"
    if not shared.serving:
        shared.serving = True
        threading.Thread(target=shared.serve_forever, kwargs={"poll_interval": 0.2},
                         name="berth-runner-stable", daemon=True).start()
    return "ok"


def unserve(shared):
    """Stop accepting on the stable port, keep serving the release port and the connections it has
    (the agent's `unserve`: the experiment router took the port). `serve` starts accepting again."""
    if shared is None:
        return "error no stable port"
    if shared.serving:
        shared.serving = False
        shared.shutdown()
    return "ok"


def stop_accepting(servers):
    """SIGTERM: stop both accept loops (from a thread: shutdown() waits for serve_forever)."""
    for server in servers:
        if server is not None and getattr(server, "serving", True):
            server.guard.draining = True
            server.shutdown()


def drain(guard, deadline_s=DRAIN_S):
    """Wait for this runner's connections to end: in-flight requests finish and are answered with
    `Connection: close`; a connection waiting for its next request is closed after IDLE_GRACE_S,
    unless its request's bytes are already in (then the handler answers it first)."""
    guard.draining = True
    end = time.monotonic() + deadline_s
    while guard.active > 0 and time.monotonic() < end:
        now = time.monotonic()
        for sock, since in list(guard.waiting.items()):
            if now - since < IDLE_GRACE_S or guard.waiting.get(sock) != since or _has_data(sock):
                continue
            guard.waiting.pop(sock, None)
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        time.sleep(0.02)


def _has_data(sock):
    try:
        return bool(sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT))
    except BlockingIOError:
        return False
    except OSError:
        return True  # reset or closed: its handler ends it
