"""Experiments on one server (docs/experiments.md): the router on the stable port forwards to A's
and B's real runners. A/B weights within binomial bounds, sticky keys, a canary that steps and one
that breaks its error limit, shadow copies that never fail A's answers, stop and promote audited,
a killed router brought back by the next status, and every bad input refused with nothing changed."""
from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from agent_kit import call, stop_all
from app.agent import experimentfiles, supervise
from app.agent.layout import Root
from app.agent.routerpolicy import share_of
from experiment_kit import Client, close_all, stop_routers, two_releases

ROOT_DIR = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("experiments")
    root = tmp / "root"
    two_releases(root, tmp)
    yield root
    stop_routers(root)
    stop_all(root)


@pytest.fixture
def root(served):
    yield served
    close_all()
    model = Root(str(served)).model("echo")
    if experimentfiles.active(model):
        call(served, "experiment_stop", model="echo")
    if model.current_version() != "1.0.0":
        call(served, "rollback", model="echo", to="1.0.0")


def port_of(root) -> int:
    return status_model(root)["port"]


def status_model(root) -> dict:
    result, error, _ = call(root, "status")
    assert error is None, error
    return result["models"][0]


def start(root, **settings):
    result, error, _ = call(root, "experiment_start", model="echo", b="2.0.0", **settings)
    assert error is None, error
    return result


def status(root) -> dict:
    result, error, _ = call(root, "experiment_status", model="echo")
    assert error is None, error
    return result


def journal(root) -> list[dict]:
    return [json.loads(line) for line in (root / "journal.jsonl").read_text().splitlines()]


def running(root) -> set[str]:
    return set(supervise.running_versions(Root(str(root)).model("echo")))


def wait_for(predicate, timeout=10.0):
    end = time.monotonic() + timeout
    while not predicate() and time.monotonic() < end:
        time.sleep(0.05)
    return predicate()


def settled(root, total, sides=("a", "b")):
    """The status once the router saved figures for `total` requests (it saves twice a second)."""
    assert wait_for(lambda: sum(status(root)[side]["requests"] for side in sides) >= total)
    return status(root)


def test_ab_weights_hold_within_binomial_bounds_and_stop_is_audited(root):
    weight, n = 0.3, 2000
    start(root, mode="ab", weight=weight)
    assert status_model(root)["experiment"] == "ab 30%"
    client, seen, ids = Client(port_of(root)), {"1.0.0": 0, "2.0.0": 0}, set()
    for i in range(n):
        code, version, rid, _ = client.predict({"x": i})
        assert code == 200 and rid
        seen[version] += 1
        ids.add(rid)
    assert len(ids) == n  # every answer has its own request id
    # 4.5 standard deviations: a correct router fails this about once in 150,000 runs
    assert abs(seen["2.0.0"] - n * weight) <= 4.5 * math.sqrt(n * weight * (1 - weight)), seen
    st = settled(root, n)
    assert (st["a"]["requests"], st["b"]["requests"]) == (seen["1.0.0"], seen["2.0.0"])
    assert st["b"]["weight"] == weight and st["a"]["p50_ms"] > 0
    # the two versions are the same model: the verdict weighs their error rates and p95s (verdict.py)
    assert st["verdict"]["state"] in ("none", "better", "worse") and {"error_rate", "p95_ms"} <= set(st["verdict"]["metrics"])

    code, version, rid, _ = client.predict({"x": 1}, {"X-Request-Id": "order-4711"})
    assert rid == "order-4711"
    logged = [json.loads(line) for line in (root / "models/echo/logs/requests.jsonl").read_text().splitlines()]
    assert [r.get("version") for r in logged if r.get("request_id") == "order-4711"] == [version]

    result, error, _ = call(root, "experiment_stop", model="echo")
    assert error is None and result["state"] == "stopped"
    assert running(root) == {"1.0.0"} and client.predict({"x": 1})[1] == "1.0.0"
    assert status_model(root)["experiment"] is None and status(root)["state"] == "stopped"
    event = journal(root)[-1]
    assert (event["action"], event["model"], event["version"]) == ("experiment.stopped", "echo", "1.0.0")
    assert any(e["action"] == "experiment.started" and e["version"] == "2.0.0" for e in journal(root))


