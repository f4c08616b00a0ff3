"""The agent on a local disk: deploy, serve, switch, roll back, and every way a deploy can fail
while the previous release keeps serving."""
import json
import time
import os

import pytest

from agent_kit import call, deploy, deploy_request, http_json, make_bundle, stop_all
from app.agent.layout import Root
from app.agent.lock import ServerLock


@pytest.fixture
def root(tmp_path):
    r = tmp_path / "srv root 'quoted'"
    yield r
    stop_all(r)


def status_of(root, model="echo"):
    result, error, _ = call(root, "status")
    assert error is None
    return {s["model"]: s for s in result["models"]}.get(model)


def test_deploy_serves_and_second_version_switches(root, tmp_path):
    result, error, events = deploy(root, make_bundle(tmp_path / "v1"))
    assert error is None, error
    steps = [e["step"] for e in events if e["event"] == "step"]
    assert steps[:2] == ["assemble", "assemble"] or steps[0] == "assemble"
    for s in ("venv", "start", "health", "switch", "prune"):
        assert s in steps
    st = status_of(root)
    assert st["version"] == "1.0.0" and st["state"] == "running"
    code, body = http_json(st["port"], "POST", "/predict", {"a": 1})
    assert code == 200 and body == {"version": "1.0.0", "echo": {"a": 1}}

    result, error, _ = deploy(root, make_bundle(tmp_path / "v2", version="2.0.0"))
    assert error is None and result["previous"] == "1.0.0"
    st2 = status_of(root)
    assert st2["version"] == "2.0.0" and st2["state"] == "running"
    assert http_json(st2["port"], "POST", "/predict", 5)[1]["version"] == "2.0.0"
    assert st2["port"] == st["port"] and st2["release_port"] != st["release_port"]  # the stable port stays
    with pytest.raises(OSError):  # the old runner was stopped after the switch
        http_json(st["release_port"], "GET", "/health")
    assert os.readlink(root / "models/echo/current") == "releases/2.0.0"


def test_rollback_goes_back_to_the_release_before(root, tmp_path):
    deploy(root, make_bundle(tmp_path / "v1"))
    deploy(root, make_bundle(tmp_path / "v2", version="2.0.0"))
    result, error, _ = call(root, "rollback", model="echo")
    assert error is None and (result["previous"], result["version"]) == ("2.0.0", "1.0.0")
    st = status_of(root)
    assert st["version"] == "1.0.0" and st["state"] == "running"
    assert http_json(st["port"], "POST", "/predict", 1)[1]["version"] == "1.0.0"
    releases, _, _ = call(root, "releases", model="echo")
    assert [(r["version"], r["current"]) for r in releases["releases"]] == [("1.0.0", True), ("2.0.0", False)]
    _, error, _ = call(root, "rollback", model="echo", to="1.0.0")
    assert error["code"] == "already_current"
    _, error, _ = call(root, "rollback", model="echo", to="7.7.7")
    assert error["code"] == "no_release" and "1.0.0, 2.0.0" in error["message"]


def test_a_runner_killed_before_it_prints_is_named_by_its_signal(root, tmp_path):
    """Its log holds only the start header: the signal is what tells the operator (or a CI log) why."""
    deploy(root, make_bundle(tmp_path / "v1"))
    killed = make_bundle(tmp_path / "v2", version="2.0.0",
                         model_src="import os, signal\nos.kill(os.getpid(), signal.SIGKILL)\n")
    _, error, _ = deploy(root, killed)
    assert error["code"] == "start_failed", error
    assert "echo 2.0.0 stopped while starting (killed by signal 9 (SIGKILL)): " in error["message"], error["message"]
    assert status_of(root)["version"] == "1.0.0"


