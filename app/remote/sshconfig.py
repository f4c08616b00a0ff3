"""The user's OpenSSH client config (`~/.ssh/config`), resolved as OpenSSH's readconf.c resolves it,
so a server can be named by the alias the operator already uses with `ssh`; tests/test_ssh_config.py
compares each case with `ssh -G`. Read only; nothing here writes to ~/.ssh.

Our own resolver rather than paramiko.SSHConfig: paramiko has no Include, treats Match and HostName
case differently from OpenSSH and expands other tokens. What it does, as OpenSSH does: first value
wins (IdentityFile accumulates), `Host` patterns (case-sensitive, `!` negates), `Match host /
originalhost / user / localuser / all / canonical / final` (with OpenSSH's final pass), `Include`
(relative to ~/.ssh, globs, nested, inside a block only when the block applies), HostName
lowercased unless it looks like an address, `%`-tokens, ProxyJump routed like `ssh -J`. What it
cannot evaluate (`Match exec`, `Match localnetwork`) fails only the aliases it would decide.

$BERTH_SSH_DIR replaces ~/.ssh (tests, portable installs): its `config`, `known_hosts` and `id_*`."""
from __future__ import annotations

import fnmatch
import getpass
import glob
import os
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

from .errors import SSHConfigError
from .ssh_tokens import client_tokens, expand, expand_path, lowercase_host

MAX_HOPS = 8  # a ProxyJump chain longer than this is surely a loop
MAX_INCLUDE_DEPTH = 16  # OpenSSH's READCONF_MAX_DEPTH
UNSUPPORTED_MATCH = {"exec": "runs a shell command", "localnetwork": "depends on this computer's networks",
                     "tagged": "depends on ssh's -P flag"}
MULTI = {"identityfile"}  # every value counts; for all other keywords the first one wins


def ssh_dir() -> Path:
    env = os.environ.get("BERTH_SSH_DIR")
    return Path(env).expanduser() if env else Path.home() / ".ssh"


def config_path() -> Path:
    return ssh_dir() / "config"


def user_known_hosts_path() -> Path:
    return ssh_dir() / "known_hosts"


def default_identities() -> list[str]:
    return [str(ssh_dir() / n) for n in ("id_ed25519", "id_ecdsa", "id_rsa")]


@dataclass(frozen=True)
class Endpoint:
    """One SSH server to log in to: the target, or a jump host on the way (`jumps`, first hop first)."""
    alias: str
    host: str
    port: int = 22
    user: str = ""
    identity_files: tuple[str, ...] = ()
    identities_only: bool = False
    jumps: tuple["Endpoint", ...] = field(default=())
    server_alive_interval: float | None = None
    connect_timeout: float | None = None
    known_hosts_files: tuple[str, ...] | None = None  # UserKnownHostsFile; None: ~/.ssh/known_hosts

    def describe(self) -> str:
        return f"{self.user + '@' if self.user else ''}{self.host}:{self.port}"


# -- reading the files ----------------------------------------------------------------------------

@dataclass
class _Line:
    where: str  # "FILE line N"
    keyword: str  # lower case
    args: list[str]
    included: list["_File"] = field(default_factory=list)  # Include: the files it names, in glob order


@dataclass
class _File:
    path: str
    lines: list[_Line]


