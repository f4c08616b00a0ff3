"""Berth's own known-hosts file (OpenSSH format), plus the user's ~/.ssh/known_hosts read as trusted
(read only; hashed entries work). Unknown keys are refused unless the operator names the exact
fingerprint; a changed key is always refused; a key on an `@revoked` line (in any of the files) is
refused before anything else. Berth's file wins where both know a key type."""
from __future__ import annotations

import base64
import fnmatch
import hashlib
import hmac
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import HostKeyChanged, HostKeyRevoked, UnknownHostKey

if TYPE_CHECKING:  # only when a real server is used
    import paramiko


RSA_ALGORITHMS = ("rsa-sha2-512", "rsa-sha2-256", "ssh-rsa")


def fingerprint(key: paramiko.PKey) -> str:
    digest = hashlib.sha256(key.asbytes()).digest()
    return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")


def host_id(host: str, port: int) -> str:
    return host if port == 22 else f"[{host}]:{port}"


def host_matches(patterns: str, name: str) -> bool:
    """OpenSSH's known_hosts host field: comma-separated patterns (`*`, `?`), `!` negates and wins,
    `|1|salt|hash` is a hashed name. Case-insensitive, as OpenSSH compares host names."""
    name = name.lower()
    matched = False
    for pattern in patterns.split(","):
        negated = pattern.startswith("!")
        pattern = pattern[1:] if negated else pattern
        if pattern.startswith("|1|"):
            hit = _hashed_matches(pattern, name)
        else:
            hit = fnmatch.fnmatchcase(name, pattern.lower().replace("[", "[[]"))
        if hit and negated:
            return False
        matched = matched or hit
    return matched


def _hashed_matches(entry: str, name: str) -> bool:
    try:
        salt, digest = (base64.b64decode(p) for p in entry[3:].split("|", 1))
    except ValueError:
        return False
    return hmac.compare_digest(hmac.new(salt, name.encode(), hashlib.sha1).digest(), digest)


def numbered_lines(paths):
    """(path, line number, line) of every known_hosts file in `paths`; a missing or unreadable file
    is skipped: it cannot vouch for or against anything."""
    for path in paths:
        try:
            lines = Path(path).read_text(errors="replace").splitlines()
        except OSError:
            continue
        for n, line in enumerate(lines, 1):
            yield path, n, line


def marker_lines(paths, marker: str):
    """(path, line number, host patterns, key blob) of each `@marker` line in `paths` (unreadable
    lines are skipped)."""
    for path, n, line in numbered_lines(paths):
        fields = line.split()
        if len(fields) >= 4 and fields[0].lower() == marker:
            try:
                yield path, n, fields[1], base64.b64decode(fields[3])
            except ValueError:
                continue


