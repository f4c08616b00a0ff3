"""The Audit view: newest first, each filter narrows, the text filter searches the detail, Ctrl+F."""
from datetime import datetime

import pytest
from PySide6.QtCore import QModelIndex, Qt
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QApplication, QComboBox, QLabel, QLineEdit, QTableView

from app.ui.audit_view import COLUMNS, AuditModel, AuditPage, local_time
from app.workspace import Workspace

EVENTS = [  # oldest first
    dict(action="server.add", outcome="ok", server="alpha", ssh_user="deploy", detail="deploy@alpha:22"),
    dict(action="deploy", outcome="ok", server="alpha", model="iris", version="1.0.0", ssh_user="deploy"),
    dict(action="deploy", outcome="failed", server="alpha", model="iris", version="2.0.0",
         detail="health check failed: broken on purpose"),
    dict(action="rollback", outcome="ok", server="alpha", model="iris", version="1.0.0"),
    dict(action="deploy", outcome="ok", server="beta", model="wine", version="0.1"),
]


@pytest.fixture
def events():
    ws = Workspace()
    for i, e in enumerate(EVENTS):
        ws.audit.record(ts=f"2024-05-01T10:00:{i:02d}.000+00:00", **e)
    return ws


def column(name: str) -> int:
    return [c[0] for c in COLUMNS].index(name)


def shown(page: AuditPage, name: str = "version") -> list[str]:
    model = page.model
    return [model.index(r, column(name)).data() for r in range(model.rowCount())]


def loaded(qtbot, page: AuditPage, count: int) -> None:
    label = page.findChild(QLabel, "countLabel")
    qtbot.waitUntil(lambda: label.text() == f"{count} event{'' if count == 1 else 's'}"
                    and page.model.rowCount() == count and page.debounce.isActive() is False, timeout=10000)


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
        ["Time", "Who", "Server", "Model", "Version", "Action", "Outcome", "Detail"]


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


def test_more_rows_load_on_scroll(qtbot, task_runner, monkeypatch):
    import app.ui.audit_view as audit_view

    monkeypatch.setattr(audit_view, "PAGE", 20)
    ws = Workspace()
    with ws.db.conn:
        for i in range(55):
            ws.audit.record("deploy", "ok", server="s", version=f"{i}", ts=f"2024-05-01T10:{i // 60:02d}:{i % 60:02d}+00:00")
    page = AuditPage(task_runner)
    qtbot.addWidget(page)
    page.resize(900, 300)
    page.show()
    page.refresh()
    label = page.findChild(QLabel, "countLabel")
    qtbot.waitUntil(lambda: page.model.rowCount() >= 20, timeout=10000)
    assert label.text().startswith("55 events")
    table = page.findChild(QTableView, "auditTable")
    for _ in range(10):
        table.scrollToBottom()
        qtbot.wait(50)
        if page.model.rowCount() == 55:
            break
    qtbot.waitUntil(lambda: page.model.rowCount() == 55, timeout=10000)
    assert shown(page)[:2] == ["54", "53"] and shown(page)[-1] == "0" and label.text() == "55 events"


def test_model_passes_the_qt_model_tester(qtmodeltester, events):
    model = AuditModel()
    model.set_rows(events.audit.list(), 5)
    qtmodeltester.check(model, force_py=True)
    model.set_rows([], 0)
    qtmodeltester.check(model, force_py=True)


def test_model_fetches_more_through_its_fetcher(qtmodeltester, events):
    model = AuditModel()
    rows = events.audit.list()
    asked = []
    model.fetcher = asked.append
    model.set_rows(rows[:2], 5)
    assert model.canFetchMore(QModelIndex())
    model.fetchMore(QModelIndex())
    assert asked == [2] and not model.canFetchMore(QModelIndex())  # one request at a time
    model.append_rows(rows[2:], 5)
    assert model.rowCount() == 5 and not model.canFetchMore(QModelIndex())
    qtmodeltester.check(model, force_py=True)


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
