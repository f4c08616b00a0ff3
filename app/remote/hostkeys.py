"""Berth's own known-hosts file (OpenSSH format), plus the user's ~/.ssh/known_hosts read as trusted
(read only; hashed entries work). Unknown keys are refused unless the operator names the exact
fingerprint; a changed key is always refused. Berth's file wins where both know a key type."""
from __future__ import annotations

import base64
import hashlib
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import HostKeyChanged, UnknownHostKey

if TYPE_CHECKING:  # only when a real server is used
    import paramiko


RSA_ALGORITHMS = ("rsa-sha2-512", "rsa-sha2-256", "ssh-rsa")


def fingerprint(key: paramiko.PKey) -> str:
    digest = hashlib.sha256(key.asbytes()).digest()
    return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")


def host_id(host: str, port: int) -> str:
    return host if port == 22 else f"[{host}]:{port}"


class KnownHosts:
    def __init__(self, path: Path, user_paths: tuple[Path, ...] = ()):
        self.path = Path(path)
        self.user_paths = tuple(Path(p) for p in user_paths)  # read only, e.g. ~/.ssh/known_hosts

    def _load(self) -> paramiko.HostKeys:
        import paramiko  # only when a real server is used

        keys = paramiko.HostKeys()
        if self.path.exists():
            keys.load(str(self.path))
        return keys

    def known(self, host: str, port: int) -> dict[str, paramiko.PKey]:
        out = dict(self._load().lookup(host_id(host, port)) or {})
        for key_type, key in self._user_known(host, port).items():
            out.setdefault(key_type, key)
        return out

    def _user_known(self, host: str, port: int) -> dict[str, paramiko.PKey]:
        """The user's files, line by line: `@cert-authority`/`@revoked` lines and lines paramiko
        cannot parse are skipped rather than making every connection fail."""
        import paramiko

        keys = paramiko.HostKeys()
        for path in self.user_paths:
            try:
                lines = path.read_text(errors="replace").splitlines()
            except OSError:
                continue
            for n, line in enumerate(lines, 1):
                line = line.strip()
                if not line or line.startswith(("#", "@")):
                    continue
                try:
                    entry = paramiko.hostkeys.HostKeyEntry.from_line(line, n)
                except (paramiko.SSHException, ValueError, TypeError):
                    continue
                if entry is not None and entry.key is not None:
                    for name in entry.hostnames:
                        keys.add(name, entry.key.get_name(), entry.key)
        return dict(keys.lookup(host_id(host, port)) or {})

    def preferred_algorithms(self, host: str, port: int) -> list[str]:
        """Ask the server for a key type we already trust, so a multi-key server is checked
        against the key we know rather than reported as unknown."""
        out: list[str] = []
        for key_type in self.known(host, port):
            out.extend(RSA_ALGORITHMS if key_type == "ssh-rsa" else [key_type])
        return out

    def verify(self, host: str, port: int, key: paramiko.PKey, accept: str | tuple | None = None) -> bool:
        """Raise unless `key` is trusted; `accept` (an exact fingerprint, or several) trusts an
        unknown key. Returns True when the key was newly added (to Berth's file, never the user's)."""
        if isinstance(accept, (tuple, list, set, frozenset)):
            accept = fingerprint(key) if fingerprint(key) in accept else None
        known = self.known(host, port)
        got = fingerprint(key)
        name = key.get_name()
        own = self._load().lookup(host_id(host, port)) or {}
        if name in known:
            if known[name].asbytes() == key.asbytes():
                return False
            raise HostKeyChanged(host_id(host, port), name, fingerprint(known[name]), got, self._source(name, own))
        if known:
            # Another type is known for this host; a server that now only offers a new type is
            # treated as changed, never silently trusted.
            old_type, old_key = next(iter(known.items()))
            if accept != got:
                raise HostKeyChanged(host_id(host, port), name, f"{old_type} {fingerprint(old_key)}", got,
                                     self._source(old_type, own))
        elif accept != got:
            raise UnknownHostKey(host_id(host, port), name, got)
        self.add(host, port, key)
        return True

    def _source(self, key_type: str, own) -> str:
        """'' when Berth's own file holds the key (forget-key removes it), else the user's file."""
        if key_type in own or not self.user_paths:
            return ""
        return str(self.user_paths[0])

    def add(self, host: str, port: int, key: paramiko.PKey) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a") as f:
            f.write(f"{host_id(host, port)} {key.get_name()} {key.get_base64()}\n")

    def forget(self, host: str, port: int) -> int:
        keys = self._load()
        hid = host_id(host, port)
        if hid not in keys:
            return 0
        n = len(keys[hid])
        del keys[hid]
        keys.save(str(self.path))
        return n
