"""The runner's event loop (app/agent/httploop.py) on a real runner deployed by the agent: idle
keep-alive connections cost no thread, pipelined requests are answered in order, a request split
into many small pieces is still one request, `Expect: 100-continue` is answered, bad request lines
and versions are 4xx/5xx with the connection closed; predictions run in the model threads
(modelpool.py), so a slow one holds neither /health nor other connections, sleeping ones overlap,
a full pool holds the rest unread, and a stopping runner answers the one under way; with
`model_threads = 0` the model is called on the loop and /health waits behind it (docs/serving.md)."""
from __future__ import annotations

import json
import os
import signal
import socket
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from agent_kit import call, deploy, http_json, make_bundle, stop_all

SLOW_MODEL = '''
import time


class Model:
    def predict(self, data):
        time.sleep(data.get("sleep", 0))
        return {"echo": data}
'''


def start(tmp_path, extra_toml=""):
    """(port, pid) of a real runner of a model that sleeps as long as it is asked to."""
    root = tmp_path / "srv"
    result, error, _ = deploy(root, make_bundle(tmp_path / "b", model_src=SLOW_MODEL, extra_toml=extra_toml))
    assert error is None, error
    status, _, _ = call(root, "status")
    model = status["models"][0]
    return model["port"], model["pid"]


@pytest.fixture
def runner(tmp_path):
    yield start(tmp_path)
    stop_all(tmp_path / "srv")


@pytest.fixture
def runner_with(tmp_path):
    """start(tmp_path, extra_toml) of the test's choosing, stopped after it."""
    yield lambda extra_toml: start(tmp_path, extra_toml)
    stop_all(tmp_path / "srv")


def timed_post(port: int, body: dict) -> float:
    t0 = time.monotonic()
    assert http_json(port, "POST", "/predict", body)[0] == 200
    return time.monotonic() - t0


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


def test_a_slow_prediction_holds_neither_health_metrics_info_nor_other_connections(runner):
    port, _ = runner
    with socket.create_connection(("127.0.0.1", port), timeout=10) as slow:
        slow.sendall(post(b'{"sleep": 2.0}'))
        time.sleep(0.2)  # the model thread has it
        for path in ("/health", "/metrics", "/info"):
            started = time.monotonic()
            assert http_json(port, "GET", path)[0] == 200
            waited = time.monotonic() - started
            assert waited < 0.1, "%s waited %.3f s behind a prediction" % (path, waited)
        assert timed_post(port, {"sleep": 0}) < 0.5  # another connection's prediction, in another thread
        assert read_answers(slow, 1)[0][0] == 200


def test_pipelined_requests_after_a_slow_prediction_wait_their_turn(runner):
    port, _ = runner
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        started = time.monotonic()
        s.sendall(post(b'{"sleep": 0.5, "i": 0}') + b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n" + post(b'{"i": 2}'))
        answers = read_answers(s, 3)
        took = time.monotonic() - started
    assert [json.loads(b).get("echo", {}).get("i", "health") for _, b in answers] == [0, "health", 2]
    assert took >= 0.5


def test_two_sleeping_predictions_on_two_connections_overlap(runner_with):
    port, _ = runner_with("model_threads = 2\n")
    started = time.monotonic()
    with ThreadPoolExecutor(2) as pool:
        each = list(pool.map(lambda _: timed_post(port, {"sleep": 1.0}), range(2)))
    took = time.monotonic() - started
    assert min(each) >= 1.0 and took < 1.6, "two 1-s predictions took %.2f s (each %s)" % (took, each)


def test_a_full_pool_holds_predictions_in_their_connections_and_still_answers_health(runner_with):
    """One thread, in flight at most 2 (QUEUED_PER_THREAD): four 0.4-s predictions take 4 x 0.4 s
    one after another, /health is answered at once meanwhile, and every one is answered."""
    port, _ = runner_with("model_threads = 1\n")
    assert http_json(port, "GET", "/info")[1]["model_threads"] == 1
    started = time.monotonic()
    with ThreadPoolExecutor(4) as pool:
        done = pool.map(lambda _: timed_post(port, {"sleep": 0.4}), range(4))
        time.sleep(0.3)
        t0 = time.monotonic()
        assert http_json(port, "GET", "/health")[0] == 200
        assert time.monotonic() - t0 < 0.1
        each = sorted(done)
    took = time.monotonic() - started
    # 0.4, 0.8, 1.2, 1.6 s: one after another (the clients start a little apart, hence 1.5)
    assert took >= 1.5 and each[-1] >= 1.5, "one model thread ran predictions at once: %s" % each


def test_counters_add_up_under_concurrent_model_threads(runner):
    port, _ = runner
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda i: timed_post(port, {"i": i}), range(400)))
    metrics = http_json(port, "GET", "/metrics")[1].decode()
    count = [line for line in metrics.splitlines() if line.startswith("berth_request_duration_seconds_count")
             and 'endpoint="/predict"' in line]
    assert count and float(count[0].rsplit(" ", 1)[1]) == 400, count


def test_a_stopping_runner_answers_the_prediction_under_way(runner):
    port, pid = runner
    with socket.create_connection(("127.0.0.1", port), timeout=10) as slow:
        slow.sendall(post(b'{"sleep": 1.5}'))
        time.sleep(0.3)
        os.kill(pid, signal.SIGTERM)
        data = b""
        while True:
            chunk = slow.recv(65536)
            if not chunk:
                break
            data += chunk
    assert data.startswith(b"HTTP/1.1 200 ") and b"Connection: close" in data and b'"sleep": 1.5' in data


def test_with_model_threads_0_a_slow_prediction_holds_health_behind_it(runner_with):
    """The model on the loop thread (as in uvicorn's single worker): while it works nothing else is
    answered, and /health is answered right after it."""
    port, _ = runner_with("model_threads = 0\n")
    with socket.create_connection(("127.0.0.1", port), timeout=10) as slow:
        slow.sendall(post(b'{"sleep": 1.0}'))
        time.sleep(0.2)
        started = time.monotonic()
        assert http_json(port, "GET", "/health")[0] == 200
        waited = time.monotonic() - started
        assert read_answers(slow, 1)[0][0] == 200
    assert 0.5 < waited < 5, "health waited %.2f s" % waited


@pytest.mark.parametrize("value", ['"4"', "65", "-1", "true"])
def test_a_release_with_a_bad_model_threads_does_not_start_and_says_why(tmp_path, value):
    """app/bundle refuses these; a release.json written otherwise is refused by the runner too."""
    root = tmp_path / "srv"
    try:
        _, error, _ = deploy(root, make_bundle(tmp_path / "b", model_src=SLOW_MODEL, extra_toml=f"model_threads = {value}\n"))
    finally:
        stop_all(root)
    assert error is not None and error["code"] in ("start_failed", "unhealthy"), error
    assert any("model_threads must be an integer from 0 to 64" in line for line in error.get("log", [])), error
