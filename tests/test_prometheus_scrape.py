"""A real Prometheus server (Debian package `prometheus`) scrapes a real runner's /metrics: the target
is up with no scrape error, and `berth_requests_total` of "/predict" is exactly the predictions sent,
Berth's own health check after the deploy counted under its own endpoint label, not among them.

And a Prometheus given `berth status --prometheus-targets` as its file_sd list keeps scraping the
model's stable port through a deploy, a rollback, a stop/start and a killed runner (the watchdog
restarts it), down for one scrape at most.
Skips where prometheus is missing, except in CI (.ci/run installs it): there a missing binary fails."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
import urllib.parse
import urllib.request

import pytest

from agent_kit import call, deploy, http_json, make_bundle, stop_all, wait_guarded
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

    def start(runner_port: int | None = None, file_sd: list | None = None) -> tuple[int, object]:
        folder = tmp_path / "prometheus"
        (folder / "data").mkdir(parents=True)
        config = folder / "prometheus.yml"
        if file_sd is not None:
            (folder / "targets.json").write_text(json.dumps(file_sd))
            targets = f"    file_sd_configs:\n      - files: ['{folder / 'targets.json'}']\n"
        else:
            targets = f"    static_configs:\n      - targets: ['127.0.0.1:{runner_port}']\n"
        config.write_text(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n"
            "scrape_configs:\n  - job_name: berth\n" + targets)
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


def up_samples(port: int) -> list[int]:
    """Every scrape's `up` of the one target, oldest first (raw samples, not a resampled range)."""
    series = api(port, "/api/v1/query", query='up{job="berth"}[10m]')["result"]
    assert len(series) == 1, series
    return [int(float(v)) for _, v in series[0]["values"]]


def longest_down(ups: list[int]) -> int:
    run = worst = 0
    for up in ups:
        run = run + 1 if up == 0 else 0
        worst = max(worst, run)
    return worst


def test_prometheus_keeps_the_stable_port_through_deploy_rollback_and_stop_start(tmp_path, prometheus_for):
    from app.cli.changes import prometheus_targets

    root = tmp_path / "srv"
    assert deploy(root, make_bundle(tmp_path / "v1", name="iris"))[1] is None
    try:
        rows = [dict(r, server="local") for r in call(root, "status")[0]["models"]]
        targets = prometheus_targets(rows)
        stable = rows[0]["port"]
        assert targets == [{"targets": [f"127.0.0.1:{stable}"], "labels": {"berth_server": "local",
                                                                          "berth_model": "iris"}}]
        port, log_path = prometheus_for(file_sd=targets)
        wait_for("the first scrape", lambda: [s for s in query(port, 'up{job="berth"}') if s["value"][1] == "1"],
                 log_path)

        def scrapes_after(n):
            wait_for(f"{n} scrapes", lambda: len(up_samples(port)) >= n, log_path)

        scrapes_after(3)
        assert deploy(root, make_bundle(tmp_path / "v2", name="iris", version="2.0.0"))[1] is None
        scrapes_after(len(up_samples(port)) + 3)
        assert call(root, "rollback", model="iris")[1] is None
        scrapes_after(len(up_samples(port)) + 3)
        switches = up_samples(port)
        assert call(root, "stop", model="iris")[1] is None
        assert call(root, "start", model="iris")[1] is None
        scrapes_after(len(up_samples(port)) + 3)
        before_kill = len(up_samples(port))
        killed = call(root, "status")[0]["models"][0]["pid"]
        wait_guarded(root, "iris")
        os.kill(killed, signal.SIGKILL)  # the watchdog restarts it; scrapes meanwhile wait in the socket's queue
        scrapes_after(before_kill + 4)
        assert call(root, "status")[0]["models"][0]["pid"] not in (None, killed)
        ups = up_samples(port)
        print(f"{len(ups)} scrapes, {ups.count(0)} down ({switches.count(0)} during the deploy and the rollback, "
              f"{ups[before_kill:].count(0)} after the kill), longest down run {longest_down(ups)}")
        assert switches.count(0) == 0, switches  # a switch is invisible to the scraper
        assert longest_down(ups) <= 1 and ups[-1] == 1, ups
        assert all(s["metric"]["instance"] == f"127.0.0.1:{stable}" for s in query(port, 'up{job="berth"}'))
        versions = {s["metric"]["version"] for s in query(port, 'berth_requests_total{job="berth"}[10m]')}
        assert versions == {"1.0.0", "2.0.0"}, versions  # both releases were scraped on the one port
    finally:
        stop_all(root)
