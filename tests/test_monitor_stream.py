"""Sample streams on real parts: LocalSampler against a real runner (and against the agent's own
sampler), and a SampleStream over a loopback sshd that is restarted under it."""
import math
import queue
import threading
import time

import psutil
import pytest

from agent_kit import http_json
from app.deploy import queries
from app.deploy.changes import run_to_end
from app.deploy.deploy import Deploy
from app.monitor.history import History
from app.monitor.local_sampler import LocalSampler
from app.monitor.stream import SampleStream, open_source
from app.workspace import Workspace
from cli_kit import iris_copy
from session_kit import session_pids

IRIS_INPUT = {"features": [5.1, 3.5, 1.4, 0.2]}


def wait_for(predicate, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def monitor_threads():
    return [t for t in threading.enumerate() if t.name.startswith("berth-monitor")]


def deploy_iris_local(tmp_path):
    ws = Workspace()
    with ws.connect("local") as t:
        run_to_end(Deploy(t, iris_copy(tmp_path), ws.audit).run())
        return queries.status(t)[0]


def test_local_sampler_sees_the_host_and_a_running_model(tmp_path, stop_local_runners):
    status = deploy_iris_local(tmp_path)
    sampler = LocalSampler(stop_local_runners)
    first = sampler.sample()
    for _ in range(20):
        assert http_json(status["port"], "POST", "/predict", IRIS_INPUT)[0] == 200
    time.sleep(0.3)
    s = sampler.sample()

    host = s["host"]
    assert 0 <= host["cpu_percent"] <= 100 and len(host["cpu_per_core"]) == psutil.cpu_count()
    assert 0 < host["memory"]["used"] < host["memory"]["total"] == psutil.virtual_memory().total
    assert host["memory"]["used"] + host["memory"]["available"] == host["memory"]["total"]
    assert len(host["load"]) == 3 and host["disk"]["path"] == str(stop_local_runners)
    assert 0 < host["disk"]["used"] < host["disk"]["total"]
    assert first["interval_s"] == 1.0 and 0.25 <= s["interval_s"] < 5

    iris = s["models"]["iris"]
    assert (iris["pid"], iris["version"]) == (status["pid"], "1.0.0")
    assert iris["rss_bytes"] > 5_000_000
    assert abs(iris["rss_bytes"] - psutil.Process(status["pid"]).memory_info().rss) < 5_000_000
    assert iris["threads"] >= 1 and iris["open_files"] >= 3 and 0 < iris["uptime_s"] < 600
    assert iris["cpu_percent"] >= 0
    # our 20 requests were counted (the health check's example apart); the 20 fall in this interval
    assert iris["requests_total"] == 20 and iris["errors_total"] == 0
    assert iris["requests_per_s"] == pytest.approx(20 / s["interval_s"], rel=0.05)
    assert iris["latency_ms"]["window"] == "interval" and 0 < iris["latency_ms"]["p50"] <= iris["latency_ms"]["p99"]
    assert sum(iris["histogram"]) == 20

    # the agent's own sampler, on the same root, says the same things about the same runner
    with Workspace().connect("local") as t:
        with t.stream("sample", {"interval": 0.25, "count": 1}) as stream:
            agent = [e for e in stream if e["event"] == "sample"][0]
    assert agent["host"]["memory"]["total"] == host["memory"]["total"]
    assert agent["host"]["disk"]["total"] == host["disk"]["total"]
    assert agent["models"]["iris"]["pid"] == iris["pid"]
    assert agent["models"]["iris"]["requests_total"] == iris["requests_total"]
    assert abs(agent["models"]["iris"]["rss_bytes"] - iris["rss_bytes"]) < 0.2 * iris["rss_bytes"]

    # stopped: the model is absent from the next sample (the graphs show a gap)
    with Workspace().connect("local") as t:
        t.agent("stop", {"model": "iris"})
    assert "iris" not in sampler.sample()["models"]


def test_local_stream_follows_the_interval_and_stops_cleanly(tmp_path, stop_local_runners):
    deploy_iris_local(tmp_path)
    got, states = [], []
    s = SampleStream("local", open_source("local"), 0.25, got.append, lambda *a: states.append(a[1:]))
    with pytest.raises(ValueError):
        s.set_interval(0.1)
    s.start()
    wait_for(lambda: len(got) >= 5, 10, "five samples")
    assert all(x["server"] == "local" and "iris" in x["models"] for x in got)
    assert ("live", "") in states
    s.set_interval(0.5)
    n = len(got)
    wait_for(lambda: len(got) >= n + 4, 10, "samples at the new interval")
    later = [x["ts"] for x in got[n + 1:]]
    steps = [b - a for a, b in zip(later, later[1:])]
    assert all(0.4 < d < 0.9 for d in steps), steps
    started = time.monotonic()
    s.stop()
    assert time.monotonic() - started < 2 and not s.is_alive() and not monitor_threads()
    assert states[-1] == ("stopped", "") and ("reconnecting",) not in [x[:1] for x in states]
    n = len(got)
    # its thread is gone (above), and every sample it took reached on_sample: none was in flight
    assert len(got) == n == s.samples  # nothing after stop()


def agent_samplers(root):
    out = []
    for p in psutil.process_iter(["cmdline"]):
        cmd = " ".join(p.info["cmdline"] or [])
        if str(root) in cmd and "agent.py" in cmd and "sample" in cmd:
            out.append(p)
    return out


def test_stream_over_ssh_survives_an_sshd_restart_and_records_the_gap(box, tmp_path):
    srv, root = box
    ws = Workspace()
    with ws.connect("box") as t:
        run_to_end(Deploy(t, iris_copy(tmp_path), ws.audit).run())
    threads_before = threading.active_count()
    inbox: queue.Queue = queue.Queue()
    states = []
    opener, failed_opens = open_source("box"), []

    def counted_opener():  # each attempt to connect that fails, counted
        try:
            return opener()
        except Exception:
            failed_opens.append(time.monotonic())
            raise

    s = SampleStream("box", counted_opener, 0.25, lambda x: inbox.put(("sample", x)),
                     lambda server, state, detail: states.append((state, detail)),
                     on_gap=lambda server, ts: inbox.put(("gap", (server, ts))))
    history = History(tmp_path / "monitor.sqlite")
    samples = []

    def drain():
        while True:
            try:
                kind, value = inbox.get_nowait()
            except queue.Empty:
                return len(samples)
            if kind == "sample":
                samples.append(value)
                history.add(value)
            else:
                history.gap(*value)

    try:
        s.start()
        wait_for(lambda: drain() >= 4, 30, "samples over SSH")
        assert all(x["server"] == "box" and "iris" in x["models"] for x in samples)
        assert states[0] == ("live", "")
        assert not agent_samplers(root) and len(session_pids(root)) == 1  # the samples ride the session

        # the host goes away: every session dies with the listener (a reboot, a crash)
        for child in psutil.Process(srv.proc.pid).children(recursive=True):
            child.kill()
        srv.stop()
        wait_for(lambda: any(st == "reconnecting" for st, _ in states), 15, "reconnecting")
        before = drain()
        last_before = samples[-1]["ts"]
        failed = len(failed_opens)
        wait_for(lambda: len(failed_opens) > failed, 15, "one more failed attempt")  # no spinning, nothing delivered
        assert drain() == before
        assert [st for st, _ in states].count("live") == 1

        srv.start()
        wait_for(lambda: [st for st, _ in states].count("live") == 2, 40, "live again")
        wait_for(lambda: drain() >= before + 3, 20, "samples after the restart")
        assert states[-1] == ("live", "") and states[1][0] == "reconnecting" and states[1][1]
        assert len(s.gaps) == 1 and last_before <= s.gaps[0] <= samples[before]["ts"]
    finally:
        started = time.monotonic()
        s.stop()
        stopped_in = time.monotonic() - started
        drain()
    assert stopped_in < 3 and not s.is_alive() and not monitor_threads()
    wait_for(lambda: threading.active_count() <= threads_before, 10, "paramiko's threads to end")
    wait_for(lambda: not session_pids(root), 10, "the server's agent session to end with the connection")

    history.flush()
    ts, vals = history.series("box", "iris", "rss_bytes", samples[0]["ts"] - 1, samples[-1]["ts"] + 1, resolution="raw")
    breaks = [t for t, v in zip(ts, vals) if math.isnan(v)]
    assert len(breaks) == 1 and last_before < breaks[0] < samples[before]["ts"]
    assert len([v for v in vals if not math.isnan(v)]) == len(samples)
    history.close()


def test_a_server_that_never_answers_backs_off_without_spinning(tmp_path):
    calls = []

    def unreachable():
        calls.append(time.monotonic())
        raise ConnectionRefusedError("connection refused")

    states = []
    s = SampleStream("gone", unreachable, 1.0, None, lambda *a: states.append(a[1:])).start()
    time.sleep(3.6)
    s.stop()
    assert not s.is_alive() and not monitor_threads()
    gaps = [b - a for a, b in zip(calls, calls[1:])]
    assert len(calls) == 3 and gaps[0] == pytest.approx(1, abs=0.3) and gaps[1] == pytest.approx(2, abs=0.3), gaps
    assert states[0] == ("reconnecting", "connection refused") and states[-1] == ("stopped", "")
    assert s.gaps == []  # never live: nothing to break


def test_a_silent_connection_counts_as_broken(box):
    """A suspended laptop or a dead TCP connection sends nothing and resets nothing: after stall_s
    without a line the stream is given up and opened again."""
    srv, root = box
    got, states = [], []
    s = SampleStream("box", open_source("box"), 0.25, got.append, lambda *a: states.append(a[1]), stall_s=2.0)
    frozen = []
    try:
        s.start()
        wait_for(lambda: len(got) >= 2, 30, "samples")
        for child in psutil.Process(srv.proc.pid).children(recursive=True):
            child.suspend()  # the session and its agent stop answering; the TCP connection stays up
            frozen.append(child)
        n = len(got)
        wait_for(lambda: "reconnecting" in states, 10, "the stall to be noticed")
        wait_for(lambda: states.count("live") == 2 and len(got) >= n + 2, 30, "samples on a new connection")
        assert len(s.gaps) == 1
    finally:
        for p in frozen:
            try:
                p.resume()
            except psutil.NoSuchProcess:
                pass
        s.stop()
    assert not s.is_alive() and not monitor_threads()
    wait_for(lambda: not agent_samplers(root), 15, "every sampler on the server to exit")
