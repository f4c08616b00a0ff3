"""Labels for logged requests with real runners: POST /feedback on the stable port and
`berth feedback --file labels.csv` change the live accuracy (or MAE) per version; every bad input
(shape, id, size, CSV row) is refused whole, and unknown request ids are counted and named."""
import json
import os
import socket
import time

import pytest

from agent_kit import call, deploy, make_bundle, stop_all
from cli_kit import berth
from jobs_kit import cleanup
from labels_kit import post, predict

SIGN_MODEL = '''
class Model:
    def predict(self, data):
        return {{"label": "pos" if data["x"] > 0 else "neg", "version": "{version}"}}
'''
REGRESSION_MODEL = '''
class Model:
    def predict(self, data):
        return {"value": data["x"] * 0.5}
'''


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("feedback")
    root = tmp / "srv"
    for name, src in (("sign", SIGN_MODEL.format(version="1.0.0")), ("reg", REGRESSION_MODEL)):
        result, error, _ = deploy(root, make_bundle(tmp / name, name=name, model_src=src))
        assert error is None, error
    status, _, _ = call(root, "status")
    ports = dict((m["model"], m["stable_port"]) for m in status["models"])
    yield root, ports
    stop_all(root)


def figures(root, model, **extra):
    result, error, _ = call(root, "feedback_figures", model=model, **extra)
    assert error is None, error
    return result["versions"]


def test_posted_labels_change_the_accuracy_shown(served):
    root, ports = served
    port = ports["sign"]
    for i, x in enumerate((1, 2, -1, -2)):
        status, answer, rid = predict(port, root, "sign", {"x": x}, "acc-%d" % i)
        assert status == 200 and rid == "acc-%d" % i
    assert figures(root, "sign") == {}  # nothing labelled yet
    ok = {"unknown": 0, "unknown_ids": []}
    assert post(port, "/feedback", {"request_id": "acc-0", "label": "pos"})[:2] == (200, dict(ok, accepted=1))
    assert figures(root, "sign", versions=["1.0.0"]) == {"1.0.0": {"labelled": 1, "accuracy": 1.0, "correct": 1}}
    many = [{"request_id": "acc-1", "label": "neg"}, {"request_id": "acc-2", "label": "neg"},
            {"request_id": "acc-3", "label": "pos"}]
    assert post(port, "/feedback", many)[:2] == (200, dict(ok, accepted=3))
    assert figures(root, "sign")["1.0.0"] == {"labelled": 4, "accuracy": 0.5, "correct": 2}
    # a corrected label replaces the earlier one (the last label for an id wins)
    assert post(port, "/feedback", {"request_id": "acc-1", "label": "pos"})[0] == 200
    assert figures(root, "sign")["1.0.0"]["accuracy"] == 0.75
    assert figures(root, "sign", since=10 ** 10) == {}  # only requests logged since then
    assert figures(root, "sign", versions=["2.0.0"]) == {"2.0.0": {"labelled": 0}}


def test_numbers_give_the_mean_absolute_error(served):
    root, ports = served
    for i, x in enumerate((1, 3)):
        assert predict(ports["reg"], root, "reg", {"x": x}, "reg-%d" % i)[0] == 200  # answers 0.5 and 1.5
    result, error, _ = call(root, "feedback_add", model="reg", labels=[["reg-0", "1.0"], ["reg-1", "1.0"]])
    assert error is None and result == {"accepted": 2, "unknown": 0, "unknown_ids": []}
    assert figures(root, "reg")["1.0.0"] == {"labelled": 2, "mae": 0.5}


