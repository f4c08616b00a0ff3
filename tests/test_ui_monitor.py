"""The Monitor page: feed → ring buffer → graphs and fleet overview, with simulated samples (schema of
docs/monitoring.md) pushed through the real MonitorFeed; and once with the real LocalSampler against
iris running on `local`."""
import csv
import math
import time

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QImage

from app.monitor.csv_export import write_csv
from app.monitor.simulated import simulated_sample
from app.monitor.thresholds import DEFAULT_THRESHOLDS
from app.ui.monitor.feed import MonitorFeed
from app.ui.monitor.graphs import export_png
from app.ui.monitor.overview import ROLE_ALERT, FleetOverview, load_thresholds
from app.ui.monitor.page import MonitorPage

WAIT = 30000


@pytest.fixture
def feed(qtbot):
    feed = MonitorFeed(stream_factory=None, history_factory=None)
    feed.start(["box"])
    yield feed
    feed.stop()


def push(qtbot, feed, server, start, n, models=("iris",), step=1.0, **changes):
    """n samples, one per `step` seconds from `start`, through the feed; waits until they are delivered."""
    last = None
    for i in range(n):
        sample = simulated_sample(start + i * step, models=models)
        for model, values in changes.items():
            sample["models"][model].update(values)
        feed.feed(server, sample)
        last = start + i * step
    qtbot.waitUntil(lambda: feed.buffer.last_ts.get(server) == last, timeout=5000)


@pytest.fixture
def page(qtbot, task_runner, feed):
    page = MonitorPage(task_runner, feed)
    qtbot.addWidget(page)
    page.resize(1100, 800)
    page.show()
    return page


def curve_data(page, metric):
    xs, ys = page.graphs.curves[metric][0].getOriginalDataset()
    return np.asarray(xs if xs is not None else []), np.asarray(ys if ys is not None else [])


# -- graphs ------------------------------------------------------------------------------------------

def test_model_graphs_get_points_on_a_time_axis(qtbot, page, feed):
    now = time.time()
    push(qtbot, feed, "box", now - 100, 100)
    page.show_target("box", "iris")
    for metric in ("cpu_percent", "rss_bytes", "p50_ms", "p95_ms", "p99_ms", "requests_per_s", "errors_per_s"):
        xs, ys = curve_data(page, metric)
        assert len(xs) == 100 and np.isfinite(ys).all(), metric
    assert len(curve_data(page, "p95_ms")[0]) == 100
    lo, hi = page.graphs.x_range()
    assert hi - lo == pytest.approx(101, abs=2) and hi >= now - 1  # less than 5 minutes of data: from its start
    qtbot.wait(50)  # linked views follow once laid out
    for plot in page.graphs.plots:  # one shared time axis
        assert plot.vb.viewRange()[0] == pytest.approx(page.graphs.plots[0].vb.viewRange()[0], abs=1.0), \
            [p.vb.viewRange()[0] for p in page.graphs.plots]

    page.show_target("box", None)  # the host
    assert set(page.graphs.curves) == {"cpu_percent", "memory_percent", "load1", "disk_used_percent"}
    assert len(curve_data(page, "load1")[0]) == 100

    shown = page.graphs.hover(now - 50.2)
    assert shown["cpu_percent"] == pytest.approx(feed.buffer.series("box", None, "cpu_percent")[1][50])
    assert page.graphs.plots[0].hover_line.isVisible()
    page.graphs.hover(None)
    assert not page.graphs.plots[0].hover_line.isVisible()

    push(qtbot, feed, "box", now, 300)  # more than 5 minutes: the window slides
    page.graphs.redraw()
    lo, hi = page.graphs.x_range()
    assert hi - lo == pytest.approx(300, abs=1)


def test_a_gap_breaks_the_line(qtbot, page, feed):
    now = time.time()
    push(qtbot, feed, "box", now - 60, 20)
    feed.gap("box")  # what the stream reports when it breaks
    qtbot.waitUntil(lambda: math.isnan(feed.buffer.current("box", "iris", "cpu_percent")), timeout=5000)
    push(qtbot, feed, "box", now - 30, 10)
    # a model that is not running in a sample is a break too
    sample = simulated_sample(now - 15, models=())
    feed.feed("box", sample)
    push(qtbot, feed, "box", now - 10, 5)
    page.show_target("box", "iris")
    xs, ys = curve_data(page, "cpu_percent")
    assert np.isnan(ys).sum() == 2 and len(xs) == 37
    assert np.all(np.diff(xs) > 0)
    assert page.graphs.curves["cpu_percent"][0].opts["connect"] == "finite"


