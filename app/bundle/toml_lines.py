"""Find the line of a dotted key in TOML text, because tomllib forgets positions once parsed.

A light scanner, not a parser: it tracks [table] headers and `key =` lines, which is enough to
point an operator at the right line; when it cannot tell, the caller simply gets no line.
"""
from __future__ import annotations

import re

_HEADER = re.compile(r"^\s*\[\[?\s*([^\]]+?)\s*\]\]?\s*(#.*)?$")
_KEY = re.compile(r"""^\s*((?:[A-Za-z0-9_-]+|"[^"]*"|'[^']*')(?:\s*\.\s*(?:[A-Za-z0-9_-]+|"[^"]*"|'[^']*'))*)\s*=""")
_PART = re.compile(r"""[A-Za-z0-9_-]+|"([^"]*)"|'([^']*)'""")


def _dotted(raw: str) -> str:
    parts = []
    for m in _PART.finditer(raw):
        parts.append(m.group(1) if m.group(1) is not None else m.group(2) if m.group(2) is not None else m.group(0))
    return ".".join(parts)


def key_lines(text: str) -> dict[str, int]:
    """Map every table header and key path seen in `text` to its first 1-based line."""
    found: dict[str, int] = {}
    table = ""
    in_multiline = None
    for number, line in enumerate(text.splitlines(), start=1):
        if in_multiline:
            if line.count(in_multiline) % 2 == 1:
                in_multiline = None
            continue
        header = _HEADER.match(line)
        if header:
            table = _dotted(header.group(1))
            found.setdefault(table, number)
            continue
        key = _KEY.match(line)
        if key:
            path = _dotted(key.group(1))
            found.setdefault(f"{table}.{path}" if table else path, number)
        for quote in ('"""', "'''"):
            if line.count(quote) % 2 == 1:
                in_multiline = quote
                break
    return found


def line_of(lines: dict[str, int], key: str | None) -> int | None:
    """The line of `key`, else of its closest enclosing table or key that was found."""
    while key:
        if key in lines:
            return lines[key]
        key = key.rpartition(".")[0]
    return None
