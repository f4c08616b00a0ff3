"""The runner loop's side of the model threads (modelpool.py): httploop.Loop hands a prediction with
the connection's answers so far to the pool, or queues the connection while the pool has enough in
flight, and sends the answer in order when it comes back through the pool's socketpair. A mixin of
Loop (its selector, connections and _send), kept apart so that httploop.py stays a readable size.
Stdlib only, Python 3.8+."""
from .httpconn import FOREVER


class Predictions:
    def _to_pool(self, conn, req, out, largest):
        """Hand `req` to the model threads (or queue the connection when they have enough); the
        answers before it in `out` are sent with its own, in order."""
        conn.job = (req, out, largest)
        conn.deadline, conn.since = FOREVER, None
        if self.waiting or self.pool.full():
            self.waiting.append(conn)
        else:
            self.pool.submit(self.service.respond, req, conn)

    def _answered(self, sock, mask):
        for conn, result in self.pool.answers():
            req, out, largest = conn.job
            conn.job = None
            if conn.sock.fileno() < 0:  # closed meanwhile (the drain's end)
                continue
            if isinstance(result, BaseException):  # a bug, not the model: log it, end this connection only
                self.failure(result)
                self._close(conn)
                continue
            status, body, ctype, extra = result
            out.append(self._head(req, status, ctype, len(body), extra))
            out.append(body)
            if req.close:
                conn.closing, conn.buf = True, b""
            self._send(conn, b"".join(out), max(largest, len(body)))
        waiting, pool, respond = self.waiting, self.pool, self.service.respond
        while waiting and not pool.full():
            conn = waiting.popleft()
            if conn.sock.fileno() >= 0:
                pool.submit(respond, conn.job[0], conn)