def test_model_crashing_at_import_keeps_previous_serving(root, tmp_path):
    deploy(root, make_bundle(tmp_path / "v1"))
    port = status_of(root)["port"]
    broken = make_bundle(tmp_path / "v2", version="2.0.0", model_src='raise RuntimeError("broken on purpose")\n')
    result, error, _ = deploy(root, broken)
    assert result is None
    assert error["code"] == "start_failed"
    assert "broken on purpose" in error["message"]
    assert "stopped while starting (exited with status 1)" in error["message"], error["message"]
    assert any("RuntimeError" in line for line in error["log"])
    st = status_of(root)
    assert st["version"] == "1.0.0" and st["state"] == "running" and st["port"] == port
    assert http_json(port, "POST", "/predict", 1)[0] == 200
    assert not (root / "models/echo/releases/2.0.0").exists()  # a fixed 2.0.0 can be deployed later
    journal = [json.loads(line) for line in (root / "journal.jsonl").read_text().splitlines()]
    assert [(e["action"], e["outcome"], e.get("version")) for e in journal][-2:] == [
        ("deploy", "started", "2.0.0"), ("deploy", "failed", "2.0.0")]
    assert journal[-1]["actor"]["user"] == "tester" and journal[-1]["sha256"]


def test_model_that_cannot_answer_its_example_is_never_switched_in(root, tmp_path):
    deploy(root, make_bundle(tmp_path / "v1"))
    src = "class Model:\n    def predict(self, data):\n        raise ValueError('no good')\n"
    _, error, _ = deploy(root, make_bundle(tmp_path / "v2", version="2.0.0", model_src=src))
    assert error["code"] == "example_failed" and "no good" in error["message"]
    assert status_of(root)["version"] == "1.0.0"


def test_runner_dying_right_after_the_switch_rolls_back_by_itself(root, tmp_path):
    deploy(root, make_bundle(tmp_path / "v1"))
    src = ("import os, threading\n"
           "class Model:\n"
           "    def predict(self, data):\n"
           "        threading.Timer(0.05, os._exit, (3,)).start()\n"
           "        return 1\n")
    _, error, events = deploy(root, make_bundle(tmp_path / "v2", version="2.0.0", model_src=src))
    assert error["code"] == "rolled_back" and "1.0.0 is current again" in error["message"]
    assert any(e.get("step") == "rollback.auto" for e in events)
    st = status_of(root)
    assert st["version"] == "1.0.0" and st["state"] == "running"
    actions = [json.loads(l)["action"] for l in (root / "journal.jsonl").read_text().splitlines()]
    assert "rollback.auto" in actions


def test_same_version_with_other_content_is_refused(root, tmp_path):
    deploy(root, make_bundle(tmp_path / "v1"))
    other = make_bundle(tmp_path / "v1b", model_src="def f(x):\n    return x\nModel = None\n")
    _, error, _ = deploy(root, other)
    assert error["code"] == "version_conflict" and "new version" in error["message"]
    result, error, _ = deploy(root, tmp_path / "v1")  # same content again: nothing to do
    assert error is None and result["already"] is True


def test_second_deploy_while_the_lock_is_held_names_the_holder(root, tmp_path):
    folder = make_bundle(tmp_path / "v1")
    req = deploy_request(root, folder)
    r = Root(str(root)).ensure()
    with ServerLock(r.lock, {"who": "alice@desk", "what": "deploy other 3.0"}):
        _, error, _ = call(root, "deploy", **req)
    assert error["code"] == "locked"
    assert "alice@desk" in error["message"] and "deploy other 3.0" in error["message"] and "since" in error["message"]
    assert status_of(root) is None
    assert call(root, "deploy", **req)[1] is None  # released: the next deploy goes through


def test_stop_and_start(root, tmp_path):
    deploy(root, make_bundle(tmp_path / "v1"))
    assert call(root, "stop", model="echo")[1] is None
    assert status_of(root)["state"] == "stopped"
    result, error, _ = call(root, "start", model="echo")
    assert error is None
    st = status_of(root)
    assert st["state"] == "running" and http_json(st["port"], "GET", "/health")[1]["version"] == "1.0.0"


