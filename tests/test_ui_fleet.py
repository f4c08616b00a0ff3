"""The console with many servers (issue 23): grouped by environment in natural order, filtered, a
server that never answers shown as such and recovered, threads bounded, one confirmation for an
action on several servers."""
import os
import signal
import socket
import threading
import time

import pytest
from PySide6.QtCore import QItemSelectionModel
from PySide6.QtWidgets import QApplication, QMessageBox, QTableWidget
from pytestqt.exceptions import TimeoutError as WaitTimeout

from app.formatting import natural_key
from app.store.servers import LOCAL, ServerConfig, local_server
from app.ui.main_window import MainWindow
from app.ui.servers.fleet import ROLE_KIND, FleetModel, FleetView
from app.ui.servers.fleet_filter import matches
from app.workspace import Workspace
from cli_kit import iris_copy

SLOW = 30000


def config(name, env="", port=9, host="127.0.0.1", **kw) -> ServerConfig:
    return ServerConfig(name=name, host=host, port=port, user="nobody", root=f"/srv/{name}", environment=env, **kw)


def labels(model: FleetModel, view: FleetView | None = None) -> list:
    """The tree as shown: top-level texts, a group as (text, [its servers' names])."""
    out = []
    root = model.invisibleRootItem().index()
    for row in range(model.rowCount()):
        item = model.item(row)
        if view is not None and view.isRowHidden(row, root):
            continue
        if item.data(ROLE_KIND) == "group":
            out.append((item.text(), [item.child(r).text().split()[0] for r in range(item.rowCount())
                                      if view is None or not view.isRowHidden(r, item.index())]))
        else:
            out.append(item.text().split()[0])
    return out


@pytest.fixture
def window(qtbot, task_runner):
    win = MainWindow(task_runner)
    qtbot.addWidget(win)
    win.show()
    yield win
    win.close()


def test_natural_order():
    names = ["s10", "s2", "S1", "web-10", "web-9", "s2a"]
    assert sorted(names, key=natural_key) == ["S1", "s2", "s2a", "s10", "web-9", "web-10"]


@pytest.mark.parametrize("pattern, name, env, expected", [
    ("", "s1", "", True),
    ("web", "eu-web-3", "", True),
    ("WEB", "eu-web-3", "", True),
    ("web", "db1", "", False),
    ("s1*", "s10", "", True),
    ("s1*", "xs1", "", False),
    ("s?", "s2", "", True),
    ("env:production", "s1", "production", True),
    ("env:prod*", "s1", "production", True),
    ("env:prod", "s1", "production", False),  # an environment is matched whole (or by a glob)
    ("env:staging", "s1", "", False),
    ("env:", "s1", "", True),  # still typing
    ("s env:production", "s1", "production", True),
    ("db env:production", "s1", "production", False),
    ("[", "s[1", "", False),  # a broken glob matches nothing rather than failing
])
def test_filter_terms(pattern, name, env, expected):
    assert matches(pattern, name, env) is expected


def test_fleet_is_grouped_by_environment_in_natural_order_and_filtered(qtbot):
    model = FleetModel()
    view = FleetView(model)
    qtbot.addWidget(view)
    servers = [local_server(), config("s10", "production"), config("s2", "production"), config("s1", "staging"),
               config("lab3"), config("lab12")]
    model.set_servers(servers)
    assert labels(model) == ["local", "lab3", "lab12", ("production", ["s2", "s10"]), ("staging", ["s1"]),
                             "Audit"]
    assert model.server_names() == ["local", "lab3", "lab12", "s2", "s10", "s1"]
    assert model.item(3, 1).text() == "2 servers"

    view.set_filter("env:production")
    assert labels(model, view) == [("production", ["s2", "s10"]), "Audit"]
    view.set_filter("s1*")
    assert labels(model, view) == [("production", ["s10"]), ("staging", ["s1"]), "Audit"]
    view.set_filter("lab")
    assert labels(model, view) == ["lab3", "lab12", "Audit"] and view.visible_servers() == ["lab3", "lab12"]
    view.set_filter("")
    assert len(view.visible_servers()) == 6

    # s2 moves to staging, s10 is removed, s11 appears: rows move, the tree stays in order
    model.set_servers([local_server(), config("s11", "production"), config("s2", "staging"), config("s1", "staging"),
                       config("lab3"), config("lab12")])
    assert labels(model) == ["local", "lab3", "lab12", ("production", ["s11"]), ("staging", ["s1", "s2"]), "Audit"]
    model.set_servers([local_server()])
    assert labels(model) == ["local", "Audit"]


