"""Where a SampleStream's samples come from, behind one interface, so the stream has one loop for
every kind of server instead of guessing what it was given:

    source = opener()                         # on the stream's thread, at each (re)connection
    samples = source.open(interval, stall_s)  # an iterable of samples (dicts, docs/monitoring.md)
    for sample in samples: ...                # ends when samples.close() is called (any thread)
    samples.start(on_sample, on_end)          # or, where it can: pushed, no thread (then outcome())
    source.close()                            # lets go of the sampler / the connection

`open` may be called again on the same source for a new interval (the SSH connection stays). A
broken source raises while being opened or iterated; the stream then reconnects with backoff.
"""
from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Protocol

from app.monitor.clock import REAL_CLOCK, Clock
from app.store.servers import LOCAL


class Samples(Protocol):
    def __iter__(self) -> Iterator[dict]: ...

    def close(self) -> None:
        """From any thread: the iteration ends soon after (a stop, a new interval)."""


class SampleSource(Protocol):
    def open(self, interval: float, stall_s: float) -> Samples:
        """Samples every `interval` s; one that stays silent `stall_s` s counts as broken."""

    def close(self) -> None: ...


class LocalSource:
    """The `local` server: LocalSampler in this process, paced on the clock. It cannot go silent
    without raising, so stall_s does not apply."""

    def __init__(self, sampler, clock: Clock = REAL_CLOCK):
        self.sampler, self.clock = sampler, clock

    def open(self, interval: float, stall_s: float | None = None) -> "_Paced":
        return _Paced(self.sampler, interval, self.clock)

    def close(self) -> None:
        self.sampler.close()


class _Paced:
    def __init__(self, sampler, interval: float, clock: Clock):
        self.sampler, self.interval, self.clock = sampler, interval, clock
        self._closed = threading.Event()

    def __iter__(self) -> Iterator[dict]:
        interval = self.interval
        self.sampler.interval = interval
        due = self.clock.monotonic()  # the first sample at once: a new interval shows without delay
        while not self._closed.is_set():
            yield self.sampler.sample()
            due += interval
            now = self.clock.monotonic()
            if due <= now:  # fell behind (suspended, starved): keep the phase, skip the missed slots
                due += interval * (int((now - due) / interval) + 1)
            if self.clock.wait(self._closed, due - now):
                return

    def close(self) -> None:
        self._closed.set()


class AgentSource:
    """A server over SSH: the agent's `sample` command on a connection (a share of the console's,
    app/remote/shared.py); a new interval starts the command again on the same connection."""

    def __init__(self, transport):
        self.transport = transport

    def open(self, interval: float, stall_s: float) -> "_AgentSamples":
        stream = self.transport.stream("sample", {"interval": interval, "count": 0})
        stream.set_read_timeout(stall_s)
        return _AgentSamples(stream)

    def close(self) -> None:
        self.transport.close()


class _AgentSamples:
    def __init__(self, stream):
        self.stream = stream

    def __iter__(self) -> Iterator[dict]:
        for event in self.stream:
            if event.get("event") == "sample":
                yield {k: v for k, v in event.items() if k != "event"}

    def start(self, on_sample, on_end) -> None:
        """Pushed instead of iterated (no thread of its own): `on_sample(sample)` and then
        `on_end()` from the process's session reader; `outcome()` afterwards raises if it broke."""
        def on_event(event: dict) -> None:
            if event.get("event") == "sample":
                on_sample({k: v for k, v in event.items() if k != "event"})
        self.stream.follow(on_event, on_end)

    def outcome(self) -> None:
        self.stream.outcome()

    def close(self) -> None:
        self.stream.close()  # ends the command on the server too


def open_source(server: str):
    """The usual opener for a configured server: a callable that, on the stream's thread, returns a
    LocalSource for `local` and otherwise an AgentSource on a share of the console's connection to
    the server (operations and samples travel on one SSH connection). It reads the server's
    settings from the database each time (an edited server is picked up on reconnect) and does not
    write to the audit log: a host that stays down would add a line every 30 s."""
    def opener() -> SampleSource:
        if server == LOCAL:
            from app.monitor.local_sampler import LocalSampler

            return LocalSource(LocalSampler())
        from app.remote.connect import open_transport
        from app.remote.shared import CONNECTIONS
        from app.store.db import open_db
        from app.store.servers import ServerRegistry

        db = open_db()
        try:
            config = ServerRegistry(db).get(server)
        finally:
            db.close()
        return AgentSource(CONNECTIONS.acquire(config, lambda: open_transport(config)))
    return opener
