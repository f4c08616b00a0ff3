"""Container releases on each real engine, Docker and Podman (tests/container_kit.py; one engine
fixture, parametrised, so each test runs on both): detection, an image built on the server from the
release, the container run behind the model's stable port, rollback to the previous image without
a rebuild, a failed build, a container that exits at start, a container killed from outside, bad
image names and a base image that does not exist. Podman's runs are `slow` (importing the base
image alone takes 10-20 s, the lifecycle about 50 s: no daemon, each call a new process)."""
from __future__ import annotations

import json
import re
import os
import time

import pytest

from agent_kit import call, deploy_request, http_json, make_bundle, stop_all
from container_kit import BASE_IMAGE, engine as make_engine, missing


def _param(kind, *marks):
    return pytest.param(kind, id=kind, marks=[pytest.mark.skipif(missing(kind) is not None,
                                                                 reason=missing(kind) or ""), *marks])


each_engine = pytest.mark.parametrize("engine", [_param("docker"), _param("podman", pytest.mark.slow)],
                                      indirect=True)


@pytest.fixture(scope="module")
def engine(request):
    d = make_engine(request.param)
    old = {k: os.environ.get(k) for k in d.env}
    try:
        d.start()
        os.environ.update(d.env)  # the agent runs in-process: it finds the daemon as a server's SSH session would
        yield d
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        d.stop()


@pytest.fixture
def root(tmp_path, engine):
    r = tmp_path / "root"
    result, error, _ = call(r, "container_set", engine=engine.path, base_image=BASE_IMAGE, build_network="none")
    assert error is None, error
    yield r
    stop_all(r)


def container_request(root, folder):
    req = deploy_request(root, folder)
    import tomllib

    serve = tomllib.loads((folder / "berth.toml").read_text()).get("serve", {})
    req["manifest"].update({k: v for k, v in serve.items() if k in ("runtime", "image", "memory", "cpus")})
    req["manifest"]["runtime"] = "container"
    return req


def bundle(tmp_path, version, extra="", **kw):
    return make_bundle(tmp_path / f"b{version}", version=version, extra_toml=extra, **kw)


def deploy(root, folder):
    return call(root, "deploy", **container_request(root, folder))


VERSION = {"docker": "20.", "podman": "4."}  # Debian 12's


def containers(engine, *filters):
    args = ["ps", "-a", "--format", "{{.Names}} {{.Image}} {{.Status}}"] + [f"--filter={f}" for f in filters]
    return [line for line in engine.cli(*args).stdout.splitlines() if line.startswith("berth-")]


def images(engine, repository):
    """name:tag of a repository's images; podman's local names are localhost/<name>."""
    out = engine.cli("images", "--format", "{{.Repository}}:{{.Tag}}", repository).stdout.split()
    return sorted(name.removeprefix("localhost/") for name in out)


@each_engine
def test_detection_reports_the_engine_and_a_missing_one(tmp_path, engine):
    r = tmp_path / "root"
    call(r, "container_set", engine=engine.path)
    found, error, _ = call(r, "container_check")
    assert error is None and found["engine"] == engine.kind and found["usable"], found
    assert found["version"].startswith(VERSION[engine.kind])
    assert found.get("rootless") is (False if engine.kind == "podman" else None)  # root here
    listed = found["engines"]  # every engine on the server, the one releases use first (the console's list)
    assert listed[0] == {k: v for k, v in found.items() if k not in ("settings", "engines")}, listed
    assert {e["engine"] for e in listed} == {"docker", "podman"} and all("detail" in e for e in listed)
    assert len({os.path.realpath(e["path"]) for e in listed}) == len(listed)  # each binary once (here: 2 dockers)
    # an engine this user cannot reach: docker's socket elsewhere; podman's storage in a folder it may not make
    broken = {"docker": {"DOCKER_HOST": "unix:///nonexistent/docker.sock"},
              "podman": {"CONTAINERS_CONF": str(tmp_path / "no-such-containers.conf")}}[engine.kind]
    os.environ.update(broken)
    try:
        found, _, _ = call(r, "container_check")
    finally:
        os.environ.update(engine.env)
    assert found["usable"] is False and f"may not use {engine.kind}" in found["detail"], found
    call(r, "container_set", engine=f"/nonexistent/{engine.kind}")
    found, _, _ = call(r, "container_check")
    assert found["usable"] is False and "not an executable file" in found["detail"]


