"""`[serve] workers = N` (app/agent/runnerworkers.py) on real runners deployed by the agent: the
workers all answer on the model's port, /metrics from any one of them sums all of them, a killed
worker is forked again, a switch under load drops no request, stop ends the whole tree, and the
sampler reports the tree's memory and each worker."""
from __future__ import annotations

import os
import re
import signal
import socket
import time

import pytest

from agent_kit import call, deploy, http_json, make_bundle, stop_all
from app.agent import handoff, scheduler
from app.agent.layout import Root
from app.agent.sampler import Sampler
from app.agent.workerfigures import children
from stable_kit import Load

TWO = "workers = 2\n"


@pytest.fixture
def root(tmp_path):
    r = tmp_path / "srv"
    yield r
    stop_all(r)


def status_of(root):
    result, error, _ = call(root, "status")
    assert error is None, error
    return result["models"][0]


def deployed(root, tmp_path, version="1.0.0", workers=TWO):
    _, error, _ = deploy(root, make_bundle(tmp_path / version, version=version, extra_toml=workers))
    assert error is None, error
    st = status_of(root)
    return st["port"], st["pid"]


def info_pid(port: int) -> int:
    """/info's pid over a new connection (health.request closes after the answer)."""
    status, info = http_json(port, "GET", "/info")
    assert status == 200, info
    return info["pid"]


def predict_total(port: int) -> int:
    status, text = http_json(port, "GET", "/metrics")
    assert status == 200
    m = re.search(rb'berth_requests_total\{[^}]*endpoint="/predict"\} (\d+)', text)
    return int(m.group(1)) if m else 0


def wait_for(predicate, timeout=10.0):
    deadline = time.monotonic() + timeout
    while not predicate() and time.monotonic() < deadline:
        time.sleep(0.05)
    return predicate()


def alive(pid: int) -> bool:
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except OSError:
        return False


def test_two_workers_both_answer_and_metrics_sum_them(root, tmp_path):
    port, parent = deployed(root, tmp_path)
    workers = children(parent)
    assert len(workers) == 2 and parent not in workers
    seen, spread = set(), {}
    for _ in range(200):  # new connections land on whichever worker accepts first
        pid = info_pid(port)
        seen.add(pid)
        assert http_json(port, "POST", "/predict", {"x": 1})[0] == 200
        spread[pid] = spread.get(pid, 0) + 1
        if len(seen) == 2 and sum(spread.values()) >= 20:
            break
    assert seen == set(workers), (seen, workers)  # the parent serves nothing, each worker names itself
    n = sum(spread.values())
    # one scrape reaches one worker; every scrape gives the sum over both
    assert {predict_total(port) for _ in range(10)} == {n}
    release_port = status_of(root)["release_port"]
    assert predict_total(release_port) == n  # the release's own port is served by the workers too


def test_a_killed_worker_is_forked_again_and_the_model_keeps_answering(root, tmp_path):
    port, parent = deployed(root, tmp_path)
    for _ in range(5):
        assert http_json(port, "POST", "/predict", {"x": 1})[0] == 200
    victim, other = children(parent)
    os.kill(victim, signal.SIGKILL)
    assert wait_for(lambda: len(children(parent)) == 2 and victim not in children(parent))
    replacement = (set(children(parent)) - {other}).pop()
    assert other in children(parent) and alive(parent)
    for _ in range(5):
        assert http_json(port, "POST", "/predict", {"x": 1})[0] == 200
    assert predict_total(port) == 10  # the dead worker's counts stay in the sum
    # it accepts on the stable port (the kernel hands each connection to one waiting worker: under load
    # the warm one may win many times in a row)
    assert wait_for(lambda: replacement in {info_pid(port) for _ in range(20)}, timeout=30.0)
    assert status_of(root)["pid"] == parent and status_of(root)["state"] == "running"


