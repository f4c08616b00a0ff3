"""Limits that keep one client from starving a runner: a bound on open connections (excess ones
refused at once with a 503), and deadlines for a request's headers and body enforced by a reaper
thread that shuts the socket of a request that overran. Before this, 300 half-sent headers held
301 threads for ever and 2,000 idle connections 1,886.

A connection's next request must be in (request line and headers) within REQUEST_DEADLINE, which
closes idle keep-alive connections and half-sent headers alike; a large body has BODY_DEADLINE; the
model's own time to answer is never cut."""
import socket
import threading
import time

MAX_CONNECTIONS = 256
REQUEST_DEADLINE = 15.0  # from the end of one request (or the connect) to the end of the next one's headers
BODY_DEADLINE = 60.0  # to receive a whole body (64 MB at ~1 MB/s)
BUSY = (b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nContent-Length: 48\r\n"
        b"Connection: close\r\n\r\n"
        b'{"error": "too many connections; retry shortly"}')


class ConnectionGuard:
    def __init__(self, max_connections=MAX_CONNECTIONS, tick=0.5):
        self.max_connections = max_connections
        self.active = 0
        self.refused = 0
        self.lock = threading.Lock()
        self.deadlines = {}  # socket -> monotonic time it must be done by
        self.waiting = {}  # socket -> since when it waits for its next request (runnershare.drain)
        self.draining = False  # stopping: every answer says Connection: close
        self.tick = tick
        self.stopped = threading.Event()

    def admit(self, sock):
        """True when the connection may be served; a refused one is answered 503 and closed."""
        with self.lock:
            if self.active < self.max_connections:
                self.active += 1
                return True
            self.refused += 1
        try:
            sock.setblocking(False)
            sock.send(BUSY)
        except OSError:
            pass
        return False

    def release(self, sock):
        self.deadlines.pop(sock, None)
        self.waiting.pop(sock, None)
        with self.lock:
            self.active -= 1

    # arm and disarm run twice per request: a plain dict store / pop (atomic under the GIL) costs
    # far less than a lock round trip; the reaper re-checks a deadline before acting on it
    def arm(self, sock, seconds):
        self.deadlines[sock] = time.monotonic() + seconds

    def disarm(self, sock):
        self.deadlines.pop(sock, None)

    def start(self):
        threading.Thread(target=self._reap, name="berth-runner-reaper", daemon=True).start()

    def stop(self):
        self.stopped.set()

    def _reap(self):
        while not self.stopped.wait(self.tick):
            now = time.monotonic()
            for s, deadline in list(self.deadlines.items()):
                if deadline >= now or self.deadlines.get(s) != deadline:
                    continue  # in time, or re-armed meanwhile
                self.deadlines.pop(s, None)
                try:
                    s.shutdown(socket.SHUT_RDWR)  # the handler's blocked read returns; it closes
                except OSError:
                    pass
