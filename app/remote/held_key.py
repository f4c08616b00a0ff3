"""Where a held connection's keeper listens, and the name that says which connection it holds.

The socket's name is a hash of everything that decides the connection: the server's entry, its
~/.ssh/config alias as read now, the key files (path and content), the known_hosts files it is
checked against (their content), the SSH agent's socket, this Berth's code and its home. Change any
of them and the name changes: the call opens a new connection, never reuses the old one."""
from __future__ import annotations

import functools
import hashlib
import json
import os
import socket
import stat
import sys
from dataclasses import asdict
from pathlib import Path

from app.store import paths
from app.store.servers import LOCAL, ServerConfig

DEFAULT_IDLE = 600  # seconds, like a ControlPersist of 10 minutes
ENV = "BERTH_SSH_PERSIST"  # "0": no keeper; a number of seconds: the idle time
SUN_PATH_MAX = 104  # sockaddr_un's path (108 on Linux, 104 on the BSDs), with room for the NUL
_CODE = ("held.py", "held_key.py", "keeper.py", "keeper_files.py", "ssh.py", "sshauth.py", "hostkeys.py",
         "transport.py", "agent_session.py")


def idle_seconds(setting: str = "") -> int:
    """How long a keeper waits for the next call (0: no keeper). $BERTH_SSH_PERSIST wins over the
    setting `ssh_persist`; Linux only (the peer check needs SO_PEERCRED)."""
    if not hasattr(socket, "SO_PEERCRED"):
        return 0
    text = os.environ.get(ENV, "").strip() or setting.strip() or str(DEFAULT_IDLE)
    try:
        return max(0, int(text))
    except ValueError:
        return DEFAULT_IDLE if text.lower() in ("1", "yes", "true", "on") else 0


def socket_dir(create: bool = True) -> Path:
    """A private folder (0700, ours): $XDG_RUNTIME_DIR/berth-<home> when that exists, else
    <BERTH_HOME>/held. One found with other owners or modes is refused (OSError), never used."""
    home = _home()
    runtime = os.environ.get("XDG_RUNTIME_DIR", "")
    if runtime and os.path.isdir(runtime):
        folder = Path(runtime) / f"berth-{hashlib.sha256(home.encode()).hexdigest()[:12]}"
    else:
        folder = Path(home) / "held"
    if create:
        try:
            folder.mkdir(mode=0o700)
        except FileExistsError:
            pass
    if os.path.lexists(folder):  # a symlink, even one to nowhere, is refused too
        st = os.lstat(folder)
        if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.getuid() or stat.S_IMODE(st.st_mode) & 0o077:
            raise PermissionError(f"{folder} is not a private folder of this user (mode 0700): Berth holds no "
                                  f"connection there; remove it or set {ENV}=0")
    return folder


def connection_key(server: ServerConfig, alias=None, known_hosts=None) -> str:
    """The hash that names the socket (alias: the resolved ~/.ssh/config entry; known_hosts: the
    KnownHosts the connection is checked against)."""
    from .sshconfig import default_identities

    assert server.kind != LOCAL
    files = [server.key_path] if server.key_path else [*(alias.identity_files if alias else ()),
                                                       *default_identities()]
    hosts = [str(known_hosts.path), *(str(p) for p in known_hosts.user_paths)] if known_hosts else []
    facts = {
        "server": asdict(server),
        "alias": repr(alias),
        "keys": {f: _digest(Path(os.path.expanduser(f))) for f in files},
        "known_hosts": {f: _digest(Path(f)) for f in hosts},
        "agent": os.environ.get("SSH_AUTH_SOCK", ""),
        "code": code_digest(),
        "home": _home(),
    }
    return hashlib.sha256(json.dumps(facts, sort_keys=True, default=str).encode()).hexdigest()[:24]


@functools.lru_cache(maxsize=None)
def code_digest() -> str:
    """Berth's connection code as this process loaded it: a keeper of other code is another keeper.
    A frozen build has no source files to hash: its executable (path, size, time) stands for them."""
    if getattr(sys, "frozen", False):
        st = os.stat(sys.executable)
        return hashlib.sha256(json.dumps([sys.executable, st.st_size, st.st_mtime_ns]).encode()).hexdigest()[:16]
    here = Path(__file__).resolve().parent
    return hashlib.sha256(json.dumps({f: _digest(here / f) for f in _CODE}).encode()).hexdigest()[:16]


def control_path() -> Path:
    """The keeper process's own socket: it opens the connections asked for, each on its own socket."""
    return socket_dir() / f"keeper.{code_digest()}.ctl"


def socket_path(name: str, key: str) -> Path:
    """<dir>/<server>.<key>.sock; server names are [a-z0-9._-], so the name is safe as it is."""
    return socket_dir() / f"{name}.{key}.sock"


def fits(path: Path) -> bool:
    return len(os.fsencode(str(path))) < SUN_PATH_MAX


def _home() -> str:
    """The Berth home as the file system has it: one home reached through a symlink (or `..`) is one
    set of held connections, listed and ended from either spelling."""
    return os.path.realpath(paths.berth_home())


def _digest(path: Path) -> str:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return "-"
