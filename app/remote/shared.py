"""One SSH connection per server for the whole console: the operations' worker and the live sample
stream each hold a handle on the same connected transport (paramiko runs their channels side by
side), so a server sees one login, one keepalive and one TCP connection.

A handle's close() lets go of its share; the connection closes when the last share is let go. A
connection found dead is not handed out again: the next acquire opens a new one, while holders of
the dead one see their errors, close, and acquire again (each with its own backoff)."""
from __future__ import annotations

import threading
from collections.abc import Callable, Hashable

from .transport import Transport


class _Entry:
    def __init__(self, transport: Transport):
        self.transport = transport
        self.shares = 0


class SharedConnections:
    def __init__(self):
        self._lock = threading.Lock()
        self._open: dict[Hashable, _Entry] = {}
        self._opening: dict[Hashable, threading.Lock] = {}

    def acquire(self, key: Hashable, opener: Callable[[], Transport]) -> "SharedHandle":
        """A share of the live connection for `key` (the server's settings), opened with `opener`
        when there is none. Two threads asking at once open it once."""
        with self._lock:
            gate = self._opening.setdefault(key, threading.Lock())
        with gate:
            with self._lock:
                entry = self._open.get(key)
                if entry is not None and entry.transport.connected():
                    entry.shares += 1
                    return SharedHandle(self, key, entry)
            transport = opener()  # outside the pool's lock: connecting may take seconds
            with self._lock:
                entry = self._open[key] = _Entry(transport)
                entry.shares = 1
                return SharedHandle(self, key, entry)

    def release(self, key: Hashable, entry: _Entry) -> None:
        with self._lock:
            entry.shares -= 1
            last = entry.shares <= 0
            if last and self._open.get(key) is entry:
                del self._open[key]
        if last:
            entry.transport.close()

    def count(self) -> int:
        with self._lock:
            return len(self._open)


class SharedHandle:
    """Stands for the transport (attributes read and set go to it), except close()."""

    def __init__(self, pool: SharedConnections, key: Hashable, entry: _Entry):
        object.__setattr__(self, "_pool", pool)
        object.__setattr__(self, "_key", key)
        object.__setattr__(self, "_entry", entry)
        object.__setattr__(self, "_closed", False)

    @property
    def transport(self) -> Transport:
        return self._entry.transport

    def __getattr__(self, name):
        return getattr(self._entry.transport, name)

    def __setattr__(self, name, value):
        setattr(self._entry.transport, name, value)

    def close(self) -> None:
        if not self._closed:
            object.__setattr__(self, "_closed", True)
            self._pool.release(self._key, self._entry)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


CONNECTIONS = SharedConnections()  # the console's; the CLI opens its own connections
