"""Real runners, deployed by the agent, check each request against the input example's shape or the
manifest's input_schema: a wrong shape is a 422 saying what differs, counted as rejected with reason
"invalid_input" and logged, and the model is never called; the model's own failure stays a 500."""
import json
import shutil
import subprocess

import pytest

from agent_kit import call, deploy, http_json, make_bundle, stop_all
from app.agent.health import request

# counts its calls, so a test can tell whether a refused request reached it
COUNTING_MODEL = '''
class Model:
    calls = 0

    def predict(self, data):
        Model.calls += 1
        if isinstance(data, dict) and data.get("name") == "boom":
            raise ValueError("the model failed on purpose")
        return {"calls": Model.calls}
'''
EXAMPLE = {"features": [1.5, 2, 3.25], "name": "a", "extra": {"flag": True}}
BATCH_EXAMPLE = [{"id": "r1", "x": 1}, {"id": "r2", "x": 2.5}]
SCHEMA = {"type": "object", "required": ["text"], "additionalProperties": False,
          "properties": {"text": {"type": "string"}, "top_k": {"type": "integer", "minimum": 1, "maximum": 10}}}


@pytest.fixture(scope="module")
def runners(tmp_path_factory):
    """{name: port} of four runners on one server root: shape from the example (an object, a
    batch), an input_schema file, and input_check off."""
    tmp = tmp_path_factory.mktemp("inputcheck")
    root = tmp / "srv"
    bundles = {
        "shape": make_bundle(tmp / "shape", name="shape", model_src=COUNTING_MODEL, example=json.dumps(EXAMPLE),
                             input_check=None),
        "batch": make_bundle(tmp / "batch", name="batch", model_src=COUNTING_MODEL,
                             example=json.dumps(BATCH_EXAMPLE), input_check=None),
        "schema": make_bundle(tmp / "schema", name="schema", model_src=COUNTING_MODEL,
                              example='{"text": "hello", "top_k": 3}', input_check=None,
                              extra_toml='[serve]\ninput_schema = "in.json"\n'),
        "free": make_bundle(tmp / "free", name="free", model_src=COUNTING_MODEL, example=json.dumps(EXAMPLE),
                            input_check="off"),
    }
    (bundles["schema"] / "in.json").write_text(json.dumps(SCHEMA))
    try:
        for folder in bundles.values():
            _, error, _ = deploy(root, folder)
            assert error is None, error
        ports = {m["model"]: m["port"] for m in call(root, "status")[0]["models"]}
        yield root, ports
    finally:
        stop_all(root)


def calls(port):
    """How many times the model ran, by asking it once more with the example itself."""
    return http_json(port, "POST", "/predict", EXAMPLE)[1]["calls"]


def refused(port, body):
    status, answer = http_json(port, "POST", "/predict", body)
    assert status == 422, (status, answer)
    return answer["error"]


def test_a_missing_key_is_a_422_naming_it_and_the_model_is_not_called(runners):
    port = runners[1]["shape"]
    before = calls(port)
    error = refused(port, {"feature": [1, 2, 3], "name": "a", "extra": {"flag": False}})
    assert error == ("the input does not match the shape of the model's input example (example.json): "
                     "missing key 'features' (the input has 'feature')")
    assert calls(port) == before + 1  # only the second call of calls() itself


def test_a_wrong_list_length_says_how_many_were_expected(runners):
    error = refused(runners[1]["shape"], {"features": [1, 2], "name": "a", "extra": {"flag": True}})
    assert error.endswith(": features: expected a list of 3 numbers, got 2")


def test_wrong_types_are_named_by_path_and_bool_is_not_a_number(runners):
    port = runners[1]["shape"]
    error = refused(port, {"features": [1, True, "3"], "name": 7, "extra": {"flag": 1}})
    assert "features[1]: expected a number, got a boolean (true)" in error
    assert 'features[2]: expected a number, got a string ("3")' in error
    assert "name: expected a string, got a number (7)" in error
    assert "extra.flag: expected true or false, got a number (1)" in error
    assert refused(port, [EXAMPLE]).endswith(": expected an object, got a list")


