"""Treat a bundle archive as hostile: read its whole member list and refuse it before writing.

Refused: absolute or '..' paths, links leaving the bundle or pointing to nothing, devices and
fifos, duplicate or conflicting paths, too many members, too much content (links count as the
copies they become), and anything that is not an intact gzip'd tar.
"""
from __future__ import annotations

import gzip
import os
import posixpath
import tarfile
import zlib
from pathlib import Path

from .errors import BundleError, UnsafeArchive
from .paths import normalise, relpath_problem

DEFAULT_MAX_BYTES = 2 * 1024**3
DEFAULT_MAX_FILES = 100_000
CORRUPT_ERRORS = (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile)
READ_ERRORS = CORRUPT_ERRORS + (OSError,)  # while only reading, an OSError is the archive's too


def limits(max_bytes: int | None, max_files: int | None) -> tuple[int, int]:
    """Arguments win, then BERTH_MAX_BUNDLE_BYTES / BERTH_MAX_BUNDLE_FILES, then the defaults."""
    return (_limit(max_bytes, "BERTH_MAX_BUNDLE_BYTES", DEFAULT_MAX_BYTES),
            _limit(max_files, "BERTH_MAX_BUNDLE_FILES", DEFAULT_MAX_FILES))


def _limit(value: int | None, env: str, default: int) -> int:
    if value is not None:
        return int(value)
    raw = os.environ.get(env, "").strip()
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError:
        raise BundleError(f"${env} must be a whole number, not {raw!r}") from None


def open_tar(path: Path) -> tarfile.TarFile:
    """Open a .tar.gz, turning a missing, non-gzip or unreadable file into one clear error."""
    label = Path(path).name
    try:
        with open(path, "rb") as f:
            magic = f.read(2)
    except FileNotFoundError:
        raise BundleError(f"{path}: no such file") from None
    except OSError as exc:
        raise BundleError(f"{path}: cannot read ({exc.strerror})") from None
    if magic != b"\x1f\x8b":
        raise UnsafeArchive(f"{label}: not a gzip file; a bundle archive is a .tar.gz (see `berth bundle pack`)")
    try:
        return tarfile.open(path, "r:gz")
    except READ_ERRORS as exc:
        raise UnsafeArchive(f"{label}: corrupt or truncated archive ({exc})") from None


def inspect(tar: tarfile.TarFile, label: str, max_bytes: int, max_files: int):
    """Validate every member; returns (members, {link name: regular file it becomes a copy of})."""
    members: list[tarfile.TarInfo] = []
    kinds: dict[str, str] = {}
    links: dict[str, str] = {}
    sizes: dict[str, int] = {}
    total = 0

    def refuse(member_name: str, why: str):
        return UnsafeArchive(f"{label}: member {member_name!r} {why}; archive refused, nothing was extracted")

    try:
        for m in tar:
            if len(members) >= max_files:
                raise UnsafeArchive(f"{label}: more than {max_files} members (limit set by max_files or "
                                    "$BERTH_MAX_BUNDLE_FILES); archive refused, nothing was extracted")
            members.append(m)
            problem = relpath_problem(m.name)
            if problem:
                raise refuse(m.name, f"path {problem}")
            name = normalise(m.name)
            if m.isdir():
                if kinds.get(name, "dir") != "dir" or name in links:
                    raise refuse(m.name, "is both a folder and a file")
                kinds[name] = "dir"
                continue
            if not name:
                raise refuse(m.name, "names the archive root but is not a folder")
            if name in kinds or name in links:
                raise refuse(m.name, "appears twice")
            if m.isreg():
                kinds[name], sizes[name] = "file", m.size
                total += m.size
            elif m.issym() or m.islnk():
                links[name] = _link_target(m, name, refuse)
            else:
                kind = "a device" if m.ischr() or m.isblk() else "a fifo" if m.isfifo() else "not a regular file"
                raise refuse(m.name, f"is {kind}")
            if total > max_bytes:
                raise _too_big(label, max_bytes)
    except READ_ERRORS as exc:
        raise UnsafeArchive(f"{label}: corrupt or truncated archive ({exc}); nothing was extracted") from None
    _check_parents(kinds, links, refuse)
    copies = {name: _follow(name, links, kinds, refuse) for name in links}
    total += sum(sizes[target] for target in copies.values())
    if total > max_bytes:
        raise _too_big(label, max_bytes)
    return members, copies


def _too_big(label: str, max_bytes: int) -> UnsafeArchive:
    return UnsafeArchive(f"{label}: content is larger than {max_bytes} bytes (limit set by max_bytes or "
                         "$BERTH_MAX_BUNDLE_BYTES); archive refused, nothing was extracted")


def _link_target(m: tarfile.TarInfo, name: str, refuse) -> str:
    """The archive path a link names: symlinks relative to their folder, hardlinks to the root."""
    target = m.linkname
    if not target or target.startswith("/") or relpath_problem(target) == "is absolute":
        raise refuse(m.name, f"is a link to an absolute path ({target!r})")
    if "\\" in target or any(ord(c) < 32 for c in target):
        raise refuse(m.name, f"is a link with an unusable target ({target!r})")
    joined = posixpath.join(posixpath.dirname(name), target) if m.issym() else target
    resolved = posixpath.normpath(joined)
    if resolved == ".." or resolved.startswith("../") or (m.islnk() and ".." in target.split("/")):
        raise refuse(m.name, f"is a link that leaves the bundle ({target!r})")
    return normalise(resolved)


def _check_parents(kinds: dict, links: dict, refuse) -> None:
    """No path may sit under a file or a link (which would let a write escape through it)."""
    for name in list(kinds) + list(links):
        parts = name.split("/")
        for i in range(1, len(parts)):
            parent = "/".join(parts[:i])
            if kinds.get(parent) == "file" or parent in links:
                raise refuse(name, f"sits under {parent!r}, which is a file or a link")


def _follow(name: str, links: dict, kinds: dict, refuse) -> str:
    seen = {name}
    target = links[name]
    while target in links:
        if target in seen:
            raise refuse(name, "is part of a link loop")
        seen.add(target)
        target = links[target]
    if kinds.get(target) != "file":
        what = "a folder" if kinds.get(target) == "dir" or target == "" else "nothing in the archive"
        raise refuse(name, f"is a link to {what} ({target!r}); only links to files are allowed")
    return target
