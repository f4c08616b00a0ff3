"""The little HTTP/1.1 the experiment router speaks: a buffered reader of heads and
Content-Length bodies, and pooled keep-alive connections to one release port. Hand-written (no
http.server, no http.client): the router sits in every request's path while an experiment runs."""
import socket
import threading

MAX_HEAD = 64 * 1024  # as the runner's header budget
MAX_BODY = 64 * 1024 * 1024
UPSTREAM_TIMEOUT = 60.0
POOL = 64


class BadRequest(Exception):
    def __init__(self, status, message):
        super().__init__(message)
        self.status = status


class Reader:
    __slots__ = ("sock", "buf")

    def __init__(self, sock):
        self.sock, self.buf = sock, b""

    def head(self):
        """The bytes before the blank line, or None when the peer closed between messages."""
        while True:
            i = self.buf.find(b"\r\n\r\n")
            if i >= 0:
                head, self.buf = self.buf[:i], self.buf[i + 4:]
                return head
            if len(self.buf) > MAX_HEAD:
                raise BadRequest(431, "request headers over %d bytes" % MAX_HEAD)
            chunk = self.sock.recv(65536)
            if not chunk:
                if self.buf.strip():
                    raise BadRequest(400, "the connection ended inside a request's headers")
                return None
            self.buf += chunk

    def body(self, n):
        while len(self.buf) < n:
            chunk = self.sock.recv(max(65536, n - len(self.buf)))
            if not chunk:
                raise BadRequest(400, "the body ended after %d of %d bytes" % (len(self.buf), n))
            self.buf += chunk
        body, self.buf = self.buf[:n], self.buf[n:]
        return body

    def pending(self):
        return bool(self.buf)


def parse_head(head):
    """(first line's three parts, [(name, value) raw], {lower-case name: value})."""
    lines = head.split(b"\r\n")
    parts = lines[0].split(b" ", 2)
    if len(parts) != 3:
        raise BadRequest(400, "bad request line")
    raw, named = [], {}
    for line in lines[1:]:
        name, sep, value = line.partition(b":")
        if not sep or not name or name != name.strip():
            raise BadRequest(400, "bad header line")
        value = value.strip()
        raw.append((name, value))
        key = name.lower()
        if key in named and key == b"content-length" and named[key] != value:
            raise BadRequest(400, "conflicting Content-Length headers")
        named[key] = value
    return parts, raw, named


def content_length(named):
    if named.get(b"transfer-encoding"):
        raise BadRequest(411, "send the body with a Content-Length (chunked bodies are not supported)")
    text = named.get(b"content-length", b"0")
    if not text.isdigit():
        raise BadRequest(400, "invalid Content-Length")
    n = int(text)
    if n > MAX_BODY:
        raise BadRequest(413, "request body over %d bytes" % MAX_BODY)
    return n


class Upstream:
    """Keep-alive connections to one release's private port, reused request after request."""

    def __init__(self, port, find_port=None):
        self.port, self.find_port = port, find_port  # find_port: the runner's port now (it was restarted)
        self.idle = []
        self.lock = threading.Lock()

    def exchange(self, data):
        """Send one whole request; (status, [(name, value)], {lower name: value}, body). A pooled
        connection the runner closed meanwhile is retried once on a new one; OSError or BadRequest
        when the release does not answer."""
        for attempt in (0, 1):
            conn, reused = self._get()
            try:
                conn[0].sendall(data)
                while True:  # a 1xx (100 Continue) is an interim answer: the final one follows it
                    head = conn[1].head()
                    if head is None:
                        raise ConnectionResetError("the release closed the connection")
                    (_proto, status, _reason), raw, named = parse_head(head)
                    if not (status.isdigit() and 100 <= int(status) < 200):
                        break
                body = conn[1].body(int(named.get(b"content-length", b"0")))
            except (OSError, BadRequest, ValueError) as e:
                conn[0].close()
                if reused and attempt == 0 and isinstance(e, (ConnectionResetError, BrokenPipeError)):
                    continue
                raise
            if named.get(b"connection", b"").lower() == b"close":
                conn[0].close()
            else:
                self._put(conn)
            return int(status), raw, named, body

    def _get(self):
        with self.lock:
            if self.idle:
                return self.idle.pop(), True
        try:
            sock = socket.create_connection(("127.0.0.1", self.port), timeout=UPSTREAM_TIMEOUT)
        except ConnectionRefusedError:
            port = self.find_port() if self.find_port else None
            if not port or port == self.port:
                raise
            self.port = port  # the watchdog restarted the release on another port of its own
            sock = socket.create_connection(("127.0.0.1", self.port), timeout=UPSTREAM_TIMEOUT)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return (sock, Reader(sock)), False

    def _put(self, conn):
        with self.lock:
            if len(self.idle) < POOL:
                self.idle.append(conn)
                return
        conn[0].close()

    def close(self):
        with self.lock:
            for sock, _ in self.idle:
                sock.close()
            self.idle = []
