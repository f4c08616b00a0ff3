"""Alerts in the console, on the real built-in `local` server: the echo bundle deployed, a rule whose
condition holds at once (disk_free_pct<100, for 0) notifying a real webhook receiver on loopback, the
evaluator's round run here (alerts_kit), and the window driven like an operator: the tree's firing
count, one notification for an alert that newly fires (offscreen has no tray: the banner), the Alerts
view listing it, Silence… refusing bad input in the dialog and writing an audited silence, Test."""
import pytest
from PySide6.QtCore import Qt

from agent_kit import make_bundle
from alerts_kit import Receiver
from app.agent import alerteval
from app.agent.layout import Root
from app.audit.query import query_events
from app.deploy import alerts as alert_service
from app.deploy.changes import run_to_end
from app.deploy.deploy import Deploy
from app.remote.local import LocalTransport
from app.ui.alerts.page import COLUMNS, notified_text
from app.ui.main_window import MainWindow
from app.workspace import Workspace
from jobs_kit import cleanup

WAIT = 60000


@pytest.fixture
def hook():
    r = Receiver()
    yield r
    r.stop()


@pytest.fixture
def local(berth_home, tmp_path):
    with LocalTransport(str(berth_home / "local")) as t:
        run_to_end(Deploy(t, make_bundle(tmp_path / "echo"), Workspace().audit).run())
    yield berth_home / "local"
    cleanup(berth_home / "local")


@pytest.fixture
def window(qtbot, task_runner, local):
    win = MainWindow(task_runner)
    qtbot.addWidget(win)
    win.show()
    qtbot.waitUntil(lambda: win.fleet_model.status_of("local", "echo") is not None, timeout=WAIT)
    yield win
    win.close()


def add_disk_rule(root, url):
    with LocalTransport(str(root)) as t:
        Workspace().alert_change(t, "add", "disk", None, {"when": "disk_free_pct<100", "for": 0, "repeat": 14400,
                                                          "notify": [f"webhook:{url}"], "model": None})


def evaluate(root):
    ev = alerteval.Evaluator(Root(str(root)))  # a round now rather than waiting for the scheduler's
    ev.tick()
    ev.close()


def state_cell(win):
    item = win.fleet_model.server_item("local")
    return item.parent().child(item.row(), 1) if item.parent() else win.fleet_model.item(item.row(), 1)


def test_a_new_firing_alert_is_counted_in_the_tree_and_announced_once(qtbot, window, local, hook):
    notes = []
    window.alerts.notifier.notified.connect(lambda title, text: notes.append((title, text)))
    qtbot.waitUntil(lambda: window.alerts.notifier.known.get("local") == set(), timeout=WAIT)  # the baseline
    add_disk_rule(local, hook.url)
    evaluate(local)
    window.refresh("local", force=True)
    qtbot.waitUntil(lambda: bool(notes), timeout=WAIT)
    assert notes == [("local: 1 alert firing", "disk")]
    banner = window.alerts.banner
    assert banner.isVisible() and banner.label.text() == "local: 1 alert firing: disk"
    assert state_cell(window).text() == "connected · 1 firing"
    assert state_cell(window).foreground().color().name() == "#c62828"
    assert window.alerts.total.text() == "1 firing"  # the Alerts entry: every server's

    reads = []
    window.refresher.read.connect(lambda server, rows: reads.append(rows[0]["alerts_firing"]))
    evaluate(local)
    for n in (1, 2):  # still firing, read again by the tree and the Alerts view: not announced again
        window.refresh("local", force=True)
        qtbot.waitUntil(lambda: len(reads) == n, timeout=WAIT)
    window.alerts.page.refresh()
    qtbot.waitUntil(lambda: window.alerts.page.table.rowCount() == 1, timeout=WAIT)
    assert reads == [1, 1] and len(notes) == 1

    banner.action_button.click()  # Show: the Alerts view, the alert selected
    page = window.alerts.page
    assert window.stack.currentWidget() is page
    qtbot.waitUntil(lambda: page.table.rowCount() == 1 and page.selected() is not None, timeout=WAIT)
    assert not banner.isVisible()


