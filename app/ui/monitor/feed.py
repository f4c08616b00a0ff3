"""Live monitoring data for the console: one SampleStream per server (app/monitor/stream.py: no
thread each; samples come from the process's one session reader), delivered on the GUI thread,
kept in a MonitorBuffer (the live window), and written to History (SQLite) by ONE writer thread,
never the GUI thread.

    stream callbacks ──queued signal──▶ GUI thread: buffer.add, sampled(server, sample)
                     └──queue──▶ writer thread: History.add / History.gap

Servers whose live data is on no screen (`show_live`: the Monitor page says what it shows) are sampled
every `background_interval` instead of `interval` (issue 23: 100 servers at 1 Hz kept ~20 % of a core
busy in the console alone: reading, parsing, buffering and storing 100 samples a second), and all of
them together at most BACKGROUND_RATE times a second: a larger fleet's background servers are sampled
more slowly still (100 servers, 10 on screen: every 9 s), so the console's cost stops growing with N.

At start the writer first reads the last 5 minutes of every server from History into the buffer
(`preloaded`), so after a restart the live view shows them at once instead of an empty graph.
"""
from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable

from PySide6.QtCore import QObject, Qt, QTimer, Signal

from app.formatting import natural_key
from app.monitor.buffer import MonitorBuffer
from app.monitor.recent import default_history, read_recent
from app.store.servers import LOCAL

log = logging.getLogger(__name__)
INTERVAL = 1.0
# new streams open this far apart (at most over the span): 100 servers' logins and samplers over 8 s
STREAM_STEP_S, STREAM_SPAN_S = 0.08, 8.0
BACKGROUND_INTERVAL = 5.0  # the console's servers whose live data is on no screen
BACKGROUND_RATE = 10.0  # samples a second of all those servers together, at most (N=100 at 5 s: 20)
SETTLE_MS = 1000  # what is on screen is applied once it held this long (a scroll restarts few streams)


def default_stream(server: str, interval: float, on_sample, on_state, on_gap, delay: float = 0.0):
    """A started SampleStream for `server` (LocalSampler for `local`, the agent's `sample` otherwise)
    that first connects after `delay` s."""
    from app.monitor.stream import SampleStream, open_source

    return SampleStream(server, open_source(server), interval, on_sample, on_state, on_gap,
                        start_delay=delay).start()


