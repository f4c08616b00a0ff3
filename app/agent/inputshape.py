"""What a release's requests must look like, checked by the runner before the model is called, so a
wrong shape is a 422 saying what differs instead of a 500 with the model's KeyError.

The expected shape is `[serve] input_schema` (a JSON Schema file of the bundle, subset in
inputschema.py) when there is one, else derived from the input example:
- an object needs every key of the example, each shaped like its value; extra keys are allowed
  (clients send ids and fields a model ignores);
- a list of numbers is a vector: exactly as many numbers as the example has;
- any other list is a batch: one or more items, each shaped like the example's first;
- numbers are numbers (int and float alike; true/false is not a number), strings are strings,
  true/false are booleans, and a null in the example allows anything there.
`[serve] input_check = "off"` turns the check off, for models that take free-form input. A release
whose manifest has no input_check at all was deployed before Berth had the check (the desktop writes
"on" by default since): it keeps serving unchecked, as it was deployed and tested."""
import json
import os

from .inputschema import schema_problems, validate

CHECK_VALUES = ("on", "off")
MAX_SHOWN = 5  # problems named in one answer; the rest are counted


def derive(example):
    """A JSON Schema (of the subset) for inputs shaped like `example`."""
    if isinstance(example, dict):
        return {"type": "object", "required": list(example),
                "properties": dict((k, derive(v)) for k, v in example.items())}
    if isinstance(example, list):
        if not example:
            return {"type": "array"}
        if all(_number(v) for v in example):
            return {"type": "array", "items": {"type": "number"}, "minItems": len(example), "maxItems": len(example)}
        if len(set(_kind(v) for v in example)) == 1:
            return {"type": "array", "minItems": 1, "items": derive(example[0])}
        return {"type": "array", "minItems": 1}
    if isinstance(example, bool):
        return {"type": "boolean"}
    if _number(example):
        return {"type": "number"}
    if isinstance(example, str):
        return {"type": "string"}
    return {}


def _number(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _kind(v):
    return "number" if _number(v) else type(v).__name__


class InputCheck:
    """One release's expected input: `problems(value)` is the 422 message, or None when it fits."""

    def __init__(self, schema, source):
        self.schema, self.source = schema, source

    def problems(self, value):
        found = validate(self.schema, value)
        if not found:
            return None
        more = len(found) - MAX_SHOWN
        shown = "; ".join(found[:MAX_SHOWN]) + ("; and %d more" % more if more > 0 else "")
        return "the input does not match %s: %s" % (self.source, shown)


class InputCheckError(Exception):
    """The manifest's input check cannot be set up (a broken schema file): the runner does not start."""


def load(bundle, manifest):
    """The InputCheck for a release's bundle folder and manifest dict, or None when there is none."""
    check = manifest.get("input_check")
    if check is None:
        return None  # deployed before the check existed
    if check not in CHECK_VALUES:
        raise InputCheckError("input_check = %r: must be \"on\" or \"off\"" % (check,))
    if check == "off":
        return None
    rel = manifest.get("input_schema")
    if rel:
        schema = _read(bundle, rel, "input_schema")
        problems = schema_problems(schema)
        if problems:
            raise InputCheckError("input_schema %s is not a schema Berth can check: %s" % (rel, "; ".join(problems[:3])))
        return InputCheck(schema, "the model's input schema (%s)" % rel)
    rel = manifest.get("input_example")
    if rel:
        return InputCheck(derive(_read(bundle, rel, "input_example")),
                          "the shape of the model's input example (%s)" % rel)
    return None


def _read(bundle, rel, key):
    parts = [p for p in rel.split("/") if p not in ("", ".")]
    if rel.startswith("/") or "\\" in rel or ".." in parts or not parts:
        raise InputCheckError("%s %r is not a path inside the bundle" % (key, rel))
    try:
        with open(os.path.join(bundle, *parts), "rb") as f:
            return json.loads(f.read().decode("utf-8"))
    except (OSError, ValueError) as e:
        raise InputCheckError("cannot read %s %s: %s" % (key, rel, e))