def test_runner_killed_from_outside_shows_failed(root, tmp_path):
    from app.agent import queries, scheduler

    deploy(root, make_bundle(tmp_path / "v1"))
    pid = status_of(root)["pid"]
    scheduler.stop(Root(str(root)))  # no watchdog (test_watchdog.py has it), and `status` would start it again
    os.kill(pid, 9)
    import time
    model = Root(str(root)).model("echo")
    deadline = time.time() + 5
    while queries.model_status(model)["state"] != "failed" and time.time() < deadline:
        time.sleep(0.05)
    assert queries.model_status(model)["state"] == "failed"


def test_keeps_the_last_five_releases(root, tmp_path):
    for i in range(1, 8):
        _, error, _ = deploy(root, make_bundle(tmp_path / f"v{i}", version=f"{i}.0", example=False))
        assert error is None
    kept = [r["version"] for r in call(root, "releases", model="echo")[0]["releases"]]
    assert kept == ["3.0", "4.0", "5.0", "6.0", "7.0"]


def test_damaged_blob_is_detected_and_removed(root, tmp_path):
    req = deploy_request(root, make_bundle(tmp_path / "v1"))
    blob = root / ".berth/blobs" / req["files"][0]["sha256"]
    blob.write_bytes(b"tampered")
    _, error, _ = call(root, "deploy", **req)
    assert error["code"] == "corrupt_blob" and not blob.exists()
    assert not list((root / "models/echo/releases").iterdir())


@pytest.mark.parametrize("path", ["../evil.py", "/etc/passwd", "a/../../x", "a//b", ""])
def test_file_paths_leaving_the_release_are_refused(root, tmp_path, path):
    req = deploy_request(root, make_bundle(tmp_path / "v1"))
    req["files"][0]["path"] = path
    _, error, _ = call(root, "deploy", **req)
    assert error["code"] == "usage"
    assert not (tmp_path / "evil.py").exists()


@pytest.mark.parametrize("field,value", [("model", "../x"), ("model", "Bad"), ("version", "../../x"), ("version", "a b")])
def test_names_are_validated_by_the_agent_too(root, tmp_path, field, value):
    req = deploy_request(root, make_bundle(tmp_path / "v1"))
    req[field] = value
    _, error, _ = call(root, "deploy", **req)
    assert error["code"] == "usage"


def test_runner_endpoints(root, tmp_path):
    deploy(root, make_bundle(tmp_path / "v1"))
    port = status_of(root)["port"]
    assert http_json(port, "POST", "/predict", {"q": 1})[0] == 200
    from app.agent.health import request
    status, raw = request(port, "POST", "/predict", b"{not json")
    assert status == 400 and b"not valid JSON" in raw
    status, info = http_json(port, "GET", "/info")
    assert info["model"] == "echo" and info["version"] == "1.0.0" and info["manifest"]["entrypoint"] == "model:Model"
    status, metrics = request(port, "GET", "/metrics")
    text = metrics.decode()
    # our 2; the deploy's example check is Berth's, counted apart (issue 13)
    assert 'berth_requests_total{model="echo",version="1.0.0",endpoint="/predict"} 2' in text
    assert 'berth_requests_total{model="echo",version="1.0.0",endpoint="/predict (health check)"} 1' in text
    # the bad JSON was the client's fault: rejected, not a model error
    assert 'berth_request_errors_total{model="echo",version="1.0.0",endpoint="/predict"} 0' in text
    assert 'berth_request_rejected_total{model="echo",version="1.0.0",endpoint="/predict",reason="bad_request"} 1' in text
    assert "process_resident_memory_bytes" in text and 'endpoint="/predict",le="+Inf"} 2' in text
    assert http_json(port, "GET", "/nope")[0] == 404
    log = (root / "models/echo/logs/requests.jsonl").read_text().splitlines()
    assert json.loads(log[-1])["status"] == 400


