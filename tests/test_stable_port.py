"""One stable port per model (docs/serving.md): the same across deploys, rollbacks, stop/start and a
killed runner; a switch under steady keep-alive load drops no request and pauses no client for
more than 50 ms; the port's choice and its refusals. Real runners on loopback."""
from __future__ import annotations

import json
import os
import signal
import socket
import time

import pytest

from agent_kit import call, deploy, http_json, make_bundle, stop_all, wait_guarded
from app.agent import endpoint
from app.agent.layout import Root
from stable_kit import Load

MAX_PAUSE_S = 0.050


@pytest.fixture
def root(tmp_path):
    r = tmp_path / "a root with a rather long name, so the control socket's path is over 108 bytes"
    yield r
    stop_all(r)


def status_of(root, model="echo"):
    result, error, _ = call(root, "status")
    assert error is None, error
    return {s["model"]: s for s in result["models"]}.get(model)


def serving_version(port: int) -> str:
    return http_json(port, "POST", "/predict", {"x": 1})[1]["version"]


def refused(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


def wait_for(predicate, timeout=5.0):
    deadline = time.monotonic() + timeout
    while not predicate() and time.monotonic() < deadline:
        time.sleep(0.05)
    return predicate()


def test_the_port_stays_through_deploy_rollback_stop_start_and_a_killed_runner(root, tmp_path):
    result, error, _ = deploy(root, make_bundle(tmp_path / "v1"))
    assert error is None, error
    st = status_of(root)
    port = st["port"]
    assert result["port"] == port and st["stable_port"] == port and st["release_port"] not in (None, port)
    low, high = endpoint.port_range(Root(str(root)))  # the default, or a pytest-xdist worker's own range
    assert low <= port <= high and serving_version(port) == "1.0.0"
    assert json.loads((root / "models/echo/endpoint.json").read_text())["port"] == port
    assert len(str(root / "models/echo/run/1.0.0.ctl")) > 108  # reached through /proc/self/fd

    assert deploy(root, make_bundle(tmp_path / "v2", version="2.0.0"))[1] is None
    assert status_of(root)["port"] == port and serving_version(port) == "2.0.0"
    assert call(root, "rollback", model="echo")[1] is None
    assert status_of(root)["port"] == port and serving_version(port) == "1.0.0"

    assert call(root, "stop", model="echo")[1] is None
    st = status_of(root)
    assert st["state"] == "stopped" and st["port"] is None and st["stable_port"] == port and refused(port)
    result, error, _ = call(root, "start", model="echo")
    assert error is None and result["port"] == port and serving_version(port) == "1.0.0"

    killed = status_of(root)["pid"]
    wait_guarded(root)  # the watchdog takes its copy of the port at its first tick after the start
    os.kill(killed, signal.SIGKILL)  # the scheduler's watchdog starts it again, on the same port
    assert serving_version(port) == "1.0.0"
    assert wait_for(lambda: status_of(root)["state"] == "running" and status_of(root)["pid"] != killed)
    assert status_of(root)["port"] == port


@pytest.mark.parametrize("change", ["deploy", "rollback"])
def test_a_switch_under_load_drops_no_request_and_pauses_no_client(root, tmp_path, change):
    assert deploy(root, make_bundle(tmp_path / "v1"))[1] is None
    if change == "rollback":
        assert deploy(root, make_bundle(tmp_path / "v2", version="2.0.0"))[1] is None
    port = status_of(root)["port"]
    old, new = ("1.0.0", "2.0.0") if change == "deploy" else ("2.0.0", "1.0.0")
    # lines of ~8.3 KB (escaped non-ASCII, input and echoed output cut to 4 KB each), over a write
    # buffer: written in pieces, the two runners' lines would interleave while both serve. Paced to
    # ~200 requests/s: unpaced, the event-loop runner logs ~16 MB/s and rotation (3 files of 10 MB)
    # drops lines before the count below is taken
    with Load(port, threads=4, body={"x": "é" * 700}, pace_s=0.02) as load:
        time.sleep(0.2)
        if change == "deploy":
            _, error, _ = deploy(root, make_bundle(tmp_path / "v2", version="2.0.0"))
        else:
            _, error, _ = call(root, "rollback", model="echo")
        assert error is None, error
        time.sleep(0.2)
    assert load.failures == [] and len(load.ok_times) > 100
    assert load.versions == {old, new}
    start, end = load.switch_window(old, new)
    gap = load.max_gap(start, end)
    print(f"{change}: {len(load.ok_times)} answers, none failed; longest pause at the switch {gap * 1000:.1f} ms, "
          f"over the whole run {load.max_gap() * 1000:.1f} ms")
    assert gap <= MAX_PAUSE_S, f"a {gap * 1000:.0f} ms pause at the switch"
    logs = sorted((root / "models/echo/logs").glob("requests.jsonl"))
    logs += sorted((root / "models/echo/logs").glob("requests.jsonl.[0-9]"))  # rotated at 10 MB: at most once here
    lines = [json.loads(line) for f in logs for line in f.read_bytes().splitlines()]  # every line whole
    assert sum(1 for e in lines if e["status"] == 200 and e["input"].startswith('{"x": "\\u00e9')) == len(load.ok_times)
    assert serving_version(port) == new


def test_a_bundle_port_is_used_and_another_models_port_is_refused(root, tmp_path):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        wanted = probe.getsockname()[1]
    assert deploy(root, make_bundle(tmp_path / "a", extra_toml=f"port = {wanted}\n"))[1] is None
    assert status_of(root)["port"] == wanted and serving_version(wanted) == "1.0.0"
    _, error, _ = deploy(root, make_bundle(tmp_path / "b", name="other", extra_toml=f"port = {wanted}\n"))
    assert error["code"] == "port_taken" and f"port {wanted} is echo's stable port" in error["message"]
    assert status_of(root, "other") is None and serving_version(wanted) == "1.0.0"


def test_set_port_moves_a_running_model_and_refuses_taken_ports(root, tmp_path):
    assert deploy(root, make_bundle(tmp_path / "a"))[1] is None
    assert deploy(root, make_bundle(tmp_path / "b", name="other"))[1] is None
    mine, others = status_of(root)["port"], status_of(root, "other")["port"]

    _, error, _ = call(root, "port.set", model="echo", port=others)
    assert error["code"] == "port_taken" and error["message"] == \
        f"port {others} is other's stable port on this server; choose another"
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen(1)
        busy = squatter.getsockname()[1]
        _, error, _ = call(root, "port.set", model="echo", port=busy)
        assert error["code"] == "port_in_use" and f"pid {os.getpid()}" in error["message"]
    for bad in (80, 70000, "18000", True, None):
        _, error, _ = call(root, "port.set", model="echo", port=bad)
        assert error["code"] == "usage" and "1024 to 65535" in error["message"]
    _, error, _ = call(root, "port.set", model="nothing-here", port=busy)
    assert error["code"] == "nothing_deployed"
    assert status_of(root)["port"] == mine and serving_version(mine) == "1.0.0"  # nothing changed

    result, error, _ = call(root, "port.set", model="echo", port=busy)
    assert error is None and result["previous_port"] == mine and "restarted" in result["detail"]
    assert status_of(root)["port"] == busy and serving_version(busy) == "1.0.0" and refused(mine)
    assert deploy(root, make_bundle(tmp_path / "a2", version="2.0.0", extra_toml=f"port = {mine}\n"))[1] is None
    assert status_of(root)["port"] == busy  # a port set by the operator outlasts the bundle's
    journal = [json.loads(l) for l in (root / "journal.jsonl").read_text().splitlines()]
    assert [(e["action"], e["outcome"]) for e in journal if e["action"] == "port.set"][-2:] == \
        [("port.set", "started"), ("port.set", "ok")]


def test_the_port_range_is_a_server_setting_and_a_full_range_says_so(root, tmp_path):
    with socket.socket() as a:
        a.bind(("127.0.0.1", 0))
        a.listen(1)
        taken = a.getsockname()[1]
        root.mkdir(parents=True)
        (root / "serving.json").write_text(json.dumps({"port_range": f"{taken}-{taken}"}))
        _, error, _ = deploy(root, make_bundle(tmp_path / "a"))
        assert error["code"] == "no_port" and f"no free port left in {taken}-{taken}" in error["message"]
    assert deploy(root, make_bundle(tmp_path / "a"))[1] is None
    assert status_of(root)["port"] == taken
    assert endpoint.port_range(Root(str(root))) == (taken, taken)


def test_two_runners_rotating_one_request_log_keep_the_newest_lines(tmp_path):
    """Both writers of a switch append to one log and cross the size limit: each rotates only the
    file still at the path and its own, under the lock file, then writes to the one at the path. So
    rotation keeps at least the newest two files' worth of lines, whoever wrote them; rotating each
    on its own count renamed a file the other still wrote to out of the kept ones."""
    from app.agent import requestlog

    path, limit, n = str(tmp_path / "requests.jsonl"), 20_000, 2000  # ~200-byte lines: ~400 KB in all
    saved, requestlog.ROTATE_BYTES = requestlog.ROTATE_BYTES, limit
    try:
        a, b = requestlog.RequestLog(path, "1.0.0"), requestlog.RequestLog(path, "2.0.0")
        for i in range(n):
            (a if i % 2 else b).write(0.001, 200, b'{"i": %d}' % i, b"{}", None, "r%d" % i)
        a.close()
        b.close()
    finally:
        requestlog.ROTATE_BYTES = saved
    kept = {int(json.loads(line)["request_id"][1:]) for f in tmp_path.glob("requests.jsonl*")
            if not f.name.endswith(".lock") for line in f.read_bytes().splitlines()}
    assert max(kept) == n - 1 and len(kept) >= 2 * limit // 210  # at least two files' worth of the newest
    holes = [i for i in range(min(kept), n) if i not in kept]
    # at most a line or two a writer put in the file just rotated, before it saw that: with each
    # rotating on its own count, 130 of the last 400 were missing here
    assert len(holes) <= 2, holes
