"""The Audit view: newest first, each filter narrows, the text filter searches the detail, Ctrl+F."""
from datetime import datetime

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QApplication, QComboBox, QLabel, QLineEdit, QTableView

from app.ui.audit.page import COLUMNS, AuditModel, AuditPage, local_time
from app.workspace import Workspace
from audit_kit import fill_log, recorded_events

@pytest.fixture
def events():
    return recorded_events()


def column(name: str) -> int:
    return [c[0] for c in COLUMNS].index(name)


def shown(page: AuditPage, name: str = "version") -> list[str]:
    model = page.model
    return [model.index(r, column(name)).data() for r in range(model.rowCount())]


def loaded(qtbot, page: AuditPage, count: int) -> None:
    label = page.findChild(QLabel, "countLabel")
    qtbot.waitUntil(lambda: label.text() == f"{count:,} event{'' if count == 1 else 's'}"
                    and page.model.rowCount() == count and page.debounce.isActive() is False
                    and "read" not in page.tasks, timeout=10000)


def choose(combo: QComboBox, value: str) -> None:
    combo.setCurrentIndex(combo.findData(value))


@pytest.fixture
def page(qtbot, task_runner, events):
    page = AuditPage(task_runner)
    qtbot.addWidget(page)
    page.resize(1100, 400)
    page.show()
    page.refresh()
    loaded(qtbot, page, 5)
    return page


def test_rows_newest_first_with_who_and_local_time(page):
    assert shown(page, "action") == ["deploy", "rollback", "deploy", "deploy", "server.add"]
    assert shown(page, "server")[0] == "beta"
    m = page.model
    assert m.index(0, column("time")).data() == local_time("2024-05-01T10:00:04.000+00:00")
    assert m.index(0, column("time")).data() == datetime.fromisoformat("2024-05-01T10:00:04+00:00").astimezone() \
        .strftime("%Y-%m-%d %H:%M:%S")
    assert m.index(3, column("who")).data().endswith("(as deploy)")
    failed = m.index(2, column("outcome"))
    assert failed.data() == "failed" and failed.data(Qt.ItemDataRole.ForegroundRole) == QColor("#b3261e")
    assert m.index(1, column("outcome")).data(Qt.ItemDataRole.ForegroundRole) is None
    assert [m.headerData(i, Qt.Orientation.Horizontal) for i in range(m.columnCount())] == \
        ["Time", "Who", "Server", "Model", "Version", "Action", "Outcome", "Change", "Reason", "Detail", "Origin"]
    assert shown(page, "origin") == ["this desktop"] * 5


def test_each_filter_narrows(qtbot, page):
    servers, models, actions = (page.findChild(QComboBox, n) for n in ("serverFilter", "modelFilter", "actionFilter"))
    assert [servers.itemData(i) for i in range(servers.count())] == ["", "alpha", "beta"]
    assert [actions.itemData(i) for i in range(actions.count())] == ["", "deploy", "rollback", "server.add"]
    choose(servers, "alpha")
    loaded(qtbot, page, 4)
    assert set(shown(page, "server")) == {"alpha"}
    choose(actions, "deploy")
    loaded(qtbot, page, 2)
    assert shown(page) == ["2.0.0", "1.0.0"]
    choose(servers, "")
    loaded(qtbot, page, 3)
    choose(actions, "")
    choose(models, "wine")
    loaded(qtbot, page, 1)
    assert shown(page, "server") == ["beta"]
    choose(models, "")
    loaded(qtbot, page, 5)


def test_text_filter_matches_the_detail(qtbot, page):
    text = page.findChild(QLineEdit, "textFilter")
    qtbot.keyClicks(text, "BROKEN")
    loaded(qtbot, page, 1)
    assert shown(page) == ["2.0.0"] and "broken on purpose" in shown(page, "detail")[0]
    text.setText("no such thing")
    loaded(qtbot, page, 0)
    text.clear()
    loaded(qtbot, page, 5)


