"""The latency arithmetic every percentile in Berth goes through (runner, sampler, history)."""
import math

from app.agent.histogram import (BUCKETS, bucket_index, counts_from_cumulative, delta, latency_ms, merge,
                                 parse_metrics, percentile)
from app.agent.metrics import Counters
from app.agent.runnermeter import RunnerMeter

BOUNDS = list(BUCKETS) + [math.inf]


def test_buckets_are_geometric_from_half_a_millisecond_to_thirty_seconds():
    assert BUCKETS[0] == 0.0005 and BUCKETS[-1] == 30.0
    ratios = [b / a for a, b in zip(BUCKETS, BUCKETS[1:-1])]
    assert all(abs(r - 2 ** 0.25) < 1e-4 for r in ratios)
    assert bucket_index(0.0) == 0 and bucket_index(0.0005) == 0 and bucket_index(0.00051) == 1
    assert bucket_index(30.0) == len(BUCKETS) - 1 and bucket_index(31.0) == len(BUCKETS)


def test_percentiles_of_a_known_sequence_are_within_one_bucket():
    delays = [i / 1000 for i in range(1, 1001)]  # 1 ms .. 1 s, evenly
    counts = [0] * len(BOUNDS)
    for d in delays:
        counts[bucket_index(d)] += 1
    for q, true in ((0.5, 0.5), (0.95, 0.95), (0.99, 0.99)):
        got = percentile(BOUNDS, counts, q)
        assert abs(got - true) / true < 0.19, (q, got)
    assert latency_ms(BOUNDS, [0] * len(BOUNDS)) is None


def test_under_the_first_bound_reads_at_most_half_a_millisecond():
    counts = [10] + [0] * (len(BOUNDS) - 1)
    assert percentile(BOUNDS, counts, 0.5) == 0.0005
    over = [0] * (len(BOUNDS) - 1) + [3]
    assert percentile(BOUNDS, over, 0.99) == 30.0


def test_counts_survive_prometheus_text_and_merge_and_delta():
    c = Counters("m", "1")
    for d in (0.001, 0.002, 0.002, 0.4):
        c.observe("/predict", d, d > 0.3)
    ep = parse_metrics(c.render())["endpoints"]["/predict"]
    counts = counts_from_cumulative(ep["cumulative"])
    assert ep["bounds"] == BOUNDS and sum(counts) == 4 and (ep["count"], ep["errors"]) == (4, 1)
    assert counts[bucket_index(0.002)] == 2
    assert merge(counts, counts) == [2 * n for n in counts] and merge() == []
    assert delta(counts, merge(counts, counts)) == counts
    assert delta(merge(counts, counts), counts) == counts  # a restart: everything is new


def test_runner_meter_rates_and_windows():
    c, meter = Counters("m", "1"), RunnerMeter()
    first = meter.read(c.render(), now=0.0)
    assert first["latency_ms"] is None and first["histogram"] == [0] * len(BOUNDS)
    for i in range(1, 101):
        c.observe("/predict", i / 1000, i % 10 == 0)
    busy = meter.read(c.render(), now=2.0)
    assert (busy["requests_per_s"], busy["errors_per_s"]) == (50.0, 5.0)
    assert busy["latency_ms"]["window"] == "interval" and 40 < busy["latency_ms"]["p50"] < 60
    idle = meter.read(c.render(), now=3.0)
    assert idle["requests_per_s"] == 0.0 and idle["latency_ms"]["window"] == "since_start"
    assert sum(idle["histogram"]) == 0