def test_ints_and_floats_are_both_numbers_and_extra_keys_are_allowed(runners):
    port = runners[1]["shape"]
    status, _ = http_json(port, "POST", "/predict", {"features": [1, 2.0, 3], "name": "b", "extra": {"flag": False},
                                                     "request_id": "abc"})
    assert status == 200


def test_a_batch_takes_any_number_of_rows_each_shaped_like_the_first(runners):
    port = runners[1]["batch"]
    assert http_json(port, "POST", "/predict", [{"id": "x", "x": 3}])[0] == 200
    assert http_json(port, "POST", "/predict", [{"id": str(i), "x": i} for i in range(50)])[0] == 200
    assert refused(port, []).endswith(": expected a list of at least 1 object, got 0")
    assert refused(port, [{"id": "a", "x": 1}, {"id": "b"}]).endswith(": input[1]: missing key 'x'")
    assert refused(port, [{"id": "a", "x": 1}, {"id": "b", "x": "2"}]).endswith(
        ': input[1].x: expected a number, got a string ("2")')


def test_the_manifests_input_schema_is_the_check(runners):
    port = runners[1]["schema"]
    assert http_json(port, "POST", "/predict", {"text": "hi"})[0] == 200
    error = refused(port, {"text": "hi", "top_k": 11, "lang": "en"})
    assert error.startswith("the input does not match the model's input schema (in.json): ")
    assert "top_k: expected a number <= 10, got 11" in error
    assert "unexpected key 'lang' (allowed: 'text', 'top_k')" in error
    assert refused(port, {"text": "hi", "top_k": 2.5}).endswith(": top_k: expected an integer, got a number (2.5)")


def test_input_check_off_lets_anything_through_to_the_model(runners):
    port = runners[1]["free"]
    assert http_json(port, "POST", "/predict", 42)[0] == 200
    assert http_json(port, "POST", "/predict", {"anything": None})[0] == 200


def test_the_models_own_failure_is_still_a_500_and_counted_as_an_error(runners):
    root, ports = runners
    port = ports["shape"]
    status, answer = http_json(port, "POST", "/predict", dict(EXAMPLE, name="boom"))
    assert status == 500 and answer["error"] == "ValueError: the model failed on purpose"
    refused(port, {"features": "no"})
    status, raw = request(port, "GET", "/metrics")
    text = raw.decode()
    labels = 'model="shape",version="1.0.0",endpoint="/predict"'
    errors = int(_value(text, "berth_request_errors_total{%s}" % labels))
    invalid = int(_value(text, 'berth_request_rejected_total{%s,reason="invalid_input"}' % labels))
    assert errors == 1 and invalid >= 1
    assert _value(text, 'berth_request_rejected_total{%s,reason="bad_request"}' % labels) == "0"
    log = [json.loads(line) for line in (root / "models/shape/logs/requests.jsonl").read_text().splitlines()]
    assert (log[-1]["status"], log[-2]["status"]) == (422, 500)
    assert log[-1]["error"].endswith(""": missing keys 'name', 'extra'; features: expected a list of 3 numbers, got a string ("no")""")
    assert json.loads(log[-1]["input"]) == {"features": "no"}


def test_the_health_check_probe_is_checked_too_and_passes_with_the_example(runners):
    text = request(runners[1]["shape"], "GET", "/metrics")[1].decode()
    probe = 'model="shape",version="1.0.0",endpoint="/predict (health check)"'
    assert _value(text, "berth_requests_total{%s}" % probe) == "1"
    assert _value(text, 'berth_request_rejected_total{%s,reason="invalid_input"}' % probe) == "0"


def test_a_deploy_whose_example_fails_its_own_schema_is_refused_at_the_health_check(tmp_path):
    root = tmp_path / "srv"
    folder = make_bundle(tmp_path / "b", name="mismatch", model_src=COUNTING_MODEL, example='{"text": 5}',
                         input_check=None, extra_toml='[serve]\ninput_schema = "in.json"\n')
    (folder / "in.json").write_text(json.dumps(SCHEMA))
    try:
        _, error, _ = deploy(root, folder)
    finally:
        stop_all(root)
    assert error is not None and error["code"] == "example_failed", error
    assert "HTTP 422" in error["message"] and "text: expected a string, got a number (5)" in error["message"]