@each_engine
def test_lifecycle_deploy_predict_deploy_v2_rollback_and_a_killed_container(root, tmp_path, engine):
    result, error, events = deploy(root, bundle(tmp_path, "1.0.0"))
    assert error is None, error
    port = result["port"]
    built = [e["line"] for e in events if e.get("event") == "log" and e.get("step") == "build"]
    assert any(re.search(r"Successfully tagged (localhost/)?berth/echo:1\.0\.0", line) for line in built), built[-5:]
    assert http_json(port, "POST", "/predict", {"x": 1}) == (200, {"version": "1.0.0", "echo": {"x": 1}})

    labels = json.loads(engine.cli("inspect", "--format", "{{json .Config.Labels}}", "berth/echo:1.0.0").stdout)
    assert labels["berth.bundle.sha256"] == result["sha256"] and labels["berth.deployed_by"] == "tester@testhost"
    assert labels["org.opencontainers.image.version"] == "1.0.0"
    host = json.loads(engine.cli("inspect", "--format", "{{json .HostConfig}}", "berth-echo-1.0.0").stdout)
    assert host["ReadonlyRootfs"] and "no-new-privileges" in host["SecurityOpt"] and host["NetworkMode"] == "bridge"
    assert host["RestartPolicy"]["Name"] == "unless-stopped"
    bound = [b["HostIp"] for binding in host["PortBindings"].values() for b in binding]
    assert bound == ["127.0.0.1"]

    result, error, _ = deploy(root, bundle(tmp_path, "2.0.0", extra='memory = "256m"\ncpus = 0.5\n'))
    assert error is None, error
    listed, _, _ = call(root, "releases", model="echo")  # what the console's model page shows
    row = listed["releases"][-1]
    assert (row["image"], row["manifest"]["runtime"], row["manifest"]["memory"], row["manifest"]["cpus"]) == (
        "berth/echo:2.0.0", "container", "256m", 0.5), row
    assert result["port"] == port and http_json(port, "POST", "/predict", {"x": 2})[1]["version"] == "2.0.0"
    assert [c.split()[0] for c in containers(engine)] == ["berth-echo-2.0.0"]  # v1's was stopped and removed
    host = json.loads(engine.cli("inspect", "--format", "{{json .HostConfig}}", "berth-echo-2.0.0").stdout)
    assert host["Memory"] == 256 * 1024 * 1024 and host["NanoCpus"] == 500_000_000

    t0 = time.monotonic()
    result, error, events = call(root, "rollback", model="echo")
    assert error is None, error
    assert not [e for e in events if e.get("step") == "build"]  # the old image, no rebuild
    assert time.monotonic() - t0 < 30
    assert http_json(port, "POST", "/predict", {"x": 3})[1]["version"] == "1.0.0"

    # killed from outside: the restart policy brings it back on the same port, the stable port answers again
    pid = int(engine.cli("inspect", "--format", "{{.State.Pid}}", "berth-echo-1.0.0").stdout)
    os.kill(pid, 9)
    deadline = time.monotonic() + 30
    while True:
        try:
            status, body = http_json(port, "POST", "/predict", {"x": 4})
            if status == 200:
                break
        except OSError:
            pass
        assert time.monotonic() < deadline, "the killed container did not come back"
        time.sleep(0.2)
    restarts = engine.cli("inspect", "--format", "{{.RestartCount}}", "berth-echo-1.0.0").stdout.strip()
    assert restarts == "1" and body["version"] == "1.0.0"

    # the monitoring sample has the container's CPU and memory
    deadline = time.monotonic() + 10
    while True:  # the host runner finds the restarted container's new pid within a second or two
        _, error, events = call(root, "sample", interval=0.25, count=2)
        assert error is None, error
        figures = events[-1]["models"]["echo"]
        if figures.get("container", {}).get("running") or time.monotonic() > deadline:
            break
    assert figures["version"] == "1.0.0" and figures["container"]["running"], figures
    assert figures["container"]["rss_bytes"] > 5_000_000 and figures["rss_bytes"] > figures["container"]["rss_bytes"]

    # a pruned release's image goes with it; the previous one stays for a rollback
    req = container_request(root, bundle(tmp_path, "3.0.0"))
    result, error, _ = call(root, "deploy", **dict(req, keep=1))
    assert error is None and result["pruned"] == ["2.0.0"], (result, error)
    assert images(engine, "berth/echo") == ["berth/echo:1.0.0", "berth/echo:3.0.0"]

    result, error, _ = call(root, "stop", model="echo")
    assert error is None and containers(engine) == []


