"""The runner's side of the stable port: it inherits the port's listening socket (one kernel socket
for every release in turn, so a switch loses no queued connection), accepts on it only once the
agent says its health check passed, and on SIGTERM drains (httploop.Loop.stop_accepting): it stops
accepting (the next release already does), finishes the requests in flight, answers each keep-alive
connection's next request with `Connection: close`, closes connections idle for IDLE_GRACE_S (unless
a request's bytes are in, MSG_PEEK), and exits when the last one is gone or after DRAIN_S."""
import socket

IDLE_GRACE_S = 0.5  # a connection under load sends within milliseconds; one idle this long is idle
DRAIN_S = 5.0  # the longest a stopping runner waits for its connections (supervise.stop kills at 10 s)


def adopt(fd):
    """The inherited listening socket `fd`, non-blocking: two runners wake for one connection, and
    the loser must not block in accept. Nothing is accepted on it until serve()."""
    sock = socket.socket(fileno=fd)
    sock.setblocking(False)
    return sock


def serve(loop, shared):
    """Start accepting on the stable port (the agent's `serve` over the control socket, from the
    control thread: the loop registers it itself)."""
    if shared is None:
        return "error no stable port"
    loop.call_soon(loop.listen, shared)
    return "ok"


def unserve(loop, shared):
    """Stop accepting on the stable port and keep it open, serving the release port and the
    connections it has (the agent's `unserve`: the experiment router took the port); `serve`
    starts accepting again."""
    if shared is None:
        return "error no stable port"
    loop.call_soon(loop.unlisten, shared)
    return "ok"
