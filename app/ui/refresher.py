"""Every server's status for the fleet tree, asked so that a fleet neither hangs nor storms:

- a status call not answered within `deadline_s` of starting marks the server "not answering since
  HH:MM:SS" (`not_answering`); it is asked again after 5, 10, 20 ... 120 s (its stuck connection cut
  first, `TaskRunner.abandon`), and at once on F5 (`refresh_all(retry=True)`);
- one status call per server at a time (a slow host never piles up requests);
- the calls of one round are spread, STEP_MS apart and over `span_ms` at most, instead of N logins
  or N agent processes in the same second.
"""
from __future__ import annotations

import random
import time

from PySide6.QtCore import QObject, QTimer, Signal

from app.ui.operations import ServerOp
from app.ui.tasks import Task

DEADLINE_S = 20.0  # a status call is quick; one this late is stuck (issue 23: an SFTP race hung for ever)
RETRY_S = (5.0, 10.0, 20.0, 40.0, 80.0, 120.0)
MAX_STUCK = 3  # calls to one server given up on but still running (each holds a pool thread)
STEP_MS = 80  # between two servers' calls of one round
START_SPAN_MS = 10000  # the first round spread over this at most (100 servers: 8 s)
ROUND_SPAN_MS = 12000  # the periodic round: well within its 15 s


class Refresher(QObject):
    """Signals (GUI thread):
        read(str server, object rows): its models (Workspace.server_status)
        not_answering(str server, float since): unix time its unanswered call started; 0.0: answering again
    """

    read = Signal(str, object)
    not_answering = Signal(str, float)

    def __init__(self, view, runner, deadline_s: float = DEADLINE_S, retry_s=RETRY_S):
        super().__init__(view)
        self.view, self.runner = view, runner
        self.deadline_s, self.retry_s = deadline_s, tuple(retry_s)
        self.pending: dict[str, Task] = {}  # the call under way per server
        self.stalled: dict[str, float] = {}  # server -> unix time of the call that never answered
        self.retry_at: dict[str, float] = {}  # server -> time.monotonic() of its next try
        self.tries: dict[str, int] = {}
        self.given_up: dict[str, list[Task]] = {}  # calls abandoned but still holding a thread
        self.watchdog = QTimer(self)
        self.watchdog.setInterval(500)
        self.watchdog.timeout.connect(self.check)
        self.watchdog.start()

    def refresh_all(self, servers, retry: bool = False, span_ms: int = ROUND_SPAN_MS) -> None:
        """One round over `servers`, spread in time (a random start, then STEP_MS apart or closer);
        `retry`: the servers not answering are asked again now, whatever their backoff says (F5)."""
        names = list(servers)
        if not names:
            return
        step = min(STEP_MS, span_ms / len(names))
        offset = random.uniform(0, step)
        for i, name in enumerate(names):
            delay = int(offset + i * step) if i else 0
            if delay <= 0:
                self.refresh(name, retry=retry)
            else:
                QTimer.singleShot(delay, self, lambda n=name: self.refresh(n, retry=retry))

    def refresh(self, server: str, force: bool = False, retry: bool = False) -> None:
        """Ask `server` for its status unless a call is under way (`force`: ask even so, after a
        change); a server not answering is asked when its backoff is over, or now with `retry`."""
        if server in self.stalled:
            if retry or (time.monotonic() >= self.retry_at.get(server, 0.0) and self._overdue(server)):
                self._retry(server)
            return
        if server in self.pending and not force:
            return
        self._ask(server)

    def _ask(self, server: str) -> None:
        task = (ServerOp(self.view, server, f"status {server}", lambda ctx: ctx.workspace.server_status(ctx.transport),
                         runner=self.runner)
                .success(lambda rows, s=server: self._answered(s, task, rows))
                .failure(lambda _e, s=server: self._answered(s, task, None)).run())
        self.pending[server] = task

    def _overdue(self, server: str) -> bool:
        """No call under way, or one running past the deadline (a retry still in time is left alone)."""
        task = self.pending.get(server)
        return task is None or task.done or (task.started_at is not None
                                              and time.monotonic() - task.started_at >= self.deadline_s)

    def forget(self, server: str) -> None:
        """A server removed from the list."""
        for table in (self.pending, self.stalled, self.retry_at, self.tries, self.given_up):
            table.pop(server, None)

    def check(self) -> None:
        """The watchdog: a call running longer than the deadline marks its server; a marked server
        whose backoff is over is asked again."""
        now = time.monotonic()
        for server, task in list(self.pending.items()):
            if task.done or task.started_at is None or now - task.started_at < self.deadline_s:
                continue
            if server not in self.stalled:
                self.stalled[server] = since = time.time() - (now - task.started_at)
                self.tries[server] = 0
                self.retry_at[server] = now + self.retry_s[0]
                self.not_answering.emit(server, since)
            elif now >= self.retry_at[server]:
                self._retry(server)

    def _retry(self, server: str) -> None:
        """Cut the stuck connection (the stuck call keeps its pool thread until the close reaches
        it) and ask on a fresh one; the next try only after a longer wait."""
        tries = self.tries[server] = self.tries.get(server, 0) + 1
        self.retry_at[server] = time.monotonic() + self.retry_s[min(tries, len(self.retry_s) - 1)]
        stuck = self.given_up[server] = [t for t in self.given_up.get(server, []) if not t.done]
        if len(stuck) >= MAX_STUCK:
            return  # a host that swallows every call must not take the whole pool: wait for one to end
        if server in self.pending:
            stuck.append(self.pending.pop(server))
        self.runner.abandon(server)
        self._ask(server)

    def _answered(self, server: str, task: Task, rows) -> None:
        if self.pending.get(server) is not task:
            return  # a call given up on (or a second one): the current call speaks for the server
        del self.pending[server]
        if server in self.stalled:  # it answers again (a failure is an answer too: "unreachable" says why)
            del self.stalled[server]
            self.retry_at.pop(server, None)
            self.tries.pop(server, None)
            self.not_answering.emit(server, 0.0)
        if rows is not None:
            self.read.emit(server, rows)
