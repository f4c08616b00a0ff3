"""The Monitor's latency graph is not empty once a model served requests (Berth issue 13).

The runner reports a latency only for an interval that had requests, so a model that serves a burst
now and then has one latency value between two gaps. A line drawn with connect='finite' shows
nothing for such a value: the graph looked empty although getData() had the points. These tests look
at what is painted (pixels of each curve's colour in the plot, the legend left out), with simulated
samples through the real feed and with real runners on `local` and the real LocalSampler."""
import json
import time

import numpy as np
import pytest
from PySide6.QtCore import QRect
from PySide6.QtGui import QColor, QImage, QPainter, QPen

from agent_kit import call, http_json
from app.monitor.simulated import simulated_sample
from app.monitor.sparkline import lone_points
from app.ui.monitor.feed import MonitorFeed
from app.ui.monitor.page import MonitorPage
from app.ui.monitor.plots import COLORS
from app.ui.monitor.sparktable import LINE, sparkline_sheet

WAIT = 30000
LATENCY = ("p50_ms", "p95_ms", "p99_ms")


def painted(graphs, metric) -> int:
    """Pixels of `metric`'s colour painted inside its plot's view box, its legend left out."""
    curve = graphs.curves[metric][0]
    plot = next(p for p in graphs.plots if metric in [m for m, _u, _l in p.series])
    color = QColor(COLORS[[m for m, _u, _l in plot.series].index(metric)])
    graphs.redraw(force=True)
    view = graphs.graphics
    image = view.viewport().grab().toImage().convertToFormat(QImage.Format.Format_RGB32)
    pixels = np.frombuffer(image.constBits(), np.uint8).reshape(image.height(), image.bytesPerLine())
    pixels = pixels[:, :image.width() * 4].reshape(image.height(), image.width(), 4)[..., :3].astype(int)
    near = np.abs(pixels - [color.blue(), color.green(), color.red()]).sum(axis=2) < 60
    inside = np.zeros_like(near)
    box = view.mapFromScene(plot.vb.sceneBoundingRect()).boundingRect()
    inside[max(0, box.top()):box.bottom(), max(0, box.left()):box.right()] = True
    if plot.legend is not None:
        legend = view.mapFromScene(plot.legend.sceneBoundingRect()).boundingRect()
        inside[max(0, legend.top()):legend.bottom() + 1, max(0, legend.left()):legend.right() + 1] = False
    assert curve.isVisible()
    return int((near & inside).sum())


@pytest.fixture
def sim_page(qtbot, task_runner):
    feed = MonitorFeed(stream_factory=None, history_factory=None)
    feed.start(["box"])
    page = MonitorPage(task_runner, feed)
    qtbot.addWidget(page)
    page.resize(1100, 800)
    page.show()
    yield page, feed
    feed.stop()


def sporadic(qtbot, feed, start, n, every):
    """n samples one second apart; only one in `every` had requests (and so a latency)."""
    for i in range(n):
        sample = simulated_sample(start + i)
        if i % every:
            sample["models"]["iris"].update(latency_ms=None, requests_per_s=0.0)
        feed.feed("box", sample)
    qtbot.waitUntil(lambda: feed.buffer.last_ts.get("box") == start + n - 1, timeout=5000)


def test_a_latency_between_two_idle_intervals_is_painted(qtbot, sim_page):
    page, feed = sim_page
    sporadic(qtbot, feed, time.time() - 60, 60, every=4)
    page.show_target("box", "iris")
    for metric in LATENCY:
        xs, ys = page.graphs.curves[metric][0].getData()
        assert np.isfinite(ys).sum() == 15 and lone_points(ys).sum() == 15, metric  # each one alone
        assert painted(page.graphs, metric) >= 15, f"the {metric} graph is empty although 15 intervals had requests"
        dots_x, dots_y = page.graphs.curves[metric][0].lone.getData()  # a dot each
        assert list(dots_x) == list(xs[np.isfinite(ys)]) and list(dots_y) == list(ys[np.isfinite(ys)])


def test_a_latency_line_gets_no_dots_and_a_lone_value_after_a_gap_does(qtbot, sim_page):
    page, feed = sim_page
    now = time.time()
    sporadic(qtbot, feed, now - 30, 20, every=1)  # requests every second: a line
    feed.gap("box")
    sporadic(qtbot, feed, now - 5, 1, every=1)  # one sample after the break, then a model absent
    feed.feed("box", simulated_sample(now - 4, models=()))
    qtbot.waitUntil(lambda: feed.buffer.last_ts.get("box") == now - 4, timeout=5000)
    page.show_target("box", "iris")
    for metric in ("cpu_percent", "p95_ms"):
        dots_x, _ = page.graphs.curves[metric][0].lone.getData()
        assert list(dots_x) == [pytest.approx(now - 5)], metric  # the line of 20 needs none
    assert painted(page.graphs, "p95_ms") > 100  # the line itself


def test_an_idle_model_paints_no_latency(qtbot, sim_page):
    """The pixel count above can fail: a model that served nothing paints no latency at all."""
    page, feed = sim_page
    start = time.time() - 30
    for i in range(30):
        sample = simulated_sample(start + i, models=("iris", "wine"))
        sample["models"]["wine"].update(latency_ms=None, requests_per_s=0.0)
        feed.feed("box", sample)
    qtbot.waitUntil(lambda: feed.buffer.last_ts.get("box") == start + 29, timeout=5000)
    page.show_target("box", "wine")
    assert painted(page.graphs, "p95_ms") == 0
    assert painted(page.graphs, "cpu_percent") > 100  # what it does draw
    page.show_target("box", "iris")
    assert painted(page.graphs, "p95_ms") > 100