def test_pause_freezes_the_view_while_data_keeps_coming(qtbot, page, feed):
    now = time.time()
    push(qtbot, feed, "box", now - 50, 50)
    page.show_target("box", "iris")
    page.graphs.pause_button.click()
    assert page.graphs.paused and page.graphs.pause_button.text() == "Resume"
    frozen = page.graphs.x_range()
    points = len(curve_data(page, "cpu_percent")[0])
    qtbot.wait(50)
    push(qtbot, feed, "box", now + 1, 5)
    page.graphs.tick()
    assert page.graphs.x_range() == frozen and len(curve_data(page, "cpu_percent")[0]) == points
    assert len(feed.buffer.series("box", "iris", "cpu_percent")[0]) == 55  # the buffer kept growing
    page.graphs.pause_button.click()  # resume: jump to now
    assert not page.graphs.paused
    assert page.graphs.x_range()[1] > frozen[1]
    assert len(curve_data(page, "cpu_percent")[0]) == 55


def test_deploy_and_rollback_markers_from_the_audit_log(qtbot, page):
    from app.workspace import Workspace

    audit = Workspace().audit
    audit.record("deploy", "ok", server="box", model="iris", version="1.0.0")
    audit.record("deploy", "failed", server="box", model="iris", version="1.0.1")
    audit.record("stop", "ok", server="box", model="iris", version="1.0.0")
    audit.record("deploy", "ok", server="box", model="wine", version="2.0.0")
    audit.record("rollback", "ok", server="box", model="iris", version="0.9.0")
    page.show_target("box", "iris")
    qtbot.waitUntil(lambda: len(page.graphs.markers) == 2, timeout=WAIT)
    assert [label for _ts, label in page.graphs.markers] == ["deploy 1.0.0", "rollback 0.9.0"]
    labels = [item.label.format for _plot, item in page.graphs._marker_items if getattr(item, "label", None)]
    assert labels == ["deploy 1.0.0", "rollback 0.9.0"]
    assert abs(page.graphs.markers[0][0] - time.time()) < 60


# -- export --------------------------------------------------------------------------------------------

def test_csv_export_writes_the_visible_data_with_a_header(qtbot, page, feed, tmp_path):
    now = time.time()
    push(qtbot, feed, "box", now - 600, 600)  # 10 minutes: only the last 5 are visible
    feed.gap("box")
    push(qtbot, feed, "box", now + 0.5, 1)
    page.show_target("box", "iris")
    path = tmp_path / "iris.csv"
    rows = write_csv(path, page.graphs.visible_series())
    with open(path, newline="") as f:
        table = list(csv.reader(f))
    assert table[0] == ["time", "unix_ts", "cpu_percent", "rss_bytes", "p50_ms", "p95_ms", "p99_ms",
                        "requests_per_s", "errors_per_s"]
    lo, hi = page.graphs.x_range()
    assert len(table) - 1 == rows
    assert all(lo - 1e-3 <= float(r[1]) <= hi + 1e-3 for r in table[1:])  # unix_ts has 3 decimals
    assert 295 <= rows <= 303
    assert [r for r in table[1:] if r[2] == ""], "the gap is an empty cell"
    assert table[-2][2:] == [""] * 7  # the gap
    assert float(table[-3][5]) == pytest.approx(feed.buffer.series("box", "iris", "p95_ms")[1][-3], rel=1e-5)


def test_png_export_writes_an_image(qtbot, page, feed, tmp_path):
    push(qtbot, feed, "box", time.time() - 30, 30)
    page.show_target("box", "iris")
    path = tmp_path / "graphs.png"
    assert export_png(page.graphs.graphics, path)
    image = QImage(str(path))
    assert path.stat().st_size > 1000 and image.width() > 300 and image.height() > 300


# -- fleet overview --------------------------------------------------------------------------------------

