"""Rules for relative paths inside a bundle, shared by the manifest check and the archive check."""
from __future__ import annotations

import re

_DRIVE = re.compile(r"^[A-Za-z]:")


def relpath_problem(path: str) -> str | None:
    """Why `path` cannot name a file inside a bundle, or None when it is a safe relative path."""
    if not path or not path.strip():
        return "is empty"
    if any(ord(c) < 32 or ord(c) == 127 for c in path):
        return "contains control characters"
    if "\\" in path:
        return "uses backslashes"
    if path.startswith("/") or _DRIVE.match(path):
        return "is absolute"
    if ".." in path.split("/"):
        return "goes outside the bundle ('..')"
    return None


def normalise(path: str) -> str:
    """Drop '.' and empty components: './a//b' -> 'a/b' ('' for the root itself)."""
    return "/".join(part for part in path.split("/") if part not in ("", "."))
