"""`berth predict` with input of the wrong shape: the runner's 422 message, and the model's input
example beside it, on one line; exit 1, nothing on stdout. The model's own failure is not that."""
import json

import pytest

from cli_kit import EXAMPLES, berth, iris_copy


@pytest.fixture
def iris_on_local(capsys, tmp_path, stop_local_runners):
    r = berth(capsys, "deploy", iris_copy(tmp_path), "--server", "local")
    assert r.code == 0, r


def test_a_wrong_shape_shows_what_differs_and_the_example(capsys, iris_on_local):
    r = berth(capsys, "predict", "iris", "--server", "local", "--input", '{"features": [5.1, 3.5, true]}')
    assert r.code == 1 and r.out == "", r
    assert r.err.count("\n") == 1, r
    line = r.err.strip()
    assert line.startswith("berth: iris refused the input (HTTP 422): the input does not match the model's input "
                           "schema (input_schema.json): features: expected a list of 4 numbers, got 3; features[2]: "
                           "expected a number, got a boolean (true)"), r
    example = json.dumps(json.loads((EXAMPLES / "iris" / "example.json").read_text()))
    assert line.endswith("; send input shaped like its input example: " + example), r


def test_a_right_shape_still_answers_and_a_model_failure_is_not_called_a_shape_problem(capsys, iris_on_local):
    r = berth(capsys, "predict", "iris", "--server", "local", "--input", '{"features": [5.1, 3.5, 1.4, 0.2]}')
    assert r.code == 0 and json.loads(r.out)["class"] == "setosa", r
    # passes the schema (numbers) but not the model (NaN is not finite): the model's own 500
    r = berth(capsys, "predict", "iris", "--server", "local", "--input", '{"features": [NaN, 3.5, 1.4, 0.2]}')
    assert r.code == 1 and "could not answer (HTTP 500)" in r.err and "input example" not in r.err, r
