"""Replay with real runners: B runs on the last N logged inputs of the current version on a private
runner that is stopped after; its agreement is the one a shadow gets from the same inputs sent to
both versions; labels give both versions' accuracy; the live request log is left alone."""
import json
from pathlib import Path

import pytest

from agent_kit import call, deploy, make_bundle, stop_all
from cli_kit import berth
from jobs_kit import cleanup
from labels_kit import post, predict

RULE_MODEL = '''
class Model:
    def predict(self, data):
        return {{"label": "pos" if data["x"] > {cut} else "neg"}}
'''


def rule(cut):
    return lambda x: "pos" if x > cut else "neg"


@pytest.fixture(scope="module")
def two_versions(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("replay")
    root = tmp / "srv"
    for version, cut in (("1.0.0", 0), ("2.0.0", 2)):  # B = 1.0.0 (x > 0), A = 2.0.0 (x > 2), current
        folder = make_bundle(tmp / version, name="rule", version=version, model_src=RULE_MODEL.format(cut=cut))
        assert deploy(root, folder)[1] is None
    status, _, _ = call(root, "status")
    port = status["models"][0]["stable_port"]
    for i, x in enumerate(range(-5, 15)):
        assert predict(port, root, "rule", {"x": x}, "q%d" % i)[0] == 200
    yield root, port
    stop_all(root)


def a_lines(root, last):
    lines = [json.loads(t) for t in (root / "models/rule/logs/requests.jsonl").read_text().splitlines()]
    return [e for e in lines if e["version"] == "2.0.0"][-last:]


def replay_processes():
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if b"replay-1.0.0.port" in cmdline.read_bytes():
                found.append(cmdline.parent.name)
        except OSError:
            pass
    return found


def test_replay_agrees_as_a_shadow_would_on_the_same_inputs(two_versions):
    root, port = two_versions
    before = (root / "models/rule/logs/requests.jsonl").read_bytes()
    result, error, events = call(root, "replay", model="rule", b="1.0.0", last=15)
    assert error is None, error
    inputs = [json.loads(e["input"])["x"] for e in a_lines(root, 15)]
    # a shadow sends each request to A and B and compares their answers: the same inputs, both rules
    shadow_equal = sum(rule(2)(x) == rule(0)(x) for x in inputs)
    assert result["replayed"] == 15
    assert result["agreement"] == {"compared": 15, "equal": shadow_equal, "agreement": shadow_equal / 15}
    assert (result["a"]["version"], result["b"]["version"]) == ("2.0.0", "1.0.0")
    assert result["b"]["errors"] == 0 and result["b"]["p50_ms"] is not None
    assert result["verdict"]["state"] in ("none", "better", "worse") and result["verdict"]["text"]
    assert [e["step"] for e in events if e["event"] == "step"][-1] == "replay"
    # the live request log is A's alone, the private runner is gone, B's record was never written
    assert (root / "models/rule/logs/requests.jsonl").read_bytes() == before
    assert replay_processes() == []
    assert not (root / "models/rule/run/1.0.0.runner.json").exists()
    assert len((root / "models/rule/logs/replay.jsonl").read_text().splitlines()) == 15


def test_replay_shows_both_accuracies_where_labels_exist(two_versions):
    root, port = two_versions
    labelled = [{"request_id": "q%d" % i, "label": rule(1)(x)} for i, x in enumerate(range(-5, 15))]
    assert post(port, "/feedback", labelled)[0] == 200
    result, error, _ = call(root, "replay", model="rule", b="1.0.0", last=20)
    assert error is None, error
    labelled_x = [json.loads(e["input"])["x"] for e in a_lines(root, 20) if e["request_id"].startswith("q")]
    n = len(labelled_x)
    assert result["a"]["labelled"] == result["b"]["labelled"] == n
    assert result["a"]["accuracy"] == sum(rule(2)(x) == rule(1)(x) for x in labelled_x) / n
    assert result["b"]["accuracy"] == sum(rule(0)(x) == rule(1)(x) for x in labelled_x) / n
    assert "accuracy" in result["verdict"]["metrics"]


@pytest.mark.parametrize("req,code,said", [
    (dict(b="2.0.0"), "usage", "2.0.0 is the current version"),
    (dict(b="9.9.9"), "not_found", "there is no release 9.9.9 of rule"),
    (dict(b="../x"), "usage", "invalid version"),
    (dict(b="1.0.0", last=0), "usage", "--last must be 1 to 10000"),
    (dict(b="1.0.0", last=10001), "usage", "--last must be 1 to 10000"),
    (dict(b="1.0.0", last="5"), "usage", "--last must be 1 to 10000"),
])
def test_bad_replays_are_refused(two_versions, req, code, said):
    root, _ = two_versions
    result, error, _ = call(root, "replay", model="rule", **req)
    assert result is None and error["code"] == code and said in error["message"], error
    assert replay_processes() == []


@pytest.fixture
def local(berth_home, capsys, tmp_path):
    for version, cut in (("1.0.0", 0), ("2.0.0", 2)):
        folder = make_bundle(tmp_path / version, name="rule", version=version, model_src=RULE_MODEL.format(cut=cut))
        assert berth(capsys, "deploy", folder, "--server", "local").code == 0
    root = berth_home / "local"
    yield root
    cleanup(root)


def test_berth_experiment_replay(local, capsys):
    status, _, _ = call(local, "status")
    port = status["models"][0]["stable_port"]
    for i, x in enumerate(range(-3, 7)):
        assert predict(port, local, "rule", {"x": x}, "c%d" % i)[0] == 200
    r = berth(capsys, "experiment", "replay", "rule", "--server", "local", "--b", "1.0.0", "--last", "10", "--json")
    assert r.code == 0, r
    assert r.json()["replayed"] == 10 and r.json()["agreement"]["equal"] == 8  # x = 1 and 2 differ
    assert "replayed 10 of 10" in r.err
    r = berth(capsys, "experiment", "replay", "rule", "--server", "local", "--b", "1.0.0", "--last", "10")
    assert r.code == 0 and "agreement: 8 of 10 equal (80.0%)" in r.out and "verdict: " in r.out
    r = berth(capsys, "experiment", "replay", "rule", "--server", "local", "--b", "3.0.0")
    assert r.code == 1 and "there is no release 3.0.0 of rule" in r.err