@pytest.mark.parametrize("body,status,said", [
    ({"request_id": "a"}, 400, 'exactly "request_id" and "label"'),
    ({"request_id": "a", "label": "x", "extra": 1}, 400, 'exactly "request_id" and "label"'),
    ({"request_id": "a b\nc", "label": "x"}, 400, "plain token"),
    ({"request_id": "a", "label": True}, 400, "string or a number"),
    ({"request_id": "a", "label": {"x": 1}}, 400, "string or a number"),
    ({"request_id": "a", "label": "two\nlines"}, 400, "on one line"),
    ([], 400, "no labels given"),
    ([{"request_id": "a", "label": "x"}, 7], 400, "item 1:"),
    (b"{not json", 400, "not valid JSON"),
    ("just a string", 400, 'exactly "request_id" and "label"'),
])
def test_feedback_of_an_unknown_shape_is_refused_and_nothing_is_kept(served, body, status, said):
    root, ports = served
    labels = root / "models/sign/logs/labels.jsonl"
    before = labels.read_bytes() if labels.exists() else b""
    got_status, answer, _ = post(ports["sign"], "/feedback", body)
    assert got_status == status and said in answer["error"], answer
    assert (labels.read_bytes() if labels.exists() else b"") == before


def test_a_body_over_a_megabyte_is_refused_before_it_is_read(served):
    root, ports = served
    with socket.create_connection(("127.0.0.1", ports["sign"]), timeout=10) as s:
        s.sendall(b"POST /feedback HTTP/1.1\r\nHost: x\r\nContent-Length: 2000000\r\n\r\n")
        reply = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            reply += chunk
    assert reply.startswith(b"HTTP/1.1 413 ") and b"over 1048576 bytes" in reply and b"Connection: close" in reply


def test_too_many_labels_in_a_small_body_are_refused(served):
    root, ports = served
    body = json.dumps([{"request_id": "a", "label": 1}] * 10001).encode()
    assert len(body) < 1024 * 1024
    status, answer, _ = post(ports["sign"], "/feedback", body)
    assert status == 400 and "at most 10000" in answer["error"]


def test_the_agent_command_counts_unknown_ids_and_refuses_bad_rows_whole(served):
    root, ports = served
    assert predict(ports["sign"], root, "sign", {"x": 5}, "known-1")[0] == 200
    result, error, _ = call(root, "feedback_add", model="sign",
                            labels=[["known-1", "pos"], ["never-1", "neg"], ["never-2", "neg"]])
    assert error is None and result == {"accepted": 1, "unknown": 2, "unknown_ids": ["never-1", "never-2"]}
    labels = (root / "models/sign/logs/labels.jsonl").read_bytes()
    for bad, said in (([["known-1", "pos"], ["bad id", "x"]], "row 1: request_id"), ([["known-1"]], "row 0: expected"),
                      ("nope", "labels must be a list")):
        result, error, _ = call(root, "feedback_add", model="sign", labels=bad)
        assert result is None and said in error["message"], error
    assert (root / "models/sign/logs/labels.jsonl").read_bytes() == labels
    result, error, _ = call(root, "feedback_add", model="nosuch", labels=[])
    assert error["code"] == "not_found"


def test_a_reused_request_id_cannot_inflate_accuracy_or_mae(served):
    """A client sent one X-Request-Id on three requests: its label attaches to none of them (it is
    "ambiguous"), so one label cannot count three times; an id used once still counts."""
    root, ports = served
    for i, x in enumerate((4, 5, 6)):
        assert predict(ports["sign"], root, "sign", {"x": x}, "dup-acc")[0] == 200
    assert predict(ports["sign"], root, "sign", {"x": -4}, "once-acc")[0] == 200
    since = min(json.loads(line)["ts"] for line in (root / "models/sign/logs/requests.jsonl").read_text().splitlines()
                if "dup-acc" in line)
    answer = post(ports["sign"], "/feedback", [{"request_id": "dup-acc", "label": "pos"},
                                               {"request_id": "once-acc", "label": "pos"}])[1]
    assert answer["accepted"] == 2
    assert figures(root, "sign", since=since)["1.0.0"] == {"labelled": 1, "accuracy": 0.0, "correct": 0, "ambiguous": 1}
    for i, x in enumerate((2, 2)):  # answers 1.0 twice for one id, and 1.5 once
        assert predict(ports["reg"], root, "reg", {"x": x}, "dup-reg")[0] == 200
    assert predict(ports["reg"], root, "reg", {"x": 3}, "once-reg")[0] == 200
    since = min(json.loads(line)["ts"] for line in (root / "models/reg/logs/requests.jsonl").read_text().splitlines()
                if "dup-reg" in line)
    assert call(root, "feedback_add", model="reg", labels=[["dup-reg", "0.0"], ["once-reg", "1.0"]])[0]["accepted"] == 2
    assert figures(root, "reg", since=since)["1.0.0"] == {"labelled": 1, "mae": 0.5, "ambiguous": 1}


