"""app/monitor/once.py, live.py and sample_json.py without the CLI: one sample over a whole window,
the model check, the live view's bookkeeping and the JSON shape (plain pytest, no Qt)."""
import time

import pytest

from app import errors
from app.errors import BerthError
from app.monitor.live import LiveBoard
from app.monitor.once import ModelNotRunning, check_model, one_sample
from app.monitor.sample_json import MODEL_JSON_KEYS, monitor_json
from app.workspace import Workspace


def sample(server, models=(), ts=1.0):
    return {"server": server, "ts": ts, "interval_s": 1.0,
            "host": {"cpu_percent": 5.0, "memory": {"used": 1, "available": 2, "total": 3, "free": 9}},
            "models": {m: {"version": "1.0.0", "cpu_percent": 1.0, "histogram": [1, 2]} for m in models}}


def test_one_sample_of_local_is_measured_over_the_whole_window():
    s = one_sample(Workspace(), "local", 0.25)
    assert s["server"] == "local"
    assert s["interval_s"] == pytest.approx(0.25, abs=0.15)
    assert 0 <= s["host"]["cpu_percent"] <= 100 and s["models"] == {}
    t0 = time.monotonic()
    s = one_sample(Workspace(), "local", 1.0)
    assert time.monotonic() - t0 >= 1.0 and s["interval_s"] == pytest.approx(1.0, abs=0.15)


class SilentAgent:
    """A server whose `sample` command ends without a sample."""

    def connect(self, name, held=False):
        return self

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def __init__(self):
        self.calls = []

    def agent(self, command, payload, on_event):
        self.calls.append((command, payload))
        on_event({"event": "progress"})
        return {"samples": 0}


def test_a_server_that_sends_no_sample_is_a_clear_failure():
    server = SilentAgent()
    with pytest.raises(BerthError, match="box: the agent sent no sample"):
        one_sample(server, "box", 0.25)
    with pytest.raises(BerthError, match="box: the agent sent no sample"):
        one_sample(server, "box", 6.0)
    # one call, one sample: in the agent session up to 5 s, the streamed `sample` (own process) beyond
    assert server.calls == [("sample_once", {"window": 0.25}),
                            ("sample", {"interval": 6.0, "count": 1, "window": 6.0})]


def test_a_model_asked_for_must_run_on_one_of_the_servers():
    check_model(None, [sample("a")])
    check_model("iris", [])
    check_model("iris", [sample("a"), sample("b", ["iris"])])
    with pytest.raises(ModelNotRunning) as e:
        check_model("iris", [sample("a"), sample("b", ["wine"])])
    assert str(e.value) == "model 'iris' is not running on a, b; see `berth status`"
    assert e.value.code == errors.NOT_RUNNING


def test_the_json_keeps_the_documented_keys_only():
    j = monitor_json(sample("a", ["iris", "wine"]), model="iris")
    assert j["server"] == "a" and j["cpu_percent"] == 5.0
    assert j["memory"] == {"used": 1, "available": 2, "total": 3}
    assert list(j["models"]) == ["iris"] and set(j["models"]["iris"]) == set(MODEL_JSON_KEYS)
    assert list(monitor_json(sample("a", ["wine", "iris"]))["models"]) == ["iris", "wine"]


def test_the_live_board_waits_for_every_server_before_its_first_table():
    board = LiveBoard(["a", "b"])
    board.add(sample("b"))
    assert not board.ready
    board.add(sample("a"))
    assert board.ready and [s["server"] for s in board.table()] == ["a", "b"]  # the servers' order

    board = LiveBoard(["a", "b"])
    board.add(sample("a"))
    board.reconnecting("b")  # b is down: the table shows a alone rather than waiting
    assert board.ready and [s["server"] for s in board.table()] == ["a"]


def test_the_live_board_checks_the_model_once_after_the_first_round():
    board = LiveBoard(["a", "b"], model="iris")
    board.add(sample("a"))  # b not heard from yet: iris may run there
    with pytest.raises(ModelNotRunning):
        board.add(sample("b"))
    board = LiveBoard(["a"], model="iris")
    board.add(sample("a", ["iris"]))
    board.add(sample("a", ts=2.0))  # stopped later: shown as gone, not an error
    assert board.table()[0]["ts"] == 2.0


def test_the_monitor_table_says_over_what_the_latency_was_taken(capsys):
    from app.cli.monitor_report import print_monitor

    lat = {"p50": 1.0, "p95": 2.0, "p99": 3.0}
    sample = {"server": "box", "ts": 0, "interval_s": 2.0, "host": {},
              "models": {"a": {"version": "1", "latency_ms": dict(lat, window="interval")},
                         "b": {"version": "1", "latency_ms": dict(lat, window="since_start")}}}
    print_monitor([sample])
    rows = {line.split()[0]: line for line in capsys.readouterr().out.splitlines() if line[:2] in ("a ", "b ")}
    assert rows["a"].rstrip().endswith("last 2 s") and rows["b"].rstrip().endswith("since start")
