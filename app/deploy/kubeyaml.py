"""A small YAML writer for the Kubernetes export: block mappings and sequences, every string
double-quoted with JSON's escapes (valid YAML, and no string is ever read back as a number, a bool or
`null`: versions such as 1.10 or labels such as "on" stay strings). PyYAML is not a dependency of
Berth, and the manifests need nothing more (docs/decisions.md)."""
from __future__ import annotations

import json
import re

PLAIN_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_./-]*")
READ_AS_VALUES = {"null", "true", "false", "yes", "no", "on", "off", "y", "n"}  # YAML 1.1 reads these plain
# what YAML does not allow unescaped (C1 controls, surrogates, non-characters) or reads as a line break
NOT_PRINTABLE = re.compile("[\u007f-\u009f\u2028\u2029\ud800-\udfff\ufeff\ufffe\uffff]")


def dump_all(docs: list[dict], header: str = "") -> str:
    """Several documents in one stream, each after `---`; `header` lines become comments at the top."""
    out = [f"# {line}".rstrip() for line in header.splitlines()]
    for doc in docs:
        out.append("---")
        out.extend(_lines(doc, 0))
    return "\n".join(out) + "\n"


def _scalar(value) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return _quoted(value)
    raise TypeError(f"cannot write {type(value).__name__} as YAML")


def _key(key: str) -> str:
    return key if PLAIN_KEY.fullmatch(key) and key.lower() not in READ_AS_VALUES else _quoted(key)


def _quoted(text: str) -> str:
    """JSON's escapes for quotes and C0 controls (YAML's too); other non-printables as \\uXXXX."""
    return NOT_PRINTABLE.sub(lambda m: "\\u%04x" % ord(m.group()), json.dumps(text, ensure_ascii=False))


def _lines(value, indent: int) -> list[str]:
    pad = " " * indent
    out: list[str] = []
    if isinstance(value, dict):
        for k, v in value.items():
            if isinstance(v, (dict, list)) and v:
                out.append(f"{pad}{_key(k)}:")
                out.extend(_lines(v, indent + 2 if isinstance(v, dict) else indent))
            else:
                out.append(f"{pad}{_key(k)}: {_inline(v)}")
    elif isinstance(value, list):
        for item in value:
            if isinstance(item, (dict, list)) and item:
                inner = _lines(item, indent + 2)
                out.append(f"{pad}- {inner[0].lstrip()}")
                out.extend(inner[1:])
            else:
                out.append(f"{pad}- {_inline(item)}")
    else:
        out.append(pad + _scalar(value))
    return out


def _inline(value) -> str:
    if isinstance(value, dict):
        return "{}"
    if isinstance(value, list):
        return "[]"
    return _scalar(value)
