"""`berth bundle check` on [serve] input_schema and input_check: one clear error for a schema that
is missing, not JSON, not JSON Schema or outside the runner's subset, and for an example that would
fail the runner's own check (so the deploy's health check would be a 422)."""
import json

import pytest

from app.bundle import check_folder
from cli_kit import berth

MANIFEST = """\
[model]
name = "shape"
version = "1.0.0"
entrypoint = "model:Model"
input_example = "example.json"
"""
MODEL = "class Model:\n    def predict(self, data):\n        return data\n"
SCHEMA = {"type": "object", "required": ["features"],
          "properties": {"features": {"type": "array", "items": {"type": "number"}, "minItems": 4, "maxItems": 4}}}


def bundle(folder, serve="", example='{"features": [1, 2, 3, 4]}', schema=None):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "berth.toml").write_text(MANIFEST + ("[serve]\n" + serve if serve else ""))
    (folder / "model.py").write_text(MODEL)
    (folder / "example.json").write_text(example)
    if schema is not None:
        (folder / "input_schema.json").write_text(schema if isinstance(schema, str) else json.dumps(schema))
    return folder


def only_error(result):
    assert not result.ok and len(result.errors) == 1, result.problems
    return result.errors[0]


def test_a_valid_schema_that_the_example_matches_is_ok_and_kept_in_the_manifest(tmp_path):
    result = check_folder(bundle(tmp_path / "b", 'input_schema = "input_schema.json"\n', schema=SCHEMA))
    assert result.ok and result.problems == [], result.problems
    assert (result.manifest.input_schema, result.manifest.input_check) == ("input_schema.json", "on")
    assert result.manifest.to_dict()["input_schema"] == "input_schema.json"


def test_a_missing_schema_file_is_one_error(tmp_path):
    error = only_error(check_folder(bundle(tmp_path / "b", 'input_schema = "input_schema.json"\n')))
    assert (error.key, error.message) == ("serve.input_schema", "'input_schema.json' not found in the bundle")


def test_a_schema_that_is_not_json_is_one_error_with_its_line(tmp_path):
    error = only_error(check_folder(bundle(tmp_path / "b", 'input_schema = "input_schema.json"\n',
                                           schema='{\n  "type": "object",\n}')))
    assert (error.file, error.line, error.key) == ("input_schema.json", 3, "serve.input_schema")
    assert error.message.startswith("not valid JSON")


@pytest.mark.parametrize("schema,message", [
    ({"type": "text"}, "not a JSON Schema Berth can check: schema.type: must be one of object, array"),
    ({"properties": {"features": {"type": "array", "uniqueItems": True}}},
     "not a JSON Schema Berth can check: schema.properties['features'].uniqueItems: keyword 'uniqueItems' is not "
     "supported (supported: type, properties, required"),
    ({"minItems": -1, "oneOf": []}, "not a JSON Schema Berth can check: schema.minItems: must be a non-negative "
                                    "integer (and 1 more)"),
    ([1], "not a JSON Schema Berth can check: schema: a schema is a JSON object (or true / false), not a list"),
])
def test_a_schema_outside_the_subset_is_one_error_naming_the_keyword(tmp_path, schema, message):
    error = only_error(check_folder(bundle(tmp_path / "b", 'input_schema = "input_schema.json"\n', schema=schema)))
    assert (error.file, error.key) == ("input_schema.json", "serve.input_schema")
    assert error.message.startswith(message), error.message
    assert "annotations such as title" in error.hint


def test_an_example_that_does_not_match_its_schema_is_one_error(tmp_path):
    error = only_error(check_folder(bundle(tmp_path / "b", 'input_schema = "input_schema.json"\n',
                                           example='{"features": [1, 2, true]}', schema=SCHEMA)))
    assert error.key == "serve.input_schema"
    assert error.message == ("the input example does not match input_schema.json: features: expected a list of 4 "
                             "numbers, got 3; features[2]: expected a number, got a boolean (true)")
    assert 'input_check = "off"' in error.hint


def test_an_example_whose_rows_differ_cannot_be_its_own_shape(tmp_path):
    error = only_error(check_folder(bundle(tmp_path / "b", example='[[1, 2], [3, 4, 5]]')))
    assert error.key == "model.input_example"
    assert "input[1]: expected a list of 2 numbers, got 3" in error.message
    assert "input_schema" in error.hint
    assert check_folder(bundle(tmp_path / "off", 'input_check = "off"\n', example='[[1, 2], [3, 4, 5]]')).ok


@pytest.mark.parametrize("serve,key,message", [
    ('input_check = "no"\n', "serve.input_check", "'no' is not \"on\" or \"off\""),
    ("input_check = false\n", "serve.input_check", "False is not \"on\" or \"off\""),
    ('input_schema = "../schema.json"\n', "serve.input_schema", "path '../schema.json' goes outside the bundle ('..')"),
    ("input_schema = 3\n", "serve.input_schema", "must be a string, not an integer"),
])
def test_bad_manifest_values_are_one_error_each(tmp_path, serve, key, message):
    error = only_error(check_folder(bundle(tmp_path / "b", serve)))
    assert (error.key, error.message) == (key, message)


def test_input_check_off_skips_the_schema_and_warns_that_it_is_unused(tmp_path):
    result = check_folder(bundle(tmp_path / "b", 'input_check = "off"\ninput_schema = "input_schema.json"\n',
                                 schema={"type": "nonsense"}))
    assert result.ok and [(w.key, w.message) for w in result.warnings] == \
        [("serve.input_schema", 'not used while input_check = "off"')]
    assert result.manifest.input_check == "off"


def test_the_cli_prints_the_schema_problem_on_one_line(capsys, tmp_path):
    folder = bundle(tmp_path / "b", 'input_schema = "input_schema.json"\n', schema={"type": "object", "$ref": "#/a"})
    r = berth(capsys, "bundle", "check", folder)
    assert r.code == 1
    assert "input_schema.json: serve.input_schema: not a JSON Schema Berth can check: schema.$ref: keyword '$ref' " \
           "is not supported" in r.err, r
