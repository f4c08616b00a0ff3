"""Threads per monitored server (issue 23): 20 servers over real SSH (one loopback sshd, a root
each), every one with a live sample stream and an agent session, add about one thread each
(paramiko's transport), not three (transport + session reader + stream thread); the shared ones
(the session reader, the monitor's timer and pool) end once nothing is monitored."""
import collections
import re
import threading
import time

from app.monitor.scheduler import POOL_SIZE
from app.monitor.stream import SampleStream, open_source
from app.store.servers import ServerConfig
from app.workspace import Workspace
from session_kit import wait_for

N = 20
SHARED = POOL_SIZE + 4  # the pool, the timer, the session reader, a reaper or two


def thread_kinds(threads) -> dict:
    """Thread names with their numbers and server names folded: {"Thread-N (_run)": 20, ...}."""
    return dict(collections.Counter(re.sub(r"\d+", "N", t.name) for t in threads))


def test_twenty_live_streams_add_about_one_thread_per_server(sshd, tmp_path):
    ws = Workspace()
    for n in range(N):
        ws.add_server(ServerConfig(name=f"s{n}", host=sshd.host, port=sshd.port, user=sshd.user,
                                   key_path=str(sshd.key_path), root=str(tmp_path / f"root{n}")), sshd.fingerprint)
    before = {t.ident for t in threading.enumerate()}
    counts: collections.Counter = collections.Counter()
    # spread over 3 s, as the console does (sshd's MaxStartups drops a burst of logins)
    streams = [SampleStream(f"s{n}", open_source(f"s{n}"), 1.0, lambda s: counts.update([s["server"]]),
                            start_delay=0.15 * n).start() for n in range(N)]
    try:
        wait_for(lambda: len(counts) == N, 300, "every server's samples")
        time.sleep(3)  # samples keep coming; any thread that would start per server has started
        assert all(s.state == "live" for s in streams), [(s.server, s.state, s.detail) for s in streams]
        grown = [t for t in threading.enumerate() if t.ident not in before]
        print(f"\n{N} live streams: +{len(grown)} threads {thread_kinds(grown)}")
        assert len(grown) <= 1.2 * N + SHARED, thread_kinds(grown)
        taken = sum(counts.values())
        wait_for(lambda: sum(counts.values()) >= taken + N, 30, "a sample more from each server")
    finally:
        for s in streams:
            s.stop()
    assert not any(s.is_alive() for s in streams)
    wait_for(lambda: not [t for t in threading.enumerate() if t.ident not in before
                          and t.name.startswith(("berth-streams", "berth-sessions", "berth-monitor"))],
             20, "the shared stream threads to end when nothing is monitored")
