"""What the sample streams run on instead of a thread each (issue 23): one timer thread for every
wait (a reconnect backoff, a start delay, a stall check) and a small bounded pool for the blocking
steps (opening a connection, starting the agent's `sample`, closing). Both threads end when they
have had nothing to do for IDLE_S, so a process that stops monitoring goes back to its own threads.

    handle = TIMERS.call_later(2.0, fn)   # fn runs on the timer thread: quick, never blocking
    handle.cancel()                       # True if it had not run (it never will)
    POOL.submit(fn, *args)                # runs on one of at most POOL_SIZE threads
"""
from __future__ import annotations

import heapq
import itertools
import logging
import queue
import threading
import time

log = logging.getLogger(__name__)
IDLE_S = 5.0
POOL_SIZE = 8  # how many streams may be connecting at the same moment (a hanging host holds one)


class Handle:
    def __init__(self, timers: "Timers"):
        self._timers = timers
        self.state = "waiting"  # "ran", "cancelled"

    def cancel(self) -> bool:
        """Keep it from running; False if it already ran (or is running)."""
        with self._timers._cond:
            if self.state != "waiting":
                return False
            self.state = "cancelled"
            return True


class Timers:
    def __init__(self):
        self._cond = threading.Condition()
        self._heap: list = []
        self._seq = itertools.count()
        self._thread: threading.Thread | None = None

    def call_later(self, seconds: float, fn) -> Handle:
        handle = Handle(self)
        with self._cond:
            heapq.heappush(self._heap, (time.monotonic() + max(0.0, seconds), next(self._seq), handle, fn))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="berth-streams-timer", daemon=True)
                self._thread.start()
            self._cond.notify()
        return handle

    def _run(self) -> None:
        mark_stream_thread()
        idle_since = time.monotonic()
        while True:
            with self._cond:
                while True:
                    now = time.monotonic()
                    while self._heap and self._heap[0][2].state == "cancelled":
                        heapq.heappop(self._heap)
                    if self._heap and self._heap[0][0] <= now:
                        _due, _seq, handle, fn = heapq.heappop(self._heap)
                        handle.state = "ran"
                        break
                    if not self._heap and now - idle_since >= IDLE_S:
                        self._thread = None
                        return
                    self._cond.wait(self._heap[0][0] - now if self._heap else IDLE_S)
            _call(fn)
            idle_since = time.monotonic()


class Pool:
    """At most `size` threads; an idle one ends after IDLE_S."""

    def __init__(self, size: int):
        self.size = size
        self._jobs: queue.Queue = queue.Queue()
        self._lock = threading.Lock()
        self._threads = 0
        self._idle = 0
        self._names = itertools.count(1)

    def submit(self, fn, *args) -> None:
        self._jobs.put((fn, args))
        with self._lock:
            self._spawn()

    def _spawn(self) -> None:
        """A new thread if jobs wait and none is idle (the lock is held)."""
        if self._idle < self._jobs.qsize() and self._threads < self.size:
            self._threads += 1
            threading.Thread(target=self._work, name=f"berth-streams-{next(self._names)}", daemon=True).start()

    def _work(self) -> None:
        mark_stream_thread()
        while True:
            with self._lock:
                self._idle += 1
            try:
                fn, args = self._jobs.get(timeout=IDLE_S)
            except queue.Empty:
                with self._lock:
                    self._idle -= 1
                    if self._jobs.empty():
                        self._threads -= 1
                        return
                continue
            with self._lock:
                self._idle -= 1
                self._spawn()  # a job that came while this thread was taking its own
            _call(fn, *args)

    def threads(self) -> int:
        return self._threads


def _call(fn, *args) -> None:
    try:
        fn(*args)
    except Exception:  # noqa: BLE001 - one stream's bug must not stop the others' timers
        log.exception("a monitor job failed")


TIMERS = Timers()
POOL = Pool(POOL_SIZE)


_marks = threading.local()


def mark_stream_thread() -> None:
    """This thread runs streams' steps or callbacks (the pool, the timer, a stream's own thread)."""
    _marks.stream = True


def on_stream_thread() -> bool:
    """Is this a thread that runs streams' steps, or the session reader (app/remote/session_reader.py)
    whose callbacks they are? There, stop() must not wait for the very steps it would block."""
    return getattr(_marks, "stream", False) or threading.current_thread().name == "berth-sessions"
