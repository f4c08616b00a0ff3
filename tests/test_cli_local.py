"""The command line against the built-in `local` server, end to end with real runners."""
import json
import os
import tarfile

import pytest

from cli_kit import berth, break_model, iris_copy, iris_input


@pytest.fixture
def stop_runners(berth_home):
    yield
    from agent_kit import stop_all
    stop_all(berth_home / "local")


def current_version(capsys, model="iris"):
    rows = berth(capsys, "status", "--server", "local", "--json").json()
    return {r["model"]: r for r in rows}[model]


def test_lifecycle_on_local(capsys, tmp_path, stop_runners):
    r = berth(capsys, "deploy", iris_copy(tmp_path), "--server", "local")
    assert r.code == 0, r
    assert "Uploading" in r.err and "Health check" in r.err and "is current on local" in r.out
    r = berth(capsys, "predict", "iris", "--server", "local", "--input", iris_input())
    assert r.code == 0, r
    out = json.loads(r.out)
    assert [o["class"] for o in out] == ["setosa", "versicolor", "virginica"]
    assert r.err == ""  # stdout carries JSON only, stderr nothing

    assert berth(capsys, "deploy", iris_copy(tmp_path, "1.1.0"), "--server", "local").code == 0
    rel = berth(capsys, "releases", "iris", "--server", "local", "--json").json()
    assert [(x["version"], x["current"]) for x in rel] == [("1.0.0", False), ("1.1.0", True)]
    assert set(rel[0]) == {"server", "version", "current", "sha256", "deployed_at", "training", "requirements",
                       "profile"}
    assert len(rel[0]["sha256"]) == 64 and rel[0]["training"]["metrics"]["accuracy"] == 0.9333
    assert rel[0]["requirements"] == []  # the iris example needs nothing but the standard library
    assert {x["server"] for x in rel} == {"local"}

    r = berth(capsys, "rollback", "iris", "--server", "local")
    assert r.code == 0 and "1.1.0 -> 1.0.0" in r.out, r
    row = current_version(capsys)
    assert (row["version"], row["state"]) == ("1.0.0", "running") and row["server"] == "local"
    assert set(row) == {"server", "model", "version", "state", "port", "release_port", "pid", "jobs", "alerts_firing",
                        "experiment"}
    assert row["jobs"] == [] and row["alerts_firing"] == 0 and row["port"] != row["release_port"]

    assert berth(capsys, "stop", "iris", "--server", "local").code == 0
    assert current_version(capsys)["state"] == "stopped"
    r = berth(capsys, "predict", "iris", "--server", "local", "--input", iris_input())
    assert r.code == 1 and "stopped" in r.err and "berth start iris" in r.err
    assert berth(capsys, "start", "iris", "--server", "local").code == 0
    assert current_version(capsys)["state"] == "running"
    assert current_version(capsys)["port"] == row["port"]  # the stable port outlives stop/start

    events = berth(capsys, "audit", "list", "--json").json()
    actions = [(e["action"], e["outcome"], e["version"]) for e in reversed(events)]
    assert actions == [("deploy", "started", "1.0.0"), ("deploy", "ok", "1.0.0"),
                       ("deploy", "started", "1.1.0"), ("deploy", "ok", "1.1.0"),
                       ("rollback", "started", ""), ("rollback", "ok", "1.0.0"),
                       ("stop", "started", ""), ("stop", "ok", "1.0.0"), ("start", "started", ""), ("start", "ok", "1.0.0")]
    # each outcome names its started event; the local server's journal (imported by `status`) adds no copies
    by_id = {e["id"]: e for e in events}
    assert all(by_id[e["ref"]]["outcome"] == "started" for e in events if e["outcome"] == "ok")
    assert all(e["state"] == e["outcome"] for e in events)  # nothing interrupted
    rollback = next(e for e in events if e["action"] == "rollback" and e["outcome"] == "ok")
    assert (rollback["old"], rollback["new"]) == ("1.1.0", "1.0.0")
    assert all(e["server"] == "local" and e["model"] == "iris" and "@" in e["actor"] for e in events)
    assert len(events[-1]["sha256"]) == 64
    assert berth(capsys, "audit", "verify").code == 0


def test_model_raising_at_import_fails_and_previous_answers(capsys, tmp_path, stop_runners):
    assert berth(capsys, "deploy", iris_copy(tmp_path), "--server", "local").code == 0
    r = berth(capsys, "deploy", break_model(iris_copy(tmp_path, "2.0.0")), "--server", "local")
    assert r.code == 1
    last = r.err.strip().splitlines()[-1]
    assert last.startswith("berth: ") and "broken on purpose" in last, r
    assert berth(capsys, "predict", "iris", "--server", "local", "--input", iris_input()).code == 0
    assert current_version(capsys)["version"] == "1.0.0"
    failed = [e for e in berth(capsys, "audit", "list", "--json").json() if e["outcome"] == "failed"]
    assert failed and failed[0]["action"] == "deploy" and failed[0]["version"] == "2.0.0"
    assert "broken on purpose" in failed[0]["detail"]


