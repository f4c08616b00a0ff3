"""`agent.py session`: one agent process for a whole connection, so a command costs a line on a pipe
instead of a new SSH exec channel, login shell and interpreter (about 0.2 s each).

Started through the same BOOTSTRAP as any command (the agent's files are checked first). It writes
`{"event": "session", "pid": ...}`, then reads JSON lines on stdin:
    {"id": N, "command": "status", "request": {...}}   run it, in a thread of its own
    {"id": N, "cancel": true}                          cancel request N
A stream (`sample_stream`) is a request that runs until it is cancelled.
and writes each request's events (step, log, then one result or error) as JSON lines carrying its id.

Cancelling is what a cut channel did to a one-shot agent: the request's next event raises Cancelled
(journalled as such); after the point of no return its events are quiet and the change completes.
The end of stdin or SIGHUP cancels every request; SIGTERM (what `unlock` sends the lock's holder)
cancels the requests holding the server lock, or all when none does. The process exits once its
requests have ended. Nothing a command runs changes process-wide state (the umask is the root's, the same
for every request of the session's one root: private, or group-readable in a shared root; no chdir, no os.environ, signal handlers only in the main thread, which only waits)."""
import json
import os
import signal
import sys
import threading

from . import lock
from .selfcheck import SelfCheck
from .main import COMMANDS, run
from .protocol import Cancelled

# the one-shot stream execs a lean interpreter and sets signals: in a session it is `sample_stream`
NOT_IN_SESSION = ("sample",)


class _Request:
    def __init__(self, rid):
        self.id = rid
        self.cancelled = ""  # why, once cancelled
        self.thread = None
        self.woken = threading.Event()  # set with `cancelled`: ends a stream's wait at once

    def pause(self, seconds):
        """Wait up to `seconds`; why the request was cancelled meanwhile, or "" (samplestream.py)."""
        return self.cancelled if self.woken.wait(seconds) else ""


class Session:
    def __init__(self, stdout):
        self.out = stdout
        self.write_lock = threading.Lock()  # one whole line at a time, whatever thread writes
        self.requests = {}  # id -> _Request, while it runs
        self.guard = threading.RLock()  # the table; re-entrant, as signal handlers take it too
        self.broken = False  # the reader of our stdout is gone
        self.closed = False  # no new request: the session is ending
        self.selfcheck = SelfCheck(os.path.dirname(os.path.abspath(__file__)))

    def write(self, fields):
        """Write one line; False when nobody reads any more."""
        line = json.dumps(fields) + "\n"
        with self.write_lock:
            if self.broken:
                return False
            try:
                self.out.write(line)
                self.out.flush()
                return True
            except (BrokenPipeError, ValueError, OSError):
                self.broken = True
                return False

    def emitter(self, req):
        def emit(kind, **fields):
            if req.cancelled:
                raise Cancelled(req.cancelled)
            fields.update(event=kind, id=req.id)
            if not self.write(fields):
                raise Cancelled("Berth went away")
        emit.pause = req.pause  # a stream's wait between events (samplestream.py): a cancel cuts it short
        return emit

    def failed(self, req):
        def failed(message, code, extra):
            self.write(dict(extra or {}, event="error", message=message, code=code, id=req.id))
            return 2 if code == "usage" else 1
        return failed

    def handle(self, line):
        try:
            msg = json.loads(line)
            rid = msg["id"]
            if isinstance(rid, bool) or not isinstance(rid, int):
                raise ValueError("id must be a number")
        except (ValueError, KeyError, TypeError) as e:
            self.write({"event": "error", "code": "usage", "message": "bad session line: %s" % e})
            return
        if msg.get("cancel") is True:
            self.cancel(lambda r: r.id == rid, "Berth cancelled it")
            return
        req = _Request(rid)
        command = msg.get("command")
        problem = self.selfcheck.problem()
        if problem is not None:  # Berth replaces the agent, ends this session and asks a new one
            self.failed(req)(problem.pop("message"), problem.pop("code"), problem)
            return
        if command not in COMMANDS or command in NOT_IN_SESSION:
            self.failed(req)("unknown session command %r%s" % (command, " (in a session the stream of samples is "
                                                                        "`sample_stream`)" if command == "sample"
                                                                 else ""), "usage", {})
            return
        with self.guard:
            if self.closed:
                self.failed(req)("the session is ending", "cancelled", {})
                return
            if rid in self.requests:
                self.failed(req)("request id %d is already running" % rid, "usage", {})
                return
            self.requests[rid] = req
        req.thread = threading.Thread(target=self._run, args=(req, command, msg.get("request")),
                                      name="berth-request-%d" % rid)
        req.thread.start()

    def _run(self, req, command, request):
        try:
            run(command, request, self.emitter(req), self.failed(req))
        finally:
            with self.guard:
                self.requests.pop(req.id, None)

    def cancel(self, which, why="Berth went away"):
        with self.guard:
            for req in self.requests.values():
                if which(req) and not req.cancelled:
                    req.cancelled = why
                    req.woken.set()

    def cancel_lock_holders(self):
        """SIGTERM: the requests holding the server lock (the one `unlock` means), else every one;
        True when it was lock holders (the session goes on serving the others)."""
        holders = lock.holding_threads()
        with self.guard:
            hit = [r for r in self.requests.values() if r.thread is not None and r.thread.ident in holders]
        self.cancel((lambda r: r in hit) if hit else (lambda r: True), "signal %d" % signal.SIGTERM)
        return bool(hit)

    def close(self):
        with self.guard:
            self.closed = True
        self.cancel(lambda r: True)

    def join(self):
        with self.guard:
            running = [r.thread for r in self.requests.values() if r.thread is not None]
        for t in running:
            t.join()


def serve(stdin, stdout):
    """Read requests on a thread of its own; the main thread only waits, so that it runs the signal
    handlers at once (Python runs them there, and a main thread blocked in read() would not wake up
    for a signal the kernel gave to another thread: `unlock`'s SIGTERM to its own session)."""
    session = Session(stdout)
    stop = []  # a flag the handlers set (no lock a handler could find held by the code it interrupted)

    def read():
        try:
            for line in stdin:
                if line.strip():
                    session.handle(line)
        except (OSError, ValueError):
            pass

    def on_hup(signum, frame):
        session.cancel(lambda r: True, "signal %d" % signum)
        stop.append(signum)

    def on_term(signum, frame):
        if not session.cancel_lock_holders():
            stop.append(signum)

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGHUP, on_hup)
        signal.signal(signal.SIGTERM, on_term)
    session.write({"event": "session", "pid": os.getpid(), "python": sys.version.split()[0]})
    reader = threading.Thread(target=read, name="berth-session-reader", daemon=True)
    reader.start()
    while reader.is_alive() and not stop:
        reader.join(0.2)
    session.close()  # Berth went away: as a cut channel did to a one-shot agent
    session.join()
    return 0