def test_sticky_keys_stick_through_a_router_restart(root):
    start(root, mode="ab", weight=0.5, sticky_header="X-Customer-Id")
    client = Client(port_of(root))

    def versions():
        out = {}
        for key in range(40):
            got = {client.predict({"x": 1}, {"X-Customer-Id": "c%d" % key})[1] for _ in range(3)}
            assert len(got) == 1, (key, got)  # one customer, one version
            out[key] = got.pop()
        return out

    first = versions()
    assert first == {k: "2.0.0" if share_of(b"c%d" % k) < 0.5 else "1.0.0" for k in first}
    assert set(first.values()) == {"1.0.0", "2.0.0"}
    pid = status(root)["router"]
    model = Root(str(root)).model("echo")
    os.kill(json.loads(Path(experimentfiles.router_file(model)).read_text())["pid"], signal.SIGKILL)
    assert wait_for(lambda: not experimentfiles.router_alive(model))
    assert status(root)["router"] == {"alive": True, "restarted": True} and pid["alive"]
    assert versions() == first


def test_a_canary_steps_up_while_b_is_healthy(root):
    # as the console's Experiment tab asks: the steps under "canary", a p95 limit of 0 for none
    start(root, mode="canary", canary=[10, 100], step_requests=20, step_minutes=0, max_error_rate=0.01, max_p95_ms=0)
    assert status(root)["canary"]["max_p95_ms"] is None
    client = Client(port_of(root))
    for i in range(400):
        assert client.predict({"x": i})[0] == 200
        if status_model(root)["experiment"] == "canary 100%":
            break
    assert status(root)["canary"]["step"] == 1 and status(root)["b"]["weight"] == 1.0
    assert {client.predict({"x": 1})[1] for _ in range(25)} == {"2.0.0"}  # the last step is held as well
    assert wait_for(lambda: status(root)["state"] == "complete")
    assert status_model(root)["experiment"] == "canary 100%" and running(root) == {"1.0.0", "2.0.0"}


def test_a_canary_breaking_its_error_limit_goes_back_to_zero_and_is_audited(root):
    start(root, mode="canary", steps=[50, 100], step_requests=1000, max_error_rate=0.1)
    client = Client(port_of(root))
    codes = [client.predict({"fail": 1})[0] for _ in range(300)]
    assert 500 in codes
    assert wait_for(lambda: status(root)["state"] == "rolled_back")
    st = status(root)
    assert st["b"]["weight"] == 0.0 and st["b"]["errors"] >= 10
    assert wait_for(lambda: not status(root)["router"]["alive"])
    assert wait_for(lambda: running(root) == {"1.0.0"})
    event = journal(root)[-1]
    assert event["action"] == "experiment.auto_rollback" and event["version"] == "1.0.0" and "error rate" in event["detail"]
    assert event["actor"]["user"] == "berth-router"
    assert {client.predict({"fail": 1})[:2] for _ in range(20)} == {(200, "1.0.0")}
    assert status_model(root)["experiment"] is None


def test_a_crashing_b_in_shadow_never_fails_a_request(root):
    start(root, mode="shadow")
    client = Client(port_of(root))
    answers = [client.predict({"crash": 1})[:2] for _ in range(300)]
    assert answers == [(200, "1.0.0")] * 300
    assert wait_for(lambda: "2.0.0" not in running(root))
    st = settled(root, 300, sides=("a",))
    assert st["a"]["requests"] == 300 and st["agreement"]["b_failed"] + st["agreement"]["dropped"] >= 1
    assert st["state"] == "running" and st["router"]["alive"]


def test_shadow_records_b_s_agreement_with_a(root):
    start(root, mode="shadow")
    client = Client(port_of(root))
    for n in range(100):
        code, version, _, raw = client.predict({"n": n})
        assert (code, version, json.loads(raw)) == (200, "1.0.0", {"y": n})
    assert wait_for(lambda: (status(root)["agreement"]["compared"] + status(root)["agreement"]["dropped"]) >= 100)
    g = status(root)["agreement"]
    assert g["compared"] >= 1 and (g["equal"], g["equal_count"]) == (0.0, 0)
    assert g["mean_abs_diff"] == 0.5 and g["max_abs_diff"] == 0.5