def test_deploy_from_a_packed_archive(capsys, tmp_path, stop_runners):
    archive = tmp_path / "iris.tar.gz"
    assert berth(capsys, "bundle", "pack", iris_copy(tmp_path), "-o", archive).code == 0
    r = berth(capsys, "deploy", archive, "--server", "local")
    assert r.code == 0, r
    assert current_version(capsys)["state"] == "running"


def test_hostile_archive_is_refused_before_anything_reaches_the_server(capsys, tmp_path, berth_home):
    evil = tmp_path / "evil.tar.gz"
    with tarfile.open(evil, "w:gz") as tar:
        tar.add(iris_copy(tmp_path) / "berth.toml", arcname="berth.toml")
        info = tarfile.TarInfo("../../escaped.txt")
        info.size = 0
        import io
        tar.addfile(info, io.BytesIO(b""))
    r = berth(capsys, "deploy", evil, "--server", "local")
    assert r.code == 1 and ".." in r.err.splitlines()[-1], r
    assert not (tmp_path.parent / "escaped.txt").exists()
    assert not (berth_home / "local" / "models").exists() or not any((berth_home / "local" / "models").iterdir())
    assert berth(capsys, "audit", "list", "--json").json()[0]["outcome"] == "failed"


def test_python_requirement_is_checked_before_upload(capsys, tmp_path, berth_home):
    folder = iris_copy(tmp_path)
    toml = folder / "berth.toml"
    text = toml.read_text()
    import re
    text = re.sub(r'(?m)^python\s*=.*$', "", text).replace("[model]\n", '[model]\npython = ">=4.0"\n', 1)
    toml.write_text(text)
    r = berth(capsys, "deploy", folder, "--server", "local")
    assert r.code == 1 and "needs Python >=4.0" in r.err, r
    blobs = berth_home / "local" / ".berth" / "blobs"
    assert not blobs.exists() or not any(blobs.iterdir())


def test_usage_and_failures_have_their_exit_codes(capsys, tmp_path):
    assert berth(capsys, "deploy").code == 2
    assert berth(capsys, "frobnicate").code == 2
    r = berth(capsys, "status", "--server", "nowhere")
    assert r.code == 1 and "no server named 'nowhere'" in r.err
    r = berth(capsys, "predict", "iris", "--server", "local", "--input", "{bad")
    assert r.code == 1 and "not valid JSON" in r.err
    r = berth(capsys, "predict", "iris", "--server", "local", "--input", "@/nonexistent.json")
    assert r.code == 1 and "cannot read the input file" in r.err
    r = berth(capsys, "rollback", "iris", "--server", "local")
    assert r.code == 1 and "no current release" in r.err
    r = berth(capsys, "deploy", tmp_path / "missing", "--server", "local")
    assert r.code == 1 and r.err.count("\n") >= 1


def test_bundle_commands(capsys, tmp_path):
    r = berth(capsys, "bundle", "init", tmp_path / "mine", "--name", "my-model")
    assert r.code == 0, r
    r = berth(capsys, "bundle", "check", tmp_path / "mine")
    assert r.code == 0 and "ok: my-model" in r.out, r
    (tmp_path / "mine" / "berth.toml").write_text('[model]\nname = "Bad Name"\nversion = "1"\n')
    r = berth(capsys, "bundle", "check", tmp_path / "mine")
    assert r.code == 1
    assert "berth.toml:2: model.name" in r.err and "model.entrypoint" in r.err, r
    checks = berth(capsys, "audit", "list", "--action", "bundle.check", "--json").json()
    assert [(e["outcome"], e["model"]) for e in checks] == [("failed", ""), ("ok", "my-model")]
    assert "model.name" in checks[0]["detail"]
    a, b = tmp_path / "a.tar.gz", tmp_path / "b.tar.gz"
    assert berth(capsys, "bundle", "pack", iris_copy(tmp_path), "-o", a).code == 0
    assert berth(capsys, "bundle", "pack", iris_copy(tmp_path, folder="again"), "-o", b).code == 0
    assert a.read_bytes() == b.read_bytes()


def test_server_list_always_has_local(capsys):
    rows = berth(capsys, "server", "list", "--json").json()
    assert rows[0]["name"] == "local" and rows[0]["kind"] == "local"