def test_refresh_shows_new_events(qtbot, page, events):
    events.audit.record("server.remove", "ok", server="beta", ts="2024-05-01T10:00:09.000+00:00")
    page.refresh()
    loaded(qtbot, page, 6)
    assert shown(page, "action")[0] == "server.remove"


def test_ctrl_f_focuses_the_filter(qtbot, task_runner, events):
    from app.ui.main_window import MainWindow

    window = MainWindow(task_runner)
    qtbot.addWidget(window)
    window.show()
    window.activateWindow()
    qtbot.waitExposed(window)
    qtbot.waitUntil(window.isActiveWindow, timeout=5000)
    qtbot.keyClick(window, Qt.Key.Key_F, Qt.KeyboardModifier.ControlModifier)
    text = window.audit_page.findChild(QLineEdit, "textFilter")
    qtbot.waitUntil(lambda: QApplication.focusWidget() is text, timeout=5000)
    assert window.stack.currentWidget() is window.audit_page
    window.timer.stop()
    qtbot.waitUntil(lambda: not task_runner.active, timeout=30000)  # no reply may outlive the window


def test_focus_filter(qtbot, page):
    page.window().activateWindow()
    page.focus_filter()
    qtbot.waitUntil(lambda: QApplication.focusWidget() is page.findChild(QLineEdit, "textFilter"), timeout=2000)


# --- the windowed model ------------------------------------------------------------------------

def test_model_passes_the_qt_model_tester(qtmodeltester, events):
    model = AuditModel(page_size=2)
    model.fetcher = lambda generation, pages: model.put_pages(generation, {
        p: events.audit.list()[p * 2:p * 2 + 2] for p in pages})
    model.reset(5, events.audit.list()[:2])
    qtmodeltester.check(model, force_py=True)
    model.reset(0)
    qtmodeltester.check(model, force_py=True)


def test_model_asks_only_for_the_pages_last_painted(qtbot):
    model = AuditModel(page_size=10, cache_pages=4)
    asked = []
    model.fetcher = lambda generation, pages: asked.append((generation, pages))
    model.reset(1000)
    assert model.index(0, 0).data() == "…" and model.rowCount() == 1000
    for row in range(0, 1000, 10):  # a scrollbar dragged over every page in one go
        model.index(row, 0).data()
    qtbot.waitUntil(lambda: bool(asked), timeout=2000)
    assert asked == [(model.generation, [97, 98, 99])]  # the three most recently painted
    model.index(5, 0).data()  # painted while the fetch is out: asked for when it answers
    generation = model.generation
    model.put_pages(generation, {p: [dict(seq=p * 10 + i, ts="", outcome="ok") for i in range(10)]
                                 for p in (97, 98, 99)})
    qtbot.waitUntil(lambda: len(asked) == 2, timeout=2000)
    assert asked[1] == (generation, [0])
    assert model.index(995, column("outcome")).data() == "ok"
    model.put_pages(generation, {0: [dict(seq=i, ts="", outcome="ok") for i in range(10)]})
    assert len(model.pages) == 4  # cache bounded
    for p in range(20, 30):
        model.put_pages(generation, {p: [dict(seq=p * 10 + i, ts="", outcome="ok") for i in range(10)]})
    assert list(model.pages) == [26, 27, 28, 29]
    model.reset(1000)
    model.put_pages(generation, {5: []})  # an answer to the old generation is dropped
    assert 5 not in model.pages


# --- filters ------------------------------------------------------------------------------------