def test_a_group_row_selects_its_servers_the_filter_shows(qtbot):
    model = FleetModel()
    view = FleetView(model)
    qtbot.addWidget(view)
    model.set_servers([local_server(), config("p1", "production"), config("p20", "production"),
                       config("p3", "production")])
    view.set_filter("p?")
    group = model.group_item("production")
    view.selectionModel().select(group.index(), QItemSelectionModel.SelectionFlag.Select
                                 | QItemSelectionModel.SelectionFlag.Rows)
    assert view.selected_servers() == ["p1", "p3"]


def test_not_answering_stands_out_in_the_tree_and_the_overview(qtbot):
    from app.ui.monitor.feed import MonitorFeed
    from app.ui.monitor.overview import FleetOverview

    model = FleetModel()
    model.set_servers([local_server(), config("s1", "production")])
    since = time.time() - 30
    model.set_stalled("s1", since)
    clock = time.strftime("%H:%M:%S", time.localtime(since))
    item = model.server_item("s1")
    assert item.parent().child(item.row(), 1).text() == f"not answering since {clock}"
    assert model.item(model.group_item("production").row(), 1).text() == "1 not answering"
    model.set_stalled("s1", 0.0)
    assert item.parent().child(item.row(), 1).text() == ""

    feed = MonitorFeed(stream_factory=None, history_factory=None)
    feed.start(["s1", "s2", "s10", "db1"])
    overview = FleetOverview(feed)
    qtbot.addWidget(overview)
    overview.model.stalled["s10"] = since
    overview.set_environments({"s1": "production", "s2": "production", "s10": "staging", "db1": "production"})
    overview.refresh()
    shown = [overview.model.index(r, 0).data() for r in range(overview.model.rowCount())]
    assert shown == ["local", "db1", "s1", "s2", f"s10  (not answering since {clock})"]
    overview.set_filter("env:production s*")
    assert [s for s, _m in overview.model.rows] == ["s1", "s2"]
    assert overview.filter_edit.text() == "env:production s*"
    feed.stop()


class BlackHole:
    """A TCP port that accepts connections (the kernel's backlog) and never says a word: a host
    that hangs at the SSH banner."""

    def __init__(self):
        self.sock = socket.create_server(("127.0.0.1", 0), backlog=128)
        self.port = self.sock.getsockname()[1]

    def close(self):
        self.sock.close()


def test_twenty_hanging_servers_use_a_bounded_pool(qtbot, window):
    from app.ui.tasks import SERVER_THREADS

    hole = BlackHole()
    try:
        ws = Workspace()
        before = {t.ident for t in threading.enumerate()}
        for n in range(20):
            ws.servers.save(config(f"h{n}", "lab", port=hole.port))
        window.load_servers()
        qtbot.waitUntil(lambda: len(window.refresher.pending) == 21, timeout=SLOW)  # + local
        qtbot.waitUntil(lambda: sum(1 for t in window.refresher.pending.values() if t.started_at) >= SERVER_THREADS,
                        timeout=SLOW)
        qtbot.wait(1500)  # more time for any thread that would start
        new = [t for t in threading.enumerate() if t.ident not in before]
        server_threads = [t for t in new if t.name.startswith("berth-server")]
        assert len(server_threads) <= SERVER_THREADS, [t.name for t in new]
        others = sorted(t.name for t in new if t not in server_threads)
        assert len(new) <= 2 * SERVER_THREADS + 4, others  # a paramiko thread per connection being opened; not 20 + 20
        running = [lane.server for lane in list(window.runner.lanes.values()) if lane.current is not None]
        assert len(running) <= SERVER_THREADS  # the others wait their turn in the queue
    finally:
        hole.close()