def test_automatic_rollback_is_audited(capsys, tmp_path, stop_runners):
    assert berth(capsys, "deploy", iris_copy(tmp_path), "--server", "local").code == 0
    dying = iris_copy(tmp_path, "2.0.0")
    model = dying / "model.py"
    model.write_text(model.read_text() + "\n\nimport os as _os, threading as _th\n"
                     "_real = Model.predict\n"
                     "def _predict_then_die(self, data):\n"
                     "    _th.Timer(0.05, _os._exit, (3,)).start()\n"
                     "    return _real(self, data)\n"
                     "Model.predict = _predict_then_die\n")
    r = berth(capsys, "deploy", dying, "--server", "local")
    assert r.code == 1 and "1.0.0 is current again" in r.err, r
    assert current_version(capsys)["version"] == "1.0.0"
    assert berth(capsys, "predict", "iris", "--server", "local", "--input", iris_input()).code == 0
    events = [(e["action"], e["outcome"]) for e in berth(capsys, "audit", "list", "--json").json()]
    assert events[:2] == [("rollback.auto", "ok"), ("deploy", "failed")]


def test_set_port_and_prometheus_targets(capsys, tmp_path, stop_runners):
    import socket

    assert berth(capsys, "deploy", iris_copy(tmp_path), "--server", "local").code == 0
    before = current_version(capsys)["port"]
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen(1)
        busy = squatter.getsockname()[1]
        r = berth(capsys, "server", "set-port", "iris", str(busy), "--server", "local")
        assert r.code == 1 and r.out == "" and len(r.err.strip().splitlines()) == 1, r
        assert f"port {busy} is in use by another process (pid " in r.err and "choose another" in r.err
    assert current_version(capsys)["port"] == before
    r = berth(capsys, "server", "set-port", "iris", str(busy), "--server", "local", "--reason", "CHG-7")
    assert r.code == 0 and f"iris on local: port {before} -> {busy}; iris 1.0.0 restarted on it" in r.out, r
    assert current_version(capsys)["port"] == busy
    r = berth(capsys, "predict", "iris", "--server", "local", "--input", iris_input())
    assert r.code == 0, r
    r = berth(capsys, "status", "--server", "local", "--prometheus-targets")
    assert r.code == 0 and r.json() == [{"targets": [f"127.0.0.1:{busy}"],
                                        "labels": {"berth_server": "local", "berth_model": "iris"}}], r
    events = berth(capsys, "audit", "list", "--json").json()
    assert [(e["action"], e["outcome"], e["reason"]) for e in events[:2]] == \
        [("port.set", "ok", "CHG-7"), ("port.set", "started", "CHG-7")]


def test_set_port_range_checks_the_range_and_the_ports_models_have(capsys, tmp_path, stop_runners, berth_home):
    for bad, said in (("18999-18000", "18999 is above 18000"), ("80-2000", "from 1024 to 65535"),
                      ("18000-70000", "from 1024 to 65535"), ("18000", "give it as LOW-HIGH"),
                      ("a-b", "give it as LOW-HIGH"), ("18000-18999-19000", "give it as LOW-HIGH")):
        r = berth(capsys, "server", "set-port-range", "local", bad)
        assert r.code == 2 and said in r.err, (bad, r)  # refused before connecting
    assert berth(capsys, "deploy", iris_copy(tmp_path), "--server", "local").code == 0
    port = current_version(capsys)["port"]
    outside = f"{port + 1}-{port + 10}" if port < 65000 else "1024-2000"
    r = berth(capsys, "server", "set-port-range", "local", outside, "--reason", "CHG-8")
    assert r.code == 1 and f"leaves out ports models already have: iris {port}" in r.err, r
    assert len(r.err.strip().splitlines()) == 1
    r = berth(capsys, "server", "set-port-range", "local", f"{port}-{port + 10}", "--reason", "CHG-8")
    before = os.environ.get("BERTH_PORT_RANGE", "18000-18999")  # a pytest-xdist worker's own (tests/conftest.py)
    assert r.code == 0 and f"local: port range {before} -> {port}-{port + 10}" in r.out, r
    assert json.loads((berth_home / "local" / "serving.json").read_text()) == {"port_range": f"{port}-{port + 10}"}
    r = berth(capsys, "server", "check", "local")
    assert r.code == 0 and f"stable ports from: {port}-{port + 10}" in r.out, r
    events = berth(capsys, "audit", "list", "--json").json()
    assert [(e["action"], e["outcome"], e["reason"]) for e in events[:4]] == \
        [("port_range.set", "ok", "CHG-8"), ("port_range.set", "started", "CHG-8"),
         ("port_range.set", "failed", "CHG-8"), ("port_range.set", "started", "CHG-8")]
