"""One change rolled over many servers: at most `parallel` at once, a canary first if asked, and no
new server started once the failure budget is spent or the operator stopped it (Ctrl-C, the
console's Cancel). The servers in flight are let finish (or cancelled by their own action), so
each one ends in a state the summary can name. Qt-free and transport-free: the caller's
`action(name, should_stop)` does the work for one server and returns its Outcome."""
from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

from app.errors import one_line

OK, UNCHANGED, FAILED, CANCELLED, SKIPPED = "ok", "unchanged", "failed", "cancelled", "skipped"
SUCCESS = (OK, UNCHANGED)
# why no more servers were started
BUDGET, CANARY, STOPPED = "budget", "canary", "stopped"


@dataclass
class Outcome:
    """What one server runs now, as far as this change knows."""

    server: str
    state: str  # OK | UNCHANGED | FAILED | CANCELLED | SKIPPED
    version: str = ""  # what it runs now, when the change succeeded
    previous: str = ""
    detail: str = ""  # why it failed, or what was done


@dataclass
class RollingSummary:
    outcomes: list[Outcome] = field(default_factory=list)
    stopped: str = ""  # "" (every server was tried) | BUDGET | CANARY | STOPPED
    interrupted: bool = False  # the operator stopped it (should_stop or Ctrl-C)

    def count(self, *states: str) -> int:
        return sum(o.state in states for o in self.outcomes)

    @property
    def ok(self) -> bool:
        return self.count(*SUCCESS) == len(self.outcomes)

    def to_dict(self) -> dict:
        return {"stopped": self.stopped, "interrupted": self.interrupted,
                "servers": [asdict(o) for o in self.outcomes]}


class Abandoned(KeyboardInterrupt):
    """A second Ctrl-C while servers were still in flight: the outcomes known then, and the servers
    left running (each finishes or undoes its change by itself; their own events say which)."""

    def __init__(self, summary: RollingSummary, in_flight: list[str]):
        super().__init__()
        self.summary, self.in_flight = summary, in_flight


Action = Callable[[str, Callable[[], bool]], Outcome]
OnEvent = Callable[[str, str], None]  # (server, one line)


def run_rolling(names: list[str], action: Action, parallel: int = 10, max_failures: int = 0,
                canary_first: bool = False, should_stop: Callable[[], bool] = lambda: False,
                on_event: OnEvent | None = None, kind: str = "") -> RollingSummary:
    """Run `action` for each server of `names` (in that order), each on its own thread. A failure
    is an Outcome with state FAILED or an exception (its one line becomes the detail). New servers
    stop starting when more than `max_failures` failed, when the canary (the first server, run
    alone) did not succeed, or when `should_stop()` turns true or Ctrl-C arrives; only the last two
    reach the actions in flight, through the `should_stop` they are given (a spent budget lets them
    finish). A second Ctrl-C is not caught: it becomes Abandoned, with what is known. `on_event(server, line)` hears each server start and
    end (`kind`, e.g. "deploy", words the end: describe())."""
    if parallel < 1 or max_failures < 0:
        raise ValueError("parallel must be at least 1 and max_failures at least 0")
    run = _Rolling(action, should_stop, on_event or (lambda server, line: None), kind)
    pending = list(names)
    try:
        if canary_first and pending:
            run.start(pending.pop(0))
            if run.wait_one().state not in SUCCESS:
                run.stop_with(CANARY)
        while pending or run.running:
            while pending and len(run.running) < parallel and not run.stopping():
                run.start(pending.pop(0))
            if not run.running:
                break
            if run.wait_one().state in (FAILED, CANCELLED) and run.failures() > max_failures:
                run.stop_with(BUDGET)
    except KeyboardInterrupt:
        run.interrupt()
        try:
            while run.running:
                run.wait_one()
        except KeyboardInterrupt:  # the second: not caught, but what is known goes up with it
            raise Abandoned(run.summary, [n for n in names if n in run.running]) from None
    seen = {o.server for o in run.summary.outcomes}
    for name in names:
        if name not in seen:
            run.finish(Outcome(name, SKIPPED, detail="not started"))
    order = {name: i for i, name in enumerate(names)}
    run.summary.outcomes.sort(key=lambda o: order[o.server])
    return run.summary


class _Rolling:
    """The state of one run, touched by the caller's thread only (workers hand results over a queue)."""

    def __init__(self, action: Action, should_stop: Callable[[], bool], on_event: OnEvent, kind: str):
        self.action, self.external_stop, self.on_event, self.kind = action, should_stop, on_event, kind
        self.summary = RollingSummary()
        self.running: set[str] = set()
        self.done: queue.Queue = queue.Queue()
        self.halt = threading.Event()  # set when nothing new may start
        self.cancel = threading.Event()  # set when the operator stopped it: the actions see this one

    def stopping(self) -> bool:
        if not self.cancel.is_set() and self.external_stop():
            self.interrupt()
        return self.halt.is_set()

    def stop_with(self, why: str) -> None:
        if not self.summary.stopped:
            self.summary.stopped = why
        self.halt.set()

    def interrupt(self) -> None:
        self.summary.interrupted = True
        self.cancel.set()
        self.stop_with(STOPPED)

    def failures(self) -> int:
        return self.summary.count(FAILED, CANCELLED)

    def start(self, name: str) -> None:
        self.on_event(name, "started")
        worker = threading.Thread(target=self._work, args=(name,), name=f"berth-rolling-{name}", daemon=True)
        self.running.add(name)
        try:
            worker.start()
        except BaseException:  # Ctrl-C inside start(): the server is waited for only if it runs
            if worker.ident is None:
                self.running.discard(name)
            raise

    def _work(self, name: str) -> None:
        try:
            outcome = self.action(name, self.cancel.is_set)
        except KeyboardInterrupt:
            outcome = Outcome(name, CANCELLED, detail="interrupted")
        except BaseException as e:  # noqa: BLE001 any failure of one server is that server's outcome
            outcome = Outcome(name, FAILED, detail=one_line(e))
        self.done.put(outcome)

    def wait_one(self) -> Outcome:
        """The next server to finish; polls, so Ctrl-C and should_stop are noticed while waiting."""
        while True:
            try:
                outcome = self.done.get(timeout=0.1)
                break
            except queue.Empty:
                self.stopping()
        self.running.discard(outcome.server)
        self.finish(outcome)
        return outcome

    def finish(self, outcome: Outcome) -> None:
        self.summary.outcomes.append(outcome)
        self.on_event(outcome.server, describe(outcome, self.kind))


VERBS = {"deploy": "deployed", "rollback": "rolled back to", "start": "started", "stop": "stopped",
         "promote": "promoted"}


def describe(outcome: Outcome, action: str = "") -> str:
    """What a server runs now, in words: 'deployed 1.2.0', 'failed: why', 'skipped: not started'."""
    if outcome.state == OK:
        text = f"{VERBS.get(action, 'done:')} {outcome.version}".strip()
        return text + (f" (was {outcome.previous})" if outcome.previous else "")
    if outcome.state == UNCHANGED:
        return f"unchanged ({outcome.version} already current)" if outcome.version else "unchanged"
    return f"{outcome.state}: {outcome.detail}" if outcome.detail else outcome.state