def test_a_server_that_stops_answering_is_shown_and_recovers(qtbot, sshd, tmp_path):
    """The real sshd stopped (SIGSTOP): TCP is accepted, nothing answers. After the deadline the
    fleet says "not answering since"; it is asked again with backoff; once the daemon goes on
    (SIGCONT) the server is connected again and the mark goes."""
    from app.ui.tasks import TaskRunner

    ws = Workspace()
    ws.add_server(ServerConfig(name="box", host=sshd.host, port=sshd.port, user=sshd.user,
                               key_path=str(sshd.key_path), root=str(tmp_path / "srv"), environment="staging"),
                  sshd.fingerprint)
    os.kill(sshd.proc.pid, signal.SIGSTOP)
    runner = TaskRunner()
    win = MainWindow(runner)
    try:
        qtbot.addWidget(win)
        win.refresher.deadline_s, win.refresher.retry_s = 2.0, (1.0, 60.0)  # after one retry only F5 asks soon
        win.show()

        def state():
            item = win.fleet_model.server_item("box")
            return item.parent().child(item.row(), 1).text() if item is not None else ""

        qtbot.waitUntil(lambda: state().startswith("not answering since "), timeout=SLOW)
        assert "box" in win.refresher.stalled
        qtbot.waitUntil(lambda: win.refresher.tries.get("box", 0) >= 1, timeout=SLOW)  # asked again on its own
        asked = win.refresher.pending.get("box")
        win.refresh_action.trigger()  # F5 asks at once as well, on a fresh lane
        qtbot.waitUntil(lambda: win.refresher.pending.get("box") is not asked, timeout=2000)  # the round's spread
        assert "box" in win.refresher.stalled  # until it answers
    finally:
        os.kill(sshd.proc.pid, signal.SIGCONT)
    # The calls given up on now go on together on one fresh connection, which can meet the SFTP race
    # of issue 23 (app/remote/ssh.py, fixed apart) and hang: the backoff is what recovers from that.
    win.refresher.retry_s = (1.0, 1.0)
    win.refresher.retry_at["box"] = 0.0
    try:
        def recovered():
            assert state() == "connected" and "box" not in win.refresher.stalled, \
                (state(), win.fleet_model.states.get("box"), dict(win.refresher.tries))

        qtbot.waitUntil(recovered, timeout=60000)
        assert win.fleet_model.item(win.fleet_model.group_item("staging").row(), 1).text() == "1 server"
    finally:
        win.close()
        runner.shutdown(wait=True)


