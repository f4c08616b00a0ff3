"""A small JSON Schema (draft 2020-12) subset, stdlib only, for checking a request before the model
sees it: its messages name the path (`customers[0].contract`) and say what was expected, where a
model's own KeyError or "X has 3 features" said neither.

Keywords checked: type, properties, required, additionalProperties, items (one schema), minItems,
maxItems, enum, minimum, maximum, anyOf. Annotations (title, description, $schema, ...) are allowed
and ignored; any other keyword is refused by `schema_problems`, so a schema never seems to check
something it does not."""
import json
import math
import re

CHECKED = ("type", "properties", "required", "additionalProperties", "items", "minItems", "maxItems",
           "enum", "minimum", "maximum", "anyOf")
ANNOTATIONS = ("$schema", "$id", "$comment", "title", "description", "default", "examples", "deprecated",
               "readOnly", "writeOnly")
TYPES = ("object", "array", "string", "number", "integer", "boolean", "null")
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


def schema_problems(schema, path="schema"):
    """Why `schema` is not a schema of this subset (a list of lines; empty when it is one)."""
    if isinstance(schema, bool):
        return []
    if not isinstance(schema, dict):
        return ["%s: a schema is a JSON object (or true / false), not %s" % (path, kind(schema))]
    out = []
    for key, value in schema.items():
        where = "%s.%s" % (path, key)
        if key in ANNOTATIONS:
            continue
        if key not in CHECKED:
            out.append("%s: keyword %r is not supported (supported: %s)" % (where, key, ", ".join(CHECKED)))
        elif key == "type":
            names = value if isinstance(value, list) else [value]
            if not names or any(n not in TYPES for n in names) or len(set(map(str, names))) != len(names):
                out.append("%s: must be one of %s, or a list of them without repeats" % (where, ", ".join(TYPES)))
        elif key == "properties":
            if not isinstance(value, dict):
                out.append("%s: must be an object of key -> schema" % where)
            else:
                for name, sub in value.items():
                    out += schema_problems(sub, "%s[%r]" % (where, name))
        elif key == "required":
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value) \
                    or len(set(value)) != len(value):
                out.append("%s: must be a list of distinct key names" % where)
        elif key in ("additionalProperties", "items"):
            if isinstance(value, list):
                out.append("%s: must be one schema (the list form is not draft 2020-12)" % where)
            else:
                out += schema_problems(value, where)
        elif key in ("minItems", "maxItems"):
            if not _is_integer(value) or value < 0:
                out.append("%s: must be a non-negative integer" % where)
        elif key in ("minimum", "maximum"):
            if not _is_number(value):
                out.append("%s: must be a number" % where)
        elif key == "enum":
            if not isinstance(value, list):
                out.append("%s: must be a list of the allowed values" % where)
        elif key == "anyOf":
            if not isinstance(value, list) or not value:
                out.append("%s: must be a non-empty list of schemas" % where)
            else:
                for i, sub in enumerate(value):
                    out += schema_problems(sub, "%s[%d]" % (where, i))
    return out


def validate(schema, value):
    """Every way `value` breaks `schema` (assumed valid: see schema_problems), as "path: message"."""
    if fits(schema, value):  # the common case, without building a message per anyOf shape tried
        return []
    return ["%s: %s" % (path, message) if path else message for path, message, _ in _check(schema, value, "")]


def fits(schema, value):
    """validate(schema, value) == [], answered quickly: no messages, stops at the first problem."""
    if schema is True or schema is False:
        return schema
    types = schema.get("type")
    if types is not None and not (_has_type(value, types) if isinstance(types, str) else
                                  any(_has_type(value, n) for n in types)):
        return False
    if len(schema) == 1 and types is not None:
        return True
    if "enum" in schema and not any(equal(value, v) for v in schema["enum"]):
        return False
    if _is_number(value) and (("minimum" in schema and value < schema["minimum"]) or
                              ("maximum" in schema and value > schema["maximum"])):
        return False
    if isinstance(value, dict):
        if any(name not in value for name in schema.get("required", ())):
            return False
        props, extra = schema.get("properties", {}), schema.get("additionalProperties", True)
        for name, item in value.items():
            sub = props.get(name, extra) if name in props or extra is not True else True
            if sub is not True and not fits(sub, item):
                return False
    if isinstance(value, list):
        n = len(value)
        if n < schema.get("minItems", 0) or ("maxItems" in schema and n > schema["maxItems"]):
            return False
        items = schema.get("items", True)
        if items is not True:
            leaf = _LEAVES.get(items.get("type")) if isinstance(items, dict) and len(items) == 1 else None
            if not all(leaf(v) for v in value) if leaf is not None else not all(fits(items, v) for v in value):
                return False
    return "anyOf" not in schema or any(fits(o, value) for o in schema["anyOf"])


def _check(schema, value, path):
    """The problems as (path, message, weight): a wrong type weighs 2 (nothing there fits), any
    other problem 1; anyOf picks its closest shape by the weight of the problems at its own path."""
    if schema is True:
        return []
    if schema is False:
        return [(path, "is not allowed here", 2)]
    types = schema.get("type")
    if types is not None and not (_has_type(value, types) if isinstance(types, str) else
                                  any(_has_type(value, n) for n in types)):
        names = types if isinstance(types, list) else [types]
        return [(path, "expected %s, got %s" % (_expected(schema, names), describe(value)), 2)]
    if len(schema) == 1 and types is not None:
        return []  # the common leaf, {"type": "number"}: nothing more to check
    out = []
    if "enum" in schema and not any(equal(value, v) for v in schema["enum"]):
        out.append((path, "expected one of %s, got %s" % (", ".join(_show(v) for v in schema["enum"]), describe(value)), 1))
    if _is_number(value):
        if "minimum" in schema and value < schema["minimum"]:
            out.append((path, "expected a number >= %s, got %s" % (_show(schema["minimum"]), _show(value)), 1))
        if "maximum" in schema and value > schema["maximum"]:
            out.append((path, "expected a number <= %s, got %s" % (_show(schema["maximum"]), _show(value)), 1))
    if isinstance(value, dict):
        out += _object(schema, value, path)
    if isinstance(value, list):
        out += _array(schema, value, path)
    if "anyOf" in schema:
        out += _any_of(schema["anyOf"], value, path)
    return out


