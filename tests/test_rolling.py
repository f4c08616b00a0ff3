"""run_rolling (app/deploy/rolling.py), the order and the stops of a group change: at most
`parallel` servers at once, none started once the failure budget is spent, the canary alone
first, the ones in flight let finish, a stop reaching only the actions in flight. The actions here
are plain functions standing for one server's work; the rolling itself is the real one."""
import threading
import time

import pytest

from app.deploy.rolling import (BUDGET, CANARY, CANCELLED, FAILED, OK, SKIPPED, STOPPED, UNCHANGED, Outcome,
                                describe, run_rolling)

NAMES = [f"s{i}" for i in range(1, 9)]


class Fleet:
    """Servers that succeed unless named in `failing`; records what ran and how many at once."""

    def __init__(self, failing=(), seconds=0.05, raising=False, took=None):
        self.failing, self.seconds, self.raising = set(failing), seconds, raising
        self.took = dict(took or {})  # seconds of one server, where it differs
        self.started: list[str] = []
        self.now = self.most = 0
        self.lock = threading.Lock()

    def __call__(self, name, should_stop):
        with self.lock:
            self.started.append(name)
            self.now += 1
            self.most = max(self.most, self.now)
        try:
            time.sleep(self.took.get(name, self.seconds))
            if name in self.failing:
                if self.raising:
                    raise OSError(f"{name} is down\nsecond line")
                return Outcome(name, FAILED, detail="health check failed")
            return Outcome(name, OK, "1.1.0", "1.0.0")
        finally:
            with self.lock:
                self.now -= 1


def states(summary):
    return {o.server: o.state for o in summary.outcomes}


def test_every_server_runs_with_at_most_parallel_at_once_and_the_summary_keeps_their_order():
    fleet = Fleet(seconds=0.1)
    summary = run_rolling(NAMES, fleet, parallel=3)
    assert summary.ok and not summary.stopped and not summary.interrupted
    assert [o.server for o in summary.outcomes] == NAMES and set(states(summary).values()) == {OK}
    assert fleet.most == 3 and sorted(fleet.started) == sorted(NAMES)


def test_parallel_one_is_one_server_after_another_in_order():
    fleet = Fleet(seconds=0.01)
    run_rolling(NAMES, fleet, parallel=1)
    assert fleet.started == NAMES and fleet.most == 1


def test_one_failure_with_no_budget_starts_no_more_servers_and_lets_the_ones_in_flight_finish():
    # s1 fails well before s2 ends (a loaded machine once let s2 end first, and s3 start in its slot)
    fleet = Fleet(failing={"s1"}, seconds=1.0, took={"s1": 0.05})
    summary = run_rolling(NAMES, fleet, parallel=2, max_failures=0)
    assert summary.stopped == BUDGET and not summary.ok and not summary.interrupted
    assert fleet.started == ["s1", "s2"]  # s2 was in flight when s1 failed: it finished
    assert states(summary) == {"s1": FAILED, "s2": OK, **{n: SKIPPED for n in NAMES[2:]}}
    assert summary.outcomes[2].detail == "not started"


def test_the_budget_tolerates_max_failures_and_stops_at_the_next():
    fleet = Fleet(failing={"s2", "s4", "s6"}, seconds=0.01)
    summary = run_rolling(NAMES, fleet, parallel=1, max_failures=1)
    assert fleet.started == ["s1", "s2", "s3", "s4"] and summary.stopped == BUDGET
    assert summary.count(FAILED) == 2 and summary.count(SKIPPED) == 4


def test_a_budget_never_spent_tries_every_server():
    summary = run_rolling(NAMES, Fleet(failing={"s3"}, seconds=0.01), parallel=4, max_failures=1)
    assert not summary.stopped and summary.count(FAILED) == 1 and summary.count(OK) == 7 and not summary.ok


def test_the_canary_runs_alone_first_and_its_failure_starts_nothing_else():
    fleet = Fleet(failing={"s1"})
    summary = run_rolling(NAMES, fleet, parallel=8, max_failures=5, canary_first=True)
    assert fleet.started == ["s1"] and summary.stopped == CANARY
    assert states(summary) == {"s1": FAILED, **{n: SKIPPED for n in NAMES[1:]}}


def test_a_canary_that_succeeds_lets_the_rest_roll_after_it():
    fleet = Fleet(seconds=0.05)
    summary = run_rolling(NAMES, fleet, parallel=4, canary_first=True)
    assert summary.ok and fleet.started[0] == "s1" and fleet.most == 4


def test_an_exception_is_that_servers_failure_in_one_line():
    summary = run_rolling(["a", "b"], Fleet(failing={"a"}, raising=True), parallel=2, max_failures=1)
    assert states(summary) == {"a": FAILED, "b": OK}
    assert summary.outcomes[0].detail == "a is down second line"


def test_should_stop_starts_no_new_server_and_reaches_the_ones_in_flight():
    stop = threading.Event()
    seen_stop = []

    def action(name, should_stop):
        if name == "s1":
            stop.set()
            deadline = time.monotonic() + 5
            while not should_stop() and time.monotonic() < deadline:
                time.sleep(0.01)
            seen_stop.append(should_stop())
            return Outcome(name, CANCELLED, detail="cancelled before the server changed")
        return Outcome(name, OK, "1")

    summary = run_rolling(NAMES, action, parallel=1, should_stop=stop.is_set)
    assert seen_stop == [True] and summary.interrupted and summary.stopped == STOPPED
    assert states(summary) == {"s1": CANCELLED, **{n: SKIPPED for n in NAMES[1:]}}


def test_a_spent_budget_does_not_cancel_the_servers_in_flight():
    seen = {}

    def action(name, should_stop):
        if name == "a":
            return Outcome(name, FAILED, detail="x")
        time.sleep(0.3)  # "a" has failed by now
        seen[name] = should_stop()
        return Outcome(name, OK, "1")

    summary = run_rolling(["a", "b", "c"], action, parallel=2)
    assert seen == {"b": False} and states(summary) == {"a": FAILED, "b": OK, "c": SKIPPED}


def test_events_name_each_server_as_it_starts_and_ends():
    events = []
    run_rolling(["a", "b"], Fleet(failing={"b"}, seconds=0.01), parallel=1, max_failures=3,
                on_event=lambda s, line: events.append((s, line)), kind="deploy")
    assert events == [("a", "started"), ("a", "deployed 1.1.0 (was 1.0.0)"), ("b", "started"),
                      ("b", "failed: health check failed")]


def test_describe_says_what_each_server_runs_now():
    assert describe(Outcome("a", OK, "1.0.0", "0.9.0"), "rollback") == "rolled back to 1.0.0 (was 0.9.0)"
    assert describe(Outcome("a", UNCHANGED, "1.0.0"), "deploy") == "unchanged (1.0.0 already current)"
    assert describe(Outcome("a", SKIPPED, detail="not started")) == "skipped: not started"


@pytest.mark.parametrize("parallel, budget", [(0, 0), (1, -1)])
def test_a_parallel_under_one_or_a_negative_budget_is_refused(parallel, budget):
    with pytest.raises(ValueError, match="at least"):
        run_rolling(["a"], Fleet(), parallel=parallel, max_failures=budget)