def test_one_confirmation_lists_every_selected_server(qtbot, window, tmp_path):
    """Deploy to three selected servers: one question naming the three; confirmed, each runs on its
    own server (here none can be reached) and the window shows each outcome."""
    ws = Workspace()
    for name in ("s10", "s2", "s1"):
        ws.servers.save(config(name, "production"))
    window.load_servers()
    qtbot.waitUntil(lambda: window.fleet_model.server_item("s10") is not None, timeout=SLOW)
    fleet = window.fleet
    fleet.clearSelection()
    for name in ("s10", "s2", "s1"):
        fleet.selectionModel().select(window.fleet_model.server_item(name).index(),
                                      QItemSelectionModel.SelectionFlag.Select | QItemSelectionModel.SelectionFlag.Rows)
    assert fleet.selected_servers() == ["s1", "s2", "s10"]
    assert [a.text() for a in window.fleet_menu.actions()] == ["Deploy folder to 3 servers…"]
    window.fleet_menu.deploy(fleet.selected_servers(), str(iris_copy(tmp_path, "1.0.0")))
    try:
        qtbot.waitUntil(lambda: window.fleet_menu.confirmation is not None, timeout=SLOW)
    except WaitTimeout:  # CI once timed out here (stop 17), never reproduced: say what was pending
        boxes = [(w.windowTitle(), w.text()) for w in QApplication.topLevelWidgets()
                 if isinstance(w, QMessageBox) and w.isVisible()]
        tasks = [(t.label, t.done, t.started_at and round(time.monotonic() - t.started_at, 1))
                 for t in window.runner.active]
        raise AssertionError(f"no confirmation; open boxes {boxes}; "
                             f"the window's tasks (label, done, running for s) {tasks}")
    box = window.fleet_menu.confirmation
    assert box.targets == ["s1", "s2", "s10"] and "to these 3 servers" in box.text()
    assert box.informativeText() == "• s1\n• s2\n• s10"
    assert box.defaultButton() is box.button(QMessageBox.StandardButton.Cancel)
    box.reason.setText("issue 23 test")
    box.confirm_button.click()
    qtbot.waitUntil(lambda: window.fleet_menu.run is not None, timeout=5000)
    run = window.fleet_menu.run
    with qtbot.waitSignal(run.done, timeout=SLOW):
        pass
    table = run.findChild(QTableWidget, "groupTable")
    rows = {table.item(r, 0).text(): table.item(r, 1).text() for r in range(table.rowCount())}
    assert list(rows) == ["s1", "s2", "s10"] and all(v.startswith("failed: ") for v in rows.values()), rows
    assert run.failed == 3


def test_cancel_runs_nothing(qtbot, window, tmp_path):
    ws = Workspace()
    for name in ("a1", "a2"):
        ws.servers.save(config(name))
    window.load_servers()
    qtbot.waitUntil(lambda: window.fleet_model.server_item("a2") is not None, timeout=SLOW)
    window.fleet_menu.change("stop", [("a1", "iris"), ("a2", "iris")])
    box = window.fleet_menu.confirmation
    assert box.targets == ["iris on a1", "iris on a2"] and not hasattr(box, "reason")
    box.button(QMessageBox.StandardButton.Cancel).click()
    qtbot.wait(200)
    assert window.fleet_menu.run is None


def test_one_selected_server_gets_the_usual_dialog(qtbot, window, tmp_path):
    from app.ui.deploy.dialog import DeployDialog

    window.fleet_menu.deploy([LOCAL], str(iris_copy(tmp_path, "1.0.0")))
    qtbot.waitUntil(lambda: window.findChild(DeployDialog) is not None, timeout=5000)
    assert window.fleet_menu.confirmation is None
    window.findChild(DeployDialog).reject()


class _Quick:
    def close(self):
        pass


class _Recording:
    """A workspace whose connection needs no server and whose status call notes when it ran."""
    asked: list = []

    def connect(self, server, accept=None, shared=False):
        return _Quick()

    def server_status(self, transport):
        _Recording.asked.append(time.monotonic())
        return []


def test_a_round_of_status_calls_is_spread_not_all_at_once(qtbot):
    from PySide6.QtWidgets import QWidget

    from app.ui.refresher import Refresher
    from app.ui.tasks import TaskRunner

    _Recording.asked = []
    runner = TaskRunner(workspace_factory=_Recording)
    view = QWidget()
    qtbot.addWidget(view)
    view.runner = runner
    refresher = Refresher(view, runner)
    try:
        refresher.refresh_all([f"s{n}" for n in range(50)], span_ms=1000)
        qtbot.waitUntil(lambda: len(_Recording.asked) == 50, timeout=10000)
        asked = sorted(_Recording.asked)
        assert asked[-1] - asked[0] >= 0.8  # 50 servers over the second asked for, 20 ms apart
        # 5 per 100 ms when timers are on time; a loaded machine fires late ones together, so the
        # bound is what "not all at once" needs: all 50 in one go fails it
        busiest = max(sum(1 for t in asked if a <= t < a + 0.1) for a in asked)
        assert busiest <= 20, busiest
        qtbot.waitUntil(lambda: not refresher.pending, timeout=5000)
        refresher.refresh_all(["s1"])  # an answered server is asked again; one under way is not
        refresher.refresh_all(["s1"])
        assert len(refresher.pending) == 1
    finally:
        runner.shutdown(wait=True)


