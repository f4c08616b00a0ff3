"""A long-running agent command (the samples) as one request of the connection's agent session
(agent_session.py), with AgentStream's interface (agent_stream.py): iterated by a thread of the
caller's, or pushed from the process's one session reader (`follow`). No exec channel, login shell
or interpreter of its own: at a console's start that was the second of each per server (issue 23).
`close()` asks the agent to cancel the request and ends the stream here at once, whether or not the
server still answers."""
from __future__ import annotations

import queue
import threading

from .errors import RemoteError, agent_error

END = object()  # the session ended before the request did


class SessionStream:
    def __init__(self, server: str, command: str, cancel, lost):
        self.server, self.command = server, command
        self._cancel = cancel  # sends the agent the request's cancel (once)
        self._lost = lost  # the RemoteError for a session that ended first (how the link or agent ended)
        # the hand-over from the queue to `follow`'s callbacks; re-entrant: a callback may close the
        # stream (SampleStream.stop or set_interval on the reader's thread), and that ends it there
        self._lock = threading.RLock()
        self._queue: queue.Queue = queue.Queue()  # events until `follow` (and for iterating)
        self._on_event = self._on_end = None
        self._final = None  # the result or error event, or END
        self._timeout: float | None = None
        self.result: dict | None = None
        self.closed = False

    # -- from the session reader (AgentSession._on_line / _on_end) ------------------------------------
    def put(self, event) -> None:
        with self._lock:
            if self._on_event is None:
                self._queue.put(event)
                return
            self._dispatch(event)

    def _dispatch(self, event) -> None:
        """Under the lock: the event to `follow`'s callbacks (quick by their contract)."""
        if self._final is not None:
            return
        if event is END or event.get("event") in ("result", "error"):
            self._final = event
            self._on_end()
        else:
            self._on_event({k: v for k, v in event.items() if k != "id"})

    # -- the AgentStream interface ----------------------------------------------------------------------
    def __iter__(self):
        while self._final is None:
            try:
                event = self._queue.get(timeout=self._timeout)
            except queue.Empty:
                if self.closed:
                    return
                raise RemoteError(f"{self.server}: {self.command} sent nothing for {self._timeout:g} s",
                                  "connection_lost") from None
            if event is END or event.get("event") in ("result", "error"):
                self._final = event
                break
            yield {k: v for k, v in event.items() if k != "id"}
        self.outcome()

    def follow(self, on_event, on_end) -> None:
        """`on_event(event)` for each event, then `on_end()` once (on the reader's thread, or on the
        thread that calls close())."""
        with self._lock:
            self._on_event, self._on_end = on_event, on_end
            while True:
                try:
                    event = self._queue.get_nowait()
                except queue.Empty:
                    break
                self._dispatch(event)

    def outcome(self) -> None:
        """After the end: returns if it ended well or was closed; raises RemoteError otherwise."""
        final = self._final
        if self.closed or final is None:
            return
        if final is END:
            raise self._lost()
        if final.get("event") == "error":
            raise agent_error(final)
        self.result = final.get("result")

    def set_read_timeout(self, seconds: float) -> None:
        """For iterating: a silent server raises connection_lost after `seconds` (a followed stream
        has its owner's stall check)."""
        self._timeout = seconds

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        try:
            self._cancel()
        finally:
            self.put(END)  # the end, now: a server that no longer answers never sends the cancel's error

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
