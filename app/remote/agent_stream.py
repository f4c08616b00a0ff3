"""A long-running agent command on an exec channel of its own (`sample`), read either by iterating
it (a thread of the caller's) or pushed from the process's one session reader (`follow`), so a
fleet's live streams need no thread each (issue 23)."""
from __future__ import annotations

import json

from .agent_session import no_answer as _no_answer
from .errors import RemoteError, agent_error
from .session_reader import READER


def events(lines):
    """The agent's JSON lines as dicts (anything else on stdout is skipped)."""
    for raw in lines:
        try:
            yield json.loads(raw)
        except ValueError:
            continue


class AgentStream:
    """The events of one running agent command, in order. Iterating ends at its last line; an error
    line raises RemoteError; a cut connection raises RemoteError("connection_lost")."""

    def __init__(self, server: str, command: str, lines, wait, abort):
        self.server, self.command = server, command
        self._lines, self._wait, self._abort = lines, wait, abort
        self.result: dict | None = None
        self.closed = False

    def __iter__(self):
        final = None
        try:
            for event in events(self._lines):
                if event.get("event") in ("result", "error"):
                    final = event
                    break
                yield event
        except (OSError, EOFError, ValueError) as e:
            if self.closed:
                return
            raise RemoteError(f"{self.server}: {self.command} was cut off: {e}", "connection_lost") from None
        self._conclude(final)

    def _conclude(self, final: dict | None) -> None:
        """After the last line: reap the command; raise if it broke or failed (not once closed)."""
        if self.closed:
            return
        if final is None:
            code, stderr = self._finish()
            raise RemoteError(f"{self.server}: {self.command} stopped: " + _no_answer(code, stderr), "connection_lost")
        self._finish()
        if final["event"] == "error":
            raise agent_error(final)
        self.result = final.get("result")

    def follow(self, on_event, on_end) -> None:
        """Instead of iterating: the shared session reader calls `on_event(event)` for each event
        and `on_end()` once after the last line (both on its thread: quick, never blocking); then
        `outcome()` (on a thread that may wait) says how it ended."""
        self._final: dict | None = None

        def on_line(raw: bytes) -> None:
            if self._final is not None:
                return
            try:
                event = json.loads(raw)
            except ValueError:
                return
            if not isinstance(event, dict):
                return
            if event.get("event") in ("result", "error"):
                self._final = event
            else:
                on_event(event)

        READER.add(f"{self.server}-{self.command}", self._lines, on_line, on_end)

    def outcome(self) -> None:
        """After `follow`'s on_end: returns if it ended well or was closed; raises RemoteError otherwise."""
        self._conclude(self._final)

    def _finish(self) -> tuple[int, str]:
        try:
            return self._wait()
        except (OSError, EOFError):
            return -1, ""

    def set_read_timeout(self, seconds: float) -> None:
        """A silent server (suspended laptop, dead TCP) must not block the reader for ever: a read
        waiting longer raises, and iterating reports connection_lost. Over SSH only: a local
        agent is our own child process."""
        channel = getattr(self._lines, "channel", None)  # paramiko's ChannelFile
        if channel is not None:
            channel.settimeout(seconds)

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            try:
                self._abort()
            except (OSError, EOFError):
                pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