@each_engine
def test_a_failed_build_or_a_container_that_exits_at_start_fails_the_deploy_and_the_old_version_serves(
        root, tmp_path, engine):
    result, error, _ = deploy(root, bundle(tmp_path, "1.0.0"))
    assert error is None, error
    port = result["port"]

    broken = bundle(tmp_path, "2.0.0")
    (broken / "requirements.txt").write_text("/nowhere/no_such_package_berth-1.0-py3-none-any.whl\n")
    toml = (broken / "berth.toml").read_text()
    (broken / "berth.toml").write_text(toml.replace("[serve]", 'requirements = "requirements.txt"\n[serve]'))
    result, error, events = deploy(root, broken)
    assert error is not None and error["code"] == "build_failed", error
    assert "did not build" in error["message"] and "no_such_package_berth" in "\n".join(error["log"])
    assert any(e.get("step") == "build" for e in events)  # the build's output streamed as it ran
    assert http_json(port, "POST", "/predict", {"x": 1})[1]["version"] == "1.0.0"
    listed, _, _ = call(root, "releases", model="echo")
    assert [r["version"] for r in listed["releases"]] == ["1.0.0"]

    crash = 'raise SystemExit("the model cannot find its weights")\n'
    result, error, _ = deploy(root, bundle(tmp_path, "2.0.1", model_src=crash))
    assert error is not None and error["code"] == "start_failed", error
    log = "\n".join(error["log"])
    assert "exited at start" in log and "cannot find its weights" in log
    assert http_json(port, "POST", "/predict", {"x": 1})[1]["version"] == "1.0.0"
    assert [c.split()[0] for c in containers(engine)] == ["berth-echo-1.0.0"]


@each_engine
@pytest.mark.parametrize("image", ["python; rm -rf /", "$(touch /tmp/pwned)", "Python:3", "a b", "py:3`id`"])
def test_a_bad_image_name_is_refused_before_the_engine_sees_it(root, tmp_path, image):
    result, error, _ = call(root, "container_set", base_image=image)
    assert error is not None and error["code"] == "bad_image" and "not a valid image name" in error["message"]
    req = container_request(root, bundle(tmp_path, "1.0.0"))
    req["manifest"]["image"] = image
    result, error, _ = call(root, "deploy", **req)
    assert error is not None and error["code"] == "bad_image", error
    assert not os.path.exists("/tmp/pwned")


@each_engine
def test_a_base_image_that_does_not_exist_fails_the_build(root, tmp_path):
    req = container_request(root, bundle(tmp_path, "1.0.0"))
    req["manifest"]["image"] = "berth-test/no-such-image:1"
    result, error, _ = call(root, "deploy", **req)
    assert error is not None and error["code"] == "build_failed", error
    assert "berth-test/no-such-image" in "\n".join(error["log"])


