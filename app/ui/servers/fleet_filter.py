"""What the fleet filter box means, in one place for the fleet tree and the fleet overview:

    web          servers whose name contains "web" (any case)
    s1*          a glob on the whole name (* ? [...])
    env:prod*    servers whose environment matches (a word or a glob)
    web env:production   every term must hold
"""
from __future__ import annotations

from fnmatch import fnmatchcase

GLOB = set("*?[")


def matches(pattern: str, name: str, environment: str = "") -> bool:
    for term in pattern.lower().split():
        if term.startswith("env:"):
            wanted = term[4:]
            if not wanted:
                continue  # "env:" while still typing
            if not fnmatchcase((environment or "").lower(), wanted):
                return False
        elif GLOB & set(term):
            if not fnmatchcase(name.lower(), term):
                return False
        elif term not in name.lower():
            return False
    return True
