"""SampleStream's schedule on a fake clock: the reconnect backoff, the pacing of local samples and a
new interval, driven without sleeping (app/monitor/stream.py, sources.py). Plain pytest: no Qt."""
import threading
import time

import pytest

from app.monitor.sources import AgentSource, LocalSource
from app.monitor.stream import BACKOFF_MAX, SampleStream


class FakeClock:
    """Time moves only when someone waits (or a test moves it): a wait is instant."""

    def __init__(self, now: float = 1000.0):
        self.now = now
        self.waits: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def time(self) -> float:
        return self.now

    def wait(self, event: threading.Event, seconds: float) -> bool:
        if event.is_set():
            return True
        self.waits.append(seconds)
        self.now += seconds
        return False


class OneSample:
    """A source that gives one sample, then its stream ends (a server that went away)."""

    def __init__(self, clock):
        self.clock, self.closed = clock, False

    def open(self, interval, stall_s):
        return _List([{"ts": self.clock.now}])

    def close(self):
        self.closed = True


class _List(list):
    """Samples that end once closed, as the agent's stream does."""

    closed = False

    def __iter__(self):
        for item in super().__iter__():
            if self.closed:
                return
            yield item

    def close(self):
        self.closed = True


def run_to_end(stream: SampleStream, timeout: float = 10.0) -> None:
    stream.start()
    deadline = time.monotonic() + timeout
    while stream.is_alive() and time.monotonic() < deadline:
        time.sleep(0.001)
    assert not stream.is_alive(), "the stream did not stop"


def test_the_backoff_doubles_to_its_ceiling_and_starts_over_after_a_sample():
    clock = FakeClock(0.0)
    plan = ["fail"] * 7 + ["sample"] + ["fail"] * 2 + ["stop"]
    calls, states, sources = [], [], []

    def opener():
        calls.append(clock.now)
        step = plan[len(calls) - 1]
        if step == "sample":
            sources.append(OneSample(clock))
            return sources[-1]
        if step == "stop":
            stream.stop()
        raise ConnectionRefusedError("connection refused")

    stream = SampleStream("gone", opener, 1.0, None, lambda *a: states.append(a[1:]), clock=clock)
    started = time.monotonic()
    run_to_end(stream)
    assert time.monotonic() - started < 5  # 98 s of backoff on the fake clock
    assert [b - a for a, b in zip(calls, calls[1:])] == [1, 2, 4, 8, 16, BACKOFF_MAX, BACKOFF_MAX, 1, 2, 4]
    assert stream.samples == 1 and sources[0].closed
    assert stream.gaps == [91.0]  # where the live stream broke, on the stream's clock
    assert states[0] == ("reconnecting", "connection refused") and ("live", "") in states
    assert ("reconnecting", "gone: the sample stream ended") in states and states[-1] == ("stopped", "")


class FakeSampler:
    def __init__(self, clock, cost: float = 0.0):
        self.clock, self.cost, self.interval, self.closed = clock, cost, None, False

    def sample(self):
        s = {"ts": self.clock.now, "interval_s": self.interval}
        self.clock.now += self.cost  # how long taking it took
        return s


def test_local_samples_keep_their_phase_and_a_new_interval_starts_at_once():
    clock = FakeClock(0.0)
    sampler = FakeSampler(clock)
    opened, got = [], []

    def on_sample(s):
        got.append(s)
        if len(got) == 3:
            stream.set_interval(0.5)
        elif len(got) == 6:
            stream.stop()

    def opener():
        opened.append(LocalSource(sampler, clock))
        return opened[-1]

    stream = SampleStream("local", opener, 1.0, on_sample, clock=clock)
    run_to_end(stream)
    assert len(opened) == 1  # a new interval reopens the same source, never reconnects
    assert [s["ts"] for s in got] == [0.0, 1.0, 2.0, 2.0, 2.5, 3.0]
    assert [s["interval_s"] for s in got] == [1.0] * 3 + [0.5] * 3 and got[0]["server"] == "local"
    assert stream.state == "stopped" and stream.gaps == []

    clock = FakeClock(0.0)
    slow = FakeSampler(clock, cost=2.5)  # each sample takes longer than the interval
    samples = iter(LocalSource(slow, clock).open(1.0))
    assert [next(samples)["ts"] for _ in range(3)] == [0.0, 3.0, 6.0]  # missed slots skipped, phase kept


class FakeAgentStream:
    def __init__(self, events):
        self.events, self.timeout, self.closed = events, None, False

    def set_read_timeout(self, seconds):
        self.timeout = seconds

    def __iter__(self):
        return iter(self.events)

    def close(self):
        self.closed = True


class FakeTransport:
    def __init__(self):
        self.commands, self.closed = [], False

    def stream(self, command, payload):
        self.commands.append((command, payload))
        return FakeAgentStream([{"event": "started"}, {"event": "sample", "ts": 1.0}, {"event": "sample", "ts": 2.0}])

    def close(self):
        self.closed = True


def test_an_agent_source_runs_the_sample_command_and_gives_samples_only():
    transport = FakeTransport()
    source = AgentSource(transport)
    samples = source.open(0.5, stall_s=16.5)
    assert list(samples) == [{"ts": 1.0}, {"ts": 2.0}]
    assert transport.commands == [("sample", {"interval": 0.5, "count": 0})] and samples.stream.timeout == 16.5
    samples.close()
    assert samples.stream.closed and not transport.closed
    source.open(2.0, stall_s=21.0)  # a new interval: the same connection
    assert transport.commands[-1] == ("sample", {"interval": 2.0, "count": 0})
    source.close()
    assert transport.closed


def test_a_stream_stopped_while_its_source_opens_reads_nothing():
    clock = FakeClock()
    got = []

    class Opening:
        def open(self, interval, stall_s):
            stream.stop()  # stop() comes while the command is starting
            return _List([{"ts": 1.0}])

        def close(self):
            pass

    stream = SampleStream("box", Opening, 1.0, got.append, clock=clock)
    run_to_end(stream)
    assert got == [] and stream.state == "stopped"


@pytest.mark.parametrize("bad", [0.1, 61, True, "1"])
def test_the_interval_is_checked(bad):
    with pytest.raises(ValueError):
        SampleStream("box", lambda: None, bad)
