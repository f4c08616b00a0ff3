"""`berth bundle check` for the runner's input check ([serve] input_schema, input_check): the schema
must be JSON Schema of the subset the runner checks (app/agent/inputschema.py), and the input
example must pass the check, or the deploy's health check would be refused with a 422."""
from __future__ import annotations

import json
from pathlib import Path

from app.agent.inputschema import CHECKED, schema_problems, validate
from app.agent.inputshape import derive

from .manifest import Collector, Problem
from .paths import normalise, relpath_problem

NO_EXAMPLE = object()  # no input example, or one that could not be read (reported elsewhere)
SCHEMA_HINT = f"JSON Schema with these keywords only: {', '.join(CHECKED)} (and annotations such as title)"
OFF_HINT = 'fix the example or the schema; a model that takes free-form input can set input_check = "off" under [serve]'


def check_input_schema(folder: Path, serve: dict, exists, example, out: Collector) -> None:
    """One problem per failure: the schema file missing, not JSON, not in the subset; the example
    not matching the schema (or, without one, its rows not shaped alike)."""
    if serve.get("input_check", "on") == "off":
        return
    rel = serve.get("input_schema")
    schema = None
    if isinstance(rel, str) and not relpath_problem(rel):
        if not exists(normalise(rel)):
            what = "is a folder, not a file" if (folder / rel).is_dir() else "not found in the bundle"
            out.error("serve.input_schema", f"{rel!r} {what}", "add the file, or fix the path (relative to the bundle root)")
            return
        schema = _read_schema(folder, rel, out)
        if schema is None:
            return
    if example is NO_EXAMPLE:
        return
    if schema is not None:
        found = validate(schema, example)
        if found:
            out.error("serve.input_schema", f"the input example does not match {rel}: {'; '.join(found[:3])}", OFF_HINT)
        return
    found = validate(derive(example), example)
    if found:
        out.error("model.input_example", "the example's items are not shaped alike, so its shape cannot be the "
                                         f"input check: {'; '.join(found[:3])}",
                  'give the expected input as [serve] input_schema = "input_schema.json", or set input_check = "off"')


def _read_schema(folder: Path, rel: str, out: Collector):
    try:
        schema = json.loads((folder / rel).read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        out.problems.append(Problem("error", "not UTF-8 text", rel, "serve.input_schema", hint=SCHEMA_HINT))
        return None
    except json.JSONDecodeError as exc:
        out.problems.append(Problem("error", f"not valid JSON: {exc.msg} (column {exc.colno})", rel,
                                    "serve.input_schema", exc.lineno, SCHEMA_HINT))
        return None
    problems = schema_problems(schema)
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        out.problems.append(Problem("error", f"not a JSON Schema Berth can check: {problems[0]}{more}", rel,
                                    "serve.input_schema", hint=SCHEMA_HINT))
        return None
    return schema