class Config:
    """One parsed config file (its Includes read too); `lookup` resolves a name."""

    def __init__(self, path: Path | None = None):
        self.path = Path(path) if path is not None else config_path()
        self.root = _read(self.path, 0) if self.path.exists() else _File(str(self.path), [])

    def lines(self, f: _File | None = None):
        for line in (f or self.root).lines:
            yield line
            for sub in line.included:
                yield from self.lines(sub)

    def literal_hosts(self) -> list[str]:
        """Names on `Host` lines that are no pattern (no `*`, `?`, `!`), sorted."""
        names = {a for line in self.lines() if line.keyword == "host" for a in line.args}
        return sorted(n for n in names if not any(c in n for c in "*?!"))

    def lookup(self, alias: str) -> "_Options":
        opts = _Options(alias)
        self._pass(opts, final=False)
        if opts.want_final:  # `Match final`: OpenSSH reads the whole config again, first values kept
            self._pass(opts, final=True)
        opts.check()
        return opts

    def _pass(self, opts: "_Options", final: bool) -> None:
        opts.final = final
        self._walk(self.root, opts, active=True, never=False)

    def _walk(self, f: _File, opts: "_Options", active: bool, never: bool) -> None:
        for line in f.lines:
            if line.keyword == "host":
                active = not never and _host_matches(line.args, opts.alias)
                if active and line.args != ["*"]:
                    opts.matched.append(line.where)
            elif line.keyword == "match":
                active = not never and opts.match(line)
            elif line.keyword == "include":
                for sub in line.included:  # a block that does not apply includes nothing
                    self._walk(sub, opts, active, never or not active)
            elif active:
                opts.set(line)


def _read(path: Path, depth: int) -> _File:
    try:
        text = Path(path).read_text(errors="replace")
    except OSError as e:
        raise SSHConfigError(f"cannot read {path}: {e.strerror or e}") from None
    lines = []
    for n, raw in enumerate(text.splitlines(), 1):
        where = f"{path} line {n}"
        stripped = raw.strip()
        if not stripped or stripped.startswith("#"):
            continue
        keyword, rest = re.match(r"([^\s=]+)\s*(?:=\s*)?(.*)", stripped).groups()  # `Key value`, `Key=value`
        try:
            args = shlex.split(rest, comments=True)
        except ValueError as e:
            raise SSHConfigError(f"{where}: {e}") from None
        line = _Line(where, keyword.lower(), args)
        if line.keyword == "include":
            if depth >= MAX_INCLUDE_DEPTH:
                raise SSHConfigError(f"{where}: Include nests deeper than {MAX_INCLUDE_DEPTH} (a loop?)")
            for pattern in args:
                if not pattern.startswith(("/", "~")):
                    pattern = str(ssh_dir() / pattern)  # relative: under ~/.ssh, as OpenSSH does
                for found in sorted(glob.glob(os.path.expanduser(pattern))):
                    line.included.append(_read(Path(found), depth + 1))
        lines.append(line)
    return _File(str(path), lines)


def _host_matches(patterns: list[str], name: str) -> bool:
    """A `Host` line: any pattern matches (case-sensitive, as OpenSSH), and no `!pattern` does."""
    hit = False
    for p in patterns:
        if p.startswith("!"):
            if fnmatch.fnmatchcase(name, _glob(p[1:])):
                return False
        elif fnmatch.fnmatchcase(name, _glob(p)):
            hit = True
    return hit


def _glob(pattern: str) -> str:
    return pattern.replace("[", "[[]")  # OpenSSH patterns know only * and ?


def _pattern_list(value: str, patterns: str, nocase: bool) -> bool:
    """OpenSSH's match_pattern_list: comma-separated, a matching `!pattern` wins."""
    if nocase:
        value, patterns = value.lower(), patterns.lower()
    hit = False
    for p in patterns.split(","):
        negated = p.startswith("!")
        if fnmatch.fnmatchcase(value, _glob(p[1:] if negated else p)):
            if negated:
                return False
            hit = True
    return hit


