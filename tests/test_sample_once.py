"""`sample_once` (app/agent/sampleonce.py): `berth monitor --once` answered by the connection's agent
session. Over a real session process: no new agent process, no signal handler changed, no thread
left behind, the same figures as the streamed `sample`; each bad request refused. Over a real sshd
and the held connection: tests/test_held_connection.py (a `monitor --once` execs nothing there)."""
from pathlib import Path

import pytest

from agent_kit import stop_all
from app.remote.errors import RemoteError
from app.remote.local import LocalTransport
from session_kit import session_pids, wait_for


@pytest.fixture(scope="module")
def session(tmp_path_factory):
    """A LocalTransport whose agent session is started, and that session's pid."""
    root = tmp_path_factory.mktemp("once") / "root"
    t = LocalTransport(str(root))
    t.use_session = True
    t.agent("hello", {})
    [pid] = session_pids(root)
    yield t, root, pid
    t.close()
    stop_all(root)
    wait_for(lambda: not session_pids(root), 15, "the session to end with its stdin")


def process_state(pid):
    """What a request must leave as it found it: the caught signals' mask and the thread count."""
    status = dict(line.split(":\t", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
                  if ":\t" in line)
    return status["SigCgt"].strip(), len(list(Path(f"/proc/{pid}/task").iterdir()))


def samples(t, command, payload):
    events = []
    assert t.agent(command, payload, events.append) == {"samples": 1}
    [one] = [e for e in events if e.get("event") == "sample"]
    return one


def shape(sample):
    return {k: sorted(v) if isinstance(v, dict) else type(v).__name__ for k, v in sample.items() if k != "id"}


def test_one_sample_is_answered_by_the_session_and_leaves_it_as_it_was(session):
    t, root, pid = session
    before = process_state(pid)
    once = samples(t, "sample_once", {"window": 0.25})
    wait_for(lambda: process_state(pid) == before, 5, "the request's thread to end")
    assert session_pids(root) == [pid]  # answered there: no other agent process, the session not replaced
    assert once["interval_s"] == 0.25 and 0 <= once["host"]["cpu_percent"] <= 100 and once["models"] == {}
    streamed = samples(t, "sample", {"interval": 0.25, "count": 1, "window": 0.25})  # its own process
    assert shape(once) == shape(streamed) and sorted(once["host"]) == sorted(streamed["host"])
    assert process_state(pid) == before and session_pids(root) == [pid]


@pytest.mark.parametrize("payload, says", [
    ({"window": "1"}, "window must be a number of seconds from 0.25 to 5"),
    ({"window": True}, "not True"),
    ({"window": 0.1}, "not 0.1"),
    ({"window": 5.5}, "not 5.5"),  # longer holds a session thread: the streamed `sample` takes it
    ({"window": None}, "not None"),
    ({"window": 1, "count": 0}, "takes only a 'window', not 'count'"),  # no stream in the session
])
def test_a_bad_request_is_refused(session, payload, says):
    t, root, pid = session
    with pytest.raises(RemoteError, match=says) as e:
        t.agent("sample_once", payload)
    assert e.value.code == "usage" and session_pids(root) == [pid]