def test_a_schema_the_runner_cannot_check_stops_the_start_with_the_reason(tmp_path):
    root = tmp_path / "srv"
    folder = make_bundle(tmp_path / "b", name="badschema", model_src=COUNTING_MODEL, input_check=None,
                         extra_toml='[serve]\ninput_schema = "in.json"\n')
    (folder / "in.json").write_text('{"type": "object", "patternProperties": {}}')
    try:
        _, error, _ = deploy(root, folder)
    finally:
        stop_all(root)
    assert error is not None and "keyword 'patternProperties' is not supported" in error["message"], error


def _value(text, series):
    for line in text.splitlines():
        if line.startswith(series + " "):
            return line.split()[-1]
    raise AssertionError("%s not in\n%s" % (series, text))


def test_which_check_a_release_gets_from_its_manifest(tmp_path):
    """The desktop always writes input_check (Manifest.to_dict); a release.json without it was
    deployed before the check existed and keeps serving unchecked."""
    from app.agent.inputshape import InputCheckError, load
    from app.bundle.manifest import Manifest

    (tmp_path / "example.json").write_text('{"a": 1}')
    (tmp_path / "in.json").write_text('{"type": "string"}')
    written = Manifest("m", "1", "model:Model", input_example="example.json").to_dict()
    assert written["input_check"] == "on" and load(str(tmp_path), written).problems({}) == (
        "the input does not match the shape of the model's input example (example.json): missing key 'a'")
    assert load(str(tmp_path), {"input_example": "example.json"}) is None
    assert load(str(tmp_path), dict(written, input_check="off")) is None
    assert load(str(tmp_path), dict(written, input_schema="in.json")).problems(1).endswith("expected a string, got a number (1)")
    assert load(str(tmp_path), dict(written, input_example=None)) is None
    for bad, message in ((dict(written, input_check="maybe"), "input_check = 'maybe'"),
                         (dict(written, input_schema="../in.json"), "is not a path inside the bundle"),
                         (dict(written, input_schema="nope.json"), "cannot read input_schema nope.json")):
        with pytest.raises(InputCheckError, match=message):
            load(str(tmp_path), bad)


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool is not installed here (Debian package "
                                                             "'prometheus'; .ci/run installs it, so CI runs this test)")
def test_metrics_with_refused_shapes_pass_promtool(runners):
    port = runners[1]["batch"]  # not "shape": a test above counts its bad_request as 0
    refused(port, {"rows": []})
    assert request(port, "POST", "/predict", b"{not json")[0] == 400
    text = request(port, "GET", "/metrics")[1].decode()
    done = subprocess.run([shutil.which("promtool"), "check", "metrics"], input=text, capture_output=True, text=True,
                          timeout=30)
    assert done.returncode == 0, (done.stdout, done.stderr, text)
    labels = 'model="batch",version="1.0.0",endpoint="/predict"'
    assert int(_value(text, 'berth_request_rejected_total{%s,reason="invalid_input"}' % labels)) >= 1
    assert _value(text, 'berth_request_rejected_total{%s,reason="bad_request"}' % labels) == "1"


def test_each_answer_carries_a_request_id_and_the_request_log_records_it(runners):
    """A plain-token id the client sends is kept; anything else (here a header-injection attempt) is
    replaced by a generated one; both are in the answer's X-Request-Id and the request log."""
    import http.client

    root, ports = runners
    seen = []
    for sent in ("order-17:a.b", "x\u00e9y" * 30):
        conn = http.client.HTTPConnection("127.0.0.1", ports["free"], timeout=10)
        conn.request("POST", "/predict", json.dumps(EXAMPLE).encode("utf-8"),
                     {"Content-Type": "application/json", "X-Request-Id": sent.encode("utf-8")})
        resp = conn.getresponse()
        resp.read()
        conn.close()
        seen.append(resp.getheader("X-Request-Id"))
    assert seen[0] == "order-17:a.b"
    assert seen[1] != seen[0] and len(seen[1]) == 24 and all(c in "0123456789abcdef" for c in seen[1])
    log = [json.loads(line) for line in (root / "models/free/logs/requests.jsonl").read_text().splitlines()]
    assert [e["request_id"] for e in log[-2:]] == seen
