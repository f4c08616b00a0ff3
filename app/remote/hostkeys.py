"""Berth's own known-hosts file (OpenSSH format). Unknown keys are refused unless the operator
names the exact fingerprint; a changed key is always refused."""
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
    def __init__(self, path: Path):
        self.path = Path(path)

    def _load(self) -> paramiko.HostKeys:
        import paramiko  # only when a real server is used

        keys = paramiko.HostKeys()
        if self.path.exists():
            keys.load(str(self.path))
        return keys

    def known(self, host: str, port: int) -> dict[str, paramiko.PKey]:
        return dict(self._load().lookup(host_id(host, port)) or {})

    def preferred_algorithms(self, host: str, port: int) -> list[str]:
        """Ask the server for a key type we already trust, so a multi-key server is checked
        against the key we know rather than reported as unknown."""
        out: list[str] = []
        for key_type in self.known(host, port):
            out.extend(RSA_ALGORITHMS if key_type == "ssh-rsa" else [key_type])
        return out

    def verify(self, host: str, port: int, key: paramiko.PKey, accept: str | None = None) -> bool:
        """Raise unless `key` is trusted; `accept` (an exact fingerprint) trusts an unknown key.
        Returns True when the key was newly added."""
        known = self.known(host, port)
        got = fingerprint(key)
        name = key.get_name()
        if name in known:
            if known[name].asbytes() == key.asbytes():
                return False
            raise HostKeyChanged(host_id(host, port), name, fingerprint(known[name]), got)
        if known:
            # Another type is known for this host; a server that now only offers a new type is
            # treated as changed, never silently trusted.
            old_type, old_key = next(iter(known.items()))
            if accept != got:
                raise HostKeyChanged(host_id(host, port), name, f"{old_type} {fingerprint(old_key)}", got)
        elif accept != got:
            raise UnknownHostKey(host_id(host, port), name, got)
        self.add(host, port, key)
        return True

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