def test_a_runner_whose_record_was_never_written_is_stopped_by_the_next_change(root, tmp_path):
    """An agent killed between starting a runner and writing its record (a killed SSH session, a
    SIGKILL) left a runner no record names: it held its port and memory for good, since strays were
    found by their records only."""
    import psutil

    from app.agent import supervise

    deploy(root, make_bundle(tmp_path / "v1"))
    deploy(root, make_bundle(tmp_path / "v2", version="2.0.0"))
    model = Root(str(root)).model("echo")
    orphan = supervise.start(model, "1.0.0", str(root / "models/echo/releases/1.0.0"))
    os.unlink(model.runner_file("1.0.0"))  # as if the agent died right after the fork
    assert psutil.pid_exists(orphan["pid"])
    result, error, _ = deploy(root, make_bundle(tmp_path / "v3", version="3.0.0"))
    assert error is None, error
    proc = psutil.Process(orphan["pid"]) if psutil.pid_exists(orphan["pid"]) else None
    assert proc is None or proc.status() == psutil.STATUS_ZOMBIE, proc and proc.cmdline()
    assert status_of(root)["version"] == "3.0.0"


def test_only_a_release_runner_without_a_record_counts_as_unrecorded(root, tmp_path):
    """A replay's runner (its own port file, no record) and another model's are left alone."""
    import subprocess
    import sys

    from app.agent.runnerproc import unrecorded_runners

    deploy(root, make_bundle(tmp_path / "v1"))
    model = Root(str(root)).model("echo")

    def looks_like_runner(port_file, release=model.release("1.0.0")):
        return subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", "-m", "app.agent.runner",
                                 "--release", release, "--port-file", port_file])

    procs = {"replay": looks_like_runner(os.path.join(model.run, "replay-1.0.0.port")),
             "other model": looks_like_runner(str(root / "models/other/run/1.0.0.port"),
                                              str(root / "models/other/releases/1.0.0")),
             "orphan": looks_like_runner(model.port_file("1.0.0"), model.release("1.0.0"))}
    try:
        time.sleep(0.3)
        assert unrecorded_runners(model) == {}  # 1.0.0 has its record: the look-alike is not an orphan
        os.rename(model.runner_file("1.0.0"), model.runner_file("1.0.0") + ".away")
        found = unrecorded_runners(model)
        assert procs["orphan"].pid in found and found[procs["orphan"].pid] == "1.0.0"
        assert procs["replay"].pid not in found and procs["other model"].pid not in found
        os.rename(model.runner_file("1.0.0") + ".away", model.runner_file("1.0.0"))
    finally:
        for p in procs.values():
            p.kill()
            p.wait()


def test_a_runner_this_process_started_is_alive_until_it_exits_whatever_proc_says(root, tmp_path, monkeypatch):
    """Issue 23: at load ~15 a runner that went on to serve was taken for dead a moment after it was
    started (`/proc` read as "not our runner"), and the failed deploy's clean-up then stopped it.
    For our own child only its exit counts; a record naming another release still asks /proc."""
    import signal

    from app.agent import supervise

    deploy(root, make_bundle(tmp_path / "v1"))
    model = Root(str(root)).model("echo")
    release = str(root / "models/echo/releases/1.0.0")
    supervise.stop(model, "1.0.0")
    rec = supervise.start(model, "1.0.0", release)
    monkeypatch.setattr(supervise, "is_runner_process", lambda pid, release: False)  # /proc misreads
    assert supervise.alive(rec), "a live child was judged by /proc"
    assert not supervise.alive(dict(rec, release=str(root / "elsewhere"))), "another release's record is ours"
    os.kill(rec["pid"], signal.SIGKILL)
    deadline = time.monotonic() + 10
    while supervise.alive(rec) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not supervise.alive(rec) and supervise.exit_status(rec["pid"]) == -signal.SIGKILL
