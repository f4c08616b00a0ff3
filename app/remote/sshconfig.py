"""The user's OpenSSH client config (`~/.ssh/config`), read with paramiko.SSHConfig, so a server can
be named by the alias the operator already uses with `ssh`. Read only; nothing here writes to ~/.ssh.

$BERTH_SSH_DIR replaces ~/.ssh (tests, portable installs): its `config`, `known_hosts` and `id_*`."""
from __future__ import annotations

import getpass
import os
from dataclasses import dataclass, field
from pathlib import Path

from app import errors
from app.errors import BerthError

MAX_HOPS = 8  # a ProxyJump chain longer than this is surely a loop


class SSHConfigError(BerthError, ValueError):
    """The config cannot be used for this alias (unknown alias, bad ProxyJump, ProxyCommand...)."""

    default_code = errors.CONFIG


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

    def describe(self) -> str:
        return f"{self.user + '@' if self.user else ''}{self.host}:{self.port}"


def _load(path: Path | None):
    import paramiko

    path = Path(path) if path is not None else config_path()
    if not path.exists():
        return paramiko.SSHConfig()
    try:
        return paramiko.SSHConfig.from_path(str(path))
    except Exception as e:  # a broken config is the user's to fix; say where
        raise SSHConfigError(f"cannot read {path}: {e}") from None


def list_aliases(path: Path | None = None) -> list[str]:
    """The concrete `Host` names (no patterns, no negations), sorted."""
    names = _load(path).get_hostnames()
    return sorted(n for n in names if not any(c in n for c in "*?!"))


def resolve(alias: str, path: Path | None = None) -> Endpoint:
    """Everything Berth honours for `alias`: HostName, User, Port, IdentityFile, IdentitiesOnly,
    ProxyJump (each hop resolved through the config as well), ServerAliveInterval, ConnectTimeout."""
    return _resolve(_load(path), alias, None, None, depth=0, path=path)


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


def _resolve(config, alias: str, user: str | None, port: int | None, depth: int, path) -> Endpoint:
    if depth > MAX_HOPS:
        raise SSHConfigError(f"ProxyJump of {alias!r} nests deeper than {MAX_HOPS} hops (a loop?)")
    try:
        entry = config.lookup(alias)
    except Exception as e:  # e.g. `Match exec` without `invoke`
        raise SSHConfigError(f"cannot evaluate the ssh config for {alias!r}: {e}") from None
    if "proxycommand" in entry and entry["proxycommand"].lower() != "none":
        raise SSHConfigError(f"{alias} uses ProxyCommand, which Berth does not run (it is a shell command); "
                             f"use ProxyJump instead")
    jumps: list[Endpoint] = []
    proxy = entry.get("proxyjump", "")
    if proxy and proxy.lower() != "none":
        for spec in proxy.split(","):
            hop_user, hop_host, hop_port = parse_hop(spec)
            hop = _resolve(config, hop_host, hop_user, hop_port, depth + 1, path)
            jumps.extend(hop.jumps)  # a hop's own ProxyJump comes before it, as with `ssh -J`
            jumps.append(Endpoint(**{**hop.__dict__, "jumps": ()}))
    return Endpoint(
        alias=alias,
        host=entry.get("hostname", alias),
        port=port or _int(entry.get("port"), 22, "Port", alias),
        user=user or entry.get("user") or getpass.getuser(),
        identity_files=tuple(entry.get("identityfile", ())),
        identities_only=entry.get("identitiesonly", "no").lower() == "yes",
        jumps=tuple(jumps),
        server_alive_interval=_seconds(entry.get("serveraliveinterval"), "ServerAliveInterval", alias),
        connect_timeout=_seconds(entry.get("connecttimeout"), "ConnectTimeout", alias),
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
