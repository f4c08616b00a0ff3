"""berth.toml: parsed into a Manifest, with every problem found reported at once.

Problems carry file, key, line and a hint, because the person reading them is an operator
holding someone else's bundle, not the author of the model.
"""
from __future__ import annotations

import dataclasses
import datetime
import re
import tomllib
from dataclasses import dataclass, field

from . import manifest_rules
from .manifest_rules import ENTRYPOINT_RE, NAME_HINT, NAME_RE, VERSION_RE
from .toml_lines import key_lines, line_of

__all__ = ["NAME_RE", "VERSION_RE", "ENTRYPOINT_RE", "NAME_HINT", "Problem", "Manifest", "parse_manifest"]


@dataclass(frozen=True)
class Problem:
    severity: str  # "error" | "warning"
    message: str
    file: str = "berth.toml"
    key: str | None = None
    line: int | None = None
    hint: str | None = None

    def __str__(self) -> str:
        parts = [f"{self.file}:{self.line}" if self.line else self.file]
        if self.severity == "warning":
            parts.append("warning")
        if self.key:
            parts.append(self.key)
        text = ": ".join(parts + [self.message])
        return f"{text} (hint: {self.hint})" if self.hint else text


@dataclass(frozen=True)
class Manifest:
    name: str
    version: str
    entrypoint: str
    description: str = ""
    authors: tuple[str, ...] = ()
    requirements: str | None = None
    python: str | None = None
    input_example: str | None = None
    training: dict = field(default_factory=dict)
    runtime: str = "venv"
    health_timeout_s: float = 60.0
    env: dict = field(default_factory=dict)
    input_schema: str | None = None  # [serve]: a JSON Schema file of the bundle for POST /predict
    input_check: str = "on"  # [serve]: "off" lets any JSON through to the model
    port: int | None = None  # [serve]: the model's stable port on every server (else one from the server's range)
    workers: int = 1  # [serve]: runner processes forked after the model loaded, on the same sockets
    model_threads: int | None = None  # [serve]: the runner's model threads (None: modelpool.DEFAULT_THREADS)
    image: str | None = None  # [serve]: a container release's base image (else the server's setting)
    memory: str | None = None  # [serve]: a container's memory limit, e.g. "512m"
    cpus: float | None = None  # [serve]: a container's CPU limit

    def to_dict(self) -> dict:
        """Every field, JSON-able (tuples become lists, TOML dates become ISO strings)."""
        return _jsonable(dataclasses.asdict(self))

    @classmethod
    def from_dict(cls, d: dict) -> "Manifest":
        """The inverse of to_dict; unknown keys are ignored so newer files stay readable."""
        known = {f.name for f in dataclasses.fields(cls)}
        kwargs = {k: v for k, v in d.items() if k in known}
        kwargs["authors"] = tuple(kwargs.get("authors") or ())
        kwargs["training"] = dict(kwargs.get("training") or {})
        kwargs["env"] = dict(kwargs.get("env") or {})
        if "health_timeout_s" in kwargs:
            kwargs["health_timeout_s"] = float(kwargs["health_timeout_s"])
        return cls(**kwargs)


def _jsonable(value):
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (datetime.date, datetime.time)):
        return value.isoformat()
    return value


class Collector:
    """Gathers problems for one file, looking up the line of each key in its text."""

    def __init__(self, file: str, text: str):
        self.file, self.lines, self.problems = file, key_lines(text), []

    def add(self, severity: str, key: str | None, message: str, hint: str | None = None) -> None:
        self.problems.append(Problem(severity, message, self.file, key, line_of(self.lines, key), hint))

    def error(self, key, message, hint=None):
        self.add("error", key, message, hint)

    def warning(self, key, message, hint=None):
        self.add("warning", key, message, hint)


MAX_MANIFEST_BYTES = 256 * 1024  # a manifest is a page of text; it is copied into every release.json
MAX_DEPTH = 16  # tables and arrays nested deeper than any real manifest needs
LIMIT_HINT = "berth.toml describes the model; keep data (long texts, tables of numbers) in files of the bundle"


class ManifestTooLarge(ValueError):
    """berth.toml is over the size or nesting limit: refused before (or instead of) parsing it."""


def load_toml(text: str) -> dict:
    """tomllib.loads within limits: a 500-level nesting would end in a RecursionError traceback."""
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > MAX_MANIFEST_BYTES:
        raise ManifestTooLarge(f"is {size} bytes; the limit is {MAX_MANIFEST_BYTES}")
    try:
        data = tomllib.loads(text)
    except RecursionError:
        raise ManifestTooLarge(f"nests tables or arrays deeper than {MAX_DEPTH} levels") from None
    if _depth(data) > MAX_DEPTH:
        raise ManifestTooLarge(f"nests tables or arrays deeper than {MAX_DEPTH} levels")
    return data


def _depth(value) -> int:
    """Nesting depth, without recursion (the value may be deep)."""
    deepest, todo = 0, [(value, 0)]
    while todo:
        item, level = todo.pop()
        if isinstance(item, dict):
            todo.extend((v, level + 1) for v in item.values())
        elif isinstance(item, list):
            todo.extend((v, level + 1) for v in item)
        else:
            continue
        deepest = max(deepest, level + 1)
    return deepest


_SYNTAX_LINE = re.compile(r"\s*\(at line (\d+), column \d+\)\s*$")


def parse_manifest(text: str, file: str = "berth.toml") -> tuple[Manifest | None, list[Problem]]:
    """Parse and validate berth.toml text; the Manifest is None when there is any error."""
    try:
        data = load_toml(text)
    except ManifestTooLarge as exc:
        return None, [Problem("error", f"berth.toml {exc}", file, None, None, LIMIT_HINT)]
    except tomllib.TOMLDecodeError as exc:
        message = str(exc)
        found = _SYNTAX_LINE.search(message)
        line = int(found.group(1)) if found else None
        message = _SYNTAX_LINE.sub("", message).replace(" (at end of document)", "")
        hint = "fix the TOML syntax; strings need quotes, tables look like [model]"
        return None, [Problem("error", f"not valid TOML: {message}", file, None, line, hint)]
    out = Collector(file, text)
    values = manifest_rules.validate(data, out)
    problems = sort_problems(out.problems)
    if any(p.severity == "error" for p in problems):
        return None, problems
    return Manifest(**values), problems


def sort_problems(problems: list[Problem]) -> list[Problem]:
    """Errors before warnings, each in file then line order, so the first line is the one to fix."""
    return sorted(problems, key=lambda p: (p.severity != "error", p.file != "berth.toml", p.file, p.line or 0))