def test_thresholds_colour_a_row_and_are_kept(qtbot, feed):
    overview = FleetOverview(feed)
    qtbot.addWidget(overview)
    overview.show()
    now = time.time()
    push(qtbot, feed, "box", now - 10, 10, models=("iris", "wine"))
    push(qtbot, feed, "box", now, 1, models=("iris", "wine"))
    sample = simulated_sample(now + 1, models=("iris", "wine"))
    sample["models"]["iris"]["latency_ms"]["p95"] = 350.0
    feed.feed("box", sample)
    qtbot.waitUntil(lambda: feed.buffer.last_ts.get("box") == now + 1, timeout=5000)
    overview.refresh()
    iris, wine = overview.row_of("box", "iris"), overview.row_of("box", "wine")
    assert iris >= 0 and wine >= 0 and overview.row_of("box") >= 0 and overview.row_of("local") >= 0
    assert overview.model.alerts(iris) == ["p95 latency"] and overview.model.alerts(wine) == []
    p95 = overview.model.index(iris, 3)
    assert p95.data() == "350.0 ms" and p95.data(ROLE_ALERT)
    assert not overview.model.index(iris, 4).data(ROLE_ALERT)
    assert overview.model.index(iris, 0).data(Qt.ItemDataRole.ForegroundRole) is not None

    overview.spins["p95_ms"].setValue(500)  # raised: no longer over
    assert overview.model.alerts(iris) == []
    assert load_thresholds()["p95_ms"] == 500 and load_thresholds()["cpu_percent"] == DEFAULT_THRESHOLDS["cpu_percent"]
    overview.spins["errors_per_s"].setValue(0)
    sample = simulated_sample(now + 2, models=("iris", "wine"))
    sample["models"]["wine"]["errors_per_s"] = 0.5
    feed.feed("box", sample)
    qtbot.waitUntil(lambda: feed.buffer.last_ts.get("box") == now + 2, timeout=5000)
    overview.refresh()
    assert overview.model.alerts(wine) == ["Errors/s"]

    with qtbot.waitSignal(overview.open_requested) as opened:
        qtbot.mouseClick(overview.table.viewport(), Qt.MouseButton.LeftButton,
                         pos=overview.table.visualRect(overview.model.index(wine, 0)).center())
    assert opened.args == ["box", "wine"]


def test_clicking_a_row_opens_its_graphs(qtbot, page, feed):
    push(qtbot, feed, "box", time.time() - 20, 20)
    page.show_overview()
    row = page.overview.row_of("box", "iris")
    qtbot.mouseClick(page.overview.table.viewport(), Qt.MouseButton.LeftButton,
                     pos=page.overview.table.visualRect(page.overview.model.index(row, 1)).center())
    assert page.stack.currentWidget() is page.graphs
    assert (page.graphs.server, page.graphs.model) == ("box", "iris")
    page.graphs.back_button.click()
    assert page.stack.currentWidget() is page.overview


# -- history -----------------------------------------------------------------------------------------------

def test_samples_are_written_to_history_and_the_hour_reads_it_in_the_background(qtbot, task_runner, tmp_path):
    import threading

    from app.monitor.history import History

    path = tmp_path / "monitor.sqlite"
    threads = set()

    def factory():
        threads.add(threading.current_thread().name)
        return History(path)

    feed = MonitorFeed(stream_factory=None, history_factory=factory)
    feed.start(["box"])
    now = time.time()
    try:
        push(qtbot, feed, "box", now - 1200, 1200, step=1.0)  # 20 minutes: more than the live window
        qtbot.waitUntil(lambda: feed.written == 1200, timeout=WAIT)
    finally:
        feed.stop()
    assert feed.writer_done.wait(10)
    assert threads == {"berth-monitor-writer"}
    page = MonitorPage(task_runner, feed)
    qtbot.addWidget(page)
    page.show()
    before = time.time()
    page.show_target("box", "iris")
    after = time.time()
    # live: the buffer's last 5 minutes by the clock (a loaded machine may take seconds to get here)
    stamps = [now - 1200 + i for i in range(1200)]
    fewest, most = sum(t >= after - 300 for t in stamps), sum(t >= before - 301 for t in stamps)
    assert fewest - 1 <= len(curve_data(page, "cpu_percent")[0]) <= most, (fewest, most)
    page.graphs.window_combo.setCurrentIndex(1)  # 1 hour, from History
    qtbot.waitUntil(lambda: len(curve_data(page, "cpu_percent")[0]) >= 1150, timeout=WAIT)
    assert "berth-bg" in "".join(threads - {"berth-monitor-writer"})
    lo, hi = page.graphs.x_range()
    assert hi - lo == pytest.approx(3600, abs=2)


