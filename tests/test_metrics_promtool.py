"""A real runner's /metrics passes `promtool check metrics` (Prometheus' own linter), with user
requests, a model failure, a refused request and Berth's own health check all counted, and the
sampler still reads it: the health check is not among the requests of "/predict"."""
from __future__ import annotations

import shutil
import subprocess

import pytest

from agent_kit import call, deploy, http_json, make_bundle, stop_all
from app.agent.health import request
from app.agent.histogram import parse_metrics
from app.agent.metrics import PROBE_ENDPOINT
from app.agent.runnermeter import RunnerMeter

FAILING_MODEL = '''
class Model:
    def predict(self, data):
        if data.get("fail"):
            raise ValueError("bad luck")
        return {"ok": True}
'''

PROMTOOL = shutil.which("promtool")


@pytest.mark.skipif(PROMTOOL is None, reason="promtool is not installed here (Debian package 'prometheus'; "
                                             ".ci/run installs it, so CI runs this test)")
def test_runner_metrics_pass_promtool_and_the_health_check_is_counted_apart(tmp_path):
    root = tmp_path / "srv"
    _, error, _ = deploy(root, make_bundle(tmp_path / "b", model_src=FAILING_MODEL))
    assert error is None, error
    try:
        port = call(root, "status")[0]["models"][0]["port"]
        assert http_json(port, "POST", "/predict", {"q": 1})[0] == 200
        assert http_json(port, "POST", "/predict", {"fail": True})[0] == 500
        assert request(port, "POST", "/predict", b"{not json")[0] == 400
        status, raw = request(port, "GET", "/metrics")
        assert status == 200
    finally:
        stop_all(root)
    text = raw.decode()
    done = subprocess.run([PROMTOOL, "check", "metrics"], input=text, capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, (done.returncode, done.stdout, done.stderr, text)

    parsed = parse_metrics(text)
    assert parsed["endpoints"][PROBE_ENDPOINT]["count"] == 1  # the deploy's example check, apart
    user = parsed["endpoints"]["/predict"]
    assert (user["count"], user["errors"]) == (3, 1) and user["cumulative"][-1] == 3
    assert {"process_cpu_seconds_total", "process_resident_memory_bytes", "process_start_time_seconds"} <= \
        set(parsed["process"])
    figures = RunnerMeter().read(text)
    assert (figures["requests_total"], figures["errors_total"]) == (3, 1)
