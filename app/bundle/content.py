"""A bundle's files and its identity: the sha256 of its content, not of any archive of it.

A folder and the archive packed from it have the same identity, so Berth can tell "same model"
whatever form it arrived in, and the server can verify what it received.
"""
from __future__ import annotations

import hashlib
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from .errors import BundleError, UnsafeFile
from .junk import is_junk
from .paths import relpath_problem

CHUNK = 1024 * 1024
LINK_HINT = "a bundle must be self-contained: copy the file into the bundle instead of linking to it"


@dataclass(frozen=True)
class FileEntry:
    path: str  # posix path relative to the bundle root, e.g. "data/coef.json"
    size: int
    mode: int  # normalised: 0o644 or 0o755
    sha256: str
    source: Path  # absolute local path to read the bytes from


def normal_mode(st_mode: int) -> int:
    """Only the executable bit survives; owners, umasks and setuid bits are not part of a bundle."""
    return 0o755 if st_mode & 0o111 else 0o644


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def list_files(folder: Path) -> list[FileEntry]:
    """Every regular file of the bundle, sorted by path, junk excluded.

    Links that stay inside the folder are followed (their target's bytes are the file);
    a link leaving the folder, a dangling link, a link loop or a special file raises BundleError.
    """
    folder = Path(folder).absolute()
    if not folder.is_dir():
        raise BundleError(f"{folder}: not a folder")
    root = folder.resolve()
    entries: list[FileEntry] = []
    _walk(folder, "", root, {root}, entries)
    _refuse_outside_hard_links(entries)
    return sorted(entries, key=lambda e: e.path)


def _refuse_outside_hard_links(entries: list[FileEntry]) -> None:
    """A file whose inode has more names than the bundle holds is shared with a file outside it
    (`ln /etc/passwd model.txt`): what is shipped could change behind the check, so it is refused."""
    names: dict[tuple[int, int], set[Path]] = {}
    counts: dict[tuple[int, int], tuple[int, str]] = {}
    for e in entries:
        st = os.stat(e.source)
        if st.st_nlink > 1:
            key = (st.st_dev, st.st_ino)
            names.setdefault(key, set()).add(e.source.resolve())
            counts.setdefault(key, (st.st_nlink, e.path))
    for key, inside in names.items():
        nlink, rel = counts[key]
        if len(inside) < nlink:
            raise UnsafeFile(rel, f"is a hard link shared with {nlink - len(inside)} file(s) outside the bundle",
                             LINK_HINT)


def _walk(directory: Path, prefix: str, root: Path, ancestors: set, entries: list) -> None:
    for name in sorted(os.listdir(directory)):
        if is_junk(name):
            continue
        path, rel = directory / name, prefix + name
        if relpath_problem(name):
            raise UnsafeFile(rel, f"file name {relpath_problem(name)}", "rename it: bundles travel between systems")
        if path.is_symlink():
            try:
                target = path.resolve()
            except (OSError, RuntimeError):
                raise UnsafeFile(rel, f"symlink loop ({os.readlink(path)})", LINK_HINT) from None
            if target != root and root not in target.parents:
                raise UnsafeFile(rel, f"symlink points outside the bundle ({os.readlink(path)})", LINK_HINT)
            if not target.exists():
                raise UnsafeFile(rel, f"symlink points to nothing ({os.readlink(path)})", LINK_HINT)
        st = os.stat(path)
        if stat.S_ISDIR(st.st_mode):
            real = path.resolve()
            if real in ancestors:
                raise UnsafeFile(rel, "symlink loop (it points back to a folder that contains it)", LINK_HINT)
            _walk(path, rel + "/", root, ancestors | {real}, entries)
        elif stat.S_ISREG(st.st_mode):
            entries.append(FileEntry(rel, st.st_size, normal_mode(st.st_mode), file_sha256(path), path))
        else:
            raise UnsafeFile(rel, "not a regular file or folder (device, fifo or socket)", "remove it from the bundle")


def content_sha256(files: list[FileEntry]) -> str:
    """sha256 of one "path\\tmode(octal)\\tsha256\\n" line per file, sorted by path."""
    lines = "".join(f"{f.path}\t{f.mode:o}\t{f.sha256}\n" for f in sorted(files, key=lambda f: f.path))
    return hashlib.sha256(lines.encode("utf-8")).hexdigest()
