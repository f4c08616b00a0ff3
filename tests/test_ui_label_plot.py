"""The monitoring graphs' accuracy / MAE per version (app/ui/monitor/label_plot.py) from a real A/B
experiment on the built-in `local` server: requests through the real router, labels posted to
POST /feedback, and the plot's lines read back (their data, not pixels)."""
import json
import time

import numpy as np
import pytest

from agent_kit import call, stop_all
from experiment_kit import Client, close_all, stop_routers, two_releases
from app.ui.monitor.feed import MonitorFeed
from app.ui.monitor.graphs import MonitorGraphs
from app.ui.monitor.label_plot import LabelPlot

WAIT = 30000


@pytest.fixture
def experiment(berth_home, tmp_path):
    root = berth_home / "local"
    two_releases(root, tmp_path)
    result, error, _ = call(root, "experiment_start", model="echo", b="2.0.0", mode="ab", weight=0.5)
    assert error is None, error
    yield root
    close_all()
    stop_routers(root)
    stop_all(root)


def test_a_labelled_experiment_paints_accuracy_and_mae_per_version(qtbot, task_runner, experiment):
    status, error, _ = call(experiment, "status")
    client = Client(status["models"][0]["port"])
    answered = {}
    for n in range(40):  # A answers n, B n + 0.5; the label is n + 0.125: A's MAE 0.125, B's 0.375
        code, version, rid, _raw = client.predict({"n": n}, {"X-Request-Id": f"lp-{n}"})
        assert code == 200
        answered[rid] = version
    assert set(answered.values()) == {"1.0.0", "2.0.0"}
    labels = [{"request_id": f"lp-{n}", "label": n + 0.125} for n in range(40)]
    deadline = time.monotonic() + 10
    while True:  # each runner writes its request-log line just after its answer
        client.conn.request("POST", "/feedback", body=json.dumps(labels).encode())
        got = json.loads(client.conn.getresponse().read())
        if got["accepted"] == 40 or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert got["accepted"] == 40, got

    feed = MonitorFeed(stream_factory=None, history_factory=None)
    graphs = MonitorGraphs(task_runner, feed)
    qtbot.addWidget(graphs)
    graphs.resize(1000, 900)
    graphs.show()
    graphs.show_target("local", "echo")
    assert graphs.labels.isVisible() and graphs.labels.series == {}  # the stream is not live: not asked
    feed.state("local", "live")
    qtbot.waitUntil(lambda: set(graphs.labels.series) == {"1.0.0", "2.0.0"}, timeout=WAIT)
    now = time.time()
    for version, mae in (("1.0.0", 0.125), ("2.0.0", 0.375)):
        xs, ys = graphs.labels.data(version)
        assert len(xs) >= 1 and np.allclose(ys, mae), (version, ys)
        assert all(now - 300 <= x <= now + 5 for x in xs)
        s = graphs.labels.series[version]
        assert s["figure"] == "mae" and sum(p[1] for p in s["points"]) == list(answered.values()).count(version)
    assert "40 labelled in this window" in graphs.labels.plot.titleLabel.text
    graphs.show_target("local", None)  # the host: no labels, no plot
    assert not graphs.labels.isVisible()


def test_the_plot_keeps_one_line_per_version_and_drops_old_ones(qtbot):
    plot = LabelPlot(None, MonitorFeed(stream_factory=None, history_factory=None))
    qtbot.addWidget(plot)
    plot.show_series({"1.0.0": {"figure": "accuracy", "points": [[100.0, 4, 0.75], [105.0, 2, 1.0]]},
                      "2.0.0": {"figure": "accuracy", "points": []}})
    assert list(plot.curves) == ["1.0.0"] and list(plot.data("1.0.0")[1]) == [0.75, 1.0]
    plot.show_series({"2.0.0": {"figure": "mae", "points": [[100.0, 1, 0.5]]}})
    assert list(plot.curves) == ["2.0.0"] and "2.0.0 MAE" in [label.text for _s, label in plot.plot.legend.items]
    plot.show_series({})
    assert plot.curves == {} and "none labelled" in plot.plot.titleLabel.text
