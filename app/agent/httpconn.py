"""The pieces of the runner's loop (httploop.py) that are not the loop: one connection's state, the
fixed bytes it sends, and the small socket helpers the experiment router shares (has_data).
Stdlib only, Python 3.8+."""
import socket
import time
from http import HTTPStatus

from .runnerguard import EVICT_AFTER_S, REQUEST_DEADLINE

LARGE_BODY = 256 * 1024  # bodies and answers over this get BODY_DEADLINE
RECV_BYTES = 256 * 1024
BATCH_BYTES = 256 * 1024  # pipelined answers gathered into one send up to about this much
LINGER_S = 0.5  # after a `Connection: close` answer: read and drop what the client still sends, then close
TICK = 0.25  # how often deadlines are looked at
PHRASES = dict((s.value, s.phrase) for s in HTTPStatus)
CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
FOREVER = float("inf")  # a connection's deadline while the model has its request: the model's time is never cut


class Conn:
    __slots__ = ("sock", "buf", "out", "req", "deadline", "since", "closing", "mask", "busy", "scanned", "job",
                 "reserved")

    def __init__(self, sock, now, mask):
        self.sock, self.buf, self.out, self.req, self.busy, self.scanned = sock, b"", None, None, False, 0
        self.job = None  # (request, answers before it, largest body) while the model threads have it
        self.reserved = 0  # its large body's announced bytes, against MAX_LARGE_BODIES until its answer is sent
        self.deadline, self.since, self.closing, self.mask = now + REQUEST_DEADLINE, now, False, mask


def send_now(sock, data):
    try:
        sock.send(data)
    except OSError:
        pass


def has_data(sock):
    """Bytes of a request already in (MSG_PEEK): a draining runner answers them before closing."""
    try:
        return bool(sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT))
    except BlockingIOError:
        return False
    except OSError:
        return True  # reset or closed: the read that follows ends it


def stale(conns):
    """The connection to close for a new one at the bound: of those waiting for their next head
    (none of a request, answer or prediction under way), the one waiting longest, once that is
    EVICT_AFTER_S; an idle one whose request just came in (MSG_PEEK) is spared. None if none."""
    cutoff = time.monotonic() + REQUEST_DEADLINE - EVICT_AFTER_S  # a deadline before it: waited that long
    waiting = sorted((c.deadline, fd) for fd, c in conns.items() if c.deadline <= cutoff and c.req is None
                     and c.job is None and c.out is None and not c.closing)
    for _, fd in waiting[:8]:
        conn = conns[fd]
        if conn.buf or not has_data(conn.sock):
            return conn
    return None


def warn_out_of_fds(error, open_conns, warned):
    """A line in the runner's log when accept() runs out of descriptors, at most once a minute;
    returns when it was last written."""
    now = time.monotonic()
    if warned is not None and now - warned < 60:
        return warned
    print("berth-runner: cannot accept a connection (%s) with %d open; trying again every %.2f s. "
          "Raise the runner's open-file limit (ulimit -n, LimitNOFILE)" % (error.strerror, open_conns, TICK), flush=True)
    return now