def test_interrupted_rows_are_amber_and_can_be_filtered(qtbot, page, events):
    started = events.audit.begin("deploy", server="alpha", model="iris", version="3.0.0", pid=0,
                                 ts="2024-05-01T10:00:10.000+00:00")
    done = events.audit.begin("deploy", server="alpha", model="iris", version="3.0.1", pid=0,
                              ts="2024-05-01T10:00:11.000+00:00")
    events.audit.finish(done, "ok", ts="2024-05-01T10:00:12.000+00:00")
    assert started.id
    page.refresh()
    loaded(qtbot, page, 8)
    m = page.model
    assert shown(page, "outcome")[:3] == ["ok", "started", "interrupted"]
    cell = m.index(2, column("outcome"))
    assert cell.data(Qt.ItemDataRole.ForegroundRole) == QColor("#b26a00")
    assert "never finished" in cell.data(Qt.ItemDataRole.ToolTipRole)
    choose(page.findChild(QComboBox, "outcomeFilter"), "interrupted")
    loaded(qtbot, page, 1)
    assert shown(page) == ["3.0.0"]
    choose(page.findChild(QComboBox, "outcomeFilter"), "failed")
    loaded(qtbot, page, 1)
    assert shown(page) == ["2.0.0"]


def test_actor_filter(qtbot, page, events):
    events.audit.record("deploy", "ok", server="beta", version="9", actor="alice@laptop",
                        ts="2024-05-01T10:00:20.000+00:00")
    events.audit.record("deploy", "ok", server="beta", version="8", actor="bob@desk", ssh_user="alice",
                        ts="2024-05-01T10:00:21.000+00:00")
    page.refresh()
    loaded(qtbot, page, 7)
    actors = page.findChild(QComboBox, "actorFilter")
    assert {"alice@laptop", "bob@desk"} <= {actors.itemData(i) for i in range(actors.count())}
    choose(actors, "alice@laptop")
    loaded(qtbot, page, 1)
    assert shown(page) == ["9"]
    choose(actors, "bob@desk")
    loaded(qtbot, page, 1)
    assert shown(page, "who") == ["bob@desk (as alice)"]


def test_date_range_and_presets(qtbot, task_runner, events):
    from datetime import timedelta, timezone

    from PySide6.QtWidgets import QDateTimeEdit

    for day in (3, 5, 7):
        events.audit.record("deploy", "ok", server="gamma", version=f"day{day}",
                            ts=f"2024-05-0{day}T12:00:00.000+00:00")
    events.audit.record("deploy", "ok", server="gamma", version="now")  # recorded this very moment
    page = AuditPage(task_runner)
    qtbot.addWidget(page)
    page.show()
    page.refresh()
    loaded(qtbot, page, 9)
    utc = timezone.utc
    page.filters.set_range(datetime(2024, 5, 2, tzinfo=utc), datetime(2024, 5, 6, tzinfo=utc))
    loaded(qtbot, page, 2)
    assert shown(page) == ["day5", "day3"]
    flt = page.current_filter()
    assert flt.since.startswith("2024-05-02T00:00:00") and flt.since.endswith("+00:00")
    assert flt.until.startswith("2024-05-06T00:00:59.999")
    # the pickers show local time, the filter is UTC
    since = page.findChild(QDateTimeEdit, "sinceEdit")
    assert since.dateTime().toString("yyyy-MM-dd HH:mm") == \
        datetime(2024, 5, 2, tzinfo=utc).astimezone().strftime("%Y-%m-%d %H:%M")
    # editing a picker by hand makes it a custom range (debounced)
    since.setDateTime(since.dateTime().addDays(2))  # from May 4th
    loaded(qtbot, page, 1)
    assert shown(page) == ["day5"]
    page.filters.set_range(datetime(2024, 5, 4, tzinfo=utc), None)
    loaded(qtbot, page, 3)
    page.filters.set_preset("24h")
    loaded(qtbot, page, 1)
    assert shown(page) == ["now"] and page.current_filter().since == "24h"
    shown_since = since.dateTime().toPython()
    assert abs(shown_since - (datetime.now() - timedelta(hours=24))) < timedelta(minutes=2)
    page.filters.set_preset("")
    loaded(qtbot, page, 9)
    assert page.current_filter().since == page.current_filter().until == ""


# --- a large log ------------------------------------------------------------------------------------