def _object(schema, value, path):
    out = []
    props = schema.get("properties", {})
    missing = [name for name in schema.get("required", ()) if name not in value]
    if missing:
        others = [k for k in value if k not in props and k not in schema.get("required", ())]
        out.append((path, "missing key%s %s%s" % ("s" if len(missing) > 1 else "", ", ".join(map(repr, missing)),
                                                 " (the input has %s)" % ", ".join(map(repr, others[:5])) if others else ""), 1))
    extra = schema.get("additionalProperties", True)
    for name, item in value.items():
        if name in props:
            out += _check(props[name], item, _key(path, name))
        elif extra is False:
            out.append((path, "unexpected key %r (allowed: %s)" % (name, ", ".join(map(repr, props)) or "none"), 1))
        elif extra is not True:
            out += _check(extra, item, _key(path, name))
    return out


def _array(schema, value, path):
    out = []
    low, high, n = schema.get("minItems"), schema.get("maxItems"), len(value)
    items = schema.get("items", True)
    if low is not None and low == high and n != low:
        out.append((path, "expected a list of %d %s, got %d" % (low, _plural(items, low), n), 1))
    elif low is not None and n < low:
        out.append((path, "expected a list of at least %d %s, got %d" % (low, _plural(items, low), n), 1))
    elif high is not None and n > high:
        out.append((path, "expected a list of at most %d %s, got %d" % (high, _plural(items, high), n), 1))
    if items is True:
        return out
    leaf = _LEAVES.get(items.get("type")) if isinstance(items, dict) and len(items) == 1 else None
    for i, item in enumerate(value):
        if leaf is None or not leaf(item):  # a vector of numbers is checked in one quick pass
            out += _check(items, item, "%s[%d]" % (path or "input", i))
    return out


def _any_of(options, value, path):
    """Nothing when one shape fits; else the problems of the shape the value came closest to: the
    one with the lightest problems here (a wrong type, missing or unexpected keys), then fewest in all."""
    found = []
    for option in options:
        problems = _check(option, value, path)
        if not problems:
            return []
        found.append(problems)
    best = min(found, key=lambda f: (sum(w for where, _, w in f if where == path), len(f)))
    if len(options) > 1 and not any(m.endswith(_CLOSEST) for _, m, _ in best):
        where, message, weight = best[-1]
        best = best[:-1] + [(where, message + _CLOSEST, weight)]
    return best


_CLOSEST = " (checked against the closest of the schema's anyOf shapes)"


# -- JSON values, as JSON Schema sees them -----------------------------------------------------------
def _is_number(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _is_integer(v):
    return _is_number(v) and (isinstance(v, int) or (math.isfinite(v) and v.is_integer()))


_LEAVES = {"number": lambda v: type(v) is float or type(v) is int, "string": lambda v: type(v) is str,
           "boolean": lambda v: type(v) is bool}


def _has_type(v, name):
    if name == "number":
        return _is_number(v)
    if name == "integer":
        return _is_integer(v)
    return {"object": dict, "array": list, "string": str, "boolean": bool, "null": type(None)}[name] is type(v)


def equal(a, b):
    """JSON equality: 1 == 1.0, but true is not 1; lists and objects compared item by item."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if _is_number(a) and _is_number(b):
        return a == b
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(equal(x, y) for x, y in zip(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return set(a) == set(b) and all(equal(a[k], b[k]) for k in a)
    return type(a) is type(b) and a == b


_NAMES = {"object": "an object", "array": "a list", "string": "a string", "number": "a number",
          "integer": "an integer", "boolean": "true or false", "null": "null"}
_PLURALS = {"object": "objects", "array": "lists", "string": "strings", "number": "numbers",
            "integer": "integers", "boolean": "booleans", "null": "nulls"}


def kind(v):
    """A JSON value's kind in words: "a string", "a number", "true or false" ..."""
    if isinstance(v, bool):
        return "a boolean"
    if _is_number(v):
        return "a number"
    return {dict: "an object", list: "a list", str: "a string", type(None): "null"}.get(type(v), type(v).__name__)


def describe(v):
    """The kind and, for a short scalar, the value: `a string ("3")`."""
    if isinstance(v, (dict, list)) or v is None:
        return kind(v)
    return "%s (%s)" % (kind(v), _show(v))


def _expected(schema, names):
    if names == ["array"] and schema.get("minItems") is not None and schema.get("minItems") == schema.get("maxItems"):
        return "a list of %d %s" % (schema["minItems"], _plural(schema.get("items", True), schema["minItems"]))
    return " or ".join(_NAMES[n] for n in names)


def _plural(items, n):
    types = items.get("type") if isinstance(items, dict) else None
    word = _PLURALS.get(types, "items") if isinstance(types, str) else "items"
    return word if n != 1 else word[:-1]


def _show(v):
    text = json.dumps(v)
    return text if len(text) <= 40 else text[:37] + "..."


def _key(path, name):
    if _IDENT.match(name):
        return "%s.%s" % (path, name) if path else name
    return "%s[%s]" % (path or "input", _show(name))