class MonitorFeed(QObject):
    """Signals (GUI thread):
        sampled(str server, object sample): a sample, already in `buffer`
        preloaded(object servers): the last 5 minutes of these servers were read from History into
            `buffer` (once, at start: the live view is not empty after a restart)
        stream_state(str server, str state, str detail): "reconnecting" | "live" (as the stream says)
    """

    sampled = Signal(str, object)
    preloaded = Signal(object)
    stream_state = Signal(str, str, str)
    _incoming = Signal(str, object)
    _state_in = Signal(str, str, str)
    _gap_in = Signal(str, float)
    _preload_in = Signal(object, object)  # (server, its series) each, then (None, [servers]): done

    def __init__(self, parent=None, *, buffer: MonitorBuffer | None = None, interval: float = INTERVAL,
                 stream_factory: Callable | None = default_stream,
                 history_factory: Callable | None = default_history, background_interval: float | None = None):
        super().__init__(parent)
        self.buffer = buffer or MonitorBuffer()
        self.interval = interval
        self.background_interval = background_interval  # None: every server at `interval`
        self.background_rate = BACKGROUND_RATE
        self.on_screen: set[str] = set()
        self.fleet: set[str] = set()  # the servers streamed (`local` too), for the background budget
        self._settle = QTimer(self)
        self._settle.setSingleShot(True)
        self._settle.setInterval(SETTLE_MS)
        self._settle.timeout.connect(self._apply_intervals)
        self.stream_factory = stream_factory
        self.history_factory = history_factory
        self.streams: dict[str, object] = {}
        self.states: dict[str, tuple[str, str]] = {}
        self.started = False
        self.written = 0  # samples the writer stored (tests, bench)
        self._queue: queue.Queue = queue.Queue(maxsize=100000)
        self._writer: threading.Thread | None = None
        self.writer_done = threading.Event()  # set when the writer closed History (after stop())
        self._incoming.connect(self._on_incoming, Qt.ConnectionType.QueuedConnection)
        self._state_in.connect(self._on_state, Qt.ConnectionType.QueuedConnection)
        self._gap_in.connect(self._on_gap, Qt.ConnectionType.QueuedConnection)
        self._preload_in.connect(self._on_preload, Qt.ConnectionType.QueuedConnection)

    # -- servers --------------------------------------------------------------------------------
    def start(self, servers=()) -> None:
        self.started = True
        self.set_servers(servers)
        if self.history_factory is not None and self._writer is None:
            self.writer_done.clear()
            self._writer = threading.Thread(target=self._write_loop, args=(sorted(self.streams),),
                                            name="berth-monitor-writer", daemon=True)
            self._writer.start()

    def set_servers(self, servers) -> None:
        """Streams follow the server list (`local` always), once started."""
        if not self.started:
            return
        wanted = set(servers) | {LOCAL}
        if wanted != self.fleet and self.streams:
            self._settle.start()  # another fleet size: the running streams' background interval may change
        self.fleet = wanted
        for name in sorted(set(self.streams) - wanted):
            self._stop_stream(name)
            self.buffer.forget(name)
        new = sorted(wanted - set(self.streams), key=lambda s: (s != LOCAL, natural_key(s)))
        step = min(STREAM_STEP_S, STREAM_SPAN_S / max(1, len(new)))
        for n, name in enumerate(new):
            if self.stream_factory is None:
                self.streams[name] = None
                continue
            try:
                self.streams[name] = self.stream_factory(
                    name, self.interval_for(name), lambda sample, s=name: self.feed(s, sample),
                    self.state, self.gap, delay=n * step)
            except Exception as e:  # the monitor package may be missing or the server misconfigured
                log.warning("no sample stream for %s: %s", name, e)
                self.streams[name] = None
                self._on_state(name, "unavailable", str(e))

    def interval_for(self, server: str) -> float:
        if self.background_interval is None or server in self.on_screen:
            return self.interval
        return self.slow_interval()

    def slow_interval(self) -> float:
        """The interval of the servers on no screen now: `background_interval`, or longer when there
        are more of them than BACKGROUND_RATE a second allows (never over the agent's MAX_INTERVAL)."""
        from app.agent.intervals import MAX_INTERVAL

        if self.background_interval is None:
            return self.interval
        behind = len(self.fleet - self.on_screen)
        budget = round(behind / self.background_rate, 1) if self.background_rate else 0.0
        return min(MAX_INTERVAL, max(self.interval, self.background_interval, budget))

    def show_live(self, servers) -> None:
        """The servers whose live data is on screen now (GUI thread): sampled every `interval`, the
        others every `background_interval`, from SETTLE_MS after the last change on."""
        servers = set(servers)
        if servers != self.on_screen:
            self.on_screen = servers
            self._settle.start()

    def _apply_intervals(self) -> None:
        from app.monitor.scheduler import POOL

        for name, stream in self.streams.items():
            want = self.interval_for(name)
            if stream is not None and hasattr(stream, "set_interval") and getattr(stream, "interval", want) != want:
                POOL.submit(stream.set_interval, want)  # it closes the running command: not on the GUI thread

    def _stop_stream(self, name: str) -> None:
        s = self.streams.pop(name, None)
        if s is not None:  # stop() may wait for the thread: never on the GUI thread
            threading.Thread(target=s.stop, name=f"berth-monitor-stop-{name}", daemon=True).start()

    def stop(self) -> None:
        self.started = False
        for name in list(self.streams):
            self._stop_stream(name)
        if self._writer is not None:
            try:
                self._queue.put_nowait(None)
            except queue.Full:
                pass
            self._writer = None

    # -- from any thread ----------------------------------------------------------------------------
    def feed(self, server: str, sample: dict) -> None:
        """A sample for `server` (a stream thread, a simulator, a test): stored and delivered."""
        if sample.get("server") != server:  # a copy: never changed after it left this thread
            sample = dict(sample, server=server)
        if self.started and self.history_factory is not None:
            try:
                self._queue.put_nowait(("sample", server, sample))
            except queue.Full:
                pass  # the writer is far behind: the live window still gets it
        self._incoming.emit(server, sample)

    def state(self, server: str, state: str, detail: str = "") -> None:
        self._state_in.emit(server, state, detail or "")

    def gap(self, server: str, ts: float | None = None) -> None:
        """The stream of `server` broke (at `ts`, default now): graphs and History draw a break."""
        ts = time.time() if ts is None else float(ts)
        if self.started and self.history_factory is not None:
            try:
                self._queue.put_nowait(("gap", server, ts))
            except queue.Full:
                pass
        self._gap_in.emit(server, ts)

    # -- GUI thread -------------------------------------------------------------------------------
    def _on_incoming(self, server: str, sample: dict) -> None:
        self.buffer.add(server, sample)
        self.sampled.emit(server, sample)

    def _on_state(self, server: str, state: str, detail: str) -> None:
        self.states[server] = (state, detail)
        self.stream_state.emit(server, state, detail)

    def _on_gap(self, server: str, _ts: float) -> None:
        self.buffer.gap(server)  # right after its newest point (the server's clock may differ from ours)

    def _on_preload(self, server, value) -> None:
        """One server at a time (~1 ms each), then one `preloaded` for all: the views redraw once."""
        if server is not None:
            if server in self.streams:
                self.buffer.preload(server, value)
            return
        servers = sorted(s for s in value if s in self.streams)
        if servers:
            self.preloaded.emit(servers)

    # -- the writer thread ------------------------------------------------------------------------
    def _write_loop(self, servers=()) -> None:
        try:
            history = self.history_factory()
        except Exception as e:
            log.warning("monitoring history unavailable: %s", e)
            history = None
        if history is not None:
            try:  # before writing anything: what the previous session stored, for the live window
                recent = read_recent(history, servers)
            except Exception as e:
                log.warning("monitoring history: cannot read the last minutes: %s", e)
                recent = {}
            for server, series in recent.items():
                self._preload_in.emit(server, series)
            self._preload_in.emit(None, sorted(recent))
        while (item := self._queue.get()) is not None:
            if history is None:
                continue
            kind, server, value = item
            try:
                if kind == "sample":
                    history.add(value)
                    self.written += 1
                else:
                    history.gap(server, value)
            except Exception as e:  # a full disk must not end live monitoring
                log.warning("monitoring history: cannot store a %s of %s: %s", kind, server, e)
            time.sleep(0)  # let the GUI thread take the GIL between samples (it waits up to 5 ms otherwise)
        close = getattr(history, "close", None)
        if close:
            try:
                close()
            except Exception:
                pass
        self.writer_done.set()