@pytest.mark.parametrize("small", [50000, 0], ids=["seqs-at-once", "seqs-later"])
def test_a_large_log_scrolls_by_pages(qtbot, task_runner, monkeypatch, small):
    import app.ui.audit.page as audit_view

    monkeypatch.setattr(audit_view, "SMALL", small)
    fill_log(Workspace(), 20000)
    page = AuditPage(task_runner)
    qtbot.addWidget(page)
    page.resize(1000, 400)
    page.show()
    page.refresh()
    loaded(qtbot, page, 20000)
    assert page.findChild(QLabel, "countLabel").text() == "20,000 events"
    m, table = page.model, page.findChild(QTableView, "auditTable")
    assert m.index(0, column("version")).data() == "v20000" and m.requests == []
    table.scrollToBottom()
    last = m.index(19999, column("version"))
    qtbot.waitUntil(lambda: last.data() == "v1", timeout=10000)
    assert set(m.requests) <= {98, 99} and 99 in m.requests  # only what the screen shows
    if small:
        assert m.seqs is not None
    else:
        qtbot.waitUntil(lambda: m.seqs is not None and "rest" not in page.tasks, timeout=10000)  # then by seq
    for row in range(0, 20000, 397):  # a long scroll: the cache stays small
        table.scrollTo(m.index(row, 0))
        qtbot.waitUntil(lambda r=row: m.index(r, column("version")).data() == f"v{20000 - r}", timeout=10000)
        assert len(m.pages) <= m.cache_pages
    assert len(set(m.requests)) < 100


def test_refresh_keeps_the_selection_on_its_event(qtbot, page, events):
    page.select_row(1)
    chosen = page.model.index(1, 0).data(Qt.ItemDataRole.UserRole)["id"]
    events.audit.record("server.remove", "ok", server="beta", ts="2024-05-01T10:00:09.000+00:00")
    page.refresh()
    loaded(qtbot, page, 6)
    table = page.findChild(QTableView, "auditTable")
    (selected,) = table.selectionModel().selectedRows()
    assert selected.row() == 2 and selected.data(Qt.ItemDataRole.UserRole)["id"] == chosen
    assert shown(page, "action")[0] == "server.remove"


# --- verify and export --------------------------------------------------------------------------

def status_of(qtbot, page, kind):
    status = page.status
    qtbot.waitUntil(lambda: status.isVisible() and status.kind == kind, timeout=20000)
    return status.label.text()


def test_verify_ok(qtbot, page):
    from PySide6.QtWidgets import QPushButton

    qtbot.mouseClick(page.findChild(QPushButton, "verifyButton"), Qt.MouseButton.LeftButton)
    text = status_of(qtbot, page, "ok")
    assert "intact" in text and "5 events" in text
    assert page.findChild(QPushButton, "verifyButton").isEnabled()


def test_verify_names_and_selects_the_first_bad_event(qtbot, page, events):
    from PySide6.QtWidgets import QPushButton

    with events.db.conn:
        events.db.conn.execute("update events set detail = 'x' where seq = 3")
    qtbot.mouseClick(page.findChild(QPushButton, "verifyButton"), Qt.MouseButton.LeftButton)
    text = status_of(qtbot, page, "error")
    assert "BROKEN" in text and "event #3 " in text and "changed" in text
    table = page.findChild(QTableView, "auditTable")
    (selected,) = table.selectionModel().selectedRows()
    assert selected.row() == 2 and selected.data(Qt.ItemDataRole.UserRole)["seq"] == 3
    choose(page.findChild(QComboBox, "serverFilter"), "beta")  # event #3 is on alpha
    loaded(qtbot, page, 1)
    page.status.clear()
    qtbot.mouseClick(page.findChild(QPushButton, "verifyButton"), Qt.MouseButton.LeftButton)
    assert "not among the events the filters show" in status_of(qtbot, page, "error")


