"""A runner under attack from raw sockets on loopback (bounded in count and time): malformed
lengths, desync after a refusal, half-sent headers, idle floods, a stream of failing requests.
It answers each with a 4xx or closes the connection, and keeps serving honest clients."""
from __future__ import annotations

import json
import socket
import struct
import time
from pathlib import Path

import psutil
import pytest

from agent_kit import call, deploy, http_json, make_bundle, stop_all
from app.agent import runnerguard

FAILING_MODEL = '''
class Model:
    def predict(self, data):
        if data.get("fail"):
            raise ValueError("bad luck " + "x" * 200)
        return {"ok": True, "echo": data}
'''


@pytest.fixture
def runner(tmp_path):
    """(port, pid, root) of a real runner of the echo model, deployed by the agent."""
    root = tmp_path / "srv"
    result, error, _ = deploy(root, make_bundle(tmp_path / "b", model_src=FAILING_MODEL))
    assert error is None, error
    status, _, _ = call(root, "status")
    model = status["models"][0]
    yield model["port"], model["pid"], root
    stop_all(root)


def raw(port: int, data: bytes, timeout=5.0, read_all=True) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(data)
        chunks = []
        try:
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                chunks.append(chunk)
                if not read_all:
                    break
        except socket.timeout:
            pass
        return b"".join(chunks)


def status_line(response: bytes) -> int:
    return int(response.split(b" ", 2)[1])


def post(length_header: bytes, body: bytes = b"") -> bytes:
    return b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n" + length_header + b"\r\n" + body


def test_a_negative_content_length_is_a_400_and_memory_stays_flat(runner):
    port, pid, _ = runner
    before = psutil.Process(pid).memory_info().rss
    started = time.monotonic()
    response = raw(port, post(b"Content-Length: -1\r\n") + b"x" * 1000)
    assert status_line(response) == 400 and b"invalid Content-Length" in response
    assert b"Connection: close" in response
    assert time.monotonic() - started < 3, "the runner waited for the client to close"
    assert psutil.Process(pid).memory_info().rss < before + 20 * 1024 * 1024


@pytest.mark.parametrize("header", [b"Content-Length: 12abc\r\n", b"Content-Length: 1e3\r\n",
                                    b"Content-Length: 5\r\nContent-Length: 7\r\n", b"Content-Length: +5\r\n"])
def test_malformed_lengths_are_400(runner, header):
    assert status_line(raw(runner[0], post(header) + b"{}")) == 400


def test_after_a_413_the_unread_body_is_never_parsed_as_a_request(runner):
    port = runner[0]
    smuggled = b"GET /info HTTP/1.1\r\nHost: x\r\n\r\n"
    response = raw(port, post(b"Content-Length: %d\r\n" % (65 * 1024 * 1024)) + smuggled)
    assert status_line(response) == 413 and b"Connection: close" in response
    assert response.count(b"HTTP/1.1 ") == 1, "the body was read as a second request"


def test_chunked_bodies_are_refused_with_411_and_the_connection_closed(runner):
    body = b"2\r\n{}\r\n0\r\n\r\n"
    response = raw(runner[0], post(b"Transfer-Encoding: chunked\r\n") + body)
    assert status_line(response) == 411 and response.count(b"HTTP/1.1 ") == 1


def test_too_deeply_nested_json_is_the_clients_fault(runner):
    port, _, _ = runner
    body = b"[" * 100000 + b"]" * 100000
    response = raw(port, post(b"Content-Length: %d\r\n" % len(body)) + body)
    assert status_line(response) == 400 and b"nested too deeply" in response
    metrics = http_json(port, "GET", "/metrics")[1].decode()
    assert 'berth_request_errors_total{model="echo",version="1.0.0",endpoint="/predict"} 0' in metrics
    assert 'berth_request_rejected_total{model="echo",version="1.0.0",endpoint="/predict",reason="bad_request"} 1' in metrics