def test_an_overview_sparkline_shows_a_lone_value():
    values = np.array([np.nan, 4.0, np.nan, np.nan, 9.0, np.nan, np.nan])
    paths = sparkline_sheet([(values, QRect(0, 0, 90, 22), False), (np.r_[np.nan, 3.0], QRect(0, 30, 90, 22), False)])
    image = QImage(100, 60, QImage.Format.Format_RGB32)
    image.fill(QColor("white"))
    painter = QPainter(image)
    painter.setPen(QPen(LINE, 1.0))
    painter.drawPath(paths[False])
    painter.end()
    pixels = np.frombuffer(image.constBits(), np.uint8).reshape(60, image.bytesPerLine())[:, :400].reshape(60, 100, 4)
    drawn = np.argwhere((pixels[..., :3] != 255).any(axis=2))
    assert len(drawn) >= 6, "a 2 px dash for each lone value: two in the first cell, one in the second"
    assert set(drawn[:, 0] // 30) == {0, 1}  # in both cells
    assert drawn[:, 1].max() <= 90  # the one at the right edge stays in its box


# -- for real: runners on `local`, the real LocalSampler ---------------------------------------------------

def test_real_bursts_on_two_local_models_paint_their_latency(qtbot, task_runner, berth_home, tmp_path,
                                                             stop_local_runners):
    """As an operator: iris on `local`, the Monitor open on it, a second model deployed after the
    monitor started; a quick burst of predictions to each (one sampler interval: one lone latency)."""
    from app.deploy.changes import run_to_end
    from app.deploy.deploy import Deploy
    from app.remote.local import LocalTransport
    from app.workspace import Workspace
    from cli_kit import iris_copy, iris_input

    root = berth_home / "local"

    def deploy(folder):
        with LocalTransport(str(root)) as t:
            run_to_end(Deploy(t, folder, Workspace().audit).run())

    def burst(model, n=5):
        port = call(root, "status", model=model)[0]["models"][0]["port"]
        for _ in range(n):
            assert http_json(port, "POST", "/predict", json.loads(iris_input()))[0] == 200

    def latency_painted():  # p50, p95 and p99 are often the same bucket: one dot hides the others
        return sum(painted(page.graphs, metric) for metric in LATENCY)

    def latencies(model):
        return int(np.isfinite(feed.buffer.series("local", model, "p95_ms")[1]).sum())

    deploy(iris_copy(tmp_path, "1.0.0"))
    feed = MonitorFeed(history_factory=None)
    feed.start([])
    try:
        page = MonitorPage(task_runner, feed)
        qtbot.addWidget(page)
        page.resize(1100, 800)
        page.show()
        page.show_target("local", "iris")
        qtbot.waitUntil(lambda: len(feed.buffer.series("local", "iris", "cpu_percent")[0]) >= 2, timeout=WAIT)
        second = iris_copy(tmp_path, "1.0.0", folder="setosa")
        toml = second / "berth.toml"
        toml.write_text(toml.read_text().replace('name = "iris"', 'name = "setosa"', 1))
        deploy(second)
        qtbot.waitUntil(lambda: len(feed.buffer.series("local", "setosa", "cpu_percent")[0]) >= 2, timeout=WAIT)
        assert latencies("iris") == latencies("setosa") == 0  # the deploys' health checks are not requests
        burst("iris")
        qtbot.waitUntil(lambda: latencies("iris") >= 1, timeout=WAIT)
        qtbot.wait(1500)  # an idle interval after it
        assert latency_painted() > 0, feed.buffer.series("local", "iris", "p95_ms")
        page.show_target("local", "setosa")
        assert latencies("setosa") == 0 and latency_painted() == 0  # served nothing yet
        burst("setosa")
        qtbot.waitUntil(lambda: latencies("setosa") >= 1, timeout=WAIT)
        assert latency_painted() > 0, feed.buffer.series("local", "setosa", "p95_ms")
        page.show_target("local", "iris")  # and the first one's graph still shows its burst
        assert latency_painted() > 0
    finally:
        feed.stop()


def test_predictions_by_hand_over_ssh_paint_their_latency(qtbot, task_runner, box, tmp_path, capsys):
    """As an operator over SSH: iris deployed on a real sshd, the Monitor open on it, a few
    `berth predict` typed one after the other (each takes its own interval or more: lone values)."""
    from cli_kit import berth, iris_copy, iris_input

    assert berth(capsys, "deploy", iris_copy(tmp_path), "--server", "box").code == 0
    feed = MonitorFeed(history_factory=None)
    feed.start(["box"])
    try:
        page = MonitorPage(task_runner, feed)
        qtbot.addWidget(page)
        page.resize(1100, 800)
        page.show()
        page.show_target("box", "iris")
        qtbot.waitUntil(lambda: len(feed.buffer.series("box", "iris", "cpu_percent")[0]) >= 2, timeout=WAIT)
        for _ in range(3):
            assert berth(capsys, "predict", "iris", "--server", "box", "--input", iris_input()).code == 0
            qtbot.wait(1200)  # the operator reads the answer
        p95 = lambda: feed.buffer.series("box", "iris", "p95_ms")[1]  # noqa: E731
        qtbot.waitUntil(lambda: np.isfinite(p95()).sum() >= 2, timeout=WAIT)
        qtbot.waitUntil(lambda: feed.buffer.latest["box"]["models"]["iris"]["requests_total"] == 3, timeout=WAIT)
        assert sum(painted(page.graphs, metric) for metric in LATENCY) > 0, p95()
        dots, _ = page.graphs.curves["p95_ms"][0].lone.getData()
        assert len(dots) == lone_points(p95()).sum()
    finally:
        feed.stop()