def test_a_flood_of_labels_for_unknown_ids_is_counted_and_not_kept(served):
    """30,000 labels for ids never logged (and one real id repeated) leave the labels file holding
    the real label once: a flood cannot rotate real labels out. Each answer counts the unknown."""
    root, ports = served
    assert predict(ports["sign"], root, "sign", {"x": 9}, "real-9")[0] == 200
    labels = root / "models/sign/logs/labels.jsonl"
    before = labels.read_bytes() if labels.exists() else b""
    for n in range(3):
        flood = [{"request_id": "fake-%d-%d" % (n, i), "label": "pos"} for i in range(9999)]
        flood.append({"request_id": "real-9", "label": "pos"})
        status, answer, _ = post(ports["sign"], "/feedback", flood)
        assert status == 200 and (answer["accepted"], answer["unknown"]) == (1, 9999), answer
        assert answer["unknown_ids"] == sorted("fake-%d-%d" % (n, i) for i in range(9999))[:5]
    added = labels.read_bytes()[len(before):].splitlines()
    assert [json.loads(line)["request_id"] for line in added] == ["real-9"] * 3
    assert post(ports["sign"], "/feedback", [{"request_id": "real-9", "label": "neg"}] * 50)[1]["accepted"] == 50
    assert len(labels.read_bytes()[len(before):].splitlines()) == 4  # the last label per id, once


def test_the_series_for_the_monitoring_graphs_and_its_bad_inputs(served):
    """feedback_figures with bucket_s: accuracy per version per bucket of answer time; a bucket that
    is no number, under a second, without `since`, or too many buckets is refused."""
    root, ports = served
    since = time.time()  # the requests of earlier tests are older
    for i, x in enumerate((7, -7)):
        assert predict(ports["sign"], root, "sign", {"x": x}, "ser-%d" % i)[0] == 200
    assert post(ports["sign"], "/feedback", [{"request_id": "ser-0", "label": "pos"},
                                             {"request_id": "ser-1", "label": "pos"}])[1]["accepted"] == 2
    result, error, _ = call(root, "feedback_figures", model="sign", since=since, bucket_s=3600)
    assert error is None and result["series"] == {"1.0.0": {"figure": "accuracy", "points": [[round(since + 1800, 3), 2, 0.5]]}}
    for extra, said in (({"since": since, "bucket_s": "5"}, "bucket_s must be"), ({"since": since, "bucket_s": 0.5},
                        "bucket_s must be"), ({"bucket_s": 5}, "with since"),
                        ({"since": since - 86400, "bucket_s": 1}, "at most 2000 buckets")):
        result, error, _ = call(root, "feedback_figures", model="sign", **extra)
        assert result is None and error["code"] == "usage" and said in error["message"], error


def test_labels_are_read_across_rotated_logs(served, monkeypatch):
    """A label in labels.jsonl.1 for a request in requests.jsonl.2 still counts."""
    root, _ = served
    logs = root / "models/sign/logs"
    (logs / "requests.jsonl.2").write_text(
        json.dumps({"ts": 1.0, "version": "0.9", "request_id": "old-1", "status": 200, "output": '{"label": "neg"}'})
        + "\n" + json.dumps({"ts": 1.0, "version": "0.9", "request_id": None, "status": 200,  # an id only in its input
                             "input": json.dumps({"request_id": "old-1"}), "output": '{"label": "pos"}'}) + "\n")
    (logs / "labels.jsonl.1").write_text('{"ts": 2.0, "request_id": "old-1", "label": "neg"}\n{torn\n')
    try:
        assert figures(root, "sign", versions=["0.9"]) == {"0.9": {"labelled": 1, "accuracy": 1.0, "correct": 1}}
    finally:
        os.unlink(logs / "requests.jsonl.2")
        os.unlink(logs / "labels.jsonl.1")