def test_half_sent_headers_are_cut_off_at_the_deadline(runner, monkeypatch):
    port, pid, _ = runner
    threads_before = psutil.Process(pid).num_threads()
    socks = []
    try:
        for _ in range(50):
            s = socket.create_connection(("127.0.0.1", port), timeout=5)
            s.sendall(b"POST /predict HTTP/1.1\r\nHost: x\r\n")  # and never the rest
            socks.append(s)
        time.sleep(0.5)
        assert http_json(port, "GET", "/health")[0] == 200, "an honest client was not served meanwhile"
        deadline = time.monotonic() + runnerguard.REQUEST_DEADLINE + 5
        while time.monotonic() < deadline and psutil.Process(pid).num_threads() > threads_before + 2:
            time.sleep(0.25)
        assert psutil.Process(pid).num_threads() <= threads_before + 2, "the half-sent requests still hold threads"
        closed = 0
        for s in socks:  # each told why (408), then closed
            s.settimeout(1)
            try:
                said = s.recv(65536)
                closed += said.startswith(b"HTTP/1.1 408 Request Timeout\r\n") and s.recv(1) == b""
            except OSError:
                closed += 1
        assert closed == len(socks)
    finally:
        for s in socks:
            s.close()


def hold_connections(port: int, pid: int, n: int, within: float = 20.0) -> list[socket.socket]:
    """n connections the runner has accepted, each in the middle of a body (none is displaced: an
    idle one would be, after 1 s). Another client can take a slot meanwhile (the scheduler's first
    sample of every runner in a root with alert rules, a console's sampler), so that one of these is
    told 503 and closed: it is opened again until the runner holds n of ours."""
    socks: list[socket.socket] = []
    deadline = time.monotonic() + within
    while True:
        for s in [s for s in socks if _answered(s)]:  # refused at the bound: a probe held a slot
            socks.remove(s)
            s.close()
        while len(socks) < n:
            s = socket.create_connection(("127.0.0.1", port), timeout=5)
            s.sendall(post(b"Content-Length: 10\r\n", b"{"))
            socks.append(s)
        ours = {s.getsockname()[1] for s in socks}
        held = sum(1 for c in psutil.Process(pid).net_connections("tcp") if c.laddr and c.laddr.port == port
                   and c.raddr and c.raddr.port in ours and c.status == psutil.CONN_ESTABLISHED)
        if held == n:
            return socks
        if time.monotonic() > deadline:
            for s in socks:
                s.close()
            raise AssertionError(f"the runner accepted {held} of {n} connections in {within} s")
        time.sleep(0.05)


def _answered(s: socket.socket) -> bool:
    """Has the runner said something (a 503) or closed this connection?"""
    s.setblocking(False)
    try:
        s.recv(1, socket.MSG_PEEK)  # a byte of its answer, or b"": closed
        return True
    except BlockingIOError:
        return False
    except OSError:
        return True
    finally:
        s.settimeout(5)


