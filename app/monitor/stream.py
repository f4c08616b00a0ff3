"""Keeps samples coming from a SampleSource (app/monitor/sources.py: the agent's `sample` command
over the server's connection, or LocalSampler for `local`); reconnects with backoff when the
stream breaks. No thread per server (issue 23): the agent's samples are pushed by the process's
one session reader (app/remote/session_reader.py), every wait is a timer on one thread and the
blocking steps (connect, start `sample`, close) run on a small bounded pool
(app/monitor/scheduler.py). Only a source that can just be iterated (LocalSampler: one `local`)
gets a thread of its own.

    s = SampleStream("box", open_source("box"), 1.0, on_sample, on_state).start()
    ...
    s.set_interval(5.0)   # restarts the agent command on the same connection
    s.stop()              # closes the stream (on the server too) and waits until it stopped

`start_delay` (s) holds the first connection back: the console spreads a fleet's streams over the
first seconds instead of N logins and N samplers at once.

`on_sample(sample)` gets every sample with "server" added; `on_state(server, state, detail)` gets
"live" (samples flow), "reconnecting" (the stream broke or could not open; detail says why; the
next attempt follows after 1, 2, 4 ... 30 s, reset by a sample) and "stopped". `on_gap(server, ts)`,
when given, is told where each break happened (History.gap). All callbacks run on a shared
thread (the reader, the pool): hand them over quickly (a queue, a queued Qt signal), never block
in them and never touch a widget from them.

A stream that stays silent for stall_s (3 intervals, at least interval + 15 s: a suspended laptop,
a dead TCP connection nobody reset) counts as broken. Every wait goes through `clock`
(app/monitor/clock.py): on the real clock a timer, on a test's clock its wait, so a test can
drive the backoff without sleeping. No Qt here.
"""
from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from app.agent.intervals import MAX_INTERVAL, MIN_INTERVAL
from app.monitor.clock import REAL_CLOCK, Clock
from app.monitor.scheduler import POOL, TIMERS, mark_stream_thread, on_stream_thread
from app.monitor.sources import SampleSource, open_source

__all__ = ["BACKOFF_MAX", "BACKOFF_START", "SampleStream", "check_interval", "open_source"]
log = logging.getLogger(__name__)

BACKOFF_START, BACKOFF_MAX = 1.0, 30.0


def check_interval(interval: float) -> float:
    if isinstance(interval, bool) or not isinstance(interval, (int, float)) \
            or not MIN_INTERVAL <= interval <= MAX_INTERVAL:
        raise ValueError(f"the interval must be {MIN_INTERVAL:g} to {MAX_INTERVAL:g} seconds, not {interval!r}")
    return float(interval)


