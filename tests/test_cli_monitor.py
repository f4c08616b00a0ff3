"""`berth monitor`: one sample or a live view, as text or JSON, against real runners and a real sshd."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from agent_kit import stop_all
from cli_kit import berth, iris_copy, iris_input

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def iris_on_local(capsys, tmp_path, berth_home):
    assert berth(capsys, "deploy", iris_copy(tmp_path), "--server", "local").code == 0
    yield
    stop_all(berth_home / "local")


def test_once_json_on_local_has_the_documented_keys(capsys, iris_on_local):
    for _ in range(3):
        assert berth(capsys, "predict", "iris", "--server", "local", "--input", iris_input()).code == 0
    r = berth(capsys, "monitor", "--once", "--json", "--server", "local", "--interval", "0.5")
    assert r.code == 0 and r.err == "", r
    [s] = r.json()
    assert s["server"] == "local" and s["interval_s"] == pytest.approx(0.5, abs=0.2)
    assert 0 <= s["cpu_percent"] <= 100
    assert set(s["memory"]) == {"used", "available", "total"} and s["memory"]["used"] < s["memory"]["total"]
    assert len(s["load"]) == 3 and {"path", "total", "used", "free"} <= set(s["disk"])
    iris = s["models"]["iris"]
    assert {"cpu_percent", "rss_bytes", "requests_per_s", "errors_per_s", "latency_ms"} <= set(iris)
    assert iris["rss_bytes"] > 5_000_000 and iris["version"] == "1.0.0"
    assert iris["requests_per_s"] == 0 and iris["errors_per_s"] == 0  # nothing during the interval
    assert iris["requests_total"] == 3  # our three (the health check's example is counted apart)
    lat = iris["latency_ms"]
    assert set(lat) == {"p50", "p95", "p99", "window"} and lat["window"] == "since_start"
    assert 0 < lat["p50"] <= lat["p95"] <= lat["p99"]
    assert "histogram" not in iris


def test_once_text_and_model_filter(capsys, iris_on_local):
    r = berth(capsys, "monitor", "--once", "--server", "local", "--model", "iris", "--interval", "0.25")
    assert r.code == 0, r
    lines = r.out.splitlines()
    assert lines[0].startswith("local ") and "cpu" in lines[0] and "mem" in lines[0]
    assert lines[1].split()[:3] == ["MODEL", "VERSION", "CPU%"] and lines[2].split()[:2] == ["iris", "1.0.0"]

    r = berth(capsys, "monitor", "--once", "--server", "local", "--model", "nope", "--interval", "0.25")
    assert r.code == 1 and r.out == "" and r.err.strip() == (
        "berth: model 'nope' is not running on local; see `berth status`")


def test_unknown_server_and_bad_interval(capsys):
    r = berth(capsys, "monitor", "--once", "--server", "nowhere")
    assert r.code == 1 and r.out == "" and len(r.err.strip().splitlines()) == 1
    assert r.err.startswith("berth: no server named 'nowhere'")
    r = berth(capsys, "monitor", "--once", "--interval", "0.1")
    assert r.code == 2 and "0.25 to 60" in r.err


def test_once_json_over_ssh(capsys, sshd, tmp_path):
    r = berth(capsys, "server", "add", "box", "--host", sshd.host, "--port", sshd.port, "--user", sshd.user,
              "--key", sshd.key_path, "--root", tmp_path / "root", "--accept-host-key", sshd.fingerprint)
    assert r.code == 0, r
    r = berth(capsys, "monitor", "--once", "--json", "--interval", "0.25")  # every server: local and box
    assert r.code == 0, r
    by_server = {s["server"]: s for s in r.json()}
    assert set(by_server) == {"local", "box"}
    box = by_server["box"]
    assert box["memory"]["total"] == by_server["local"]["memory"]["total"]  # the same machine
    assert box["interval_s"] == pytest.approx(0.25, abs=0.15) and box["models"] == {}


def test_live_json_lines_until_ctrl_c(iris_on_local, berth_home):
    env = dict(os.environ, BERTH_HOME=str(berth_home), PYTHONPATH=str(REPO))
    proc = subprocess.Popen([sys.executable, "-m", "app", "monitor", "--json", "--server", "local",
                             "--interval", "0.25"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
                            cwd=REPO, text=True)
    try:
        lines = [json.loads(proc.stdout.readline()) for _ in range(4)]
        assert [x["server"] for x in lines] == ["local"] * 4 and all("iris" in x["models"] for x in lines)
        ts = [x["ts"] for x in lines]
        assert all(0.1 < b - a < 1.0 for a, b in zip(ts[1:], ts[2:])), ts
        proc.send_signal(signal.SIGINT)
        started = time.monotonic()
        assert proc.wait(timeout=10) == 130  # issue 13: Ctrl-C ends monitor with 130, as shells report it
        assert time.monotonic() - started < 3
        assert "Traceback" not in proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
        proc.stderr.close()