class KnownHosts:
    def __init__(self, path: Path, user_paths: tuple[Path, ...] = ()):
        self.path = Path(path)
        self.user_paths = tuple(Path(p) for p in user_paths)  # read only, e.g. ~/.ssh/known_hosts

    def _load(self) -> paramiko.HostKeys:
        return _read_keys((self.path,))

    def known(self, host: str, port: int) -> dict[str, paramiko.PKey]:
        out = dict(self._load().lookup(host_id(host, port)) or {})
        for key_type, key in self._user_known(host, port).items():
            out.setdefault(key_type, key)
        return out

    def _user_known(self, host: str, port: int) -> dict[str, paramiko.PKey]:
        return dict(_read_keys(self.user_paths).lookup(host_id(host, port)) or {})

    def preferred_algorithms(self, host: str, port: int) -> list[str]:
        """Ask the server for a key type we already trust, so a multi-key server is checked
        against the key we know rather than reported as unknown."""
        out: list[str] = []
        for key_type in self.known(host, port):
            out.extend(RSA_ALGORITHMS if key_type == "ssh-rsa" else [key_type])
        return out

    def revoked_in(self, host: str, port: int, key: paramiko.PKey) -> str:
        """"FILE:LINE" of an `@revoked` line for this key and host (Berth's file or the user's), else ""."""
        hid, blob = host_id(host, port), key.asbytes()
        for path, n, patterns, revoked in marker_lines((self.path, *self.user_paths), "@revoked"):
            if revoked == blob and host_matches(patterns, hid):
                return f"{path}:{n}"
        return ""

    def cert_authority_for(self, host: str, port: int) -> str:
        """"FILE:LINE" of a `@cert-authority` line naming this host, else "" (said when refusing)."""
        hid = host_id(host, port)
        for path, n, patterns, _ in marker_lines((self.path, *self.user_paths), "@cert-authority"):
            if host_matches(patterns, hid):
                return f"{path}:{n}"
        return ""

    def verify(self, host: str, port: int, key: paramiko.PKey, accept: str | tuple | None = None) -> bool:
        """Raise unless `key` is trusted; `accept` (an exact fingerprint, or several) trusts an
        unknown key. Returns True when the key was newly added (to Berth's file, never the user's).
        A revoked key is refused first: no file's trust and no `accept` outweighs a revocation."""
        where = self.revoked_in(host, port, key)
        if where:
            raise HostKeyRevoked(host_id(host, port), key.get_name(), fingerprint(key), where)
        if isinstance(accept, (tuple, list, set, frozenset)):
            accept = fingerprint(key) if fingerprint(key) in accept else None
        known = self.known(host, port)
        got = fingerprint(key)
        name = key.get_name()
        own = self._load().lookup(host_id(host, port)) or {}
        if name in known:
            if known[name].asbytes() == key.asbytes():
                return False
            raise HostKeyChanged(host_id(host, port), name, fingerprint(known[name]), got, self._source(name, own, host, port))
        if known:
            # Another type is known for this host; a server that now only offers a new type is
            # treated as changed, never silently trusted.
            old_type, old_key = next(iter(known.items()))
            if accept != got:
                raise HostKeyChanged(host_id(host, port), name, f"{old_type} {fingerprint(old_key)}", got,
                                     self._source(old_type, own, host, port))
        elif accept != got:
            raise UnknownHostKey(host_id(host, port), name, got, self.cert_authority_for(host, port))
        self.add(host, port, key)
        return True

    def _source(self, key_type: str, own, host: str, port: int) -> str:
        """'' when Berth's own file holds the key (forget-key removes it), else the user's file
        that does (UserKnownHostsFile may name several)."""
        if key_type in own or not self.user_paths:
            return ""
        for path in self.user_paths:
            if key_type in (_read_keys((path,)).lookup(host_id(host, port)) or {}):
                return str(path)
        return str(self.user_paths[0])

    def add(self, host: str, port: int, key: paramiko.PKey) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a") as f:
            f.write(f"{host_id(host, port)} {key.get_name()} {key.get_base64()}\n")

    def forget(self, host: str, port: int) -> int:
        """Remove this host's plain lines from Berth's file; other lines (and `@revoked` ones,
        which must outlive any key) stay as they are."""
        hid = host_id(host, port)
        if not self.path.exists():
            return 0
        kept, n = [], 0
        for line in self.path.read_text().splitlines(keepends=True):
            fields = line.split()
            names = fields[0].split(",") if len(fields) >= 3 else []
            if any(name == hid or (name.startswith("|1|") and _hashed_matches(name, hid)) for name in names):
                n += 1
            else:
                kept.append(line)
        if n:
            self.path.write_text("".join(kept))
        return n


def _read_keys(paths) -> paramiko.HostKeys:
    """The plain lines of known_hosts files, line by line: `@cert-authority`/`@revoked` lines (read
    by marker_lines) and lines paramiko cannot parse are skipped rather than making every
    connection fail."""
    import paramiko  # only when a real server is used

    keys = paramiko.HostKeys()
    for _path, n, line in numbered_lines(paths):
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
    return keys