@each_engine
def test_over_ssh_check_shows_the_engine_and_a_container_bundle_deploys_and_answers(
        capsys, engine, sshd_factory, berth_home, tmp_path):
    from cli_kit import berth

    srv = sshd_factory(set_env=engine.env)  # the daemon's socket, as a server's login environment gives it
    root = tmp_path / "srv root"
    try:
        r = berth(capsys, "server", "add", "box", "--host", srv.host, "--port", srv.port, "--user", srv.user,
                  "--key", srv.key_path, "--root", str(root), "--accept-host-key", srv.fingerprint)
        assert r.code == 0, r
        r = berth(capsys, "server", "set-container", "box", "--engine", engine.path, "--base-image", BASE_IMAGE,
                  "--build-network", "none")
        assert r.code == 0 and f"base_image {BASE_IMAGE}" in r.out, r
        r = berth(capsys, "server", "set-container", "box", "--base-image", "python;reboot")
        assert r.code == 1 and "not a valid image name" in r.err, r
        r = berth(capsys, "server", "check", "box")
        shown = rf"containers: {engine.kind} {VERSION[engine.kind]}\S+ at {engine.path}"
        assert r.code == 0 and re.search(shown, r.out), r
        found = berth(capsys, "server", "check", "box", "--json").json()[0]["containers"]
        assert found["usable"] and found["engine"] == engine.kind

        folder = make_bundle(tmp_path / "b", version="1.0.0", extra_toml='runtime = "container"\nmemory = "300m"\n')
        r = berth(capsys, "deploy", str(folder), "--server", "box")
        assert r.code == 0, r
        r = berth(capsys, "predict", "echo", "--server", "box", "--input", '{"q": 7}')
        assert r.code == 0 and json.loads(r.out) == {"version": "1.0.0", "echo": {"q": 7}}, r
        assert [c.split()[0] for c in containers(engine)] == ["berth-echo-1.0.0"]
    finally:
        stop_all(root)
    assert containers(engine) == []


@pytest.mark.slow  # a venv and pip in the build, the desktop's wheel resolution: 1-2 min here
@each_engine
def test_an_offline_server_builds_the_image_from_the_uploaded_wheels(capsys, engine, sshd_factory, berth_home,
                                                                     tmp_path, monkeypatch):
    """The server's index is dead and the build has no network: pip in the build finds the wheels the
    desktop resolved and uploaded (offline issue), copied into the build, and nothing else."""
    from cli_kit import berth
    from offline_kit import IndexServer, tiny_bundle, tiny_wheels, write_simple_index

    index = IndexServer(write_simple_index(tiny_wheels(tmp_path / "wheels"), tmp_path / "index"))
    monkeypatch.setenv("PIP_INDEX_URL", index.url)  # this computer's pip sees only the test's index
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    dead = {"PIP_INDEX_URL": "http://127.0.0.1:9/simple/", "PIP_CONFIG_FILE": "/dev/null", "SHLVL": "1"}
    srv = sshd_factory(set_env=dict(dead, **engine.env))
    root = tmp_path / "srv root"
    try:
        r = berth(capsys, "server", "add", "box", "--host", srv.host, "--port", srv.port, "--user", srv.user,
                  "--key", srv.key_path, "--root", str(root), "--accept-host-key", srv.fingerprint)
        assert r.code == 0, r
        r = berth(capsys, "server", "set-container", "box", "--engine", engine.path, "--base-image", BASE_IMAGE,
                  "--build-network", "none")
        assert r.code == 0, r
        assert berth(capsys, "server", "set", "box", "--index", "offline").code == 0
        folder = tiny_bundle(tmp_path / "b")
        (folder / "berth.toml").write_text((folder / "berth.toml").read_text().replace('"venv"', '"container"'))
        r = berth(capsys, "deploy", str(folder), "--server", "box")
        assert r.code == 0 and "2 wheel(s)" in r.out + r.err, r
        r = berth(capsys, "predict", "tiny", "--server", "box", "--input", '{"features": [1, 2, 3]}')
        assert r.code == 0 and json.loads(r.out) == {"y": 3.0}, r
        listed = engine.cli("run", "--rm", "--entrypoint", "/opt/venv/bin/pip", "berth/tiny:1.0.0", "list",
                            "--format", "freeze").stdout
        assert "berth-tiny-offline==1.0" in listed and "berth-tiny-dep==1.0" in listed, listed
    finally:
        stop_all(root)
        index.close()
    assert containers(engine) == []
