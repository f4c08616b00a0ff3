"""The desktop's end of `agent.py session` (app/agent/session.py): one agent process per connection,
shared by every thread using the Transport. A request is one JSON line; the process's one session
reader (app/remote/session_reader.py) hands each event to the queue of the request it names, so
answers never mix."""
from __future__ import annotations

import itertools
import json
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from .errors import RemoteError, agent_error
from .session_reader import READER
from .session_stream import END, SessionStream

START_TIMEOUT = 30.0  # the login shell, the interpreter and the bootstrap's hashing, once per connection
_DEAD = END  # the session ended: what every waiter (a call's queue, a stream) is given


@dataclass
class Interactive:
    """A running command with its stdin kept open (the transports' `_exec_interactive`)."""
    lines: object  # iterable of stdout lines (bytes)
    write: Callable[[bytes], None]
    close_input: Callable[[], None]
    wait: Callable[[], tuple[int, str]]  # (exit code, stderr) once it ended; -1: no exit status
    abort: Callable[[], None]


class SessionDied(Exception):
    """The session ended; `sent` says whether this request had reached it (it may have run)."""

    def __init__(self, sent: bool):
        super().__init__("the agent session ended")
        self.sent = sent


class AgentSession:
    def __init__(self, server: str, io: Interactive, start_timeout: float = START_TIMEOUT):
        self.server = server
        self._io = io
        self._lock = threading.Lock()  # the id counter and the table (the reader needs it for each event)
        self._send = threading.Lock()  # whole lines on the channel (a big request may take a while)
        self._waiting: dict[int, queue.Queue] = {}
        self._ids = itertools.count(1)
        self.dead = False
        self.pid: int | None = None
        self.exit: tuple[int, str] = (-1, "")  # (exit code, stderr) once it ended
        self._first: queue.Queue = queue.Queue()
        self._started = False
        self.heard = time.monotonic()  # when it last wrote a line (Transport's check before a stream)
        READER.add(server, io.lines, self._on_line, self._on_end)  # one thread reads every session
        try:
            first = self._first.get(timeout=start_timeout)
        except queue.Empty:
            self.abort()
            raise RemoteError(f"{server}: the Berth agent did not start within {start_timeout:g} s; check the "
                              f"server's load and its login shell (~/.bashrc)", "connection_lost") from None
        if first is _DEAD:
            code, stderr = self.exit
            raise RemoteError(no_answer(code, stderr), "agent_failed", {"stderr": stderr[-2000:]})
        if first.get("event") != "session":  # the bootstrap's refusal (agent_modified) or a usage error
            self.abort()
            raise agent_error(first)
        self.pid = first.get("pid")

    def _on_line(self, raw: bytes) -> None:
        """One line of the agent's stdout (on the shared reader's thread: quick, never blocks)."""
        try:
            event = json.loads(raw)
        except ValueError:
            return
        if not isinstance(event, dict):
            return
        self.heard = time.monotonic()
        if not self._started:
            self._started = True
            self._first.put(event)
            return
        with self._lock:
            rid = event.get("id")
            q = self._waiting.get(rid)
            if isinstance(q, SessionStream) and event.get("event") in ("result", "error"):
                del self._waiting[rid]  # a stream's end (a call's waiter is dropped by the call)
        if q is not None:
            q.put(event)

    def _on_end(self) -> None:
        """Its stdout ended: every waiting request learns it now; reaping the process (which may
        take a moment over SSH: the exit status follows the end of output) has a thread of its
        own for that moment, so the shared reader never waits on one session."""
        with self._lock:
            self.dead = True
            waiting = list(self._waiting.values())
        for q in waiting:
            q.put(_DEAD)
        threading.Thread(target=self._reap, name=f"berth-session-end-{self.server}", daemon=True).start()

    def _reap(self) -> None:
        self.exit = self._finish()
        if not self._started:
            self._first.put(_DEAD)

    def call(self, command: str, request: bytes, on_event, timeout: float = 0) -> dict:
        """Send one request; events go to `on_event`; returns its result or raises RemoteError (the
        agent's error) or SessionDied. `timeout`: the longest the request may stay silent."""
        q: queue.Queue = queue.Queue()
        with self._lock:
            if self.dead:
                raise SessionDied(sent=False)
            rid = next(self._ids)
            self._waiting[rid] = q
        line = b'{"id": %d, "command": %s, "request": %s}\n' % (rid, json.dumps(command).encode(), request)
        try:
            with self._send:
                self._io.write(line)
        except (OSError, EOFError):
            with self._lock:
                self._waiting.pop(rid, None)
            raise SessionDied(sent=True) from None  # part of it may have gone out
        try:
            return self._answer(rid, q, command, on_event, timeout)
        except BaseException:  # Ctrl-C, a timeout, a failing on_event: the server stops it too
            if not self.dead and rid in self._waiting:
                self._send_cancel(rid)
            raise
        finally:
            with self._lock:
                self._waiting.pop(rid, None)

    def stream(self, command: str, request: bytes, label: str, lost) -> SessionStream:
        """Start a long-running command (`sample_stream`) as a request of this session; its events
        come as they are written, and closing the stream cancels the request on the server. `label`
        names it in messages (`sample`); `lost()` is the error when the session ends under it."""
        with self._lock:
            if self.dead:
                raise SessionDied(sent=False)
            rid = next(self._ids)
            stream = self._waiting[rid] = SessionStream(self.server, label, lambda: self._end_stream(rid), lost)
        line = b'{"id": %d, "command": %s, "request": %s}\n' % (rid, json.dumps(command).encode(), request)
        try:
            with self._send:
                self._io.write(line)
        except (OSError, EOFError, ValueError):  # ValueError: a pipe closed under us (`local`)
            with self._lock:
                self._waiting.pop(rid, None)
            raise SessionDied(sent=True) from None
        return stream

    def _end_stream(self, rid: int) -> None:
        with self._lock:
            running = self._waiting.pop(rid, None) is not None and not self.dead
        if running:
            self._send_cancel(rid)

    def _answer(self, rid, q, command, on_event, timeout) -> dict:
        while True:
            try:
                event = q.get(timeout=timeout or None)
            except queue.Empty:
                raise RemoteError(f"{self.server}: {command} sent nothing for {timeout:g} s (the server's command "
                                  f"timeout); Berth stopped waiting and asked the agent to cancel it. Check with "
                                  f"`berth status`", "connection_lost") from None
            if event is _DEAD:
                raise SessionDied(sent=True)
            kind = event.get("event")
            if kind == "result":
                return event.get("result")
            if kind == "error":
                raise agent_error(event)
            if on_event is not None:
                on_event({k: v for k, v in event.items() if k != "id"})

    def _send_cancel(self, rid: int) -> None:
        try:
            with self._send:
                self._io.write(b'{"id": %d, "cancel": true}\n' % rid)
        except (OSError, EOFError, ValueError):
            pass

    def _finish(self) -> tuple[int, str]:
        try:
            return self._io.wait()
        except (OSError, EOFError):
            return -1, ""

    def close(self) -> None:
        """End the session: its stdin closes, so the agent cancels what still runs (journalled as
        cancelled, as a cut channel was) and exits; `abort` is for the connection's own close."""
        with self._lock:
            self.dead = True
        try:
            self._io.close_input()
        except (OSError, EOFError, ValueError):
            pass

    def abort(self) -> None:
        self.close()
        try:
            self._io.abort()
        except (OSError, EOFError):
            pass


def no_answer(code: int, stderr: str) -> str:
    last = (stderr.strip().splitlines() or [""])[-1]
    if code == 127:
        return "python3 was not found on the server; install Python 3.8 or newer there"
    return f"the Berth agent gave no answer (exit {code}): {last or 'no output'}"


def ended_during(server: str, command: str, connected: bool, why: str = "") -> RemoteError:
    """The agent (one-shot or session) ended before answering `command` (`why` the link ended, if known)."""
    if not connected:
        return RemoteError(f"{server}: lost the connection during {command}{f' ({why})' if why else ''}. "
                           f"The server finishes or undoes "
                           f"the change by itself; check with `berth status`", "connection_lost")
    return RemoteError(f"{server}: the Berth agent ended without an answer during {command} (killed?). "
                       f"The server's journal has how far it got; check with `berth status`", "agent_killed")
