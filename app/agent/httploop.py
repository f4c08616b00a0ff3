"""The runner's HTTP/1.1 server: one selector loop over non-blocking sockets. A thread per connection
(ThreadingHTTPServer) had 0.37-0.45x uvicorn's throughput at 16 connections: the threads fought over
the GIL. Here an idle keep-alive connection is a buffer and a selector entry, not a thread. The model
runs in modelpool.py's few threads (`threads`; 0 calls it on the loop): a prediction is handed to
them, the connection waits unread with its answers so far, and the loop goes on answering the others
and /health, /metrics, /info at once; the answer comes back through the pool's socketpair.

Each connection is a small state machine on its buffer: request line and headers (MAX_HEADER_BYTES,
431 beyond), then a body of Content-Length bytes, then the answer in one send (TCP_NODELAY).
Pipelined requests are answered in order, their answers gathered into one send; while an answer is
not yet sent the connection is not read, so a client that never reads holds one answer, not many.
The deadlines of runnerguard.py are loop timers: a request's headers within REQUEST_DEADLINE of the
previous answer (or the connect), a large body or answer within BODY_DEADLINE. On SIGTERM the loop
drains (runnershare.py). The release-specific part (what /predict does) is the service's."""
import collections
import errno
import socket
import selectors
import time

from .httppool import Predictions
from .modelpool import ModelPool
from .httpconn import (BATCH_BYTES, CONTINUE, LARGE_BODY, LINGER_S, PHRASES, RECV_BYTES, TICK, Conn,
                       has_data, send_now as _send_now, stale, warn_out_of_fds)
from .httphead import MAX_HEAD, MAX_LINE, parse as _parse, too_long as _too_long
from .runnerguard import BODIES_BUSY, BODY_DEADLINE, BUSY, MAX_CONNECTIONS, MAX_LARGE_BODIES, REQUEST_DEADLINE, TIMEOUT
from .runnershare import DRAIN_S, IDLE_GRACE_S

READ, WRITE = selectors.EVENT_READ, selectors.EVENT_WRITE
OUT_OF_FDS = (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM)  # accept() pauses a tick on these
__all__ = ["Loop", "has_data"]  # has_data: the experiment router's (httpconn.py)


