"""Experiments attacked, and as a new user reads them (issue 16's adversarial pass): a client that
sends `Expect: 100-continue` (curl does for big bodies) through the router, a sticky header name
that is no ASCII token, an MAE verdict from a handful of labels, replay and label figures over
request-log lines of foreign shapes, and `experiment status` showing what the docs promise
(labels, the canary's step, each comparison's interval). Real runners and the real router on the
`local` server; one root for the module."""
from __future__ import annotations

import json
import os
import random
import signal
import socket
import time
from pathlib import Path

import pytest

from agent_kit import call, stop_all
from app.agent import experimentfiles, supervise
from app.agent.labelfigures import label_figures
from app.agent.layout import Root
from app.agent.verdict import verdict
from cli_kit import berth
from experiment_kit import Client, close_all, stop_routers, two_releases


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    home = tmp_path_factory.mktemp("berth-home")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("BERTH_HOME", str(home))
        two_releases(home / "local", tmp_path_factory.mktemp("bundles"))
        yield home
        stop_routers(home / "local")
        stop_all(home / "local")


@pytest.fixture
def root(home, monkeypatch):
    monkeypatch.setenv("BERTH_HOME", str(home))  # over conftest's fresh one per test: the CLI's `local` is this root
    yield home / "local"
    close_all()
    model = Root(str(home / "local")).model("echo")
    if experimentfiles.active(model):
        call(home / "local", "experiment_stop", model="echo")


def port_of(root) -> int:
    result, error, _ = call(root, "status")
    assert error is None, error
    return result["models"][0]["port"]


def start(root, **settings):
    result, error, _ = call(root, "experiment_start", model="echo", b="2.0.0", **settings)
    assert error is None, error
    return result


def read_answer(sock) -> tuple[int, bytes]:
    """One whole answer (status, body) off a raw socket; interim 1xx heads are returned as they come."""
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(65536)
        assert chunk, buf
        buf += chunk
    head, _, rest = buf.partition(b"\r\n\r\n")
    status = int(head.split(b" ")[1])
    length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")[1:]
                   if line.lower().startswith(b"content-length:")), 0)
    while len(rest) < length:
        rest += sock.recv(65536)
    return status, rest[:length]


def test_a_client_that_expects_100_continue_gets_it_and_then_its_own_answer(root):
    """curl sends `Expect: 100-continue` for a body of 1 MB and more and waits for it; the router
    answered nothing (curl waited 1 s) and passed the header on, so the runner's 100 Continue came
    back as the answer: the client hung and the pooled connection gave the next client the
    previous request's answer."""
    start(root, mode="ab", weight=0.5)
    port = port_of(root)
    for i in range(4):
        body = json.dumps({"pad": "x" * 2_000_000, "i": i}).encode()
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            s.sendall(b"POST /predict HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
                      b"Expect: 100-continue\r\nContent-Length: %d\r\n\r\n" % len(body))
            assert read_answer(s)[0] == 100  # before the body: the client is told to send it
            s.sendall(body)
            status, answer = read_answer(s)
        assert status == 200 and json.loads(answer)["echo"]["i"] == i
        client = Client(port)  # every following request gets its own answer
        assert [json.loads(client.predict({"j": j})[3])["echo"] for j in range(6)] == [{"j": j} for j in range(6)]


@pytest.mark.parametrize("header", ["X-K\u00fcnde", "X-\u0100", "X" * 65, "X Id", ""])
def test_a_sticky_header_is_an_ascii_token(root, header):
    """A non-ASCII letter passed str.isalnum: one outside latin-1 crashed the router ("did not
    start"), one inside it never matched what clients send, so nothing stuck."""
    _, error, _ = call(root, "experiment_start", model="echo", b="2.0.0", mode="ab", weight=0.5,
                       sticky_header=header)
    assert error is not None and "is not a header name (ASCII letters" in error["message"], error
    assert experimentfiles.config(Root(str(root)).model("echo")) is None or not experimentfiles.active(
        Root(str(root)).model("echo"))


