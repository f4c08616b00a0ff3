"""Reproducible .tar.gz bundles out, hostile-until-proven-safe .tar.gz bundles in.

Packing the same files always gives the same bytes (sorted members, no times, owners or umask),
so an archive's sha256 can be compared; unpacking checks every member before writing one byte.
"""
from __future__ import annotations

import gzip
import hashlib
import os
import shutil
import tarfile
import tempfile
from pathlib import Path

from .archive_safety import CORRUPT_ERRORS, inspect, limits, open_tar
from .content import FileEntry, file_sha256, list_files, normal_mode
from .errors import BundleError, UnsafeArchive
from .paths import normalise


def pack(folder, out_path) -> str:
    """Write the bundle folder as a reproducible .tar.gz; returns the archive file's sha256.

    Packing does not validate the bundle (that is `check`'s job), it only needs a berth.toml.
    Regular files only, no folder members: empty folders are not part of a bundle.
    """
    folder, out_path = Path(folder), Path(out_path).absolute()
    if not (folder / "berth.toml").is_file():
        raise BundleError(f"{folder}: no berth.toml at its root; is this a bundle folder?")
    files = [f for f in list_files(folder) if f.source.resolve() != out_path.resolve()]
    fd, tmp = tempfile.mkstemp(prefix=f".{out_path.name}.", suffix=".tmp", dir=out_path.parent)
    try:
        with os.fdopen(fd, "wb") as raw:
            with gzip.GzipFile(filename="", mode="wb", fileobj=raw, compresslevel=9, mtime=0) as gz:
                with tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar:
                    for entry in files:
                        _add(tar, entry)
        os.chmod(tmp, 0o644)
        os.replace(tmp, out_path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return file_sha256(out_path)


def _add(tar: tarfile.TarFile, entry: FileEntry) -> None:
    info = tarfile.TarInfo(entry.path)
    info.size, info.mode, info.mtime = entry.size, entry.mode, 0
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    with open(entry.source, "rb") as f:
        reader = _HashingReader(f)
        tar.addfile(info, reader)
    if reader.digest.hexdigest() != entry.sha256:
        raise BundleError(f"{entry.path}: changed while it was being packed; pack again")


class _HashingReader:
    """Hashes what tarfile copies, so a file edited during packing is caught, not shipped."""

    def __init__(self, f):
        self.f, self.digest = f, hashlib.sha256()

    def read(self, size=-1):
        data = self.f.read(size)
        self.digest.update(data)
        return data


def check_archive(path, max_bytes=None, max_files=None) -> list[tarfile.TarInfo]:
    """Validate every member of the archive without extracting; raises UnsafeArchive."""
    max_bytes, max_files = limits(max_bytes, max_files)
    with open_tar(Path(path), max_bytes, max_files) as tar:
        members, _ = inspect(tar, Path(path).name, max_bytes, max_files)
    return members


def extract_archive(path, dest, max_bytes=None, max_files=None) -> None:
    """Check the whole archive, then write it into `dest` (new or empty folder).

    Links become plain copies of the file they name; modes are normalised to 0o644 / 0o755.
    If writing fails half-way, what was written is removed again.
    """
    path, dest = Path(path), Path(dest)
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise BundleError(f"{dest}: extraction needs a new or empty folder")
    max_bytes, max_files = limits(max_bytes, max_files)
    with open_tar(path, max_bytes, max_files) as tar:
        members, copies = inspect(tar, path.name, max_bytes, max_files)
        created = not dest.exists()
        try:
            dest.mkdir(parents=True, exist_ok=True)
            _write(tar, members, copies, dest)
        except BaseException as exc:
            _undo(dest, created)
            if isinstance(exc, CORRUPT_ERRORS):
                raise UnsafeArchive(f"{path.name}: corrupt or truncated archive ({exc}); nothing was extracted") from None
            raise


def _write(tar: tarfile.TarFile, members, copies: dict[str, str], dest: Path) -> None:
    modes = {}
    for m in members:
        name = normalise(m.name)
        if m.isdir():
            (dest / name).mkdir(parents=True, exist_ok=True)
        elif m.isreg():
            target = dest / name
            target.parent.mkdir(parents=True, exist_ok=True)
            with tar.extractfile(m) as src, open(target, "xb") as out:
                shutil.copyfileobj(src, out, 1024 * 1024)
            modes[name] = normal_mode(m.mode)
            os.chmod(target, modes[name])
    for name, source in copies.items():
        target = dest / name
        target.parent.mkdir(parents=True, exist_ok=True)
        with open(dest / source, "rb") as src, open(target, "xb") as out:
            shutil.copyfileobj(src, out, 1024 * 1024)
        os.chmod(target, modes[source])


def _undo(dest: Path, created: bool) -> None:
    if created:
        shutil.rmtree(dest, ignore_errors=True)
        return
    for child in dest.iterdir():
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child, ignore_errors=True)
        else:
            child.unlink(missing_ok=True)