class _Options:
    """The values found so far for one alias, and how `Match` evaluates against them."""

    def __init__(self, alias: str):
        self.alias = alias
        self.values: dict[str, list[str]] = {}
        self.identity_files: list[str] = []
        self.matched: list[str] = []  # the blocks that applied, other than `Host *` / `Match all`
        self.unsupported: list[str] = []
        self.final = False
        self.want_final = False

    def get(self, key: str, default=None):
        v = self.values.get(key)
        return v[0] if v else default

    def set(self, line: _Line) -> None:
        k = line.keyword
        if not line.args:
            return
        if k in MULTI:
            if line.args[0] not in self.identity_files:  # as ssh's add_identity_file (and the final pass)
                self.identity_files.append(line.args[0])
        elif k == "proxyjump":  # ProxyCommand (even "none") set first keeps ProxyJump out
            if "proxyjump" not in self.values and "proxycommand" not in self.values:
                self.values[k] = line.args
        elif k == "proxycommand":  # ...but only a real ProxyJump keeps ProxyCommand out
            if "proxycommand" not in self.values and self.get("proxyjump", "none").lower() == "none":
                self.values.pop("proxyjump", None)
                self.values[k] = [" ".join(line.args)]
        elif k not in self.values:
            self.values[k] = line.args

    def match(self, line: _Line) -> bool:
        """Every criterion must hold. One Berth cannot evaluate counts only when all the others
        hold: then this alias cannot be resolved, and resolving it says so (others are unaffected)."""
        args = list(line.args)
        if not args:
            raise SSHConfigError(f"{line.where}: Match needs criteria")
        result, cannot = True, []
        host = expand(self.get("hostname"), {"h": self.alias}) if self.get("hostname") else self.alias
        user = self.get("user") or getpass.getuser()
        while args:
            attr = args.pop(0)
            negate = attr.startswith("!")
            name = attr[1:].lower() if negate else attr.lower()
            if name == "all":
                ok = True
            elif name in ("canonical", "final"):
                self.want_final = self.want_final or name == "final"
                ok = self.final
            elif name in ("host", "originalhost", "user", "localuser", *UNSUPPORTED_MATCH):
                if not args:
                    raise SSHConfigError(f"{line.where}: Match {name} needs an argument")
                value = args.pop(0)
                if name in UNSUPPORTED_MATCH:
                    cannot.append(f"`Match {attr} {value}` ({line.where}) {UNSUPPORTED_MATCH[name]}")
                    continue
                ok = {"host": lambda: _pattern_list(host, value, True),
                      "originalhost": lambda: _pattern_list(self.alias, value, True),
                      "user": lambda: _pattern_list(user, value, False),
                      "localuser": lambda: _pattern_list(getpass.getuser(), value, False)}[name]()
            else:
                raise SSHConfigError(f"{line.where}: unsupported Match attribute {attr!r}")
            if ok == negate:
                result = False
        if result and cannot:
            self.unsupported.extend(cannot)
            return False
        if result and any(a.lstrip("!").lower() in ("host", "originalhost") for a in line.args):
            self.matched.append(line.where)  # names this host: the alias is the config's
        return result

    def check(self) -> None:
        if self.unsupported:
            raise SSHConfigError(f"{self.alias}: Berth cannot evaluate {'; '.join(self.unsupported)}, and it "
                                 f"decides this alias's settings; use Host or Match host/user for it instead")


# -- the public answers ---------------------------------------------------------------------------

def _load(path: Path | None) -> Config:
    return Config(path)


def list_aliases(path: Path | None = None) -> list[str]:
    """The concrete `Host` names (no patterns, no negations), sorted; Includes are read too."""
    return _load(path).literal_hosts()


def is_known(alias: str, path: Path | None = None) -> bool:
    """Does the config say anything for this name (a Host line or Match block other than `Host *`
    or `Match all`)? `Host web-*` makes web-7 a valid alias."""
    config = _load(path)
    if alias in config.literal_hosts():
        return True
    try:
        return bool(config.lookup(alias).matched)
    except SSHConfigError:
        return True  # it is the config's: resolving it says what is wrong


def resolve(alias: str, path: Path | None = None) -> Endpoint:
    """Everything Berth honours for `alias`: HostName, User, Port, IdentityFile, IdentitiesOnly,
    UserKnownHostsFile, ProxyJump (each hop resolved through the config as `ssh -J` does),
    ServerAliveInterval, ConnectTimeout."""
    return _resolve(_load(path), alias, None, None, depth=0, own_jumps=True)