def test_a_switch_with_two_workers_drops_no_request(root, tmp_path):
    port, old_parent = deployed(root, tmp_path)
    old_workers = children(old_parent)
    with Load(port, threads=4) as load:
        time.sleep(0.2)
        _, error, _ = deploy(root, make_bundle(tmp_path / "v2", version="2.0.0", extra_toml=TWO))
        assert error is None, error
        time.sleep(0.2)
    assert load.failures == [] and len(load.ok_times) > 100
    assert load.versions == {"1.0.0", "2.0.0"}
    st = status_of(root)
    assert st["version"] == "2.0.0" and st["port"] == port and len(children(st["pid"])) == 2
    assert wait_for(lambda: not any(alive(p) for p in [old_parent] + old_workers))  # the old tree drained


def test_stop_ends_the_parent_and_every_worker(root, tmp_path):
    port, parent = deployed(root, tmp_path)
    workers = children(parent)
    assert call(root, "stop", model="echo")[1] is None
    assert not any(alive(p) for p in [parent] + workers)
    with socket.socket() as s:
        assert s.connect_ex(("127.0.0.1", port)) != 0


def test_the_control_socket_is_the_parents(root, tmp_path):
    port, parent = deployed(root, tmp_path)
    ctl = str(root / "models/echo/run/1.0.0.ctl")
    reply, fd = handoff.ask(ctl, "fd")
    assert reply == "ok" and fd is not None
    with socket.socket(fileno=fd) as stable:
        assert stable.getsockname()[1] == port
    assert handoff.ask(ctl, "serve")[0] == "ok"  # said twice: still serving
    assert http_json(port, "POST", "/predict", {"x": 1})[0] == 200


def test_the_sampler_reports_the_tree_and_each_worker(root, tmp_path):
    port, parent = deployed(root, tmp_path)
    sampler = Sampler(Root(str(root)))
    try:
        sampler.take(time.monotonic())
        time.sleep(0.2)
        m = sampler.take(time.monotonic())["models"]["echo"]
    finally:
        sampler.close()
    assert m["pid"] == parent
    assert sorted(w["pid"] for w in m["workers"]) == sorted(children(parent))
    assert all(w["rss_bytes"] > 1 << 20 and w["cpu_percent"] >= 0 for w in m["workers"])
    assert m["rss_bytes"] > sum(w["rss_bytes"] for w in m["workers"])  # and the parent's own


def test_one_worker_is_one_process(root, tmp_path):
    port, pid = deployed(root, tmp_path, workers="")
    assert children(pid) == [] and info_pid(port) == pid
    sampler = Sampler(Root(str(root)))
    try:
        m = sampler.take(time.monotonic())["models"]["echo"]
    finally:
        sampler.close()
    assert m["workers"] == [{"pid": pid, "rss_bytes": m["rss_bytes"], "cpu_percent": m["cpu_percent"]}]


def test_workers_whose_parent_is_killed_drain_and_end(root, tmp_path):
    port, parent = deployed(root, tmp_path)
    workers = children(parent)
    # the watchdog is not what is tested: it would bring the runner back on its port (or hold the
    # port's listening socket meanwhile), and then the port answers whatever the workers did
    scheduler.stop(Root(str(root)))
    os.kill(parent, signal.SIGKILL)
    assert wait_for(lambda: not any(alive(p) for p in workers), timeout=8.0)  # their pipe's end-of-file
    with socket.socket() as s:
        assert s.connect_ex(("127.0.0.1", port)) != 0


def test_worker_counters_print_what_counters_print():
    from app.agent.metrics import PROBE_ENDPOINT, Counters
    from app.agent.workercounters import WorkerCounters

    one, shared = Counters("m", "1"), WorkerCounters("m", "1", 3, started=None)
    shared.started = one.started
    calls = [("/predict", 0.0004, False, None), ("/predict", 0.02, True, None), ("/predict", 31.0, False, None),
             ("/predict", 0.001, False, "invalid_input"), (PROBE_ENDPOINT, 0.003, False, None)]
    for row, call_args in enumerate(calls):
        one.observe(*call_args)
        shared.use_row(row % 3)
        shared.observe(*call_args)

    def traffic(text):
        return [line for line in text.splitlines() if line.startswith("berth_") and "_worker_restarts_" not in line]
    assert traffic(shared.render()) == traffic(one.render()) and len(traffic(one.render())) > 10
    assert 'berth_worker_restarts_total{model="m",version="1"} 0\n' in shared.render()  # the parent's alone