def test_mae_is_called_only_with_enough_labels():
    """Three labels a side with equal errors gave Welch's interval zero width: "B is worse"."""
    side = {"requests": 50, "errors": 0, "rejected": 0, "latencies_ms": []}
    few = verdict(dict(side, labelled=3, abs_errors=[0.5] * 3), dict(side, labelled=3, abs_errors=[1.0] * 3))
    assert few["state"] == "none" and few["metrics"]["mae"]["ci"] is None and few["metrics"]["mae"]["diff"] == 0.5
    rng = random.Random(7)
    n = 30  # verdict.MIN_MAE_LABELS
    enough = verdict(dict(side, labelled=n, abs_errors=[rng.uniform(0, 1) for _ in range(n)]),
                     dict(side, labelled=n, abs_errors=[rng.uniform(4, 5) for _ in range(n)]))
    assert enough["state"] == "worse" and enough["metrics"]["mae"]["call"] == "worse"


def test_replay_and_label_figures_skip_foreign_log_lines(root):
    """A request-log line of another shape (status a string, id a list, ts a string, version not a
    string) made replay and `experiment status` fail with a TypeError."""
    client = Client(port_of(root))
    for i in range(5):
        assert client.predict({"n": i}, {"X-Request-Id": "fx%d" % i})[0] == 200
    model = Root(str(root)).model("echo")
    log = model.request_log()
    deadline = time.monotonic() + 5
    while Path(log).read_text().count('"fx') < 5 and time.monotonic() < deadline:
        time.sleep(0.02)  # the runner writes each line after its answer
    with open(log, "a") as f:
        for bad in ({"version": "1.0.0", "input": "{}", "status": "200", "request_id": "fx0", "ts": 1},
                    {"version": "1.0.0", "input": "{}", "status": 200, "request_id": ["fx1"], "latency_ms": True},
                    {"version": ["1.0.0"], "input": "{}", "status": 200, "request_id": "fx2", "ts": "now"},
                    {"version": "1.0.0", "input": "{}", "status": 200, "request_id": "fx3", "ts": "now"}):
            f.write(json.dumps(bad) + "\n")
        f.write('{"version": "1.0.0", "inp\n[1, 2]\n')
    with open(model.logs + "/labels.jsonl", "a") as f:
        f.write(json.dumps({"request_id": ["fx1"], "label": 1}) + "\n")
    assert call(root, "feedback_add", model="echo", labels=[["fx%d" % i, i] for i in range(5)])[1] is None

    assert label_figures(model, ["1.0.0"], since=0)["1.0.0"] == {"labelled": 5, "accuracy": 1.0, "correct": 5}
    result, error, _ = call(root, "replay", model="echo", b="2.0.0", last=50)
    assert error is None, error
    assert result["a"]["requests"] >= 5 and result["b"]["errors"] == 0


