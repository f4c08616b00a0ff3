"""Which servers a command acts on: `--server` takes a name, a glob of names (`'web-*'`) or an
environment (`env:staging`), and may be repeated. Resolved here, once, before anything connects,
so a typo is one clear line naming what exists."""
from __future__ import annotations

import difflib
from fnmatch import fnmatchcase

from app import errors
from app.errors import BerthError
from app.formatting import natural_key

ENV_PREFIX = "env:"
GLOB_CHARS = "*?["


class NoServerMatches(BerthError, LookupError):
    default_code = errors.UNKNOWN_SERVER


def resolve_servers(workspace, selectors: list[str]) -> list[str]:
    """The names of the servers `selectors` pick (any of them), naturally sorted (s2 before s10),
    each once. A selector that picks nothing raises NoServerMatches, naming close names or the
    environments that exist."""
    servers = workspace.servers.list()
    names = [s.name for s in servers]
    picked: set[str] = set()
    for selector in selectors:
        if selector.startswith(ENV_PREFIX):
            env = selector[len(ENV_PREFIX):]
            match = [s.name for s in servers if s.environment == env]
            if not match:
                raise NoServerMatches(_no_environment(env, servers), detail={"selector": selector})
        elif any(c in selector for c in GLOB_CHARS):
            match = [n for n in names if fnmatchcase(n, selector)]
            if not match:
                raise NoServerMatches(f"no server name matches {selector!r}{_close(selector, names)}; see "
                                      "`berth server list`", detail={"selector": selector})
        elif selector in names:
            match = [selector]
        else:
            raise NoServerMatches(f"no server named '{selector}'{_close(selector, names)}; see `berth server list`, "
                                  "or add it with `berth server add`", detail={"selector": selector})
        picked.update(match)
    return sorted(picked, key=natural_key)


def named_one(selectors: list[str], names: list[str]) -> bool:
    """The operator named one server (not a glob or an environment), so its failure is the command's
    (for_each_server's `named`)."""
    return len(selectors) == 1 and names == selectors


def resolve_one(workspace, selector: str) -> str:
    """For commands that act on exactly one server (predict, logs): a selector picking several is
    wrong usage, said with the servers it picked."""
    names = resolve_servers(workspace, [selector])
    if len(names) > 1:
        shown = ", ".join(names[:10]) + (f" and {len(names) - 10} more" if len(names) > 10 else "")
        raise NoServerMatches(f"--server {selector} picks {len(names)} servers ({shown}); this command acts on one: "
                              "give its name", errors.USAGE)
    return names[0]


def _close(selector: str, names: list[str]) -> str:
    """'; close names: a, b' (the wildcards left out), or nothing when none is close."""
    bare = selector.translate({ord(c): None for c in GLOB_CHARS + "]"})
    prefix = bare.split("-")[0].lower()
    close = difflib.get_close_matches(bare, names, n=5, cutoff=0.5)
    close += [n for n in names if prefix and n.lower().startswith(prefix) and n not in close]
    close = sorted(close[:5], key=natural_key)
    return f"; close names: {', '.join(close)}" if close else ""


def _no_environment(env: str, servers) -> str:
    if not env:
        return f"give an environment's name, e.g. {ENV_PREFIX}staging (or --env staging)"
    known = sorted({s.environment for s in servers if s.environment}, key=natural_key)
    where = f"the environments are: {', '.join(known)}" if known else "no server has an environment"
    return (f"no server is in environment {env!r}; {where} (set one with `berth server add NAME --env ENV` "
            "or `berth server set-env NAME ENV`)")
