"""One thread reads every agent session of the process (issue 23: threads must not grow per server).

A selector waits on each session's stdout (a paramiko Channel's fileno(), or a subprocess pipe),
reads what is there, splits it into lines and hands each line to the session's `on_line`;
`on_end` once its output ended. Callbacks run on this thread: they must be quick and never block
(AgentSession only puts events on queues; a sample stream hands its end to the monitor's pool).
The agent's `sample` streams (app/remote/agent_stream.py) are read here too. What cannot be
selected on (anything on Windows, any other iterable) gets a thread of its own, as before. The
thread ends after IDLE_S with nothing to watch; the next add() starts it again.
"""
from __future__ import annotations

import logging
import os
import selectors
import socket
import sys
import threading
import weakref
from collections.abc import Callable

log = logging.getLogger(__name__)
CHUNK = 1 << 16
IDLE_S = 5.0  # the thread ends once it has watched nothing for this long
STDERR_KEEP = 1 << 16  # of a channel's stderr taken off while it runs, the last this many bytes are kept
_stderr: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()  # Channel -> bytearray
_stderr_lock = threading.Lock()


class _Source:
    """One readable stdout: `read()` returns bytes, b"" at its end, or None (nothing yet)."""

    def __init__(self, fileno: int, read: Callable[[], bytes | None], release, on_line, on_end):
        self.fileno, self.read, self.release = fileno, read, release
        self.on_line, self.on_end = on_line, on_end
        self.buffer = b""


def _channel_reader(channel) -> Callable[[], bytes | None]:
    def read():
        if channel.recv_ready():  # paramiko's fileno() is ready for data and for the end alike
            return channel.recv(CHUNK)
        if channel.recv_stderr_ready():  # ... and for stderr: left unread, select() returns at once for ever
            _keep_stderr(channel, channel.recv_stderr(CHUNK))  # (seen: 1.1 million empty turns in 30 s)
            return None
        if channel.eof_received or channel.closed:
            return b""
        return None
    return read


def _keep_stderr(channel, data: bytes) -> None:
    with _stderr_lock:
        kept = _stderr.setdefault(channel, bytearray())
        kept += data
        del kept[:-STDERR_KEEP]


def taken_stderr(channel) -> bytes:
    """The stderr this reader took off `channel` while it ran (its last STDERR_KEEP bytes), once:
    the channel's owner puts it before what is left to read, for its error message."""
    with _stderr_lock:
        return bytes(_stderr.pop(channel, b""))


def _pipe_reader(fd: int) -> Callable[[], bytes | None]:
    return lambda: os.read(fd, CHUNK)


def selectable(lines) -> tuple[int, Callable[[], bytes | None], Callable[[], None]] | None:
    """(fileno to wait on, read, release) for a session's stdout, or None (not selectable here).

    The selector waits on a dup: the owner may close its file (Channel.close() closes paramiko's
    pipe, a subprocess's abort its stdout) before the end is read here, and a closed (or reused)
    number must not stay behind. A Channel's dup is only waited on, never read (paramiko's
    set/clear of its pipe stay its own)."""
    if sys.platform == "win32":  # select() there takes sockets only, os.dup() no socket handles
        return None
    channel = getattr(lines, "channel", None)  # paramiko's ChannelFile: read the Channel itself
    if channel is not None and hasattr(channel, "recv_ready"):
        fd = os.dup(channel.fileno())
        return fd, _channel_reader(channel), lambda: os.close(fd)
    if hasattr(lines, "fileno"):  # a subprocess pipe nobody read from yet
        try:
            fd = os.dup(lines.fileno())  # its owner may close it before the end is read here
        except (OSError, ValueError):
            return None
        return fd, _pipe_reader(fd), lambda: os.close(fd)
    return None


class SessionReader:
    """The process's one selector thread, started with the first session (or stream)."""

    def __init__(self):
        self._lock = threading.Lock()
        self._pending: list[_Source] = []
        self._thread: threading.Thread | None = None
        # the selector and the socket pair that wakes it (add()) exist while the thread runs
        self._selector: selectors.BaseSelector | None = None
        self._wake_r = self._wake_w = None

    def add(self, name: str, lines, on_line: Callable[[bytes], None], on_end: Callable[[], None]) -> None:
        """Read `lines` from now on; `on_line(raw)` per line, `on_end()` once after the last."""
        found = selectable(lines)
        if found is None:
            threading.Thread(target=_read_blocking, args=(lines, on_line, on_end),
                             name=f"berth-session-{name}", daemon=True).start()
            return
        with self._lock:
            self._pending.append(_Source(*found, on_line, on_end))
            if self._thread is None:
                self._selector = selectors.DefaultSelector()
                self._wake_r, self._wake_w = socket.socketpair()
                self._wake_r.setblocking(False)
                self._wake_w.setblocking(False)
                self._selector.register(self._wake_r, selectors.EVENT_READ, None)
                self._thread = threading.Thread(target=self._run, name="berth-sessions", daemon=True)
                self._thread.start()
            else:
                self._wake()

    def watched(self) -> int:
        """How many outputs the selector waits on (tests)."""
        with self._lock:
            selector = self._selector
            return len(self._pending) + (len(selector.get_map()) - 1 if selector is not None else 0)

    def _wake(self) -> None:
        """(the lock is held)"""
        try:
            self._wake_w.send(b"x")
        except (BlockingIOError, OSError):
            pass  # already woken (the buffer is full of wake-ups)

    def _run(self) -> None:
        while True:
            with self._lock:
                pending, self._pending = self._pending, []
            for source in pending:
                try:
                    self._selector.register(source.fileno, selectors.EVENT_READ, source)
                except (OSError, ValueError):  # closed before it got here
                    source.release()
                    _end(source)
            ready = self._selector.select(IDLE_S)
            if not ready:
                with self._lock:  # nothing to read for a while: end (the next add() starts it again)
                    if not self._pending and len(self._selector.get_map()) == 1:
                        self._selector.close()
                        self._wake_r.close()
                        self._wake_w.close()
                        self._selector = self._wake_r = self._wake_w = None
                        self._thread = None
                        return
            for key, _mask in ready:
                if key.data is None:
                    try:
                        while self._wake_r.recv(4096):
                            pass
                    except (BlockingIOError, OSError):
                        pass
                    continue
                self._service(key.data)
            # nothing of a finished source may stay referenced from this frame while select() waits
            # (up to IDLE_S): it holds its session, hence its transport and that transport's workspace
            pending = ready = source = key = None

    def _service(self, source: _Source) -> None:
        try:
            data = source.read()
        except (OSError, EOFError, ValueError):
            data = b""
        if data is None:
            return
        if not data:
            self._selector.unregister(source.fileno)
            source.release()
            if source.buffer:
                _deliver(source, source.buffer)
            _end(source)
            return
        source.buffer += data
        if b"\n" not in data:
            return
        *lines, source.buffer = source.buffer.split(b"\n")
        for raw in lines:
            _deliver(source, raw + b"\n")


def _deliver(source: _Source, raw: bytes) -> None:
    try:
        source.on_line(raw)
    except Exception:  # noqa: BLE001 - one session's bug must not stop every session's reader
        log.exception("a session's line handler failed")


def _end(source: _Source) -> None:
    try:
        source.on_end()
    except Exception:  # noqa: BLE001
        log.exception("a session's end handler failed")


def _read_blocking(lines, on_line, on_end) -> None:
    try:
        for raw in lines:
            on_line(raw)
    except (OSError, EOFError, ValueError):
        pass
    on_end()


READER = SessionReader()
