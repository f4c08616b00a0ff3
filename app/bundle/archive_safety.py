"""Treat a bundle archive as hostile: read its whole member list and refuse it before writing.

Refused: absolute or '..' paths, links leaving the bundle or pointing to nothing, devices and
fifos, duplicate or conflicting paths, too many members, too much content (links count as the
copies they become), and anything that is not an intact gzip'd tar.
"""
from __future__ import annotations

import gzip
import os
import posixpath
import re
import tarfile
import zlib
from pathlib import Path

from .errors import BundleError, UnsafeArchive
from .paths import normalise, relpath_problem

DEFAULT_MAX_BYTES = 2 * 1024**3
DEFAULT_MAX_FILES = 100_000
CORRUPT_ERRORS = (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile)
READ_ERRORS = CORRUPT_ERRORS + (OSError,)  # while only reading, an OSError is the archive's too
BLOCK = 512
ZERO_BLOCK = bytes(BLOCK)
PAX_TYPES = (b"x", b"g", b"X")  # extended, global, Solaris extended: tarfile reads all three as PAX
META_TYPES = PAX_TYPES + (b"L", b"K")  # and GNU long name / long link
# tarfile reads no data after a header of these types whatever its size field says (TarInfo._proc_builtin:
# only regular and unknown types have data); the scan must frame the stream the same way
NO_DATA_TYPES = (b"1", b"2", b"3", b"4", b"5", b"6")
MAX_META_HEADER = 1024 * 1024  # a long path needs a few KB; this leaves room for many PAX records
SKIP_CHUNK = 1024 * 1024
MAX_META_CHAIN = 8  # tarfile follows each extended header by recursion; a real member needs two or three
SPARSE_TYPE = b"S"
PAX_SIZE_RE = re.compile(rb"(?:^|\n)\d+ size=")


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


def open_tar(path: Path, max_bytes: int, max_files: int) -> tarfile.TarFile:
    """Open a .tar.gz, turning a missing, non-gzip or unreadable file into one clear error; its
    headers are scanned first (scan_headers), so tarfile never reads an unbounded one."""
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
        scan_headers(path, label, max_bytes, max_files)
        return tarfile.open(path, "r:gz")
    except READ_ERRORS as exc:
        raise UnsafeArchive(f"{label}: corrupt or truncated archive ({exc})") from None


def scan_headers(path: Path, label: str, max_bytes: int, max_files: int) -> None:
    """Walk the raw tar stream in bounded memory before tarfile parses it: tarfile reads a PAX or GNU
    long-name header's whole body into memory before any of our limits apply (a 389 KB archive with a
    400 MB PAX header made the check use 1.2 GB). Extended headers over MAX_META_HEADER are refused,
    and so is a stream longer than the content limit allows."""
    budget = max_bytes + (max_files + 16) * 3 * BLOCK + MAX_META_HEADER  # headers, padding, trailer
    read, chain = 0, 0
    with gzip.open(path, "rb") as stream:
        while True:
            header = stream.read(BLOCK)
            read += len(header)
            if len(header) < BLOCK or header == ZERO_BLOCK:
                return  # the end (or a truncation, which tarfile reports next)
            size, kind = _header_size(header), header[156:157]
            if kind == SPARSE_TYPE:
                # its extension blocks are not counted in its size, so a scan that skips `size` bytes
                # reads them as headers and can be made to skip a huge PAX header tarfile then reads
                raise UnsafeArchive(f"{label}: a GNU sparse file; a bundle archive holds plain files "
                                    "(see `berth bundle pack`); archive refused, nothing was extracted")
            chain = chain + 1 if kind in META_TYPES else 0
            if chain > MAX_META_CHAIN:
                raise UnsafeArchive(f"{label}: more than {MAX_META_CHAIN} extended headers in a row; "
                                    "archive refused, nothing was extracted")
            if kind in META_TYPES and size > MAX_META_HEADER:
                raise UnsafeArchive(f"{label}: an extended header of {size} bytes (more than {MAX_META_HEADER}); "
                                    "archive refused, nothing was extracted")
            padded = -(-size // BLOCK) * BLOCK
            if read + padded > budget:
                raise _too_big(label, max_bytes)
            if kind in NO_DATA_TYPES:
                continue
            if kind in PAX_TYPES:
                body = stream.read(padded)  # at most MAX_META_HEADER
                read += len(body)
                if b"GNU.sparse." in body:  # PAX's sparse formats: a map read from the data, unbounded
                    raise UnsafeArchive(f"{label}: a GNU sparse file (PAX GNU.sparse records); a bundle archive "
                                        "holds plain files; archive refused, nothing was extracted")
                if PAX_SIZE_RE.search(body):  # tarfile then frames the stream by it, the scan would not
                    raise UnsafeArchive(f"{label}: a PAX size record (only files over 8 GB need one, far over a "
                                        "bundle's limit); archive refused, nothing was extracted")
                if len(body) < padded:
                    return
                continue
            while padded:
                chunk = stream.read(min(padded, SKIP_CHUNK))
                if not chunk:
                    return
                read += len(chunk)
                padded -= len(chunk)


def _header_size(header: bytes) -> int:
    """The size field (12 bytes at 124): octal text, or base-256 when its first byte has the high bit."""
    field = header[124:136]
    if field[0] & 0x80:
        return int.from_bytes(field[1:], "big")
    digits = field.split(b"\0", 1)[0].strip() or b"0"
    try:
        return int(digits, 8)
    except ValueError:
        raise tarfile.TarError(f"invalid size field {digits[:12]!r}") from None


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
