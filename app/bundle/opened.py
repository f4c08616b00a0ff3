"""A checked bundle ready to deploy: its folder, manifest, files and content identity.

An archive is unpacked (safely) into a temp folder that lives as long as the OpenedBundle.
"""
from __future__ import annotations

import shutil
from pathlib import Path

from .archive import extract_archive
from .check import inspect_folder
from .tempdirs import make_temp
from .content import FileEntry, content_sha256
from .errors import BundleError, InvalidBundle
from .manifest import Manifest, Problem


class OpenedBundle:
    """Use as a context manager; leaving it removes the temp folder of an unpacked archive."""

    def __init__(self, folder: Path, manifest: Manifest, files: list[FileEntry], warnings: list[Problem],
                 temp_dir: Path | None = None):
        self.folder, self.manifest, self.files, self.warnings = folder, manifest, files, warnings
        self.sha256 = content_sha256(files)
        self._temp_dir = temp_dir

    def close(self) -> None:
        if self._temp_dir is not None:
            shutil.rmtree(self._temp_dir, ignore_errors=True)
            self._temp_dir = None

    def __enter__(self) -> "OpenedBundle":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<OpenedBundle {self.manifest.name} {self.manifest.version} {self.sha256[:12]} at {self.folder}>"


def open_bundle(path) -> OpenedBundle:
    """Open a folder or .tar.gz; raises UnsafeArchive for hostile archives, InvalidBundle on errors."""
    path = Path(path).absolute()
    temp_dir = None
    try:
        if path.is_dir():
            folder = path
        elif path.exists():
            temp_dir = make_temp("bundle")
            folder = temp_dir / "bundle"
            extract_archive(path, folder)
        else:
            raise BundleError(f"{path}: no such file or folder; give a bundle folder (with berth.toml) or a .tar.gz of one "
                              "(`berth bundle init FOLDER --name NAME` makes one)")
        result, files = inspect_folder(folder)
        if not result.ok:
            raise InvalidBundle(result.problems)
        return OpenedBundle(folder, result.manifest, files, result.warnings, temp_dir)
    except BaseException:
        if temp_dir is not None:
            shutil.rmtree(temp_dir, ignore_errors=True)
        raise