class SampleStream:
    """`open_source()` gives a SampleSource, once per (re)connection, on the shared pool."""

    def __init__(self, server: str, open_source: Callable[[], SampleSource], interval: float = 1.0,
                 on_sample=None, on_state=None, on_gap=None, stall_s: float | None = None,
                 clock: Clock = REAL_CLOCK, start_delay: float = 0.0):
        self.server = server
        self.open_source = open_source
        self.clock = clock
        self.interval = check_interval(interval)
        self.on_sample, self.on_state, self.on_gap = on_sample, on_state, on_gap
        self.stall_s = stall_s
        self.start_delay = max(0.0, float(start_delay))  # a fleet's streams open spread out, not all at once
        self.state = "connecting"
        self.detail = ""
        self.samples = 0  # received since start()
        self.gaps: list[float] = []  # unix times of the breaks seen (also given to on_gap)
        self._lock = threading.Lock()
        self._wake = threading.Event()  # cuts a wait on a clock without timers short (stop, new interval)
        self._stopping = False
        self._restart = False
        self._started = False
        self._done = threading.Event()
        self._source = None
        self._current = None  # the Samples being read (closed by stop() and set_interval())
        self._gen = 0  # which Samples the callbacks in flight belong to
        self._timer = None  # (handle, what runs when it fires): a backoff or the start delay
        self._stall = None  # the stall check's handle
        self._stalled = 0  # the generation given up as silent
        self._last = 0.0  # monotonic time of the last sample (the stall check)
        self._backoff = BACKOFF_START
        self._live_before = 0
        self._thread: threading.Thread | None = None  # iterating a source that cannot push

    # -- control (any thread) ----------------------------------------------------------------------
    def start(self) -> "SampleStream":
        with self._lock:
            if self._started:
                return self
            self._started = True
        if self.start_delay:
            self._after(self.start_delay, self._connect)
        else:
            POOL.submit(self._connect)
        return self

    def is_alive(self) -> bool:
        return self._started and not self._done.is_set()

    def set_interval(self, interval: float) -> None:
        """A new interval (0.25-60 s) from the next sample on: the agent command is restarted on the
        same connection (no gap). During a backoff: the next attempt is now."""
        interval = check_interval(interval)
        with self._lock:
            if interval == self.interval:
                return
            self.interval = interval
            self._restart = True
            current = self._current
        self._wake.set()
        self._fire_now()
        if current is not None:
            current.close()

    def stop(self, timeout: float = 10.0) -> None:
        """End the stream (on the server too) and wait until it says "stopped"."""
        with self._lock:
            self._stopping = True
            current = self._current
            started = self._started
        self._wake.set()
        if not started:
            return
        self._fire_now()
        if current is not None:
            current.close()
        if not on_stream_thread():
            self._done.wait(timeout)
            thread = self._thread
            if thread is not None:
                thread.join(max(0.1, timeout / 2))

    # -- the steps: on the pool; a wait on the timer thread; samples from the session reader -------
    def _after(self, seconds: float, step) -> None:
        if self.clock is REAL_CLOCK:
            with self._lock:
                self._timer = (TIMERS.call_later(seconds, lambda: POOL.submit(step)), step)
                stopping = self._stopping
            if stopping:  # stop() came before there was a wait to end
                self._fire_now()
        else:  # a test's clock: its wait is the schedule (an Event cuts it short)
            POOL.submit(self._wait_then, seconds, step)

    def _wait_then(self, seconds: float, step) -> None:
        self.clock.wait(self._wake, seconds)
        step()

    def _fire_now(self) -> None:
        """A pending wait ends now (stop, new interval)."""
        with self._lock:
            timer, self._timer = self._timer, None
        if timer is not None and timer[0].cancel():
            POOL.submit(timer[1])

    def _connect(self) -> None:
        with self._lock:
            self._timer = None
            self._wake.clear()
            self._restart = False
            if self._stopping:
                return self._finish()
        self._live_before = self.samples
        try:
            if self._source is None:
                self._source = self.open_source()
            self._open()
        except Exception as e:  # noqa: BLE001 - every failure means: try again later
            self._broken(e)

    def _open(self) -> None:
        """Start the samples of the source (again: a new interval, the same connection)."""
        with self._lock:
            if self._stopping:
                return self._finish()
            self._restart = False
            self._wake.clear()
            interval = self.interval
        stall_s = self.stall_s or max(3 * interval, interval + 15.0)
        samples = self._source.open(interval, stall_s)
        with self._lock:
            self._gen += 1
            gen = self._gen
            self._current = samples
            abandon = self._stopping or self._restart  # asked while it was opening
        if abandon:
            samples.close()
        start = getattr(samples, "start", None)
        if start is None:  # can only be iterated (the local sampler): on a thread of its own
            self._thread = threading.Thread(target=self._iterate, args=(samples, gen),
                                            name=f"berth-monitor-{self.server}", daemon=True)
            self._thread.start()
            return
        self._last = self.clock.monotonic()
        if self.clock is REAL_CLOCK:
            self._check_stall(gen, stall_s)
        start(lambda sample: self._pushed(gen, sample), lambda: POOL.submit(self._ended, samples, gen))

    def _iterate(self, samples, gen: int) -> None:
        mark_stream_thread()
        error = None
        try:
            for sample in samples:
                self._deliver(sample)
        except Exception as e:  # noqa: BLE001
            error = e
        self._ended(samples, gen, error)

    def _pushed(self, gen: int, sample: dict) -> None:
        if gen == self._gen and gen != self._stalled:
            self._last = self.clock.monotonic()
            self._deliver(sample)

    def _check_stall(self, gen: int, stall_s: float) -> None:
        """On the timer thread: a stream silent for stall_s (a suspended laptop, a dead TCP
        connection nobody reset) is given up; its end then reconnects."""
        with self._lock:
            if gen != self._gen or self._current is None:
                return
            silent = self.clock.monotonic() - self._last
            if silent < stall_s:
                self._stall = TIMERS.call_later(stall_s - silent, lambda: self._check_stall(gen, stall_s))
                return
            self._stalled = gen
            current = self._current
        POOL.submit(current.close)  # closing may wait on the connection: not on the timer thread

    def _ended(self, samples, gen: int, error: Exception | None = None) -> None:
        """The samples ended (closed, broken or over): open them again, reconnect, or finish."""
        with self._lock:
            if gen != self._gen:
                return
            self._current = None
            stall, self._stall = self._stall, None
        if stall is not None:
            stall.cancel()
        if error is None:
            try:
                outcome = getattr(samples, "outcome", None)
                if outcome is not None:
                    outcome()
            except Exception as e:  # noqa: BLE001
                error = e
        _close(samples)
        if gen == self._stalled:
            error = ConnectionError(f"{self.server}: the server sent nothing for "
                                    f"{self.clock.monotonic() - self._last:.0f} s")
        with self._lock:
            stopping, restart = self._stopping, self._restart
        if error is None and stopping:
            return self._finish()
        if error is None and restart:
            try:
                return self._open()
            except Exception as e:  # noqa: BLE001
                error = e
        self._broken(error or ConnectionError(f"{self.server}: the sample stream ended"))

    def _broken(self, error: Exception) -> None:
        source, self._source = self._source, None
        _close(source)
        if self._stopping:
            return self._finish()
        detail = str(error).strip().replace("\n", " ") or type(error).__name__
        if self.samples > self._live_before:
            self._backoff = BACKOFF_START  # it worked for a while: start the backoff over
        if self.state == "live":
            self._record_gap()
        self._set_state("reconnecting", detail)
        delay, self._backoff = self._backoff, min(self._backoff * 2, BACKOFF_MAX)
        self._after(delay, self._connect)

    def _finish(self) -> None:
        source, self._source = self._source, None
        _close(source)
        self._set_state("stopped", "")
        self._done.set()

    def _deliver(self, sample: dict) -> None:
        sample["server"] = self.server
        self.samples += 1
        if self.state != "live":
            self._set_state("live", "")
        if self.on_sample is not None:
            try:
                self.on_sample(sample)
            except Exception:  # noqa: BLE001 - a consumer's bug must not end the stream
                log.exception("on_sample of %s failed", self.server)

    def _record_gap(self) -> None:
        ts = self.clock.time()
        self.gaps.append(ts)
        if self.on_gap is not None:
            try:
                self.on_gap(self.server, ts)
            except Exception:  # noqa: BLE001
                log.exception("on_gap of %s failed", self.server)

    def _set_state(self, state: str, detail: str) -> None:
        if (state, detail) == (self.state, self.detail):
            return
        self.state, self.detail = state, detail
        if self.on_state is not None:
            try:
                self.on_state(self.server, state, detail)
            except Exception:  # noqa: BLE001
                log.exception("on_state of %s failed", self.server)


def _close(source) -> None:
    if source is None:
        return
    close = getattr(source, "close", None)
    if close is not None:
        try:
            close()
        except Exception:  # noqa: BLE001 - already broken
            pass
