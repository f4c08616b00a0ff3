"""`[serve] workers = N` (N > 1): the runner loads the model once, binds its sockets, then forks N
worker processes that each run the event loop (httploop.Loop, made in the child: no shared epoll)
on the same listening sockets, the release's own port and the stable port's inherited one. Load
then fork: the workers share the loaded model's pages copy-on-write (docs/serving.md, "Workers").

The parent only supervises: it serves no request, so a slow model call never delays its answers to
the agent (the control socket), a worker's death (SIGCHLD) or SIGTERM, and a worker forked in place
of a dead one comes from a heap no request has dirtied. The parent is the process the agent knows
(its pid in the runner record), and it keeps no thread, so a fork copies no half-held lock:

- `serve` (control socket): the parent writes one byte down each worker's pipe and the worker
  starts accepting on the stable port; a worker forked later starts accepting at once.
- `fd`: the stable port's descriptor, as a single runner answers it.
- a worker that exits is forked again from the parent: at once if it lived STABLE_S, else after a
  wait that doubles with each quick death of that slot, from RESTART_GAP_S up to RESTART_MAX_S (a
  worker killed again and again was forked again every second for ever); each one counts in
  /metrics' berth_worker_restarts_total and the runner log says when the next comes.
- SIGTERM: the parent sends SIGTERM to each worker (each drains as a single runner does,
  runnershare.py) and exits once the last one has; a worker whose parent is gone (its pipe reads
  end-of-file) drains too.
"""
import gc
import os
import selectors
import signal
import socket
import sys
import time
import traceback

from . import handoff
from .fsutil import _unlink
from .httploop import Loop
from .workercounters import WorkerCounters

MAX_WORKERS = 64
RESTART_GAP_S = 1.0  # a worker that dies at once is not forked again in a tight loop
RESTART_MAX_S = 30.0  # the longest wait before a worker that keeps dying is forked again
STABLE_S = 60.0  # a worker that lived this long died of something new: its wait starts again from the gap
SERVE = b"s"
UNSERVE = b"u"  # the experiment router took the stable port


def count(manifest):
    """`[serve] workers` of a release's manifest (1 when absent or not a sane number)."""
    n = manifest.get("workers", 1)
    return n if isinstance(n, int) and not isinstance(n, bool) and 1 <= n <= MAX_WORKERS else 1


def run(args, service, own, shared, workers, ready):
    """Fork `workers` workers and supervise them until SIGTERM has drained them all; `ready()`
    writes the port file once they are forked (the sockets already queue connections)."""
    service.counters = WorkerCounters(service.model, service.version, workers, service.counters.started)
    gc.freeze()  # the loaded model's objects: no collection in a worker writes to (and so copies) their pages
    return Supervisor(args, service, own, shared, workers).run(ready)