class Loop(Predictions):
    """`service.respond(request) -> (status, body bytes, content type, extra header lines)`;
    `service.bodies`: the POST paths whose bodies are read; `service.head`: fixed header lines."""

    def __init__(self, service, failure, max_connections=MAX_CONNECTIONS, threads=0):
        self.service, self.failure, self.max_connections = service, failure, max_connections
        self.selector = selectors.DefaultSelector()
        self.conns = {}  # fd -> Conn
        self.listeners = []
        self.refused = 0
        self.reserved = 0  # large bodies' announced bytes under way (Conn.reserved), at most MAX_LARGE_BODIES
        self.busy = 0  # refused connections lingering (their 503 sent, their request read and dropped)
        self.draining = False
        self.drain_end = None
        self.paused = None  # while accept() is out of descriptors: when the listeners are registered again
        self.fd_warned = None
        self.calls = []  # from other threads (the control socket), run on the loop
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self.selector.register(self._wake_r, READ, self._woken)
        self.pool = ModelPool(threads) if threads else None
        self.waiting = collections.deque()  # connections whose prediction waits for room in the pool
        if self.pool is not None:
            self.selector.register(self.pool.reader, READ, self._answered)

    # -- from other threads and signal handlers ----------------------------------------------------

    def wake_fd(self):
        """For signal.set_wakeup_fd: a signal wakes the select at once."""
        return self._wake_w.fileno()

    def call_soon(self, fn, *args):
        self.calls.append((fn, args))
        try:
            self._wake_w.send(b"x")
        except OSError:
            pass  # full: the loop wakes anyway

    def _woken(self, sock, mask):
        try:
            while sock.recv(4096):
                pass
        except OSError:
            pass
        while self.calls:
            fn, args = self.calls.pop(0)
            fn(*args)

    # -- accepting ---------------------------------------------------------------------------------

    def listen(self, sock):
        """Accept on `sock` (non-blocking: two runners share the stable port's listener, and the one
        that loses a connection to the other must not block in accept)."""
        if self.draining or sock in self.listeners:
            return
        sock.setblocking(False)
        self.listeners.append(sock)
        if self.paused is None:
            self.selector.register(sock, READ, self._accept)

    def unlisten(self, sock):  # the experiment router took the stable port: accept nothing more, keep it open
        if sock in self.listeners:
            if self.paused is None:
                self.selector.unregister(sock)
            self.listeners.remove(sock)

    def stop_accepting(self):
        """SIGTERM: accept nothing more, answer with `Connection: close`, end when the last one is gone."""
        if not self.draining:
            self.draining = True
            self.drain_end = time.monotonic() + DRAIN_S
            for sock in self.listeners if self.paused is None else ():
                self.selector.unregister(sock)
            self.listeners, self.paused = [], None

    def _accept(self, lsock, mask):
        for _ in range(64):
            try:
                sock, _ = lsock.accept()
            except OSError as e:  # EAGAIN: the other runner took it
                if e.errno in OUT_OF_FDS:  # the listener stays readable: without a pause the loop spins
                    self._pause_accepting(e)
                return
            sock.setblocking(False)
            busy = len(self.conns) - self.busy >= self.max_connections and not self._evict()
            if busy and self.busy >= 64:  # a flood: no lingering, the 503 may be lost to a reset
                _send_now(sock, BUSY)
                sock.close()
                continue
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            conn = Conn(sock, time.monotonic(), READ)
            self.conns[sock.fileno()] = conn
            self.selector.register(sock, READ, conn)
            if busy:  # answered at once, and closed once its request is read (a reset could lose the 503)
                self.refused += 1
                self.busy += 1
                conn.busy = conn.closing = True
                conn.since = None
                self._send(conn, BUSY, 0)

    def _pause_accepting(self, error):
        """Out of descriptors: accept nothing for a tick (new connections wait in the backlog)."""
        for sock in self.listeners:
            self.selector.unregister(sock)
        self.paused = time.monotonic() + TICK
        self.fd_warned = warn_out_of_fds(error, len(self.conns), self.fd_warned)

    def _evict(self):
        """At the bound: close the connection whose next head has been awaited longest, once that is
        EVICT_AFTER_S (a slow or idle client), so that it, not the new one, goes. True if one went."""
        conn = stale(self.conns)
        if conn is not None:
            if conn.buf:  # a half-sent head: told, as at its deadline
                _send_now(conn.sock, TIMEOUT)
            self._close(conn)
        return conn is not None

    # -- the loop ----------------------------------------------------------------------------------

    def run(self):
        select, conns = self.selector.select, self.conns
        next_tick = time.monotonic() + TICK
        while True:
            for key, mask in select(0.05 if self.draining else TICK):
                data = key.data
                if data.__class__ is Conn:
                    try:
                        if mask & READ:
                            self._read(data)
                        if mask & WRITE and data.out is not None:
                            self._write(data)
                    except Exception as e:  # a bug, not the client: log it, end this connection only
                        self.failure(e)
                        self._close(data)
                else:
                    try:
                        data(key.fileobj, mask)
                    except Exception as e:
                        self.failure(e)
            now = time.monotonic()
            if now >= next_tick or self.draining:
                next_tick = now + TICK
                self._timers(now)
                if self.draining:
                    if now >= self.drain_end:  # all but the predictions under way (they finish and answer)
                        for conn in list(conns.values()):
                            if conn.job is None:
                                self._close(conn)
                    if not conns:
                        break
        for conn in list(conns.values()):
            self._close(conn)
        if self.pool is not None:
            self.pool.stop()

    def _timers(self, now):
        draining = self.draining
        if self.paused is not None and now >= self.paused:
            self.paused = None
            for sock in self.listeners:
                self.selector.register(sock, READ, self._accept)
        for conn in list(self.conns.values()):
            if conn.deadline < now:
                if conn.job is None and conn.out is None and not conn.closing and (conn.req is not None or conn.buf):
                    _send_now(conn.sock, TIMEOUT)  # part of a request came: say why it ends
                self._close(conn)
            elif draining and conn.since is not None and now - conn.since >= IDLE_GRACE_S and not has_data(conn.sock):
                self._close(conn)  # idle: its client reconnects, to the next release

    def _close(self, conn):
        if self.conns.pop(conn.sock.fileno(), None) is None:
            return
        if conn.busy:
            self.busy -= 1
        self._release(conn)
        try:
            self.selector.unregister(conn.sock)
        except (KeyError, ValueError):
            pass
        conn.sock.close()

    def _release(self, conn):
        self.reserved -= conn.reserved
        conn.reserved = 0

    def _mask(self, conn, mask):
        """0: out of the selector (a connection whose prediction is under way is not read)."""
        if conn.mask != mask:
            if not mask:
                self.selector.unregister(conn.sock)
            elif not conn.mask:
                self.selector.register(conn.sock, mask, conn)
            else:
                self.selector.modify(conn.sock, mask, conn)
            conn.mask = mask

    # -- reading requests --------------------------------------------------------------------------

    def _read(self, conn):
        if conn.job is not None:  # more bytes while the model has a request: left unread until it answers
            self._mask(conn, 0)  # (only now: a client that waits for its answer costs no epoll_ctl)
            return
        try:
            data = conn.sock.recv(RECV_BYTES)
        except BlockingIOError:
            return
        except OSError:  # reset
            self._close(conn)
            return
        if not data:
            self._close(conn)
            return
        if conn.closing:  # lingering after a `Connection: close` answer: drop it
            return
        buf = conn.buf
        if buf:
            if buf.__class__ is bytes:
                buf = bytearray(buf)  # a body in many pieces: appended in place, not copied each time
            buf += data
            conn.buf = buf
        else:
            conn.buf = data
        conn.since = None
        self._serve(conn)

    def _serve(self, conn):
        """Answer every complete request in the buffer (in order), up to BATCH_BYTES of answers."""
        buf, pos, out, size, largest = conn.buf, 0, [], 0, 0
        scanned, conn.scanned = conn.scanned, 0  # bytes of an incomplete head already searched
        respond, bodies, pool = self.service.respond, self.service.bodies, self.pool
        while True:
            req = conn.req
            if req is None:
                while buf.startswith(b"\r\n", pos):  # empty lines before a request (RFC 9112 2.2)
                    pos += 2
                seen, scanned = scanned, 0
                end = buf.find(b"\r\n\r\n", max(pos, seen - 3))  # a head sent byte by byte: not searched again each time
                if end < 0:
                    rest = len(buf) - pos  # the request line is measured once, when the head outgrows MAX_LINE
                    if rest <= MAX_HEAD and not (seen <= MAX_LINE < rest and _too_long(buf, pos).refused[0] == 414):
                        conn.scanned = rest
                        break
                    req, pos = _too_long(buf, pos), len(buf)
                else:
                    req = _parse(bytes(buf[pos:end]) if buf.__class__ is bytearray else buf[pos:end], bodies)
                    pos = end + 4
                    if req.length:
                        if len(buf) - pos < req.length:
                            conn.req = req
                            if req.length > LARGE_BODY:
                                if self.reserved + req.length > MAX_LARGE_BODIES:  # 503, the body unread
                                    conn.req, conn.closing, pos = None, True, len(buf)
                                    out.append(BODIES_BUSY)
                                    break
                                conn.reserved, self.reserved = req.length, self.reserved + req.length
                                conn.deadline = time.monotonic() + BODY_DEADLINE
                            if req.headers.get("expect", "").lower() == "100-continue":
                                _send_now(conn.sock, CONTINUE)
                            break
            elif len(buf) - pos < req.length:
                break
            else:
                conn.req = None
            if req.length:
                if buf.__class__ is bytearray:
                    with memoryview(buf) as view:  # one copy of a large body, not two
                        req.body = bytes(view[pos:pos + req.length])
                else:
                    req.body = buf[pos:pos + req.length]
                pos += req.length
            if pool is not None and req.path in bodies and req.method == "POST" and req.refused is None:
                conn.buf = buf[pos:] if pos < len(buf) else b""
                self._to_pool(conn, req, out, largest)
                return
            status, body, ctype, extra = respond(req)
            head = self._head(req, status, ctype, len(body), extra)
            out.append(head)
            if req.method != "HEAD":
                out.append(body)
            size += len(head) + len(body)
            largest = max(largest, len(body))
            if req.close:
                conn.closing = True
                pos = len(buf)
                break
            if size >= BATCH_BYTES:
                break
        if pos:  # nothing used: the same buffer (a copy each time made a body's pieces cost O(n^2): 34 s for 60 MB)
            conn.buf = buf[pos:] if pos < len(buf) else b""
        if out:
            self._send(conn, b"".join(out), largest)
        elif not conn.buf and conn.req is None:
            conn.since = time.monotonic()

    def _head(self, req, status, ctype, length, extra):
        if self.draining:
            req.close = True
        return ("HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %d\r\n%s%s%s\r\n" % (
            status, PHRASES.get(status, ""), ctype, length, self.service.head, extra,
            "Connection: close\r\n" if req.close else "")).encode("latin-1")

    # -- writing answers ---------------------------------------------------------------------------

    def _send(self, conn, data, largest):
        try:
            sent = conn.sock.send(data)
        except BlockingIOError:
            sent = 0
        except OSError:  # the client hung up: nothing to answer
            self._close(conn)
            return
        if sent < len(data):
            conn.out = memoryview(data)[sent:]
            conn.deadline = time.monotonic() + (REQUEST_DEADLINE if largest <= LARGE_BODY else BODY_DEADLINE)
            self._mask(conn, WRITE)  # and not READ: the next request waits until this answer is out
        else:
            self._sent(conn)

    def _write(self, conn):
        try:
            sent = conn.sock.send(conn.out)
        except BlockingIOError:
            return
        except OSError:
            self._close(conn)
            return
        conn.out = conn.out[sent:]
        if not len(conn.out):
            conn.out = None
            self._sent(conn)

    def _sent(self, conn):
        now = time.monotonic()
        if conn.reserved and conn.req is None:  # a large request's answer is out (an echo's is as large)
            self._release(conn)
        if conn.closing:
            try:
                conn.sock.shutdown(socket.SHUT_WR)  # FIN now; what the client still sends is dropped
            except OSError:
                pass
            conn.deadline = now + LINGER_S
            self._mask(conn, READ)
            return
        conn.deadline = now + REQUEST_DEADLINE  # the next request's headers
        self._mask(conn, READ)
        if conn.buf:
            self._serve(conn)  # pipelined requests already in
        else:
            conn.since = now

