"""One SSH connection per server for the console: operations and the live sample stream share it
(one login on the server), each share closes on its own, and a dead connection is replaced."""
import threading

import psutil

from app.monitor.stream import SampleStream, open_source
from app.remote.shared import CONNECTIONS
from app.workspace import Workspace
from test_monitor_stream import wait_for



def logins(srv) -> int:
    return srv.log_path.read_text().count("Accepted publickey")


def test_operations_and_samples_travel_on_one_connection(box):
    srv, _root = box
    before = logins(srv)
    ops = Workspace().connect("box", shared=True)  # what the console's worker for `box` holds
    samples = []
    stream = SampleStream("box", open_source("box"), 0.25, samples.append).start()
    try:
        wait_for(lambda: len(samples) >= 3, 30, "samples")
        other = Workspace().connect("box", shared=True)  # another thread's share: no new login
        assert other.transport is ops.transport
        assert Workspace().server_status(other) == [] and samples[-1]["server"] == "box"
        other.close()
        assert ops.connected()  # one share let go; the connection stays for the others
        assert logins(srv) - before == 1 and CONNECTIONS.count() == 1
    finally:
        stream.stop()
        ops.close()
    assert CONNECTIONS.count() == 0 and not ops.transport.connected()  # the last share closed it


def test_a_dead_connection_is_replaced(box):
    srv, _root = box
    first = Workspace().connect("box", shared=True)
    for child in psutil.Process(srv.proc.pid).children(recursive=True):
        child.kill()  # the session dies (a reboot, a cut link)
    wait_for(lambda: not first.connected(), 15, "paramiko to notice")
    second = Workspace().connect("box", shared=True)
    try:
        assert second.transport is not first.transport and second.connected()
        assert Workspace().server_status(second) == []
    finally:
        first.close()
        second.close()
    assert CONNECTIONS.count() == 0


def test_two_threads_asking_at_once_log_in_once(box):
    srv, _root = box
    before = logins(srv)
    handles = []
    threads = [threading.Thread(target=lambda: handles.append(Workspace().connect("box", shared=True)))
               for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    try:
        assert len({id(h.transport) for h in handles}) == 1 and logins(srv) - before == 1
    finally:
        for h in handles:
            h.close()