def test_a_label_counts_once_for_a_and_once_for_shadow_b(root):
    """B's shadow copy shares A's request id and its log line says "shadow": the label counts for
    both versions; a client's own X-Berth-Shadow is dropped by the router, and an id reused on two
    requests counts for neither."""
    start(root, mode="shadow")
    client = Client(port_of(root))
    for rid in ("sh-1", "sh-2", "sh-dup", "sh-dup"):
        assert client.predict({"n": 3}, {"X-Request-Id": rid, "X-Berth-Shadow": "1"})[0] == 200
    log = root / "models/echo/logs/requests.jsonl"
    def ours():
        return [json.loads(line) for line in log.read_text().splitlines() if '"sh-' in line]
    assert wait_for(lambda: sum(1 for x in ours() if x.get("shadow")) == 4)
    lines = ours()
    assert sorted((x["version"], bool(x.get("shadow"))) for x in lines) == [("1.0.0", False)] * 4 + [("2.0.0", True)] * 4
    result, error, _ = call(root, "feedback_add", model="echo", labels=[["sh-1", 3], ["sh-2", 3.5], ["sh-dup", 3]])
    assert error is None and result["accepted"] == 3
    st = status(root)
    assert (st["a"]["labelled"], st["a"]["mae"], st["a"]["ambiguous"]) == (2, 0.25, 1)
    assert (st["b"]["labelled"], st["b"]["mae"], st["b"]["ambiguous"]) == (2, 0.25, 1)


def test_promote_makes_b_current_and_is_audited(root):
    start(root, mode="ab", weight=0.2)
    client = Client(port_of(root))
    client.predict({"x": 1})
    result, error, _ = call(root, "experiment_stop", model="echo", promote=True)
    assert error is None and result["state"] == "promoted"
    assert status_model(root)["version"] == "2.0.0" and running(root) == {"2.0.0"}
    assert {client.predict({"x": 1})[1] for _ in range(10)} == {"2.0.0"}
    event = journal(root)[-1]
    assert (event["action"], event["version"], event["old"]) == ("experiment.promoted", "2.0.0", "1.0.0")


def test_the_experiment_outlives_the_agent_process(root):
    start(root, mode="ab", weight=0.5)
    client = Client(port_of(root))
    for i in range(50):
        assert client.predict({"x": i})[0] == 200
    # a fresh agent process (as after a cut SSH session) finds the experiment from its files
    request = json.dumps({"root": str(root), "model": "echo"})
    out = subprocess.run([sys.executable, "-m", "app.agent", "experiment_status"], input=request, cwd=ROOT_DIR,
                         capture_output=True, text=True, timeout=60)
    last = json.loads(out.stdout.splitlines()[-1])
    assert last["event"] == "result" and last["result"]["state"] == "running", out.stdout
    assert last["result"]["router"] == {"alive": True, "restarted": False}
    assert all(client.predict({"x": i})[0] == 200 for i in range(20))


BAD = [
    ({"b": "9.9.9", "mode": "ab", "weight": 0.1}, "has no release 9.9.9"),
    ({"b": "2.0.0", "mode": "ab", "weight": 1.5}, "--weight 1.5 must be a number from 0 to 1"),
    ({"b": "2.0.0", "mode": "ab", "weight": -0.1}, "--weight -0.1"),
    ({"b": "2.0.0", "mode": "canary", "steps": [5, 3, 100]}, "increasing"),
    ({"b": "2.0.0", "mode": "canary", "steps": [5, 50]}, "the last step must be 100"),
    ({"b": "2.0.0", "mode": "canary", "steps": [5, 100], "max_error_rate": 2}, "--max-error-rate"),
    ({"b": "1.0.0", "mode": "shadow"}, "is A itself"),
    ({"b": "2.0.0"}, "choose one of --weight, --canary or --shadow"),
    ({"b": "2.0.0", "mode": "ab", "weight": 0.1, "sticky_header": "X Bad"}, "not a header name"),
    ({"b": "2.0.0", "mode": "shadow", "a": "2.0.0"}, "is not running"),
]