def test_connections_over_the_bound_are_refused_at_once_and_honest_clients_served_later(runner):
    port, pid, _ = runner
    socks = hold_connections(port, pid, runnerguard.MAX_CONNECTIONS)
    try:
        time.sleep(0.2)
        assert psutil.Process(pid).num_threads() <= runnerguard.MAX_CONNECTIONS + 8
        started = time.monotonic()
        response = raw(port, b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        assert status_line(response) == 503 and time.monotonic() - started < 2
        assert b"\r\nRetry-After: 1\r\n" in response
    finally:
        for s in socks:
            s.close()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            if http_json(port, "GET", "/health")[0] == 200:
                break
        except OSError:
            pass
        time.sleep(0.1)
    assert http_json(port, "GET", "/health")[0] == 200


def test_a_stream_of_failing_requests_writes_one_traceback_not_one_each(runner):
    port, _, root = runner
    log = Path(root, "models", "echo", "logs", "1.0.0.log")
    body = json.dumps({"fail": True}).encode()
    for _ in range(200):
        assert status_line(raw(port, post(b"Content-Length: %d\r\nConnection: close\r\n" % len(body)) + body,
                               read_all=False)) == 500
    text = log.read_text()
    assert text.count("Traceback (most recent call last)") == 1, text[-2000:]
    assert text.count("ValueError: bad luck") == 1


def test_the_runner_log_is_rotated_by_size_while_it_runs(tmp_path):
    """In a child process, since the rotation re-points file descriptors 1 and 2."""
    import subprocess
    import sys

    log = tmp_path / "runner.log"
    script = f"""
import os, sys
fd = os.open({str(log)!r}, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
os.dup2(fd, 1); os.dup2(fd, 2)
from app.agent.runnerlog import RunnerLog
guard = RunnerLog({str(log)!r}, max_bytes=4000, window=60)
for i in range(200):
    try:
        raise KeyError("distinct failure %d" % i)
    except KeyError as e:
        guard.failure(e)
"""
    subprocess.run([sys.executable, "-c", script], check=True, timeout=60, cwd=Path(__file__).resolve().parents[1])
    assert (tmp_path / "runner.log.1").exists()
    assert log.stat().st_size < 4000 + 2000 and (tmp_path / "runner.log.1").stat().st_size < 4000 + 2000
    assert "distinct failure 199" in log.read_text()


def test_clients_that_hang_up_mid_answer_write_no_tracebacks(runner):
    """socketserver printed a traceback for every BrokenPipe / reset: 30 clients that sent a request
    and reset the connection wrote 40 KB to the runner log, which only a model failure rotated."""
    port, _, root = runner
    log = Path(root, "models", "echo", "logs", "1.0.0.log")
    before = log.stat().st_size
    body = json.dumps({"x": "y" * 200000}).encode()
    for _ in range(30):
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            s.sendall(post(b"Content-Length: %d\r\n" % len(body)) + body)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # close = reset
    time.sleep(1)
    assert http_json(port, "GET", "/health")[0] == 200
    grown = log.read_bytes()[before:]
    assert b"Traceback" not in grown and len(grown) < 1000, grown[-1500:]


def test_a_client_that_never_reads_its_answer_is_cut_off_at_the_deadline(runner):
    """The deadlines covered reading a request but not writing the answer: a client that sends a
    request and never reads held its thread (one of MAX_CONNECTIONS) for ever in sendall. On the
    event loop it holds a connection slot (no thread): the answer's deadline ends it, and other
    clients are served meanwhile."""
    port, pid, _ = runner
    pipelined = b"GET /info HTTP/1.1\r\nHost: x\r\n\r\n" * 20000  # ~10 MB of answers: more than buffers hold
    socks = []
    try:
        for _ in range(5):
            s = socket.socket()
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            s.settimeout(3)
            s.connect(("127.0.0.1", port))
            socks.append(s)
            try:
                s.sendall(pipelined)  # and never read
            except socket.timeout:
                pass
        time.sleep(1)
        assert runner_connections(pid, port) >= 5, "the answers did not block"
        assert http_json(port, "GET", "/health")[0] == 200, "a client that never reads stopped the others"
        assert psutil.Process(pid).memory_info().rss < 200 * 1024 * 1024, "unsent answers piled up"
        deadline = time.monotonic() + runnerguard.REQUEST_DEADLINE + 5
        while time.monotonic() < deadline and runner_connections(pid, port) > 0:
            time.sleep(0.25)
        assert runner_connections(pid, port) == 0, "unread answers still hold connections"
        assert http_json(port, "GET", "/health")[0] == 200
    finally:
        for s in socks:
            s.close()


def runner_connections(pid: int, port: int) -> int:
    """The runner's established connections on its port (the event loop holds no thread for them)."""
    return sum(1 for c in psutil.Process(pid).net_connections(kind="tcp")
               if c.laddr and c.laddr.port == port and c.status == psutil.CONN_ESTABLISHED)


def test_held_requests_with_huge_headers_stay_within_a_bounded_memory(runner):
    """http.server accepts 100 header lines of 64 KB each: 40 connections holding 6 MB of headers
    apiece (the blank line never sent) grew the runner by ~250 MB, and MAX_CONNECTIONS of them ~1.6 GB."""
    port, pid, _ = runner
    before = psutil.Process(pid).memory_info().rss
    line = b"X-Pad: " + b"a" * 60000 + b"\r\n"
    socks, refused = [], 0
    try:
        for _ in range(40):
            s = socket.create_connection(("127.0.0.1", port), timeout=5)
            socks.append(s)
            try:
                s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n" + line * 99)  # and never the blank line
            except OSError:
                refused += 1  # the runner answered and closed while we were still sending
        time.sleep(1)
        grown = psutil.Process(pid).memory_info().rss - before
        assert grown < 60 * 1024 * 1024, f"the runner grew by {grown >> 20} MB holding the headers"
        assert status_line(socks[0].recv(65536)) == 431
    finally:
        for s in socks:
            s.close()
    assert http_json(port, "GET", "/health")[0] == 200