# -- the main window ---------------------------------------------------------------------------------------

def test_main_window_monitor_entry_shortcut_and_model_button(qtbot, task_runner, feed):
    from PySide6.QtGui import QKeySequence

    from app.ui.servers.fleet import ROLE_KIND
    from app.ui.main_window import MainWindow

    win = MainWindow(task_runner, monitor_feed=feed)
    qtbot.addWidget(win)
    win.show()
    assert win.monitor_page is None  # nothing monitoring-related until the page is first shown
    assert win.monitor_action.shortcut() == QKeySequence("Ctrl+M")
    kinds = [win.fleet_model.item(r).data(ROLE_KIND) for r in range(win.fleet_model.rowCount())]
    assert "monitor" in kinds and "audit" in kinds
    win.monitor_action.trigger()
    assert win.stack.currentWidget() is win.monitor_page
    assert win.monitor_page.stack.currentWidget() is win.monitor_page.overview
    win.model_page.server, win.model_page.model = "box", "iris"
    win.model_monitor_button.click()
    assert win.monitor_page.stack.currentWidget() is win.monitor_page.graphs
    assert (win.monitor_page.graphs.server, win.monitor_page.graphs.model) == ("box", "iris")
    win.close()
    assert not feed.started


# -- for real ----------------------------------------------------------------------------------------------

def test_local_iris_curves_with_the_real_sampler(qtbot, task_runner, berth_home, tmp_path, stop_local_runners):
    pytest.importorskip("app.monitor.stream")
    from app.deploy.deploy import Deploy
    from app.deploy.changes import run_to_end
    from app.remote.local import LocalTransport
    from app.workspace import Workspace
    from cli_kit import iris_copy

    with LocalTransport(str(berth_home / "local")) as t:
        run_to_end(Deploy(t, iris_copy(tmp_path, "1.0.0"), Workspace().audit).run())
    feed = MonitorFeed(history_factory=None)
    feed.start([])
    try:
        page = MonitorPage(task_runner, feed)
        qtbot.addWidget(page)
        page.show()
        page.show_target("local", "iris")

        def points(metric):
            page.graphs.redraw()
            _xs, ys = curve_data(page, metric)
            return int(np.isfinite(ys).sum())

        qtbot.waitUntil(lambda: points("cpu_percent") >= 2 and points("rss_bytes") >= 2, timeout=WAIT)
        assert np.nanmax(curve_data(page, "rss_bytes")[1]) > 5e6  # a Python process serving iris
        assert feed.states["local"][0] == "live"
        qtbot.waitUntil(lambda: len(page.graphs.markers) == 1, timeout=WAIT)
    finally:
        feed.stop()


def test_overview_shows_a_broken_stream(qtbot, feed):
    overview = FleetOverview(feed)
    qtbot.addWidget(overview)
    overview.show()
    push(qtbot, feed, "box", time.time() - 5, 5)
    feed.state("box", "reconnecting", "connection lost")
    qtbot.waitUntil(lambda: feed.states.get("box", ("",))[0] == "reconnecting", timeout=5000)
    overview.refresh()
    index = overview.model.index(overview.row_of("box"), 0)
    assert index.data() == "box  (reconnecting)" and "connection lost" in index.data(Qt.ItemDataRole.ToolTipRole)


def test_graphs_y_range_holds_the_data_and_stays_still_while_it_fits(qtbot, page, feed):
    now = time.time()
    push(qtbot, feed, "box", now - 120, 120)
    page.show_target("box", "iris")
    ranges = []
    for plot in page.graphs.plots:
        lo, hi = plot.vb.viewRange()[1]
        for metric, _unit, _legend in plot.series:
            ys = curve_data(page, metric)[1]
            ys = ys[np.isfinite(ys)]
            assert lo <= ys.min() and ys.max() <= hi, (metric, lo, hi)
        ranges.append((lo, hi))
    push(qtbot, feed, "box", now, 1)  # one more point of the same curves: no axis moves
    page.graphs.redraw()
    assert [tuple(p.vb.viewRange()[1]) for p in page.graphs.plots] == ranges
    push(qtbot, feed, "box", now + 1, 1, iris={"cpu_percent": 500.0})  # out of range: the range follows
    page.graphs.redraw()
    assert page.graphs.plots[0].vb.viewRange()[1][1] >= 500.0