def parse_hop(spec: str) -> tuple[str | None, str, int | None]:
    """`[user@]host[:port]` (or `ssh://user@host:port`, or `[v6addr]:port`) -> (user, host, port)."""
    spec = spec.strip()
    if spec.startswith("ssh://"):
        spec = spec[len("ssh://"):]
    user = None
    if "@" in spec:
        user, spec = spec.rsplit("@", 1)
    port = None
    if spec.startswith("["):
        host, _, rest = spec[1:].partition("]")
        if rest.startswith(":"):
            port = rest[1:]
    elif spec.count(":") == 1:
        host, port = spec.split(":")
    else:
        host = spec
    if not host:
        raise SSHConfigError(f"ProxyJump hop {spec!r} names no host")
    try:
        return user or None, host, int(port) if port else None
    except ValueError:
        raise SSHConfigError(f"ProxyJump hop {spec!r}: the port is not a number") from None


def _resolve(config: Config, alias: str, user: str | None, port: int | None, depth: int,
             own_jumps: bool) -> Endpoint:
    """`own_jumps`: False for a hop that `ssh -J` names after the first: ssh reaches it with `-J` on
    its command line, which outranks that hop's own ProxyJump and ProxyCommand."""
    if depth > MAX_HOPS:
        raise SSHConfigError(f"ProxyJump of {alias!r} nests deeper than {MAX_HOPS} hops (a loop?)")
    opts = config.lookup(alias)
    proxy_command = opts.get("proxycommand")
    if own_jumps and proxy_command and proxy_command.lower() != "none":
        raise SSHConfigError(f"{alias} uses ProxyCommand, which Berth does not run (it is a shell command); "
                             f"use ProxyJump instead")
    jumps: list[Endpoint] = []
    proxy = ",".join(opts.values.get("proxyjump", [])) if own_jumps else ""
    if proxy and proxy.lower() != "none":
        # ssh -J a,b,c target runs `ssh -J a,b -W target c`: only the first hop's own ProxyJump counts
        specs = proxy.split(",")
        for i, spec in enumerate(specs):
            hop_user, hop_host, hop_port = parse_hop(spec)
            hop = _resolve(config, hop_host, hop_user, hop_port, depth + 1, own_jumps=i == 0)
            jumps.extend(hop.jumps)
            jumps.append(Endpoint(**{**hop.__dict__, "jumps": ()}))
    host = lowercase_host(expand(opts.get("hostname"), {"h": alias}) if opts.get("hostname") else alias)
    port = port or _int(opts.get("port"), 22, "Port", alias)
    user = user or opts.get("user") or getpass.getuser()
    tokens = client_tokens(alias, host, port, user, opts.get("hostkeyalias"))
    known = opts.values.get("userknownhostsfile")
    return Endpoint(
        alias=alias, host=host, port=port, user=user,
        identity_files=tuple(expand_path(p, tokens, "IdentityFile") for p in opts.identity_files),
        identities_only=(opts.get("identitiesonly") or "no").lower() == "yes",
        jumps=tuple(jumps),
        server_alive_interval=_seconds(opts.get("serveraliveinterval"), "ServerAliveInterval", alias),
        connect_timeout=_seconds(opts.get("connecttimeout"), "ConnectTimeout", alias),
        known_hosts_files=None if known is None else
        () if [k.lower() for k in known] == ["none"] else tuple(expand_path(k, tokens, "UserKnownHostsFile") for k in known),
    )


def _int(value, default: int, what: str, alias: str) -> int:
    if value is None:
        return default
    try:
        return int(value)
    except ValueError:
        raise SSHConfigError(f"{what} of {alias} is not a number: {value!r}") from None


def _seconds(value, what: str, alias: str) -> float | None:
    return None if value is None else float(_int(value, 0, what, alias))