def test_export_csv_through_the_button(qtbot, page, tmp_path, monkeypatch):
    import csv

    from PySide6.QtWidgets import QFileDialog, QPushButton

    pytest.importorskip("app.audit.export")
    asked = []

    def save_name(parent, caption, folder, filters):
        asked.append(filters)
        return str(tmp_path / "alpha-log"), "CSV (*.csv)"

    monkeypatch.setattr(QFileDialog, "getSaveFileName", staticmethod(save_name))
    choose(page.findChild(QComboBox, "serverFilter"), "alpha")
    loaded(qtbot, page, 4)
    qtbot.mouseClick(page.findChild(QPushButton, "exportButton"), Qt.MouseButton.LeftButton)
    text = status_of(qtbot, page, "ok")
    path = tmp_path / "alpha-log.csv"
    assert "Exported 4 events" in text and str(path) in text and "use Verify" in text
    assert "PDF" in asked[0] and "JSON" in asked[0]
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert sorted(r["version"] for r in rows) == ["", "1.0.0", "1.0.0", "2.0.0"]
    assert {r["server"] for r in rows} == {"alpha"}


def test_export_failure_is_shown(qtbot, page, tmp_path, monkeypatch):
    from PySide6.QtWidgets import QFileDialog, QPushButton

    pytest.importorskip("app.audit.export")
    target = tmp_path / "no such folder" / "log.json"
    monkeypatch.setattr(QFileDialog, "getSaveFileName", staticmethod(lambda *a: (str(target), "")))
    qtbot.mouseClick(page.findChild(QPushButton, "exportButton"), Qt.MouseButton.LeftButton)
    assert status_of(qtbot, page, "error").startswith("Export failed: ")
    assert page.findChild(QPushButton, "exportButton").isEnabled()


def test_export_format_follows_the_extension_or_the_filter():
    from app.ui.audit.actions import export_format

    assert export_format("/x/log.JSON", "CSV (*.csv)") == ("/x/log.JSON", "json")
    assert export_format("/x/log", "PDF report (*.pdf)") == ("/x/log.pdf", "pdf")
    assert export_format("/x/log", "") == ("/x/log.csv", "csv")


def test_refreshes_while_the_order_is_read_share_one_read(qtbot, task_runner, monkeypatch, events):
    import time

    import app.ui.audit.page as audit_view

    monkeypatch.setattr(audit_view, "SMALL", 0)  # every log is "large": the order comes from a second task
    calls, real = [], audit_view.read_rest

    def slow_read_rest(db, snap):
        calls.append(snap.filter)
        time.sleep(0.5)
        return real(db, snap)

    monkeypatch.setattr(audit_view, "read_rest", slow_read_rest)
    page = AuditPage(task_runner)
    qtbot.addWidget(page)
    page.refresh()
    qtbot.waitUntil(lambda: "rest" in page.tasks, timeout=10000)
    page.refresh()
    loaded(qtbot, page, 5)
    qtbot.waitUntil(lambda: page.model.seqs is not None and not page.tasks, timeout=10000)
    assert len(calls) == 1 and list(page.model.seqs) == [5, 4, 3, 2, 1]
    assert page.findChild(QComboBox, "serverFilter").count() == 3  # the choices came with it


def test_verify_shows_a_rewritten_log_that_fools_the_chain(qtbot, page, berth_home):
    """The attacker recomputes every hash: the chain passes, the anchor beside the database does not."""
    import os

    from PySide6.QtWidgets import QPushButton

    from test_audit_anchor import attacker_rewrite

    attacker_rewrite(berth_home / "berth.sqlite", lambda rows: [dict(r, actor="mallory@elsewhere") for r in rows])
    qtbot.mouseClick(page.findChild(QPushButton, "verifyButton"), Qt.MouseButton.LeftButton)
    text = status_of(qtbot, page, "error")
    assert text.startswith("✘ anchor: event #5 has hash") and "the log was rewritten" in text, text
    assert "the chain itself is consistent (5 events" in text
    if os.environ.get("BERTH_SHOT"):  # look at it: BERTH_SHOT=/tmp/verify.png
        page.grab().save(os.environ["BERTH_SHOT"])
