"""Talk to a runner's stable port as a client does: POST with an X-Request-Id, and wait for the
request-log line (the runner writes it after the answer)."""
import http.client
import json
import time


def post(port, path, body, request_id=None):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    headers = {"Content-Type": "application/json"}
    if request_id:
        headers["X-Request-Id"] = request_id
    conn.request("POST", path, body if isinstance(body, bytes) else json.dumps(body).encode(), headers)
    resp = conn.getresponse()
    raw = resp.read()
    conn.close()
    return resp.status, json.loads(raw), resp.getheader("X-Request-Id")


def predict(port, root, model, data, request_id):
    """POST /predict, then wait for its request-log line: the runner writes it after the answer."""
    status, answer, rid = post(port, "/predict", data, request_id)
    log = root / "models" / model / "logs" / "requests.jsonl"
    deadline = time.monotonic() + 10
    while ('"request_id": "%s"' % request_id) not in log.read_text():
        assert time.monotonic() < deadline, "no request-log line for %s" % request_id
        time.sleep(0.01)
    return status, answer, rid
