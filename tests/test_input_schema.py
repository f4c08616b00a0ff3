"""The runner's JSON Schema subset (app/agent/inputschema.py) says yes and no exactly where the
`jsonschema` package does (Draft 2020-12), over schemas of every supported keyword, schemas derived
from input examples, and the shipped examples' schemas; its messages name the path."""
import itertools
import json
from pathlib import Path

import jsonschema
import pytest

from app.agent.inputschema import CHECKED, _check, fits, schema_problems, validate
from app.agent.inputshape import derive

EXAMPLES = Path(__file__).resolve().parent.parent / "resources" / "examples"
Validator = jsonschema.Draft202012Validator

SCHEMAS = [
    {"type": "object"}, {"type": "array"}, {"type": "string"}, {"type": "number"}, {"type": "integer"},
    {"type": "boolean"}, {"type": "null"}, {"type": ["string", "null"]}, {"type": ["integer", "boolean"]},
    {"properties": {"a": {"type": "number"}, "b": {"type": "string"}}},
    {"type": "object", "required": ["a", "b"]},
    {"type": "object", "properties": {"a": {"type": "integer"}}, "additionalProperties": False},
    {"type": "object", "additionalProperties": {"type": "number"}},
    {"properties": {"a": {"properties": {"b": {"type": "array", "items": {"type": "number"}}}}}},
    {"items": {"type": "number"}}, {"type": "array", "minItems": 2}, {"maxItems": 2}, {"minItems": 0, "maxItems": 0},
    {"type": "array", "items": {"type": "array", "items": {"type": "integer"}, "minItems": 2, "maxItems": 2}},
    {"enum": [1, "a", None, True, [1, 2], {"k": 1}]}, {"enum": [0, 1]}, {"enum": []},
    {"minimum": 0}, {"maximum": 2.5}, {"type": "number", "minimum": -1, "maximum": 1},
    {"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]},
    {"anyOf": [{"required": ["a"]}, {"required": ["b"]}]},
    True, False, {}, {"title": "anything", "description": "annotations only"},
    {"type": "object", "properties": {"x": False}},
]
INSTANCES = [
    None, True, False, 0, 1, -1, 2, 2.5, 1.0, -3.5, 1e300, "", "a", "1", [], [1], [1, 2], [1.5, "a"], [True, False],
    [[1, 2], [3, 4]], [[1, 2], [3]], [[1.0, 2]], ["a", "b"], {}, {"a": 1}, {"a": 1.5, "b": "x"}, {"a": "1", "b": 2},
    {"b": None}, {"a": True}, {"x": 1}, {"a": {"b": [1, 2]}}, {"a": {"b": [1, "2"]}}, {"k": 1}, [1, 2.0], {"a": 1, "c": 3},
]


def same_verdicts(schema, instances):
    Validator.check_schema(schema)
    assert schema_problems(schema) == [], schema
    theirs = Validator(schema)
    for value in instances:
        ours = _check(schema, value, "")  # the messages, built without the fits() short cut
        assert (not ours) == theirs.is_valid(value) == fits(schema, value), (schema, value, ours)


@pytest.mark.parametrize("schema", SCHEMAS, ids=lambda s: json.dumps(s)[:60])
def test_accept_and_reject_agree_with_jsonschema(schema):
    same_verdicts(schema, INSTANCES)


@pytest.mark.parametrize("example", [
    {"features": [5.1, 3.5, 1.4, 0.2]}, [{"id": "a", "x": 1}, {"id": "b", "x": 2}], [[1, 2, 3], [4, 5, 6]],
    {"texts": ["a", "b"], "lang": None, "opts": {"top_k": 3, "fast": False}}, [], {}, "text", 3, [1, "a"],
])
def test_derived_schemas_are_json_schema_and_agree_with_jsonschema(example):
    schema = derive(example)
    same_verdicts(schema, INSTANCES + [example])
    assert validate(schema, example) == []


@pytest.mark.parametrize("name", ["iris", "churn-sklearn"])
def test_the_shipped_examples_schemas_agree_with_jsonschema(name):
    schema = json.loads((EXAMPLES / name / "input_schema.json").read_text())
    example = json.loads((EXAMPLES / name / "example.json").read_text())
    rows = example.get("instances") or example.get("customers")
    variants = [example, rows, rows[0], {"features": rows[0]}, {"instances": []}, {"customers": []},
                {"features": rows[0], "instances": rows}, dict(example, more=1)]
    if isinstance(rows[0], dict):
        variants += [dict(rows[0], contract="weekly"), dict(rows[0], senior_citizen=True),
                     dict(rows[0], tenure_months=-1), {k: v for k, v in rows[0].items() if k != "contract"}]
    else:
        variants += [{"features": rows[0][:3]}, {"features": [True] + rows[0][1:]},
                     {"features": dict(zip(["sepal_length", "sepal_width", "petal_length", "petal_width"], rows[0]))}]
    same_verdicts(schema, INSTANCES + variants)
    assert validate(schema, example) == []


BAD_SCHEMAS = [
    ({"type": "text"}, "schema.type: must be one of"),
    ({"type": []}, "schema.type: must be one of"),
    ({"type": ["string", "string"]}, "schema.type: must be one of"),
    ({"required": "a"}, "schema.required: must be a list of distinct key names"),
    ({"required": ["a", "a"]}, "schema.required: must be a list"),
    ({"properties": []}, "schema.properties: must be an object"),
    ({"properties": {"a": 3}}, "schema.properties['a']: a schema is a JSON object"),
    ({"minItems": -1}, "schema.minItems: must be a non-negative integer"),
    ({"maxItems": 1.5}, "schema.maxItems: must be a non-negative integer"),
    ({"minimum": "0"}, "schema.minimum: must be a number"),
    ({"enum": "a"}, "schema.enum: must be a list"),
    ({"anyOf": []}, "schema.anyOf: must be a non-empty list"),
    ({"additionalProperties": 1}, "schema.additionalProperties: a schema is a JSON object"),
    ("object", "schema: a schema is a JSON object"),
]


@pytest.mark.parametrize("schema,message", BAD_SCHEMAS, ids=lambda v: json.dumps(v)[:40])
def test_invalid_schemas_are_refused_as_jsonschema_refuses_them(schema, message):
    with pytest.raises(jsonschema.SchemaError):
        Validator.check_schema(schema)
    problems = schema_problems(schema)
    assert len(problems) == 1 and problems[0].startswith(message), problems


@pytest.mark.parametrize("keyword,value", [("pattern", "^a"), ("oneOf", [{}]), ("$ref", "#/x"), ("minLength", 1),
                                           ("uniqueItems", True), ("items", [{}]), ("const", 1), ("format", "email")])
def test_keywords_outside_the_subset_are_refused_by_name(keyword, value):
    problems = schema_problems({"properties": {"a": {keyword: value}}})
    assert len(problems) == 1 and f"schema.properties['a'].{keyword}: " in problems[0], problems
    assert keyword == "items" or ", ".join(CHECKED) in problems[0]


def test_messages_name_the_path_and_what_was_expected():
    schema = derive({"rows": [{"v": [1, 2, 3], "tag": "a"}], "my key": "x"})
    assert validate(schema, {"rows": [{"v": [1, 2, 3], "tag": "a"}, {"v": [1, "2"], "tag": None}], "my key": 1}) == [
        "rows[1].v: expected a list of 3 numbers, got 2",
        'rows[1].v[1]: expected a number, got a string ("2")',
        "rows[1].tag: expected a string, got null",
        'input["my key"]: expected a string, got a number (1)',
    ]
    assert validate(derive({"on": True}), {"on": 1}) == ["on: expected true or false, got a number (1)"]


def test_a_null_in_the_example_allows_anything_there():
    schema = derive({"a": None, "b": 1})
    for value in (None, 1, "x", [1], {"k": 2}):
        assert validate(schema, {"a": value, "b": 2}) == []
    assert validate(schema, {"b": 2}) == ["missing key 'a'"]


@pytest.mark.parametrize("a,b", list(itertools.combinations([0, 0.0, False, None, "0", [], {}, [0], {"0": 0}], 2)))
def test_enum_equality_is_json_equality(a, b):
    assert (not validate({"enum": [a]}, b)) == Validator({"enum": [a]}).is_valid(b)