def test_the_alerts_view_lists_silences_and_tests(qtbot, window, local, hook):
    add_disk_rule(local, hook.url)
    evaluate(local)
    window.alerts.show()
    page = window.alerts.page
    assert page.timer.isActive()  # refreshed on a timer while shown
    qtbot.waitUntil(lambda: page.table.rowCount() == 1, timeout=WAIT)
    cells = {COLUMNS[c]: page.table.item(0, c).text() for c in range(len(COLUMNS))}
    assert (cells["Rule"], cells["Server"], cells["Model"], cells["State"], cells["Notified"]) == (
        "disk", "local", "", "firing", "webhook ok")
    assert float(cells["Value"]) < 100 and cells["Since"]
    tip = page.table.item(0, COLUMNS.index("Notified")).toolTip()
    assert tip.startswith(f"webhook:{hook.url}: ok at ") and tip.endswith("thanks"), tip
    qtbot.waitUntil(lambda: state_cell(window).text() == "connected · 1 firing", timeout=WAIT)  # the view's count

    page.model_combo.setCurrentIndex(page.model_combo.count() - 1)  # (all) only: no model has an alert
    assert page.model_combo.count() == 1 and page.table.rowCount() == 1
    page.table.selectRow(0)
    assert page.silence_button.isEnabled() and page.test_button.isEnabled()

    page.test_button.click()
    qtbot.waitUntil(lambda: page.status.kind == "ok", timeout=WAIT)
    assert page.status.label.text() == f"Test of disk on local: webhook:{hook.url}: ok HTTP 200: thanks"
    assert hook.posts[-1]["status"] == "test"

    page.silence_button.click()
    dialog = page.dialog
    assert dialog.isVisible() and dialog.windowTitle() == "Silence disk on local"
    dialog.duration.setCurrentText("2x")
    dialog.reason.setText("disk swap")
    dialog.ok_button().click()
    assert dialog.isVisible() and dialog.error.text().startswith("the duration '2x' is not a duration")
    dialog.duration.setCurrentText("30s")
    dialog.ok_button().click()
    assert dialog.error.text() == "the duration '30s' must be from 1m to 28d"
    dialog.duration.setCurrentText("2h")
    dialog.reason.setText("  ")
    dialog.ok_button().click()
    assert dialog.error.text().startswith("A silence needs a reason")
    assert not [e for e in query_events(Workspace().db) if e["action"] == "alert.silence"]  # nothing sent

    dialog.reason.setText("disk swap")
    dialog.ok_button().click()
    qtbot.waitUntil(lambda: not dialog.isVisible(), timeout=WAIT)
    assert page.status.label.text().startswith("disk on local: silenced until ")
    events = [(e["action"], e["outcome"], e["reason"]) for e in query_events(Workspace().db)
              if e["action"] == "alert.silence"]
    assert events == [("alert.silence", "ok", "disk swap"), ("alert.silence", "started", "disk swap")]
    with LocalTransport(str(local)) as t:
        assert alert_service.find(t, "disk")["silenced_until"]
    qtbot.waitUntil(lambda: page.table.item(0, 3) is not None
                    and page.table.item(0, 3).text() == "firing (silenced)", timeout=WAIT)


def test_the_agents_refusal_stays_in_the_silence_dialog(qtbot, window, local, hook):
    add_disk_rule(local, hook.url)
    evaluate(local)
    window.alerts.show()
    page = window.alerts.page
    qtbot.waitUntil(lambda: page.table.rowCount() == 1, timeout=WAIT)
    page.table.selectRow(0)
    page.silence_button.click()
    with LocalTransport(str(local)) as t:  # removed meanwhile (another operator, the CLI)
        Workspace().alert_change(t, "remove", "disk", None)
    page.dialog.reason.setText("disk swap")
    page.dialog.ok_button().click()
    qtbot.waitUntil(lambda: page.dialog.error.isVisible(), timeout=WAIT)
    assert page.dialog.isVisible() and page.dialog.ok_button().isEnabled()
    assert page.dialog.error.text() == "there is no alert disk on local; it has no alerts yet (berth alert add)"


def test_notified_cell_and_tooltip_say_a_failed_receiver():
    cell, tip = notified_text({"notified": [
        {"channel": "webhook:http://h/x", "ok": False, "at": "2026-01-01T00:00:00Z", "answer": "HTTP 503: no"},
        {"channel": "email:o@example.com", "ok": True, "at": "2026-01-01T00:00:01Z", "answer": ""}]})
    assert cell == "webhook FAILED, email ok"
    assert tip == ("webhook:http://h/x: FAILED at 2026-01-01T00:00:00Z: HTTP 503: no\n"
                   "email:o@example.com: ok at 2026-01-01T00:00:01Z")


