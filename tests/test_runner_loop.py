"""The runner's event loop (app/agent/httploop.py) on a real runner deployed by the agent: idle
keep-alive connections cost no thread, pipelined requests are answered in order, a request split
into many small pieces is still one request, `Expect: 100-continue` is answered, bad request lines
and versions are 4xx/5xx with the connection closed, and a slow model holds /health behind it (the
model is called on the loop: docs/serving.md says so)."""
from __future__ import annotations

import json
import os
import socket
import time

import pytest

from agent_kit import call, deploy, http_json, make_bundle, stop_all

SLOW_MODEL = '''
import time


class Model:
    def predict(self, data):
        time.sleep(data.get("sleep", 0))
        return {"echo": data}
'''


@pytest.fixture
def runner(tmp_path):
    """(port, pid) of a real runner of a model that sleeps as long as it is asked to."""
    root = tmp_path / "srv"
    result, error, _ = deploy(root, make_bundle(tmp_path / "b", model_src=SLOW_MODEL))
    assert error is None, error
    status, _, _ = call(root, "status")
    model = status["models"][0]
    yield model["port"], model["pid"]
    stop_all(root)


def threads(pid: int) -> int:
    return len(os.listdir("/proc/%d/task" % pid))


def post(body: bytes, extra: bytes = b"") -> bytes:
    return (b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n%s\r\n"
            % (len(body), extra)) + body


def read_answers(sock: socket.socket, count: int) -> list[tuple[int, bytes]]:
    """`count` answers (status, body) read by Content-Length from one connection."""
    buf, out = b"", []
    while len(out) < count:
        end = buf.find(b"\r\n\r\n")
        if end < 0:
            chunk = sock.recv(65536)
            assert chunk, "the runner closed the connection after %d answers" % len(out)
            buf += chunk
            continue
        head = buf[:end].decode("latin-1")
        length = int(head.lower().split("content-length:")[1].split("\r\n")[0])
        while len(buf) < end + 4 + length:
            chunk = sock.recv(65536)
            assert chunk
            buf += chunk
        out.append((int(head.split(" ", 2)[1]), buf[end + 4:end + 4 + length]))
        buf = buf[end + 4 + length:]
    return out


def test_two_hundred_idle_keep_alive_connections_cost_no_thread(runner):
    port, pid = runner
    before = threads(pid)
    socks = []
    try:
        for _ in range(200):
            s = socket.create_connection(("127.0.0.1", port), timeout=5)
            s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
            socks.append(s)
        for s in socks:  # each answered and now idle, kept alive
            assert read_answers(s, 1)[0][0] == 200
        assert threads(pid) == before, "idle connections hold threads"
        assert http_json(port, "GET", "/health")[0] == 200
        for s in socks[:10]:  # and they are still usable
            s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
            assert read_answers(s, 1)[0][0] == 200
    finally:
        for s in socks:
            s.close()


def test_pipelined_requests_are_answered_in_order_on_one_connection(runner):
    port, _ = runner
    bodies = [json.dumps({"i": i}).encode() for i in range(50)]
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(b"".join(post(b) for b in bodies) + b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        answers = read_answers(s, 51)
    assert [json.loads(body)["echo"]["i"] for _, body in answers[:50]] == list(range(50))
    assert answers[50][0] == 200 and json.loads(answers[50][1])["status"] == "ok"


def test_a_request_sent_byte_by_byte_is_one_request(runner):
    port, _ = runner
    data = post(b'{"piece": "by piece"}')
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for i in range(len(data)):
            s.send(data[i:i + 1])
            time.sleep(0.001)
        status, body = read_answers(s, 1)[0]
    assert status == 200 and json.loads(body)["echo"] == {"piece": "by piece"}


def test_expect_100_continue_is_answered_before_the_body(runner):
    port, _ = runner
    body = b'{"big": "' + b"x" * 5000 + b'"}'
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(post(body, b"Expect: 100-continue\r\n")[:-len(body)])
        assert s.recv(100).startswith(b"HTTP/1.1 100 Continue\r\n\r\n")
        s.sendall(body)
        status, answer = read_answers(s, 1)[0]
    assert status == 200 and len(json.loads(answer)["echo"]["big"]) == 5000


@pytest.mark.parametrize("request_line, status", [
    (b"GARBAGE\r\n", 400), (b"GET /health HTTP/2.0\r\n", 505), (b"GET /health HTCPCP/1.0\r\n", 400),
    (b"DELETE /predict HTTP/1.1\r\n", 501), (b"GET /health HTTP/1.1\r\nBad Header: x\r\n", 400),
    (b"GET /health HTTP/1.1\r\nno colon\r\n", 400),
])
def test_bad_request_lines_and_headers_are_refused_and_closed(runner, request_line, status):
    port, _ = runner
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(request_line + b"Host: x\r\n\r\nGET /info HTTP/1.1\r\nHost: x\r\n\r\n")
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    assert int(data.split(b" ", 2)[1]) == status and b"Connection: close" in data
    assert data.count(b"HTTP/1.1 ") == 1, "the request after it was read too"


def test_a_request_line_over_the_limit_is_414(runner):
    port, _ = runner
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        try:
            s.sendall(b"GET /" + b"a" * 70000)  # no line end: refused once the head is over 64 KB
        except OSError:
            pass
        assert s.recv(65536).split(b" ", 2)[1] == b"414"


def test_a_slow_prediction_holds_health_behind_it(runner):
    """The model runs on the loop thread (as in uvicorn's single worker): while it works nothing
    else is answered, and /health is answered right after it."""
    port, _ = runner
    with socket.create_connection(("127.0.0.1", port), timeout=10) as slow:
        slow.sendall(post(b'{"sleep": 1.0}'))
        time.sleep(0.2)
        started = time.monotonic()
        assert http_json(port, "GET", "/health")[0] == 200
        waited = time.monotonic() - started
        assert read_answers(slow, 1)[0][0] == 200
    assert 0.5 < waited < 5, "health waited %.2f s" % waited
