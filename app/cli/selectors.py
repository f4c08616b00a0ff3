"""Which servers a `--server` picks: a name, a glob (`'web-*'`) or an environment (`env:staging`).
A minimal stand-in for the full module (close names, natural sort helper) built beside it."""
from __future__ import annotations

import fnmatch
import re

from .base import Failed


def resolve_servers(workspace, selectors: list[str]) -> list[str]:
    """The names picked by any of `selectors`, naturally sorted (s2 before s10), each once. A
    selector that picks nothing is an error naming it; an unknown plain name is UnknownServer."""
    servers = workspace.servers.list()
    picked: set[str] = set()
    for selector in selectors:
        if selector.startswith("env:"):
            found = {s.name for s in servers if s.environment == selector[4:]}
        elif any(c in selector for c in "*?["):
            found = set(fnmatch.filter([s.name for s in servers], selector))
        else:
            found = {workspace.servers.get(selector).name}
        if not found:
            raise Failed(f"--server {selector} picks no server; see `berth server list`")
        picked |= found
    return sorted(picked, key=_natural)


def _natural(name: str) -> list:
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]
