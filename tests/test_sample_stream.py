"""`sample_stream` (app/agent/samplestream.py, app/remote/session_stream.py): the console's live
samples as a request of the connection's agent session. Over a real session process: no agent
process of their own, no signal handler changed; a cancel or the end of the session ends a stream
that waits 30-60 s at once; a bounded number per session; each bad request refused with one message
and the streams already running go on. Over a real sshd: tests/test_sampler.py and
tests/test_monitor_stream.py."""
import json
import subprocess
import sys
import threading
import time

import pytest

from agent_kit import stop_all
from app.agent.samplestream import MAX_STREAMS
from app.monitor.sources import AgentSource
from app.remote import agent_install
from app.remote.errors import RemoteError
from app.remote.local import LocalTransport
from session_kit import session_pids, wait_for
from test_sample_once import process_state


@pytest.fixture
def session(tmp_path):
    """A LocalTransport whose agent session is started, and that session's pid."""
    root = tmp_path / "root"
    t = LocalTransport(str(root))
    t.use_session = True
    t.agent("hello", {})
    [pid] = session_pids(root)
    wait_for(lambda: process_state(pid)[1] == 2, 5, "the hello's thread to end")  # main and the reader
    yield t, root, pid
    t.close()
    stop_all(root)
    wait_for(lambda: not session_pids(root), 15, "the session to end with its stdin")



def _samplers(root):
    import psutil

    return [p.pid for p in psutil.process_iter(["cmdline"])
            if (p.info["cmdline"] or [""])[-1] == "sample" and any(str(root) in a for a in p.info["cmdline"])]


def test_samples_come_from_the_session_and_a_close_ends_a_30_s_wait_at_once(session):
    t, root, pid = session
    before = process_state(pid)
    stream = t.stream("sample", {"interval": 30, "count": 0})
    events = iter(stream)
    first = next(events)
    assert first["event"] == "sample" and first["interval_s"] == 30.0 and "host" in first
    assert session_pids(root) == [pid] and _samplers(root) == []  # no process of its own
    assert process_state(pid) == (before[0], before[1] + 1)  # one thread, no signal handler
    started = time.monotonic()
    stream.close()
    assert list(events) == []  # closed: the iteration ends quietly
    wait_for(lambda: process_state(pid) == before, 3, "the stream's thread to end")
    assert time.monotonic() - started < 3  # not at its next sample, 30 s later
    assert t.agent("status")["models"] == []  # the session goes on serving


def test_a_followed_stream_gets_its_samples_then_one_end_on_close(session):
    t, _root, pid = session
    got, ended = [], []
    stream = t.stream("sample", {"interval": 0.25, "count": 0})
    stream.follow(got.append, lambda: ended.append(time.monotonic()))
    wait_for(lambda: len(got) >= 3, 10, "three samples pushed")
    assert all(e["event"] == "sample" and "id" not in e for e in got)
    stream.close()
    stream.close()
    assert len(ended) == 1
    stream.outcome()  # closed: no error
    n = len(got)
    time.sleep(0.6)
    assert len(got) == n  # nothing after the end


def test_a_count_ends_the_stream_with_its_result(session):
    t, _root, _pid = session
    with t.stream("sample", {"interval": 0.25, "count": 3}) as stream:
        events = list(stream)
    assert [e["event"] for e in events] == ["sample"] * 3 and stream.result == {"samples": 3}


def test_the_end_of_the_session_ends_a_waiting_stream_and_the_process_at_once(session):
    t, root, pid = session
    stream = t.stream("sample", {"interval": 60, "count": 0})
    events = iter(stream)
    next(events)
    started = time.monotonic()
    t.end_session()  # its stdin closes: what a cut connection does
    wait_for(lambda: not session_pids(root), 5, "the session to exit")
    assert time.monotonic() - started < 5
    with pytest.raises(RemoteError) as e:
        list(events)
    # the session cancels it ("Berth went away") as it ends; had that line not come, the end says so
    assert (e.value.code, str(e.value)) in (("cancelled", "cancelled: Berth went away"),
                                            ("connection_lost", "local: the Berth agent ended without an answer during sample (killed?). "
                                             "The server's journal has how far it got; check with `berth status`"))


def test_a_session_runs_a_bounded_number_of_streams_and_refuses_more_with_one_message(session):
    t, _root, _pid = session
    streams = [t.stream("sample", {"interval": 5, "count": 0}) for _ in range(MAX_STREAMS)]
    try:
        firsts = [next(iter(s)) for s in streams]
        assert all(f["event"] == "sample" for f in firsts)
        with pytest.raises(RemoteError) as e:
            list(t.stream("sample", {"interval": 5, "count": 0}))
        assert e.value.code == "busy" and f"already runs {MAX_STREAMS} sample streams" in str(e.value)
        streams.pop().close()
        wait_for(lambda: _one_sample(t), 5, "a slot freed by the close")
    finally:
        for s in streams:
            s.close()


def _one_sample(t):
    try:
        with t.stream("sample", {"interval": 0.25, "count": 1}) as s:
            return [e["event"] for e in s] == ["sample"]
    except RemoteError as e:
        if e.code == "busy":
            return False
        raise


