"""The deploy dialog, driven like an operator would, against the real built-in `local` server and the
real TaskRunner: nothing about the deploy is mocked."""
import os
import time

import pytest
from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import QMessageBox

from app.deploy.deploy import Deploy
from app.deploy.queries import predict, releases, status
from app.remote.local import LocalTransport
from app.ui.deploy.dialog import DeployDialog
from app.workspace import Workspace
from cli_kit import break_model, iris_copy, iris_input
from ui_kit import reach_confirmation

BIG_MB = 200


@pytest.fixture(scope="module")
def big_bundle(tmp_path_factory):
    """iris 1.1.0 plus a ~200 MB file of random bytes (written once per module, in 8 MB chunks)."""
    folder = iris_copy(tmp_path_factory.mktemp("big"), "1.1.0")
    with open(folder / "data" / "big.bin", "wb") as f:
        for _ in range(BIG_MB // 8):
            f.write(os.urandom(8 << 20))
    return folder


def local(berth_home) -> LocalTransport:
    return LocalTransport(str(berth_home / "local"))


def deploy_directly(berth_home, folder):
    """Put a first version in place the way the CLI does (no dialog involved)."""
    with local(berth_home) as t:
        for _ in Deploy(t, folder, Workspace().audit).run():
            pass


def open_dialog(qtbot, task_runner, folder) -> DeployDialog:
    dialog = DeployDialog(task_runner, "local", folder)
    qtbot.addWidget(dialog)
    dialog.show()
    return dialog


def current_version(berth_home, model="iris"):
    with local(berth_home) as t:
        return next((r["version"] for r in releases(t, model) if r["current"]), None)


def test_deploy_iris_through_the_dialog(qtbot, task_runner, tmp_path, berth_home, stop_local_runners):
    dialog = open_dialog(qtbot, task_runner, iris_copy(tmp_path, "1.0.0"))
    assert dialog.windowTitle().startswith("Deploy")
    pages = []
    dialog.stack.currentChanged.connect(lambda i: pages.append(dialog.stack.widget(i).objectName()))
    steps = []
    reach_confirmation(qtbot, dialog)
    assert dialog.findChild(type(dialog.confirm_page.version), "versionLabel").text() == "iris 1.0.0 (first deploy)"
    assert dialog.deploy_button.isDefault()  # `local` is not production
    dialog.progressed.connect(lambda p: p.line is None and steps.append(p.step))
    with qtbot.waitSignal(dialog.changed, timeout=120000) as changed:
        qtbot.mouseClick(dialog.deploy_button, Qt.MouseButton.LeftButton)
    assert changed.args == ["local"]
    assert pages == ["confirmPage", "progressPage"]  # the clean bundle went straight past the check page
    assert [s for s in ("check", "upload", "venv", "start", "health", "switch", "done") if s in steps] == \
        ["check", "upload", "venv", "start", "health", "switch", "done"], steps
    page = dialog.progress_page
    assert all(page.state(s) == "done" for s in ("check", "upload", "venv", "start", "health", "switch", "done"))
    assert page.state("install") == "skipped" and page.state("stop_previous") == "skipped"
    assert dialog.findChild(type(page.outcome), "outcome").text() == "iris 1.0.0 is current on local"
    assert dialog.close_button.isVisible() and not dialog.cancel_button.isVisible()
    assert "s" in page.items["upload"].text(2)  # a duration
    with local(berth_home) as t:
        output, _seconds, headers = predict(t, "iris", iris_input().encode())
    assert output and current_version(berth_home) == "1.0.0"


def test_invalid_bundle_shows_problems_inline_and_blocks_deploy(qtbot, task_runner, tmp_path):
    folder = iris_copy(tmp_path, "1.0.0")
    toml = folder / "berth.toml"
    toml.write_text(toml.read_text().replace('name = "iris"', 'name = "Iris Model!"'))
    dialog = open_dialog(qtbot, task_runner, folder)
    qtbot.waitUntil(lambda: dialog.check is not None, timeout=30000)
    assert dialog.stack.currentWidget() is dialog.check_page
    problems = dialog.check_page.problems
    assert problems.isVisible() and problems.topLevelItemCount() >= 1
    rows = [[problems.topLevelItem(i).text(c) for c in range(4)] for i in range(problems.topLevelItemCount())]
    name_rows = [r for r in rows if "name" in r[2]]
    assert name_rows, rows
    severity, where, key, text = name_rows[0]
    assert severity == "error" and where == "berth.toml:2" and key.endswith("name") and "Hint:" in text
    detail = dialog.check_page.detail.text()  # the first problem, in full, under the list
    assert detail.startswith("<b>berth.toml:2</b>") and "What to do:" in detail
    assert not dialog.next_button.isEnabled() and not dialog.deploy_button.isVisible()
    qtbot.mouseClick(dialog.next_button, Qt.MouseButton.LeftButton)
    assert dialog.stack.currentWidget() is dialog.check_page and "deploy" not in dialog.tasks


def test_confirmation_shows_versions_and_metric_changes(qtbot, task_runner, tmp_path, berth_home,
                                                        stop_local_runners):
    deploy_directly(berth_home, iris_copy(tmp_path, "1.0.0"))
    folder = iris_copy(tmp_path, "1.1.0")
    toml = folder / "berth.toml"
    toml.write_text(toml.read_text().replace("accuracy = 0.9333", "accuracy = 0.9667")
                    .replace('dataset = "data/iris.csv"', 'dataset = "data/iris-2.csv"'))
    (folder / "data" / "iris-2.csv").write_bytes((folder / "data" / "iris.csv").read_bytes())
    dialog = open_dialog(qtbot, task_runner, folder)
    reach_confirmation(qtbot, dialog)
    page = dialog.confirm_page
    assert page.version.text() == "iris 1.0.0 → 1.1.0"
    assert "local" in page.target.text()
    table = page.metrics
    rows = {table.item(r, 0).text(): [table.item(r, c).text() for c in range(1, 4)] for r in range(table.rowCount())}
    assert rows["accuracy"] == ["0.9333", "0.9667", "+0.0334"]
    assert table.item(list(rows).index("accuracy"), 3).toolTip() == "better"
    assert rows["log_loss"][2] == "same"
    assert page.dataset.text().startswith("CHANGED") and "iris-2.csv" in page.dataset.text()
    assert page.notice.isVisible() and "different data set" in page.notice.text()


def test_cancel_during_upload_leaves_the_server_unchanged(qtbot, task_runner, tmp_path, berth_home,
                                                          stop_local_runners, big_bundle):
    deploy_directly(berth_home, iris_copy(tmp_path, "1.0.0"))
    dialog = open_dialog(qtbot, task_runner, big_bundle)
    reach_confirmation(qtbot, dialog)
    assert dialog.confirm_page.version.text() == "iris 1.0.0 → 1.1.0"
    seen = []

    def on_progress(p):
        if p.step == "upload" and not seen:
            seen.append(p)
            assert dialog.cancel_button.isEnabled()
            qtbot.mouseClick(dialog.cancel_button, Qt.MouseButton.LeftButton)

    dialog.progressed.connect(on_progress)
    with qtbot.waitSignal(dialog.changed, timeout=120000):
        qtbot.mouseClick(dialog.deploy_button, Qt.MouseButton.LeftButton)
    assert seen and getattr(dialog.error, "code", "") == "cancelled", dialog.error
    assert dialog.progress_page.state("upload") == "cancelled"
    assert dialog.progress_page.outcome.text() == "Deploy cancelled: nothing on local changed. iris 1.0.0 is still current."
    assert current_version(berth_home) == "1.0.0"
    model_dir = berth_home / "local" / "models" / "iris" / "releases"
    assert sorted(p.name for p in model_dir.iterdir()) == ["1.0.0"]
    assert not list((berth_home / "local" / ".berth" / "blobs").glob(".tmp-*"))
    with local(berth_home) as t:
        assert status(t, "iris")[0]["state"] == "running"
        output, _s, headers = predict(t, "iris", iris_input().encode())
    assert output
    audit = Workspace().audit.list(limit=5)
    assert (audit[0]["action"], audit[0]["outcome"], audit[0]["version"]) == ("deploy", "cancelled", "1.1.0")
    assert "cancelled" in audit[0]["detail"] and audit[0]["ref"] == audit[1]["id"]
    assert (audit[1]["action"], audit[1]["state"]) == ("deploy", "started")


def test_window_stays_responsive_during_a_large_upload(qtbot, task_runner, berth_home, stop_local_runners,
                                                       big_bundle):
    ticks: list[float] = []
    timer = QTimer()
    timer.setInterval(20)
    timer.timeout.connect(lambda: ticks.append(time.monotonic()))
    timer.start()
    dialog = open_dialog(qtbot, task_runner, big_bundle)
    reach_confirmation(qtbot, dialog)  # includes hashing 200 MB in the background
    marks = {}

    def on_progress(p):
        if p.line is None:
            marks.setdefault(p.step, time.monotonic())

    dialog.progressed.connect(on_progress)
    with qtbot.waitSignal(dialog.changed, timeout=180000):
        qtbot.mouseClick(dialog.deploy_button, Qt.MouseButton.LeftButton)
    timer.stop()
    assert dialog.error is None and "is current on local" in dialog.progress_page.outcome.text()
    start, end = marks["upload"], marks["assemble"]
    during = [t for t in ticks if start <= t <= end]
    gaps = [b - a for a, b in zip(during, during[1:])]
    overall = max(b - a for a, b in zip(ticks, ticks[1:]))
    print(f"\nupload of {BIG_MB} MB took {end - start:.2f} s; {len(during)} ticks of a 20 ms timer, "
          f"largest gap {max(gaps) * 1000:.0f} ms; largest gap over the whole dialog {overall * 1000:.0f} ms")
    assert len(during) >= 3, (end - start, len(during))
    assert max(gaps) < 0.25


def test_failing_deploy_shows_the_server_log_and_keeps_the_old_version(qtbot, task_runner, tmp_path, berth_home,
                                                                        stop_local_runners):
    deploy_directly(berth_home, iris_copy(tmp_path, "1.0.0"))
    dialog = open_dialog(qtbot, task_runner, break_model(iris_copy(tmp_path, "1.1.0")))
    reach_confirmation(qtbot, dialog)
    with qtbot.waitSignal(dialog.changed, timeout=120000):
        qtbot.mouseClick(dialog.deploy_button, Qt.MouseButton.LeftButton)
    page = dialog.progress_page
    text = page.outcome.text()
    assert text.startswith("The deploy of iris 1.1.0 to local failed:") and "1.0.0 is still current" in text, text
    assert "failed" in {page.state(s) for s in page.items}
    assert page.details_button.isVisible()
    qtbot.mouseClick(page.details_button, Qt.MouseButton.LeftButton)
    box = dialog.findChild(QMessageBox, "detailsBox")
    assert box is not None and "broken on purpose" in box.detailedText()
    box.close()
    assert current_version(berth_home) == "1.0.0"
    with local(berth_home) as t:
        assert predict(t, "iris", iris_input().encode())[0]


def test_closing_during_upload_asks_then_cancels(qtbot, task_runner, berth_home, stop_local_runners, big_bundle):
    dialog = open_dialog(qtbot, task_runner, big_bundle)
    reach_confirmation(qtbot, dialog)
    asked = []

    def on_progress(p):
        if p.step == "upload" and not asked:
            dialog.close()
            box = dialog.findChild(QMessageBox, "closeWhileRunning")
            asked.append(box.text())
            confirm = next(b for b in box.buttons() if b.text() == "Cancel the deploy")
            qtbot.mouseClick(confirm, Qt.MouseButton.LeftButton)

    dialog.progressed.connect(on_progress)
    with qtbot.waitSignal(dialog.changed, timeout=120000):
        qtbot.mouseClick(dialog.deploy_button, Qt.MouseButton.LeftButton)
    assert asked and "Cancel it?" in asked[0]
    assert not dialog.isVisible() and getattr(dialog.error, "code", "") == "cancelled"
    assert current_version(berth_home) is None


def test_production_server_never_makes_deploy_the_default_button(qtbot, task_runner, tmp_path, sshd):
    from app.store.servers import ServerConfig

    Workspace().servers.save(ServerConfig(name="prod", host=sshd.host, port=sshd.port, user=sshd.user,
                                          key_path=str(sshd.key_path), root=str(sshd.folder / "prod"),
                                          environment="production"))
    task_runner.trust_host_key("prod", sshd.fingerprint)
    dialog = DeployDialog(task_runner, "prod", iris_copy(tmp_path, "1.0.0"))
    qtbot.addWidget(dialog)
    dialog.show()
    reach_confirmation(qtbot, dialog)
    page = dialog.confirm_page
    assert "PRODUCTION" in page.target.text() and page.production
    buttons = (dialog.deploy_button, dialog.back_button, dialog.cancel_button)
    assert not any(b.isDefault() or b.autoDefault() for b in buttons)
    qtbot.keyClick(dialog, Qt.Key.Key_Return)
    assert "deploy" not in dialog.tasks and dialog.stack.currentWidget() is page and dialog.isVisible()


def test_confirmation_holds_a_profiled_bundle_against_the_server(qtbot, task_runner, tmp_path, berth_home,
                                                                  stop_local_runners):
    """A bundle profiled before (`berth bundle profile`, kept by its sha256) is compared with what the
    server has; one never profiled says nothing about it."""
    from app.bundle import open_bundle
    from app.deploy.profile_report import save

    folder = iris_copy(tmp_path, "1.0.0")
    dialog = open_dialog(qtbot, task_runner, folder)
    reach_confirmation(qtbot, dialog)
    assert "Needs about" not in dialog.confirm_page.notice.text()
    dialog.close()
    with open_bundle(folder) as b:
        sha = b.sha256
    save({"bundle_sha256": sha, "rss_peak_bytes": 64 * 2**40, "cpu_ms_per_request": 0.5, "disk_bytes": 1})
    dialog = open_dialog(qtbot, task_runner, folder)
    reach_confirmation(qtbot, dialog)
    text = dialog.confirm_page.notice.text()
    assert "Needs about 65536.0 GB of memory, 0.5 ms of CPU per request; local has " in text, text
    assert f"available and {os.cpu_count()} cores." in text
    assert "Warning: local has " in text and "the model needs about 65536.0 GB" in text
