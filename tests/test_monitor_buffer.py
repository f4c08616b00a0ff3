"""The live window in memory (app/monitor/buffer.py): fixed-size rings, gaps as NaN, History's last
minutes put before the live samples. Plain pytest: no Qt."""
import math

import numpy as np
import pytest

from app.monitor.buffer import MonitorBuffer, Ring
from app.monitor.history import History
from app.monitor.recent import read_recent
from app.monitor.simulated import simulated_sample
from app.monitor.sparkline import decimate


def test_ring_keeps_the_newest_in_order_and_memory_stays_flat():
    ring = Ring(100)
    for i in range(100):
        ring.append(float(i), float(i) * 2)
    before = ring.ts.nbytes + ring.values.nbytes
    assert before == 2 * 100 * 8  # grown to its capacity, no further
    for i in range(100, 10_000):
        ring.append(float(i), float(i) * 2)
    ts, values = ring.arrays()
    assert list(ts) == [float(i) for i in range(9900, 10_000)] and values[-1] == 19998.0
    assert ring.ts.nbytes + ring.values.nbytes == before and ring.count == 100
    ts, _ = ring.arrays(since=9990.0)
    assert list(ts) == [float(i) for i in range(9990, 10_000)]

    buf = MonitorBuffer(capacity=50)
    for i in range(20):
        buf.add("a", simulated_sample(1000.0 + i, models=("iris", "wine")))
    size = buf.nbytes()
    for i in range(20, 5000):  # N >> capacity
        buf.add("a", simulated_sample(1000.0 + i, models=("iris", "wine")))
    assert buf.nbytes() == size
    assert len(buf.series("a", "iris", "p95_ms")[0]) == 50


def test_preload_goes_before_live_samples_with_a_break():
    buf = MonitorBuffer(capacity=50)
    for i in range(3):  # live samples came in before History was read
        buf.add("a", simulated_sample(1000.0 + i))
    old = np.arange(900.0, 960.0)
    buf.preload("a", {("iris", "cpu_percent"): (old, old * 0 + 7.0), (None, "load1"): (old, old * 0 + 1.0)})
    ts, values = buf.series("a", "iris", "cpu_percent")
    assert len(ts) == 50 and np.all(np.diff(ts) > 0)  # the newest 50 of 60 + 1 + 3, in time order
    assert list(ts[-3:]) == [1000.0, 1001.0, 1002.0] and math.isnan(values[-4]) and values[-5] == 7.0
    buf.add("a", simulated_sample(1001.5))  # not after the newest: refused, the order holds
    assert buf.series("a", "iris", "cpu_percent")[0][-1] == 1002.0
    fresh = MonitorBuffer()
    fresh.preload("b", {("iris", "p95_ms"): (old, old)})
    assert fresh.models["b"] == {"iris"} and fresh.last_ts["b"] > 959.0
    fresh.add("b", simulated_sample(900.0))  # older than what History gave: refused
    fresh.add("b", simulated_sample(2000.0))
    ts, values = fresh.series("b", "iris", "p95_ms")
    assert len(ts) == 62 and math.isnan(values[60]) and ts[-1] == 2000.0


def test_sparklines_keep_spikes_and_gaps_when_decimated():
    values = np.r_[np.arange(1000.0), np.full(200, np.nan), np.arange(1000.0)]
    ys = decimate(values, 90)
    assert len(ys) <= 2 * 90 and np.isnan(ys).any() and np.nanmax(ys) == 999.0  # spikes and the break survive
    assert decimate(np.full(10, np.nan), 90) is None
    short = np.arange(50.0)
    assert decimate(short, 90) is short  # a few points: drawn as they are


def test_recent_minutes_from_history_in_the_buffers_shape(tmp_path):
    history = History(tmp_path / "monitor.sqlite")
    now = 1_800_000_000.0
    for ts in [now - 900 + i for i in range(30)] + [now - 200 + i for i in range(180)]:
        history.add(dict(simulated_sample(ts, models=("iris",)), server="box"))
    history.flush()
    try:
        recent = read_recent(history, ["box", "nobody"], seconds=300, now=now)
    finally:
        history.close()
    assert set(recent) == {"box"}  # a server with nothing stored has no entry
    ts, cpu = recent["box"][("iris", "cpu_percent")]
    assert len(ts) == 180 and ts[0] >= now - 300  # the 15-minute-old half minute is not in the window
    buf = MonitorBuffer()
    buf.preload("box", recent["box"])
    _ts, share = buf.series("box", "iris", "memory_percent")
    sample = simulated_sample(now - 200, models=("iris",))
    assert share[0] == pytest.approx(sample["models"]["iris"]["rss_bytes"] / sample["host"]["memory"]["total"] * 100,
                                     rel=1e-3)


def test_a_ring_grows_only_while_its_points_are_young():
    """A server sampled every 5 s (its live data on no screen) keeps about 2 x 5 minutes of points in a
    small ring; one sampled every second grows to what 10 minutes need; never beyond the capacity."""
    from app.monitor.buffer import GROW_SPAN_S, START

    slow, fast, fastest = Ring(1200), Ring(1200), Ring(1200)
    assert len(slow.ts) == START
    for i in range(5000):
        slow.append(5.0 * i, 1.0)
        fast.append(1.0 * i, 1.0)
        fastest.append(0.25 * i, 1.0)
    assert len(slow.ts) == 128 and len(fast.ts) == 1024 and len(fastest.ts) == 1200
    ts, _ = slow.arrays()
    assert len(ts) == 128 and ts[-1] == 5.0 * 4999 and np.all(np.diff(ts) == 5.0)  # in order across the growth
    assert ts[-1] - ts[0] >= GROW_SPAN_S  # the live window (5 minutes) and more
    ts, _ = fast.arrays(since=4999 - 300)
    assert len(ts) == 301 and np.all(np.diff(ts) == 1.0)
    loaded = Ring(1200)
    loaded.load(np.arange(700.0), np.ones(700))  # History's last minutes: room made at once
    assert loaded.count == 700 and list(loaded.arrays()[0][-2:]) == [698.0, 699.0]
    loaded.append(700.0, 2.0)
    assert loaded.last() == (700.0, 2.0) and loaded.arrays()[0][0] == 1.0  # over GROW_SPAN_S: the oldest goes