def test_overview_sparklines_are_drawn_in_one_pass_with_their_breaks(qtbot, feed):
    from PySide6.QtCore import QRect

    from app.ui.monitor.sparktable import sparkline_sheet

    values = np.r_[np.arange(10.0), np.nan, np.arange(10.0)]
    paths = sparkline_sheet([(values, QRect(0, 0, 90, 22), False), (np.arange(5.0), QRect(100, 30, 90, 22), True),
                             (np.full(3, np.nan), QRect(0, 60, 90, 22), False)])
    assert set(paths) == {False, True}  # one path per colour; nothing for a cell without a value
    normal = paths[False]
    moves = sum(1 for i in range(normal.elementCount()) if normal.elementAt(i).isMoveTo())
    assert moves == 2  # the gap breaks the line
    assert QRect(0, 0, 91, 23).contains(normal.boundingRect().toRect())
    assert QRect(100, 30, 91, 23).contains(paths[True].boundingRect().toRect())  # each line in its own box

    overview = FleetOverview(feed)
    qtbot.addWidget(overview)
    overview.resize(1000, 600)
    overview.show()
    push(qtbot, feed, "box", time.time() - 30, 30, models=("iris", "wine"))
    overview.refresh()
    sheet = overview.table.sheet()
    assert sheet is not None and not sheet.toImage().isNull()
    key = overview.table._sheet_key
    assert overview.table.sheet() is sheet and overview.table._sheet_key is key  # once per refresh, not per paint
    overview.refresh()
    assert overview.table.sheet() is not None and overview.table._sheet_key != key


def test_the_live_view_starts_with_the_last_minutes_from_history(qtbot, task_runner, tmp_path):
    """A restart: what the previous session stored is in the live 5 minutes at once, before any new
    sample, followed by a break; older samples are not."""
    from app.monitor.history import History

    path = tmp_path / "monitor.sqlite"
    now = time.time()
    history = History(path)
    written = [now - 200 + i for i in range(180)]  # 3 minutes, ending 20 s ago
    for ts in [now - 900 + i for i in range(30)] + written:  # and half a minute from 15 minutes ago
        history.add(dict(simulated_sample(ts, models=("iris",)), server="box"))
    history.close()

    feed = MonitorFeed(stream_factory=None, history_factory=lambda: History(path))
    feed.start(["box"])
    try:
        page = MonitorPage(task_runner, feed)
        qtbot.addWidget(page)
        page.resize(1100, 800)
        page.show()
        page.show_target("box", "iris")
        qtbot.waitUntil(lambda: len(curve_data(page, "cpu_percent")[0]) > 0, timeout=WAIT)
        xs, ys = curve_data(page, "cpu_percent")
        assert np.allclose(xs[:180], [round(ts, 3) for ts in written], atol=2e-3)  # stored in ms
        assert np.allclose(ys[:180], [simulated_sample(ts)["models"]["iris"]["cpu_percent"] for ts in written],
                           atol=0.01)
        assert len(xs) == 181 and math.isnan(ys[-1])  # then a break: the new session's samples come after it
        lo, _hi = page.graphs.x_range()
        assert lo <= written[0]
        mem_x, mem = curve_data(page, "rss_bytes")
        assert len(mem_x) == 181 and mem[0] == pytest.approx(simulated_sample(written[0])["models"]["iris"]["rss_bytes"],
                                                             abs=1)

        push(qtbot, feed, "box", now, 3)  # live samples carry on after the break
        page.graphs.redraw()
        xs, ys = curve_data(page, "cpu_percent")
        assert len(xs) == 184 and list(xs[-3:]) == [now, now + 1, now + 2] and math.isnan(ys[180])
        page.show_overview()
        overview = page.overview
        assert overview.row_of("box", "iris") >= 0
        assert len(overview.model.values(overview.row_of("box", "iris"), 1)) == 184
    finally:
        feed.stop()
        assert feed.writer_done.wait(10)


def test_every_graph_names_its_unit():
    from app.ui.monitor.plots import HOST_PLOTS, MODEL_PLOTS

    for title, unit, _series in MODEL_PLOTS + HOST_PLOTS:
        if unit:
            assert "(" in title and title.endswith(")"), f"the {title!r} graph does not say its unit"
    assert dict((t.split(" (")[0], t) for t, _u, _s in MODEL_PLOTS)["CPU"] == "CPU (% of one core)"