def test_the_alerts_entry_in_the_tree_opens_the_view(qtbot, window):
    item = next(window.fleet_model.item(r) for r in range(window.fleet_model.rowCount())
                if window.fleet_model.item(r).text() == "Alerts")
    rect = window.fleet.visualRect(item.index())
    qtbot.mouseClick(window.fleet.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    assert window.stack.currentWidget() is window.alerts.page
    window.show_audit()
    assert not window.alerts.page.timer.isActive()  # hidden: no more refreshes


def test_what_fired_before_the_first_reading_is_not_announced_and_one_reading_makes_one_note(qtbot, task_runner):
    from PySide6.QtWidgets import QWidget

    from app.ui.alerts.notifier import AlertNotifier
    from app.ui.errors import StatusBanner

    view, banner, opened, notes = QWidget(), StatusBanner(), [], []
    qtbot.addWidget(view)
    notifier = AlertNotifier(view, task_runner, banner, lambda s, r: opened.append((s, r)))
    notifier.notified.connect(lambda title, text: notes.append((title, text)))

    def alert(rule, state="firing", model=None):
        return {"rule": rule, "model": model, "state": state}

    notifier.firing_read("web-1", [alert("disk")])  # firing before Berth looked: the baseline
    assert notes == [] and not banner.isVisible()
    notifier.firing_read("web-1", [alert("disk"), alert("down", model="iris"), alert("p95", model="iris"),
                                   alert("cpu", "pending")])
    assert notes == [("web-1: 2 alerts firing", "down (iris), p95 (iris)")]  # one reading, one note
    assert banner.label.text() == "web-1: 2 alerts firing: down (iris), p95 (iris)"
    notifier.firing_read("web-1", [alert("disk"), alert("down", model="iris"), alert("p95", model="iris")])
    notifier.firing_read("web-1", [alert("disk", "resolved")])
    assert len(notes) == 1  # nothing new fires
    notifier.firing_read("web-1", [alert("disk")])  # fires again after it resolved: new again
    assert notes[-1] == ("web-1: 1 alert firing", "disk") and len(notes) == 2
    banner.action_button.click()
    assert opened == [("web-1", "disk")] and not banner.isVisible()
    notifier.firing_read("web-2", [alert("disk")])  # another server: its own baseline
    assert len(notes) == 2


def remove_rule(root, name):
    with LocalTransport(str(root)) as t:
        Workspace().alert_change(t, "remove", name, None)


def test_a_server_without_models_shows_its_firing_count_from_the_status_alone(qtbot, task_runner, berth_home, hook):
    """No model, so no status row to carry the count: it comes with the status all the same, the
    Alerts view never opened."""
    root = berth_home / "local"
    try:
        add_disk_rule(root, hook.url)
        evaluate(root)
        win = MainWindow(task_runner)
        qtbot.addWidget(win)
        win.show()
        qtbot.waitUntil(lambda: state_cell(win).text() == "connected · 1 firing", timeout=WAIT)
        assert "local" not in win.alerts.page.alerts and win.alerts.total.text() == "1 firing"
        remove_rule(root, "disk")
        win.refresh("local", force=True)
        qtbot.waitUntil(lambda: state_cell(win).text() == "connected", timeout=WAIT)
        win.close()
    finally:
        cleanup(root)


def test_one_alert_resolving_while_another_fires_is_announced(qtbot, window, local, hook):
    """The same count (1) before and after: the status's key of what fires says it changed."""
    notes = []
    window.alerts.notifier.notified.connect(lambda title, text: notes.append((title, text)))
    qtbot.waitUntil(lambda: window.alerts.notifier.known.get("local") == set(), timeout=WAIT)
    add_disk_rule(local, hook.url)
    evaluate(local)
    window.refresh("local", force=True)
    qtbot.waitUntil(lambda: bool(notes), timeout=WAIT)
    remove_rule(local, "disk")  # resolved (gone) ...
    with LocalTransport(str(local)) as t:  # ... and another fires, before the next refresh
        Workspace().alert_change(t, "add", "disk-two", None, {"when": "disk_free_pct<100", "for": 0, "repeat": 14400,
                                                              "notify": [f"webhook:{hook.url}"], "model": None})
    evaluate(local)
    window.refresh("local", force=True)
    qtbot.waitUntil(lambda: len(notes) == 2, timeout=WAIT)
    assert notes[-1] == ("local: 1 alert firing", "disk-two") and state_cell(window).text() == "connected · 1 firing"