@pytest.fixture
def local(berth_home, capsys, tmp_path):
    folder = make_bundle(tmp_path / "sign", name="sign", model_src=SIGN_MODEL.format(version="1.0.0"))
    r = berth(capsys, "deploy", folder, "--server", "local")
    assert r.code == 0, r
    root = berth_home / "local"
    status, _, _ = call(root, "status")
    yield root, status["models"][0]["stable_port"]
    cleanup(root)


def test_berth_feedback_from_a_csv_file(local, capsys, tmp_path):
    root, port = local
    for i, x in enumerate((1, -1, 1)):
        assert predict(port, root, "sign", {"x": x}, "r%d" % i)[0] == 200
    labels = tmp_path / "labels.csv"
    labels.write_text("request_id,label\nr0,pos\nr1,pos\nr2,pos\nghost,neg\n")
    r = berth(capsys, "feedback", "sign", "--server", "local", "--file", labels)
    assert r.code == 0, r
    assert r.out.strip() == "sign on local: 3 label(s) kept"
    assert "1 label(s) name request ids not in the request log (e.g. ghost)" in r.err
    r = berth(capsys, "feedback", "sign", "--server", "local", "--json")
    assert r.code == 0 and r.json() == {"1.0.0": {"labelled": 3, "accuracy": 2 / 3, "correct": 2}}
    r = berth(capsys, "feedback", "sign", "--server", "local")
    assert "1.0.0" in r.out and "0.6667" in r.out


@pytest.mark.parametrize("text,said", [
    ("request_id,label\nr0,pos\nr 1,neg\nr2\nr3,\n",
     "3 bad row(s), nothing was sent: line 3: request_id must be a plain token"),
    ("id,label\nr0,pos\n", "the first line must be the header request_id,label"),
    ("request_id,label\n", "no labels in it"),
    ("request_id,label\nr0,\"unclosed\n", "line 2: label must be 1 to 256 characters on one line"),
    (b"request_id,label\nr0,\xff\n", "not UTF-8 text"),
])
def test_a_malformed_csv_is_refused_with_its_line_numbers_and_nothing_sent(local, capsys, tmp_path, text, said):
    root, port = local
    assert post(port, "/predict", {"x": 1}, "r0")[0] == 200
    labels = tmp_path / "labels.csv"
    labels.write_bytes(text if isinstance(text, bytes) else text.encode())
    r = berth(capsys, "feedback", "sign", "--server", "local", "--file", labels)
    assert r.code == 1 and said in r.err, r
    assert not (root / "models/sign/logs/labels.jsonl").exists()


def test_bad_rows_name_each_line(local, capsys, tmp_path):
    root, _ = local
    labels = tmp_path / "labels.csv"
    labels.write_text("request_id,label\nr0,pos\nr 1,neg\nr2\nr3,\n")
    r = berth(capsys, "feedback", "sign", "--server", "local", "--file", labels)
    assert "line 3: request_id" in r.err and "line 4: expected 2 columns" in r.err and "line 5: label must be" in r.err


def test_a_huge_file_is_refused_before_it_is_read(local, capsys, tmp_path):
    root, _ = local
    labels = tmp_path / "labels.csv"
    with labels.open("wb") as f:
        f.truncate(257 * 1024 * 1024)  # sparse: no disk used
    r = berth(capsys, "feedback", "sign", "--server", "local", "--file", labels)
    assert r.code == 1 and "over 256 MB; split it into smaller files" in r.err


def test_a_big_file_goes_in_chunks_with_progress(local, capsys, tmp_path):
    root, port = local
    assert predict(port, root, "sign", {"x": 1}, "big-0")[0] == 200
    labels = tmp_path / "labels.csv"
    labels.write_text("request_id,label\n" + "".join("big-%d,pos\n" % (i % 3) for i in range(25000)))
    r = berth(capsys, "feedback", "sign", "--server", "local", "--file", labels, "--json")
    assert r.code == 0, r
    assert [line for line in r.err.splitlines() if line.startswith("sent ")] == [
        "sent 10000 of 25000 labels", "sent 20000 of 25000 labels", "sent 25000 of 25000 labels"]
    assert r.json()["accepted"] == 8334 and r.json()["unknown"] == 25000 - 8334
