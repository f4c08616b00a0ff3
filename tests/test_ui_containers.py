"""The console's view of containers: the server page lists the server's engines (docker, podman:
version, usable by this user or why not), asked of the real agent on `local` with a real podman on
its own temp config and a docker whose daemon is not there; the model page shows a container
release's runtime, image and limits, and hides them for a virtualenv release."""
import shutil

import pytest
from PySide6.QtWidgets import QLabel

from app.store.servers import LOCAL
from app.ui.model.overview import ModelOverview
from app.ui.servers.engines_panel import EnginesPanel, engines_text
from app.ui.servers.page import ServerPage
from container_kit import PODMAN, missing, podman_confs


@pytest.mark.skipif(missing("podman") is not None or shutil.which("docker") is None,
                    reason="needs podman and the docker client (apt-get install podman runc catatonit docker.io)")
def test_the_server_page_lists_each_engine_with_its_version_and_whether_it_is_usable(
        qtbot, task_runner, berth_home, tmp_path, monkeypatch):
    for key, value in podman_confs(tmp_path / "podman", "berth-unused").items():  # podman's storage: the test's
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-dockerd.sock")
    page = ServerPage(task_runner)  # the page's Containers row is this panel, refreshed with the server's facts
    qtbot.addWidget(page)
    assert page.findChild(QLabel, "enginesLabel") is page.engines_panel
    label = EnginesPanel(task_runner)  # asked on its own: one agent call, not the page's five
    qtbot.addWidget(label)
    label.refresh(LOCAL)
    qtbot.waitUntil(lambda: "podman" in label.text(), timeout=60000)  # a loaded machine: seconds per call
    text = label.text()
    assert "<b>podman 4." in text and f"at {PODMAN}" in text and "usable" in text, text
    docker = next(line for line in text.split("<br>") if "docker" in line)
    assert "not usable" in docker and "this user may not use docker" in docker and "no-dockerd.sock" in docker
    assert "(container releases use it)" not in text  # docker is the one chosen, and it is not usable
    assert (tmp_path / "podman" / "graph").is_dir()  # the local agent got podman's config: its storage, not the machine's


def test_engine_lines_for_a_chosen_engine_an_older_agent_and_none():
    found = {"engine": "podman", "path": "/usr/bin/podman", "usable": True, "version": "4.3.1", "rootless": True}
    assert engines_text(found) == ('<b>podman 4.3.1</b> at /usr/bin/podman: <span style="color: #1b7f3b;">'
                                   'rootless</span> (container releases use it)')  # an older agent: no list
    assert engines_text({"engine": None, "usable": False, "engines": []}).startswith("none (neither docker")
    bad = {"engine": "docker", "path": "/x/<b>docker", "usable": False, "detail": "a <script>", "engines": None}
    assert "&lt;b&gt;" in engines_text(bad) and "<script>" not in engines_text(bad)


CONTAINER_ROW = {"version": "2.0.0", "current": True, "sha256": "ab" * 32, "deployed_at": "2026-12-01T10:00:00Z",
                 "deployed_by": {"user": "alice", "host": "laptop"}, "image": "berth/echo:2.0.0",
                 "manifest": {"name": "echo", "version": "2.0.0", "entrypoint": "model:Model",
                              "runtime": "container", "memory": "256m", "cpus": 0.5}}


def test_the_model_page_shows_a_container_releases_image_and_limits_and_hides_them_for_a_venv(qtbot):
    view = ModelOverview()
    qtbot.addWidget(view)
    view.set_release(CONTAINER_ROW)  # the shape `releases` answers (checked in test_container_engines.py)
    assert (view.text("runtime"), view.text("image"), view.text("limits")) == (
        "container", "berth/echo:2.0.0", "memory 256m, 0.5 CPU(s)")
    assert view.form.isRowVisible(view.fields["image"]) and view.form.isRowVisible(view.fields["limits"])
    manifest = {k: v for k, v in CONTAINER_ROW["manifest"].items() if k not in ("memory", "cpus")}
    view.set_release(dict(CONTAINER_ROW, manifest=manifest))
    assert view.text("limits") == "none in the bundle (the server's container settings apply)"
    venv = dict(CONTAINER_ROW, manifest=dict(manifest, runtime="venv"))
    venv.pop("image")
    view.set_release(venv)
    assert view.text("runtime") == "venv"
    assert not view.form.isRowVisible(view.fields["image"]) and not view.form.isRowVisible(view.fields["limits"])
    view.set_release(dict(venv, manifest={k: v for k, v in manifest.items() if k != "runtime"}))
    assert view.text("runtime") == "venv"  # an older bundle names no runtime: a virtualenv
