"""Issue 23: a fleet's servers whose live data is on no screen are sampled less often (100 servers at
1 Hz kept ~20 % of a core busy in the console). The Monitor page tells the feed what it shows; the
feed restarts those streams at the fast interval, the others at the slow one."""
import time

from app.monitor.simulated import simulated_sample
from app.store.servers import LOCAL
from app.ui.monitor.feed import MonitorFeed
from app.ui.monitor.page import MonitorPage

WAIT = 30000


def fill(qtbot, feed, servers):
    now = time.time()
    for name in servers:
        feed.feed(name, simulated_sample(now, models=("iris",)))
    qtbot.waitUntil(lambda: all(n in feed.buffer.latest for n in servers), timeout=5000)


def test_the_page_reports_the_servers_it_shows(qtbot, task_runner):
    names = [f"s{i}" for i in range(1, 41)]
    feed = MonitorFeed(stream_factory=None, history_factory=None, background_interval=5.0)
    feed.start(names)
    try:
        fill(qtbot, feed, names)
        page = MonitorPage(task_runner, feed)
        qtbot.addWidget(page)
        page.resize(1100, 420)  # a few rows in view of 81 (each server and its model)
        page.show()
        qtbot.waitExposed(page)
        page.show_overview()
        table, rows = page.overview.table, page.overview.model.rows
        in_view = {rows[r][0] for r in table.visible_rows()}
        assert feed.on_screen == in_view and "s1" in in_view and "s40" not in in_view
        assert len(in_view) < 15
        assert "every 5 s" in page.overview.rate_note.text() and page.overview.rate_note.isVisible()

        table.scrollToBottom()
        qtbot.waitUntil(lambda: "s40" in feed.on_screen and "s1" not in feed.on_screen, timeout=5000)

        page.show_target("s7", "iris")
        assert feed.on_screen == {"s7"}
        page.hide()
        assert feed.on_screen == set()
        page.show()
        assert feed.on_screen == {"s7"}
    finally:
        feed.stop()


def test_a_feed_without_a_slow_interval_samples_everything_at_its_interval():
    feed = MonitorFeed(stream_factory=None, history_factory=None, interval=2.0)
    feed.show_live(set())
    assert feed.interval_for("far-away") == 2.0
    slow = MonitorFeed(stream_factory=None, history_factory=None, interval=2.0, background_interval=5.0)
    assert slow.interval_for("far-away") == 5.0
    slow.show_live({"far-away"})
    assert slow.interval_for("far-away") == 2.0 and slow.interval_for("other") == 5.0
    never_faster = MonitorFeed(stream_factory=None, history_factory=None, interval=2.0, background_interval=1.0)
    assert never_faster.interval_for("far-away") == 2.0


def gaps(stamps, since):
    ts = [t for t in stamps if t >= since]
    return [b - a for a, b in zip(ts, ts[1:])]


def test_a_real_stream_goes_fast_in_view_and_slow_out_of_it(qtbot):
    """The real LocalSampler stream: started slow (on no screen), sampled fast once in view, slow again."""
    feed = MonitorFeed(history_factory=None, interval=0.5, background_interval=2.5)
    stamps = []
    feed.sampled.connect(lambda server, _s: stamps.append(time.monotonic()) if server == LOCAL else None)
    feed.start([])
    try:
        stream = feed.streams[LOCAL]
        assert stream.interval == 2.5
        qtbot.waitUntil(lambda: len(stamps) >= 3, timeout=WAIT)
        assert min(gaps(stamps, 0)) > 1.5  # every 2.5 s (the first one may come early)

        feed.show_live({LOCAL})
        qtbot.waitUntil(lambda: stream.interval == 0.5, timeout=5000)
        fast_since = time.monotonic()
        qtbot.waitUntil(lambda: len(gaps(stamps, fast_since)) >= 4, timeout=WAIT)
        assert max(gaps(stamps, fast_since)) < 1.2

        feed.show_live(set())
        qtbot.waitUntil(lambda: stream.interval == 2.5, timeout=5000)
        slow_since = time.monotonic() + 0.5  # a sample already under way at the switch may still come
        qtbot.waitUntil(lambda: len(gaps(stamps, slow_since)) >= 2, timeout=WAIT)
        assert min(gaps(stamps, slow_since)) > 1.5
    finally:
        feed.stop()


def test_a_large_fleets_background_servers_share_a_budget_of_samples():
    """100 servers at 5 s were 20 samples a second on no screen; at most BACKGROUND_RATE now."""
    from app.ui.monitor.feed import BACKGROUND_RATE

    names = [f"s{i}" for i in range(1, 100)]  # + local: 100
    feed = MonitorFeed(stream_factory=None, history_factory=None, background_interval=5.0)
    feed.start(names[:20])
    assert feed.interval_for("s1") == 5.0  # 21 servers fit in the budget at 5 s
    feed.set_servers(names)
    assert feed.interval_for("s1") == 100 / BACKGROUND_RATE
    feed.show_live({f"s{i}" for i in range(1, 11)})
    assert feed.interval_for("s1") == 1.0 and feed.interval_for("s50") == 90 / BACKGROUND_RATE
    feed.set_servers([f"s{i}" for i in range(1, 2000)])
    assert feed.interval_for("s50") == 60.0  # never over the agent's longest interval
    feed.stop()


def test_a_running_stream_slows_down_when_the_fleet_grows_and_back(qtbot):
    """The real LocalSampler stream follows the budget when servers are added and removed."""
    feed = MonitorFeed(history_factory=None, interval=0.5, background_interval=1.0)
    feed.background_rate = 1.0  # a sample a second for all servers on no screen
    feed.start([])
    try:
        stream = feed.streams[LOCAL]
        assert stream.interval == 1.0
        feed.set_servers(["far-1", "far-2"])  # no such servers: their streams fail, they still count
        qtbot.waitUntil(lambda: stream.interval == 3.0, timeout=5000)
        feed.set_servers([])
        qtbot.waitUntil(lambda: stream.interval == 1.0, timeout=5000)
    finally:
        feed.stop()