@pytest.mark.parametrize("settings,said", BAD, ids=[b[1][:30] for b in BAD])
def test_bad_input_is_refused_with_nothing_changed(root, settings, said):
    before = (running(root), status_model(root)["port"], len(journal(root)))
    result, error, _ = call(root, "experiment_start", model="echo", **settings)
    assert result is None and said in error["message"] and "\n" not in error["message"]
    assert (running(root), status_model(root)["port"], len(journal(root))) == before
    assert experimentfiles.active(Root(str(root)).model("echo")) is None


def test_a_second_experiment_a_deploy_and_a_stopped_model_are_refused(root):
    start(root, mode="shadow")
    before = (running(root), len(journal(root)))
    for command, extra, said in (("experiment_start", {"b": "2.0.0", "mode": "shadow"}, "already has a shadow"),
                                 ("rollback", {"to": "2.0.0"}, "stop it first"),
                                 ("stop", {}, "stop it first")):
        result, error, _ = call(root, command, model="echo", **extra)
        assert result is None and said in error["message"], error
    assert (running(root), len(journal(root))) == before
    assert call(root, "experiment_stop", model="echo")[1] is None

    assert call(root, "stop", model="echo")[1] is None
    try:
        result, error, _ = call(root, "experiment_start", model="echo", b="2.0.0", mode="shadow")
        assert result is None and "is not running on this server" in error["message"]
        assert experimentfiles.active(Root(str(root)).model("echo")) is None
    finally:
        assert call(root, "start", model="echo")[1] is None
    result, error, _ = call(root, "experiment_stop", model="echo")
    assert result is None and "no experiment running" in error["message"]


def test_a_breach_while_the_server_is_locked_sends_b_nothing_and_ends_once_it_is_free(root):
    from app.agent.lock import ServerLock

    start(root, mode="canary", steps=[50, 100], step_requests=1000, max_error_rate=0.1)
    client = Client(port_of(root))
    with ServerLock(str(root / ".berth/lock"), {"who": "a test", "what": "holding the lock"}):
        codes = [client.predict({"fail": 1})[0] for _ in range(100)]
        assert 500 in codes
        time.sleep(0.5)  # the router has seen the breach; its ending waits for the lock
        assert {client.predict({"fail": 1})[:2] for _ in range(50)} == {(200, "1.0.0")}
        assert status(root)["state"] == "running"
    assert wait_for(lambda: status(root)["state"] == "rolled_back")
    assert journal(root)[-1]["action"] == "experiment.auto_rollback"


@pytest.mark.parametrize("raw,code", [
    (b"POST /predict HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nx\r\n0\r\n\r\n", 411),
    (b"POST /predict HTTP/1.1\r\nContent-Length: nine\r\n\r\n", 400),
    (b"POST /predict HTTP/1.1\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}", 400),
    (b"POST /predict HTTP/1.1\r\nX-Big: " + b"a" * 70000 + b"\r\n\r\n", 431),
    (b"NONSENSE\r\n\r\n", 400),
])
def test_the_router_refuses_a_malformed_request_and_keeps_serving(root, raw, code):
    import socket

    start(root, mode="ab", weight=0.5)
    with socket.create_connection(("127.0.0.1", port_of(root)), timeout=10) as s:
        s.sendall(raw)
        answer = s.recv(65536)
    assert answer.startswith(b"HTTP/1.1 %d " % code) and b"X-Request-Id: " in answer, answer[:200]
    assert Client(port_of(root)).predict({"x": 1})[0] == 200


def test_the_router_sees_only_the_runners_allow_listed_environment(root, monkeypatch):
    """The router is started by the agent, whose environment on `local` is the operator's: a token
    or SSH_AUTH_SOCK there must not reach it (the runners' allow-list, app/agent/runnerenv.py)."""
    monkeypatch.setenv("GITHUB_TOKEN", "ghp_not-for-the-router")
    monkeypatch.setenv("SSH_AUTH_SOCK", "/tmp/ssh-agent.sock")
    start(root, mode="ab", weight=0.5)
    pid = json.loads((root / "models/echo/experiment/router.json").read_text())["pid"]
    names = {item.split(b"=", 1)[0].decode() for item in Path(f"/proc/{pid}/environ").read_bytes().split(b"\0") if item}
    assert not names & {"GITHUB_TOKEN", "SSH_AUTH_SOCK"}, names
    assert "PATH" in names
    assert call(root, "experiment_stop", model="echo")[1] is None