@pytest.mark.parametrize("payload, says", [
    ({"interval": 0.1}, "interval must be a number of seconds"),
    ({"interval": True}, "interval must be a number of seconds"),
    ({"interval": "1"}, "interval must be a number of seconds"),
    ({"count": -1}, "count must be a whole number"),
    ({"count": 1.5}, "count must be a whole number"),
    ({"window": 1.0}, "takes an 'interval' and a 'count', not 'window'"),
    ({"interval": 1, "shell": "rm -rf ~"}, "not 'shell'"),
])
def test_a_bad_stream_request_is_refused_and_a_running_stream_goes_on(session, payload, says):
    t, _root, _pid = session
    with t.stream("sample", {"interval": 0.25, "count": 0}) as running:
        samples = iter(running)
        next(samples)
        with pytest.raises(RemoteError) as e:
            list(t.stream("sample", payload))
        assert e.value.code == "usage" and says in str(e.value)
        assert next(samples)["event"] == "sample"


def test_outside_a_session_sample_stream_is_refused(tmp_path):
    """`agent.py sample_stream` by hand: it says what to run instead (the one-shot stream is `sample`)."""
    root = tmp_path / "root"
    t = LocalTransport(str(root))
    argv = agent_install.agent_argv(t.ensure_agent(), "sample_stream")
    proc = subprocess.run([sys.executable, *argv[1:]], input=json.dumps({"root": str(root)}).encode(),
                          capture_output=True, timeout=30)
    [error] = [json.loads(line) for line in proc.stdout.splitlines()]
    assert proc.returncode == 2 and error["code"] == "usage"
    assert "runs in an agent session; a one-shot agent streams with `sample`" in error["message"]


def test_two_streams_of_one_session_get_only_their_own_samples(session):
    """Each at its own interval, read at once from two threads: the ids keep them apart."""
    t, _root, _pid = session
    got = {0.25: [], 1.0: []}

    def read(interval):
        with t.stream("sample", {"interval": interval, "count": 3}) as s:
            got[interval] = list(s)

    threads = [threading.Thread(target=read, args=(i,)) for i in got]
    for th in threads:
        th.start()
    for th in threads:
        th.join(20)
    assert [len(v) for v in got.values()] == [3, 3]
    # the first says the setting; the others what they were measured over (1.001, 0.999 ...)
    assert got[1.0][0]["interval_s"] == 1.0 and all(abs(e["interval_s"] - 1.0) < 0.2 for e in got[1.0][1:])
    assert got[0.25][0]["interval_s"] == 0.25 and all(abs(e["interval_s"] - 0.25) < 0.2 for e in got[0.25][1:])


class KeptOpen(AgentSource):
    """A source whose close leaves the connection open: another share (the console's worker) holds it."""

    def close(self):
        pass


def test_a_stopped_session_is_ended_and_the_stream_comes_back_on_a_new_one(session):
    """A hung agent session (stopped here) on a connection something else keeps open: the stream
    stalls, the silent session fails its `hello` and is ended, and the next try streams from a new
    session, not from the stopped one for ever."""
    import os
    import signal

    from app.monitor.stream import SampleStream

    t, root, pid = session
    t.stream_probe_s = 1.0
    got, states = [], []
    s = SampleStream("local", lambda: KeptOpen(t), 0.25, got.append, lambda _s, st, d: states.append((st, d)),
                     stall_s=1.5)
    try:
        s.start()
        wait_for(lambda: len(got) >= 2, 10, "samples")
        os.kill(pid, signal.SIGSTOP)
        wait_for(lambda: any(st == "reconnecting" for st, _ in states), 10, "the stall")
        wait_for(lambda: [st for st, _ in states].count("live") == 2, 20, "live again")
        [new] = [p for p in session_pids(root) if p != pid]
        n = len(got)
        wait_for(lambda: len(got) >= n + 2, 10, "samples from the new session")
        assert any("did not answer for 1 s; it was ended" in d for st, d in states if st == "reconnecting"), states
    finally:
        s.stop()
        os.kill(pid, signal.SIGCONT)
    wait_for(lambda: pid not in session_pids(root), 10, "the stopped session to end once it runs again")
    assert new in session_pids(root)


def test_a_sample_callback_may_stop_its_own_stream(session):
    """on_sample runs on the process's one session reader; a stop() there must neither hang that
    reader (every server's samples come through it) nor be lost."""
    from app.monitor.stream import SampleStream

    t, _root, _pid = session
    got = []
    holder = {}

    def on_sample(sample):
        got.append(sample)
        holder["s"].stop()

    holder["s"] = s = SampleStream("local", lambda: KeptOpen(t), 0.25, on_sample, None)
    s.start()
    wait_for(lambda: not s.is_alive(), 10, "the stream to stop from its own callback")
    assert len(got) == 1
    other = []
    with t.stream("sample", {"interval": 0.25, "count": 2}) as again:
        other = list(again)
    assert len(other) == 2  # the reader still delivers