def test_status_text_shows_labels_the_canary_step_and_why(root, capsys):
    """`experiment status` printed no label figures (only --json had them), not the canary's step,
    and `mean abs diff None` for a shadow of non-numbers; an ended one said "stopped since START"."""
    argv = ("experiment", "status", "echo", "--server", "local")
    r = berth(capsys, "experiment", "start", "echo", "--server", "local", "--b", "2.0.0", "--canary", "50,100",
              "--step-requests", "100000")
    assert r.code == 0, r
    client = Client(port_of(root))
    ids = ["st%d" % i for i in range(40)]
    for i, rid in enumerate(ids):
        assert client.predict({"n": i}, {"X-Request-Id": rid})[0] == 200
    labels = [{"request_id": rid, "label": i + 0.25} for i, rid in enumerate(ids)]
    client.conn.request("POST", "/feedback", body=json.dumps(labels).encode())
    answer = client.conn.getresponse()
    assert (answer.status, json.loads(answer.read())) == (200, {"accepted": 40, "unknown": 0, "unknown_ids": []})

    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:  # the router saves its figures twice a second
        st = berth(capsys, *argv, "--json").json()
        if st["a"]["requests"] + st["b"]["requests"] >= 40:
            break
        time.sleep(0.1)
    r = berth(capsys, *argv)
    header = r.out.splitlines()[1].split()
    assert r.code == 0 and header[-3:] == ["LABELLED", "ACCURACY", "MAE"], r
    a_row = next(line.split() for line in r.out.splitlines() if line.startswith("A "))
    assert a_row[-1] == "0.25", r  # A answers n, the label is n + 0.25
    assert "canary: step 1 of 2 (50 %), each held for 100000 of B's requests" in r.out, r
    assert "  error_rate: A 0, B 0" in r.out and "interval" in r.out, r

    assert berth(capsys, "experiment", "stop", "echo", "--server", "local").code == 0
    r = berth(capsys, *argv)
    assert "canary stopped at " in r.out.splitlines()[0] and "canary: step" not in r.out, r

    assert berth(capsys, "experiment", "start", "echo", "--server", "local", "--b", "2.0.0", "--shadow").code == 0
    for i in range(5):
        assert client.predict({"x": i})[0] == 200
    deadline = time.monotonic() + 10
    while berth(capsys, *argv, "--json").json()["agreement"]["compared"] < 5 and time.monotonic() < deadline:
        time.sleep(0.1)
    r = berth(capsys, *argv)
    assert "agreement: 0 of 5 equal; B failed 0" in r.out and "None" not in r.out, r


def test_a_crashed_a_comes_back_behind_the_router_and_b_lives(root):
    """The watchdog restarted a crashed A with `serve` on the stable port (beside the router) at a
    new release port the router did not know, and its stray sweep stopped B: every request the
    router took failed with 502 while the experiment still said running."""
    start(root, mode="ab", weight=0.5)
    port = port_of(root)
    model = Root(str(root)).model("echo")
    journal = root / "journal.jsonl"
    restarts = journal.read_text().count('"runner.restarted"')
    os.kill(supervise.record(model, "1.0.0")["pid"], signal.SIGKILL)
    deadline = time.monotonic() + 30
    while journal.read_text().count('"runner.restarted"') == restarts and time.monotonic() < deadline:
        time.sleep(0.05)
    assert journal.read_text().count('"runner.restarted"') > restarts, "the watchdog did not restart A"
    assert set(supervise.running_versions(model)) == {"1.0.0", "2.0.0"}

    def routed():
        got, error, _ = call(root, "experiment_status", model="echo")
        assert error is None, error
        return got["a"]["requests"] + got["b"]["requests"], got["a"]["errors"] + got["b"]["errors"]

    before = routed()
    client = Client(port)
    answers = [client.predict({"k": i}) for i in range(30)]
    assert [a[0] for a in answers] == [200] * 30 and {a[1] for a in answers} == {"1.0.0", "2.0.0"}
    deadline = time.monotonic() + 5
    while routed()[0] < before[0] + 30 and time.monotonic() < deadline:
        time.sleep(0.1)  # the router saves its figures twice a second
    assert routed() == (before[0] + 30, before[1])  # every one through the router, none failed


def test_a_big_label_batch_through_the_router_is_told_how_to_split(root):
    """A 1 MB+ POST /feedback (curl: with Expect) got `request body over 1048576 bytes` and no word of
    what to do; through the router before the Expect fix it hung."""
    start(root, mode="ab", weight=0.5)
    body = json.dumps([{"request_id": "r%d" % i, "label": "x" * 100} for i in range(12000)]).encode()
    with socket.create_connection(("127.0.0.1", port_of(root)), timeout=5) as s:
        s.sendall(b"POST /feedback HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: %d\r\n\r\n"
                  % len(body))
        assert read_answer(s)[0] == 100
        s.sendall(body)
        status, answer = read_answer(s)
    assert status == 413 and "send at most 10000 labels per request" in json.loads(answer)["error"]