class Supervisor:
    def __init__(self, args, service, own, shared, workers):
        self.args, self.service, self.own, self.shared = args, service, own, shared
        self.slots = [None] * workers  # (pid, pipe write end, fork time) per worker
        self.due = {}  # slot -> monotonic time its worker is forked again
        self.strikes = [0] * workers  # quick deaths in a row per slot
        self.serving = self.stopping = False
        self.selector = selectors.DefaultSelector()
        self.wake_r, self.wake_w = socket.socketpair()
        for s in (self.wake_r, self.wake_w):
            s.setblocking(False)
        self.selector.register(self.wake_r, selectors.EVENT_READ)
        self.control = handoff.bind(args.control) if args.control else None
        if self.control is not None:
            self.control.setblocking(False)
            self.selector.register(self.control, selectors.EVENT_READ)
        self.handlers = {"fd": self._fd, "serve": self._serve, "unserve": self._unserve,
                         "stop": handoff.stop_self}

    def run(self, ready):
        signal.set_wakeup_fd(self.wake_w.fileno())
        for sig in (signal.SIGTERM, signal.SIGCHLD):
            signal.signal(sig, lambda *_: None)  # the wakeup fd carries the signal number to the loop
        for i in range(len(self.slots)):
            self._fork(i)
        ready()
        while not (self.stopping and not any(self.slots)):
            now = time.monotonic()
            timeout = max(0.0, min(self.due.values()) - now) if self.due else 1.0
            for key, _ in self.selector.select(timeout):
                if key.fileobj is self.wake_r:
                    self._woken()
                else:
                    handoff.answer_one(self.control, self.handlers)
            self._reap()
            now = time.monotonic()
            for i in [i for i, t in self.due.items() if t <= now]:
                del self.due[i]
                if not self.stopping:
                    self._fork(i)
        if self.args.control:
            _unlink(self.args.control)
        self.service.requests.close()
        print("berth-runner: stopped (%d workers)" % len(self.slots), flush=True)
        return 0

    # -- the parent's events ----------------------------------------------------------------------

    def _woken(self):
        try:
            data = self.wake_r.recv(4096)
        except OSError:
            return
        if signal.SIGTERM in data and not self.stopping:
            self.stopping = True
            self.due.clear()
            for slot in self.slots:
                if slot:
                    _kill(slot[0])

    def _reap(self):
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            for i, slot in enumerate(self.slots):
                if slot and slot[0] == pid:
                    os.close(slot[1])
                    self.slots[i] = None
                    if not self.stopping:
                        now = time.monotonic()
                        self.strikes[i] = 1 if now - slot[2] >= STABLE_S else self.strikes[i] + 1
                        wait = min(RESTART_MAX_S, RESTART_GAP_S * 2 ** (self.strikes[i] - 1))
                        self.due[i] = max(now, slot[2] + wait) if self.strikes[i] == 1 else now + wait
                        self.service.counters.worker_restarted()
                        print("berth-runner: worker %d (pid %d) ended (%s); forking another in %.1f s (death %d "
                              "in a row)" % (i, pid, _status(status), self.due[i] - now, self.strikes[i]), flush=True)

    def _fd(self):
        return ("ok", self.shared.fileno()) if self.shared else "error no stable port"

    def _serve(self):
        return self._tell(True)

    def _unserve(self):
        """The experiment router took the stable port: the workers stop accepting on it (a worker
        forked later does not start to), and keep their release port and connections."""
        return self._tell(False)

    def _tell(self, serving):
        if self.shared is None:
            return "error no stable port"
        self.serving = serving
        for slot in self.slots:
            if slot:
                try:
                    os.write(slot[1], SERVE if serving else UNSERVE)
                except OSError:
                    pass  # it just died: the one forked in its place does what self.serving says
        return "ok"

    # -- a worker ---------------------------------------------------------------------------------

    def _fork(self, i):
        r, w = os.pipe()
        sys.stdout.flush()
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                os.close(w)
                code = self._worker(i, r)
            except BaseException:
                traceback.print_exc()
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(code)
        os.close(r)
        self.slots[i] = (pid, w, time.monotonic())

    def _worker(self, i, pipe):
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        for slot in self.slots:  # the other workers' pipes: their end-of-file must mean "parent gone"
            if slot:
                os.close(slot[1])
        self.selector.close()
        for s in (self.wake_r, self.wake_w, self.control):
            if s is not None:
                s.close()
        service = self.service
        service.counters.use_row(i)
        service.info = dict(service.info, pid=os.getpid(), worker=i, workers=len(self.slots))
        loop = Loop(service, service.log.failure)
        loop.listen(self.own)
        if self.serving:
            loop.listen(self.shared)
        loop.selector.register(pipe, selectors.EVENT_READ, lambda fd, mask: self._told(loop, fd))
        signal.set_wakeup_fd(loop.wake_fd())
        signal.signal(signal.SIGTERM, lambda *_: loop.call_soon(loop.stop_accepting))
        loop.run()
        service.requests.close()
        return 0

    def _told(self, loop, fd):
        """A byte from the parent: `serve` or `unserve`, in order; end-of-file: the parent is gone, drain."""
        data = os.read(fd, 64)
        if not data:
            loop.selector.unregister(fd)
            loop.stop_accepting()
            return
        for byte in data:
            if self.shared is None:
                break
            if byte == SERVE[0]:
                loop.listen(self.shared)
            elif byte == UNSERVE[0]:
                loop.unlisten(self.shared)


def _kill(pid):
    try:
        os.kill(pid, signal.SIGTERM)
    except OSError:
        pass


def _status(status):
    if os.WIFSIGNALED(status):
        return "signal %d" % os.WTERMSIG(status)
    return "exit status %d" % os.WEXITSTATUS(status)
