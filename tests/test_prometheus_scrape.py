"""A real Prometheus server (Debian package `prometheus`) scrapes a real runner's /metrics: the target
is up with no scrape error, and `berth_requests_total` of "/predict" is exactly the predictions sent,
Berth's own health check after the deploy counted under its own endpoint label, not among them.

One runner lifetime only: a runner's port changes on every deploy or restart today.
Skips where prometheus is missing, except in CI (.ci/run installs it): there a missing binary fails."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import urllib.parse
import urllib.request

import pytest

from agent_kit import call, deploy, http_json, make_bundle, stop_all
from app.agent.metrics import PROBE_ENDPOINT
from sshd import free_port

PROMETHEUS = shutil.which("prometheus")
PREDICTIONS = 7
WAIT_S = 30


def require_prometheus() -> str:
    if PROMETHEUS is not None:
        return PROMETHEUS
    message = "prometheus is not installed here (Debian package 'prometheus': apt-get install -y prometheus)"
    if os.environ.get("CI"):
        pytest.fail(message + "; .ci/run installs it, so in CI this is a defect", pytrace=False)
    pytest.skip(message + "; .ci/run installs it, so CI runs this test")


def api(port: int, path: str, **params) -> dict:
    url = f"http://127.0.0.1:{port}{path}" + ("?" + urllib.parse.urlencode(params) if params else "")
    with urllib.request.urlopen(url, timeout=5) as response:
        body = json.load(response)
    assert body["status"] == "success", body
    return body["data"]


def query(port: int, promql: str) -> list[dict]:
    return api(port, "/api/v1/query", query=promql)["result"]


def wait_for(what: str, probe, log_path, timeout=WAIT_S):
    """probe() until it returns something truthy; fails with Prometheus' log after `timeout` s."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = probe()
        except OSError as e:  # not listening yet
            last = e
        else:
            if last:
                return last
        time.sleep(0.2)
    pytest.fail(f"{what} not within {timeout} s (last: {last!r}); prometheus log:\n{log_path.read_text()[-3000:]}",
                pytrace=False)


@pytest.fixture
def prometheus_for(tmp_path):
    """A callable starting a Prometheus that scrapes 127.0.0.1:<runner port> every second as job
    "berth"; returns its HTTP port. Killed (and waited for) after the test."""
    binary = require_prometheus()
    started: list[subprocess.Popen] = []
    logs = []

    def start(runner_port: int) -> tuple[int, object]:
        folder = tmp_path / "prometheus"
        (folder / "data").mkdir(parents=True)
        config = folder / "prometheus.yml"
        config.write_text(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n"
            "scrape_configs:\n  - job_name: berth\n"
            f"    static_configs:\n      - targets: ['127.0.0.1:{runner_port}']\n")
        port = free_port()
        log_path = folder / "prometheus.log"
        log = open(log_path, "wb")
        logs.append(log)
        started.append(subprocess.Popen(
            [binary, f"--config.file={config}", f"--storage.tsdb.path={folder / 'data'}",
             f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, cwd=folder))
        return port, log_path

    yield start
    for process in started:
        process.kill()
        process.wait(timeout=30)
    for log in logs:
        log.close()


def test_prometheus_scrapes_a_runner_and_counts_only_the_users_predictions(tmp_path, prometheus_for):
    root = tmp_path / "srv"
    _, error, _ = deploy(root, make_bundle(tmp_path / "b", name="iris"))
    assert error is None, error
    try:
        runner_port = call(root, "status")[0]["models"][0]["port"]
        for i in range(PREDICTIONS):
            assert http_json(runner_port, "POST", "/predict", {"x": i})[0] == 200
        port, log_path = prometheus_for(runner_port)

        up = wait_for('up{job="berth"} == 1',
                      lambda: [s for s in query(port, 'up{job="berth"}') if s["value"][1] == "1"], log_path)
        assert len(up) == 1 and up[0]["metric"]["instance"] == f"127.0.0.1:{runner_port}", up

        targets = api(port, "/api/v1/targets")["activeTargets"]
        assert [(t["labels"]["job"], t["health"], t["lastError"]) for t in targets] == [("berth", "up", "")], targets

        by_endpoint = {s["metric"]["endpoint"]: s for s in query(port, 'berth_requests_total{job="berth"}')}
        assert set(by_endpoint) == {"/predict", PROBE_ENDPOINT}, by_endpoint
        user = by_endpoint["/predict"]
        assert (user["metric"]["model"], user["metric"]["version"]) == ("iris", "1.0.0"), user
        assert int(user["value"][1]) == PREDICTIONS, user
        assert int(by_endpoint[PROBE_ENDPOINT]["value"][1]) == 1  # the deploy's health check, apart

        # the histogram is read too: its count is the same requests, and no model error was counted
        count = query(port, 'berth_request_duration_seconds_count{job="berth",endpoint="/predict"}')
        assert [int(s["value"][1]) for s in count] == [PREDICTIONS], count
        errors = query(port, 'berth_request_errors_total{job="berth",endpoint="/predict"}')
        assert [int(s["value"][1]) for s in errors] == [0], errors

        # a later prediction reaches Prometheus on a later scrape: it reads the live counter
        assert http_json(runner_port, "POST", "/predict", {"x": "late"})[0] == 200
        wait_for("the 8th prediction in berth_requests_total",
                 lambda: [s for s in query(port, 'berth_requests_total{job="berth",endpoint="/predict"}')
                          if int(s["value"][1]) == PREDICTIONS + 1], log_path)
    finally:
        stop_all(root)