def test_a_stream_waits_its_start_delay_and_stop_ends_the_wait():
    from app.monitor.stream import SampleStream

    opened = []

    def opener():
        opened.append(time.monotonic())
        raise ConnectionError("no server here")

    t0 = time.monotonic()
    s = SampleStream("box", opener, 1.0, start_delay=0.5).start()
    deadline = time.monotonic() + 5
    while not opened and time.monotonic() < deadline:
        time.sleep(0.02)
    s.stop()
    assert opened and opened[0] - t0 >= 0.45
    late = SampleStream("box", opener, 1.0, start_delay=60).start()
    t1 = time.monotonic()
    late.stop()
    assert time.monotonic() - t1 < 2 and not late.is_alive() and len(opened) == 1


def test_remote_activity_shows_when_the_sample_stream_connected_first(qtbot, sshd, tmp_path):
    """The monitor's stream opens the server's one shared connection before any operation; the
    console's status calls on it are still in the server's Remote activity."""
    from app.ui.monitor.feed import MonitorFeed
    from app.ui.tasks import TaskRunner

    ws = Workspace()
    ws.add_server(ServerConfig(name="box", host=sshd.host, port=sshd.port, user=sshd.user,
                               key_path=str(sshd.key_path), root=str(tmp_path / "srv")), sshd.fingerprint)
    seen = len(ws.activity.list("box"))  # the check when it was added
    feed = MonitorFeed(history_factory=None)
    feed.start(["box"])
    runner = TaskRunner()
    win = None
    try:
        qtbot.waitUntil(lambda: feed.states.get("box", ("",))[0] == "live", timeout=SLOW)  # the stream's connection
        win = MainWindow(runner, monitor_feed=feed)
        qtbot.addWidget(win)
        win.show()
        qtbot.waitUntil(lambda: win.fleet_model.states.get("box", ("",))[0] == "connected", timeout=SLOW)
        win.fleet.select("box")
        table = win.server_page.findChild(QTableWidget, "activityTable")
        qtbot.waitUntil(lambda: any(table.item(r, 1).text() == "status" for r in range(table.rowCount())),
                        timeout=SLOW)
        assert len(ws.activity.list("box")) > seen
    finally:
        if win is not None:
            win.close()
        feed.stop()
        runner.shutdown(wait=True)


def test_an_unchanged_status_touches_no_row_and_leaves_a_collapsed_server_collapsed(qtbot, window):
    """The periodic status of N servers (N/15 a second) that says what the tree shows already costs
    nothing: no row set again, no expandAll of the whole tree (a server the user collapsed stays so)."""
    from app.ui.servers.fleet import ROLE_GROUP

    window._set_servers([local_server(), config("s1", "production"), config("s2", "production")])
    rows = [{"model": "iris", "version": "1.0.0", "state": "running", "server": "s1"}]
    window._set_models("s1", rows)
    model, item = window.fleet_model, window.fleet_model.server_item("s1")
    assert item.rowCount() == 1 and window.fleet.isExpanded(item.index())
    window.fleet.collapse(item.index())
    changed = []
    model.dataChanged.connect(lambda *a: changed.append(a))
    window._set_models("s1", [dict(r) for r in rows])  # the next round: the same answer
    assert changed == [] and not window.fleet.isExpanded(item.index())

    window._set_models("s1", [dict(rows[0], state="failed")])  # a change is shown, its models too
    assert changed and item.child(0, 1).text() == "failed" and window.fleet.isExpanded(item.index())

    # a server moved to another group is found there (its old row is gone)
    model.set_servers([local_server(), config("s1", "production"), config("s2", "staging")])
    assert model.server_item("s2").parent().data(ROLE_GROUP) == "staging"
    model.set_servers([local_server(), config("s1", "production")])
    assert model.server_item("s2") is None and model.server_item("s1") is item
