"""One thread per server that keeps samples coming from a SampleSource (app/monitor/sources.py: the
agent's `sample` command over the server's connection, or LocalSampler for `local`); reconnects
with backoff when the stream breaks.

    s = SampleStream("box", open_source("box"), 1.0, on_sample, on_state).start()
    ...
    s.set_interval(5.0)   # restarts the agent command on the same connection
    s.stop()              # closes the stream (on the server too) and joins the thread

`start_delay` (s) holds the first connection back: the console spreads a fleet's streams over the
first seconds instead of N logins and N samplers at once.

`on_sample(sample)` gets every sample with "server" added; `on_state(server, state, detail)` gets
"live" (samples flow), "reconnecting" (the stream broke or could not open; detail says why; the
next attempt follows after 1, 2, 4 ... 30 s, reset by a sample) and "stopped". `on_gap(server, ts)`,
when given, is told where each break happened (History.gap). All callbacks run on the stream's
thread: hand them over (a queue, a queued Qt signal), never touch a widget from them.

A stream that stays silent for stall_s (3 intervals, at least interval + 15 s: a suspended laptop,
a dead TCP connection nobody reset) counts as broken. Every wait goes through `clock`
(app/monitor/clock.py), so a test can drive the backoff without sleeping. No Qt here.
"""
from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from app.agent.intervals import MAX_INTERVAL, MIN_INTERVAL
from app.monitor.clock import REAL_CLOCK, Clock
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
    """`open_source()` gives a SampleSource on the stream's thread, once per (re)connection."""

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
        self._wake = threading.Event()
        self._stopping = False
        self._restart = False
        self._current = None  # the Samples being read (closed by stop() and set_interval())
        self._thread: threading.Thread | None = None

    # -- control (any thread) ----------------------------------------------------------------------
    def start(self) -> "SampleStream":
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name=f"berth-monitor-{self.server}", daemon=True)
            self._thread.start()
        return self

    def is_alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def set_interval(self, interval: float) -> None:
        """A new interval (0.25-60 s) from the next sample on: the agent command is restarted on the
        same connection (no gap)."""
        interval = check_interval(interval)
        with self._lock:
            if interval == self.interval:
                return
            self.interval = interval
            self._restart = True
            current = self._current
        self._wake.set()
        if current is not None:
            current.close()

    def stop(self, timeout: float = 10.0) -> None:
        """End the stream (on the server too) and wait for the thread."""
        with self._lock:
            self._stopping = True
            current = self._current
        self._wake.set()
        if current is not None:
            current.close()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)

    # -- the thread ----------------------------------------------------------------------------------
    def _run(self) -> None:
        backoff = BACKOFF_START
        if self.start_delay:
            self.clock.wait(self._wake, self.start_delay)  # stop() ends the wait
            with self._lock:
                self._wake.clear()
                self._restart = False
        while not self._stopping:
            live_before = self.samples
            try:
                source = self.open_source()
                try:
                    self._read(source)  # returns once stopped; a broken stream raises
                finally:
                    _close(source)
                break
            except Exception as e:  # noqa: BLE001 - every failure means: try again later
                if self._stopping:
                    break
                detail = str(e).strip().replace("\n", " ") or type(e).__name__
            if self.samples > live_before:
                backoff = BACKOFF_START  # it worked for a while: start the backoff over
            if self.state == "live":
                self._record_gap()
            self._set_state("reconnecting", detail)
            self.clock.wait(self._wake, backoff)
            with self._lock:
                self._wake.clear()
                self._restart = False
            backoff = min(backoff * 2, BACKOFF_MAX)
        self._set_state("stopped", "")

    def _read(self, source: SampleSource) -> None:
        """Deliver the samples of `source` until stopped; a new interval opens it again (the same
        connection); a stream that ends otherwise raises."""
        while True:
            with self._lock:
                if self._stopping:
                    return
                self._restart = False
                self._wake.clear()
                interval = self.interval
            samples = source.open(interval, self.stall_s or max(3 * interval, interval + 15.0))
            with self._lock:
                self._current = samples
                abandon = self._stopping or self._restart  # asked while it was opening
            try:
                if abandon:
                    samples.close()
                for sample in samples:
                    self._deliver(sample)
            finally:
                with self._lock:
                    self._current = None
                samples.close()
            with self._lock:
                if self._stopping:
                    return
                if not self._restart:
                    raise ConnectionError(f"{self.server}: the sample stream ended")

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
    close = getattr(source, "close", None)
    if close is not None:
        try:
            close()
        except Exception:  # noqa: BLE001 - already broken
            pass
